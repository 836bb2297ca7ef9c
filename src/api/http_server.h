// File: api/http_server.h
//
// The HTTP/1.1 server: Boost.Beast over Asio. A few I/O threads accept, read and
// write; each parsed request is handed to a separate pool of handler threads,
// because handlers make blocking store calls that must never stall the I/O
// threads. Bodies over `body_limit` are answered 413 without reaching a handler.
//
// An optional async handler is offered each request first, on the I/O thread,
// and answers the ones it can without blocking (GET of one task: on
// PostgreSQL its read has a thread of its own, on SQLite it runs at once on a
// free read connection); Stop waits for the answers it owes.
//
// Thread safety: Start/Stop from one thread; the handlers are called concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "api/http_types.h"
#include "core/status.h"

namespace sked::api {

inline constexpr int kDefaultIoThreads = 2;
inline constexpr int kDefaultHandlerThreads = 8;
inline constexpr uint64_t kDefaultBodyLimit = 1 << 20;  // 1 MiB

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port; see HttpServer::port()
  int io_threads = kDefaultIoThreads;
  int handler_threads = kDefaultHandlerThreads;
  uint64_t body_limit = kDefaultBodyLimit;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
// Called on an I/O thread, so it must not block: true when it took the
// request and will call the reply exactly once, from any thread; false when
// the request is to go to the HttpHandler on a handler thread.
using HttpReply = std::function<void(HttpResponse)>;
using HttpAsyncHandler = std::function<bool(const HttpRequest&, HttpReply)>;

class HttpServer {
 public:
  // `async_handler`, when given, sees each request first.
  HttpServer(HttpServerOptions options, HttpHandler handler,
             HttpAsyncHandler async_handler = nullptr);
  ~HttpServer();

  // Binds and starts serving. kInvalidArgument for a bad host, kUnavailable
  // when the port cannot be bound.
  core::Status Start();
  // The bound port (after Start).
  uint16_t port() const;
  // Stops accepting, closes connections, joins the threads. Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sked::api
