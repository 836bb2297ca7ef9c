#include "api/http_server.h"

#include "api/error_json.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/pct_string_view.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace sked::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds(60);
// At Stop, how long a response being written may take to reach its client,
// and how long the I/O threads may take to finish what they still do.
constexpr auto kStopWriteTimeout = std::chrono::seconds(2);
constexpr auto kStopDrainTimeout = std::chrono::seconds(5);

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

HttpRequest ToRequest(http::request<http::string_body>&& req) {
  HttpRequest r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  auto q = r.target.find('?');
  std::string raw_path = q == std::string::npos ? r.target : r.target.substr(0, q);
  if (q != std::string::npos) r.query = r.target.substr(q + 1);
  auto decoded = boost::urls::make_pct_string_view(raw_path);
  if (decoded) {
    r.path.clear();
    for (char c : decoded->decode()) r.path.push_back(c);
  } else {
    r.path = raw_path;
  }
  for (const auto& f : req) r.headers[Lower(f.name_string())] = std::string(f.value());
  r.body = std::move(req.body());
  return r;
}

http::response<http::string_body> ToBeast(HttpResponse&& resp, unsigned version,
                                          bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(resp.status), version};
  res.set(http::field::server, "sked");
  if (!resp.content_type.empty()) res.set(http::field::content_type, resp.content_type);
  for (auto& [k, v] : resp.headers) res.set(k, v);
  res.body() = std::move(resp.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

HttpResponse ErrorResponse(unsigned status, std::string_view code, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.body = std::string(R"({"error":{"code":")") + std::string(code) + R"(","message":")" +
           std::string(message) + R"(","details":{}}})";
  return r;
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  HttpAsyncHandler async_handler;
  // Requests the async handler took and has not answered: Stop waits for
  // them, since their replies post to ioc.
  std::atomic<int> async_pending{0};
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  tcp::acceptor acceptor{ioc};
  asio::thread_pool handlers;
  std::vector<std::thread> io_threads;
  uint16_t bound_port = 0;
  bool running = false;

  class Session;
  // The open connections, so that Stop can close them: by address, each
  // session removing itself as it is destroyed. `stopping` (set under
  // sessions_mu, so a session registers before Stop looks or sees it) closes
  // a session that comes up after Stop looked, and each at its next read.
  std::mutex sessions_mu;
  std::map<const Session*, std::weak_ptr<Session>> sessions;
  std::atomic<bool> stopping{false};
  // I/O threads whose run() returned, for Stop's bounded wait.
  std::mutex io_mu;
  std::condition_variable io_cv;
  int io_done = 0;

  Impl(HttpServerOptions o, HttpHandler h, HttpAsyncHandler a)
      : options(std::move(o)),
        handler(std::move(h)),
        async_handler(std::move(a)),
        handlers(static_cast<size_t>(std::max(1, options.handler_threads))) {}

  class Session : public std::enable_shared_from_this<Session> {
   public:
    Session(tcp::socket socket, Impl& impl) : stream_(std::move(socket)), impl_(impl) {}
    ~Session() {
      std::lock_guard lk(impl_.sessions_mu);
      impl_.sessions.erase(this);
    }

    void Run() {
      {
        std::lock_guard lk(impl_.sessions_mu);
        if (!impl_.stopping) impl_.sessions.emplace(this, weak_from_this());
      }
      asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
    }

    // From any thread, once the server stops: a connection waiting for a
    // request closes now; one writing a response closes once it is written
    // (Write's completion, since the server is stopping), within
    // kStopWriteTimeout.
    void CloseForStop() {
      asio::post(stream_.get_executor(), [self = shared_from_this()] {
        if (self->writing_) {
          self->stream_.expires_after(kStopWriteTimeout);
        } else {
          self->Close();
        }
      });
    }

   private:
    bool Stopping() const { return impl_.stopping.load(); }

    void Read() {
      if (Stopping()) {
        Close();
        return;
      }
      parser_.emplace();
      parser_->body_limit(impl_.options.body_limit);
      parser_->header_limit(64 * 1024);
      stream_.expires_after(kIdleTimeout);
      http::async_read(stream_, buffer_, *parser_,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         self->OnRead(ec);
                       });
    }

    void OnRead(beast::error_code ec) {
      if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
          ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
        Close();
        return;
      }
      if (ec == http::error::body_limit) {
        HttpResponse r;
        r.status = 413;
        r.body = PayloadTooLargeBody(impl_.options.body_limit);
        Write(std::move(r), 11, false);
        return;
      }
      if (ec) {
        Write(ErrorResponse(400, "invalid_argument", "malformed HTTP request"), 11, false);
        return;
      }
      auto parsed = parser_->release();
      const unsigned version = parsed.version();
      const bool keep_alive = parsed.keep_alive();
      HttpRequest req = ToRequest(std::move(parsed));
      if (TryAsync(req, version, keep_alive)) return;
      // Handlers block on the store: run them off the I/O threads.
      asio::post(impl_.handlers, [self = shared_from_this(), req = std::move(req), version,
                                  keep_alive]() mutable {
        HttpResponse resp;
        try {
          resp = self->impl_.handler(req);
        } catch (const std::exception&) {
          resp = ErrorResponse(500, "internal", "internal error");
        }
        self->Reply(std::move(resp), version, keep_alive);
      });
    }

    // Offers `req` to the async handler; true when it took it.
    bool TryAsync(const HttpRequest& req, unsigned version, bool keep_alive) {
      if (!impl_.async_handler) return false;
      impl_.async_pending.fetch_add(1);
      bool taken = false;
      try {
        taken = impl_.async_handler(
            req, [self = shared_from_this(), version, keep_alive](HttpResponse resp) mutable {
              Impl& impl = self->impl_;
              self->Reply(std::move(resp), version, keep_alive);
              // Drop this reference first: once AsyncDone lets Stop go on,
              // the I/O context may be destroyed.
              self.reset();
              impl.AsyncDone();
            });
      } catch (const std::exception&) {
        taken = false;  // it throws before taking the request, never after
      }
      if (!taken) impl_.AsyncDone();
      return taken;
    }

    // From any thread: writes `resp` on this session's strand.
    void Reply(HttpResponse&& resp, unsigned version, bool keep_alive) {
      asio::post(stream_.get_executor(), [self = shared_from_this(), resp = std::move(resp),
                                          version, keep_alive]() mutable {
        self->Write(std::move(resp), version, keep_alive);
      });
    }

    void Write(HttpResponse&& resp, unsigned version, bool keep_alive) {
      auto res =
          std::make_shared<http::response<http::string_body>>(ToBeast(std::move(resp), version,
                                                                      keep_alive));
      stream_.expires_after(Stopping() ? kStopWriteTimeout : kIdleTimeout);
      writing_ = true;
      http::async_write(stream_, *res,
                        [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
                          self->writing_ = false;
                          if (ec || !keep_alive) {
                            self->Close();
                            return;
                          }
                          self->Read();  // which closes it if the server is stopping
                        });
    }

    void Close() {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      stream_.socket().close(ec);
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    Impl& impl_;
    bool writing_ = false;  // on the session's strand
  };

  void AsyncDone() {
    if (async_pending.fetch_sub(1) == 1) async_pending.notify_all();
  }

  void Accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      } else {
        s.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(s), *this)->Run();
      }
      Accept();
    });
  }
};

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler,
                       HttpAsyncHandler async_handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler),
                                   std::move(async_handler))) {}

