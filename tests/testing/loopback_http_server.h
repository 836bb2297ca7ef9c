// File: tests/testing/loopback_http_server.h
//
// A loopback HTTP/1.1 server for tests that stand in for a site sked calls: a
// webhook receiver, the site the `bar` task fetches, IMDSv2, the EC2 API. It
// listens on 127.0.0.1 at an ephemeral port, takes one connection at a time
// and one request per connection (answered with `Connection: close`), parses
// it with Boost.Beast and hands it to the test's handler.
//
// Thread safety: the handler runs on the server's own thread, one request at a
// time; port() and base_url() may be called from any thread. The destructor
// stops the server and joins its thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace sked::testing {

// Binds 127.0.0.1:0, reads the port, closes. Another process may take it before
// the caller binds it, so callers that listen on it retry on "address in use";
// callers that want a port nothing listens on use it at once. Throws
// std::runtime_error if it cannot bind.
int PickFreePort();

class LoopbackHttpServer {
 public:
  struct Request {
    std::string method;                          // "POST"
    std::string target;                          // "/hook?x=1"
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    // The value of header `name` (any case), "" if absent.
    std::string Header(std::string_view name) const;
  };
  struct Response {
    int status = 200;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Length
  };
  using Handler = std::function<Response(const Request&)>;

  // Listens at once; throws std::runtime_error if it cannot.
  explicit LoopbackHttpServer(Handler handler);
  ~LoopbackHttpServer();
  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;

  int port() const { return port_; }
  std::string base_url() const;  // "http://127.0.0.1:PORT"

 private:
  void Loop();
  void Serve(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace sked::testing
