#include "stub_http_server.h"

#include <utility>

namespace sked::blackbox {

StubHttpServer::StubHttpServer(int status)
    : status_(status), server_([this](const auto& req) { return Answer(req); }) {}

std::string StubHttpServer::url() const { return server_.base_url() + "/"; }

std::vector<std::string> StubHttpServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> lines;
  for (const Request& r : full_) lines.push_back(r.line);
  return lines;
}

std::vector<StubHttpServer::Request> StubHttpServer::full_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return full_;
}

void StubHttpServer::ScriptStatuses(std::vector<int> statuses) {
  std::lock_guard<std::mutex> lock(mu_);
  script_ = std::move(statuses);
}

testing::LoopbackHttpServer::Response StubHttpServer::Answer(
    const testing::LoopbackHttpServer::Request& req) {
  Request recorded;
  static_cast<testing::LoopbackHttpServer::Request&>(recorded) = req;
  recorded.line = req.method + " " + req.target + " HTTP/1.1";
  std::lock_guard<std::mutex> lock(mu_);
  full_.push_back(std::move(recorded));
  int status = status_;
  if (!script_.empty()) {
    status = script_.front();
    script_.erase(script_.begin());
  }
  return {.status = status};
}

}  // namespace sked::blackbox
