// File: tests/blackbox/stub_http_server.h
//
// A tiny HTTP server on 127.0.0.1:<ephemeral> that answers every request with a
// fixed status (or a scripted sequence of them) and an empty body, and records
// each request: its line, headers and body. It stands in for the external site
// the `bar` task fetches and for a webhook receiver.
//
// Thread safety: all methods may be called from any thread; the accept loop runs
// on its own thread until destruction.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sked::blackbox {

class StubHttpServer {
 public:
  // Listens at once; throws std::runtime_error if it cannot.
  explicit StubHttpServer(int status);
  ~StubHttpServer();
  StubHttpServer(const StubHttpServer&) = delete;
  StubHttpServer& operator=(const StubHttpServer&) = delete;

  int port() const { return port_; }
  std::string url() const;  // "http://127.0.0.1:PORT/"
  // Request lines seen so far ("GET / HTTP/1.1").
  std::vector<std::string> requests() const;

  struct Request {
    std::string line;     // "POST /hook HTTP/1.1"
    std::string headers;  // the raw header block, "Name: value\r\n" lines
    std::string body;
    // The value of header `name` (case-insensitive), "" if absent.
    std::string Header(std::string_view name) const;
  };
  std::vector<Request> full_requests() const;

  // The next requests get these statuses, in order; then the fixed one again.
  void ScriptStatuses(std::vector<int> statuses);

 private:
  void Loop();
  void Serve(int fd);

  int status_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<std::string> requests_;  // guarded by mu_
  std::vector<Request> full_;          // guarded by mu_
  std::vector<int> script_;            // guarded by mu_; next status first
  std::thread thread_;
};

}  // namespace sked::blackbox
