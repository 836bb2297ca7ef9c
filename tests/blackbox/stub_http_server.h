// File: tests/blackbox/stub_http_server.h
//
// A tiny HTTP server on 127.0.0.1:<ephemeral> that answers every request with a
// fixed status (or a scripted sequence of them) and an empty body, and records
// each request: its line, headers and body. It stands in for the external site
// the `bar` task fetches and for a webhook receiver. The HTTP side is
// testing::LoopbackHttpServer.
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "testing/loopback_http_server.h"

namespace sked::blackbox {

class StubHttpServer {
 public:
  // Listens at once; throws std::runtime_error if it cannot.
  explicit StubHttpServer(int status);

  int port() const { return server_.port(); }
  std::string url() const;  // "http://127.0.0.1:PORT/"
  // Request lines seen so far ("GET / HTTP/1.1").
  std::vector<std::string> requests() const;

  struct Request : testing::LoopbackHttpServer::Request {
    std::string line;  // "POST /hook HTTP/1.1"
  };
  std::vector<Request> full_requests() const;

  // The next requests get these statuses, in order; then the fixed one again.
  void ScriptStatuses(std::vector<int> statuses);

 private:
  testing::LoopbackHttpServer::Response Answer(const testing::LoopbackHttpServer::Request& req);

  const int status_;
  mutable std::mutex mu_;
  std::vector<Request> full_;  // guarded by mu_
  std::vector<int> script_;    // guarded by mu_; next status first
  // Last: it calls Answer until destroyed, so it must go before the state above.
  testing::LoopbackHttpServer server_;
};

}  // namespace sked::blackbox
