#include "stub_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sked::blackbox {

StubHttpServer::StubHttpServer(int status) : status_(status) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    std::string err = std::strerror(errno);
    ::close(listen_fd_);
    throw std::runtime_error("stub server bind/listen: " + err);
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Loop(); });
}

StubHttpServer::~StubHttpServer() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

std::string StubHttpServer::url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/";
}

std::vector<std::string> StubHttpServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

std::vector<StubHttpServer::Request> StubHttpServer::full_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return full_;
}

void StubHttpServer::ScriptStatuses(std::vector<int> statuses) {
  std::lock_guard<std::mutex> lock(mu_);
  script_ = std::move(statuses);
}

std::string StubHttpServer::Request::Header(std::string_view name) const {
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  const std::string want = lower(std::string(name)) + ":";
  size_t pos = 0;
  while (pos < headers.size()) {
    size_t end = headers.find("\r\n", pos);
    if (end == std::string::npos) end = headers.size();
    std::string line = headers.substr(pos, end - pos);
    if (lower(line.substr(0, want.size())) == want) {
      std::string v = line.substr(want.size());
      while (!v.empty() && v.front() == ' ') v.erase(v.begin());
      return v;
    }
    pos = end + 2;
  }
  return "";
}

void StubHttpServer::Loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    Serve(fd);
    ::close(fd);
  }
}

void StubHttpServer::Serve(int fd) {
  // Read the head, then Content-Length bytes of body, bounded in time and size.
  std::string data;
  char buf[4096];
  auto read_more = [&]() {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) return false;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    data.append(buf, static_cast<size_t>(n));
    return true;
  };
  while (data.find("\r\n\r\n") == std::string::npos && data.size() < 65536 && !stop_) {
    if (!read_more()) return;
  }
  const size_t head_end = data.find("\r\n\r\n");
  if (head_end == std::string::npos) return;
  Request req;
  const size_t line_end = data.find("\r\n");
  req.line = data.substr(0, line_end);
  req.headers = data.substr(line_end + 2, head_end + 2 - (line_end + 2));
  const std::string length = req.Header("content-length");
  const size_t want = length.empty() ? 0 : std::stoul(length);
  while (data.size() - (head_end + 4) < want && want <= (1u << 20) && !stop_) {
    if (!read_more()) return;
  }
  req.body = data.substr(head_end + 4, want);
  int status = status_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(req.line);
    full_.push_back(req);
    if (!script_.empty()) {
      status = script_.front();
      script_.erase(script_.begin());
    }
  }
  std::string reply = "HTTP/1.1 " + std::to_string(status) + " Stub\r\n";
  if (status != 204 && status != 304) reply += "Content-Length: 0\r\n";
  reply += "Connection: close\r\n\r\n";
  ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
}

}  // namespace sked::blackbox