HttpServer::~HttpServer() { Stop(); }

core::Status HttpServer::Start() {
  beast::error_code ec;
  auto addr = asio::ip::make_address(impl_->options.host, ec);
  if (ec) return core::InvalidArgumentError("listen: bad address " + impl_->options.host);
  tcp::endpoint ep(addr, impl_->options.port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return core::UnavailableError("listen on " + impl_->options.host + ":" +
                                  std::to_string(impl_->options.port) + ": " + ec.message());
  impl_->bound_port = impl_->acceptor.local_endpoint().port();
  impl_->work.emplace(impl_->ioc.get_executor());
  impl_->Accept();
  for (int i = 0; i < std::max(1, impl_->options.io_threads); ++i)
    impl_->io_threads.emplace_back([this] {
      impl_->ioc.run();
      std::lock_guard lk(impl_->io_mu);
      ++impl_->io_done;
      impl_->io_cv.notify_all();
    });
  impl_->running = true;
  return core::OkStatus();
}

uint16_t HttpServer::port() const { return impl_->bound_port; }

void HttpServer::Stop() {
  if (!impl_ || !impl_->running) return;
  impl_->running = false;
  asio::post(impl_->ioc, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
  for (int n = impl_->async_pending.load(); n != 0; n = impl_->async_pending.load()) {
    impl_->async_pending.wait(n);
  }
  impl_->handlers.join();
  // Every answer is now posted to its connection: let each be written, then
  // close every connection. Stopping the I/O context at once would drop the
  // answers still queued and leave their connections open, with clients
  // waiting on them for as long as the process lives.
  std::vector<std::shared_ptr<Impl::Session>> open;
  {
    std::lock_guard lk(impl_->sessions_mu);
    impl_->stopping = true;
    for (auto& [ptr, weak] : impl_->sessions) {
      if (auto s = weak.lock()) open.push_back(std::move(s));
    }
  }
  for (auto& s : open) s->CloseForStop();
  open.clear();
  impl_->work.reset();
  {
    // With no connection left and no work guard, run() returns by itself;
    // whatever still holds it after kStopDrainTimeout is dropped.
    std::unique_lock lk(impl_->io_mu);
    const int threads = static_cast<int>(impl_->io_threads.size());
    if (!impl_->io_cv.wait_for(lk, kStopDrainTimeout,
                               [&] { return impl_->io_done == threads; })) {
      impl_->ioc.stop();
    }
  }
  for (auto& t : impl_->io_threads) t.join();
  impl_->io_threads.clear();
}

}  // namespace sked::api
