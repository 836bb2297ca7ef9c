#include "store/postgres/internal/listener.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <utility>

namespace sked::store::postgres_internal {

Listener::Listener(ConnectConfig config, std::string channel,
                   std::function<void(std::optional<std::string>)> on_event)
    : config_(std::move(config)), channel_(std::move(channel)), on_event_(std::move(on_event)) {
  if (::pipe2(stop_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    stop_pipe_[0] = stop_pipe_[1] = -1;
  }
  thread_ = std::thread([this] { Run(); });
}

Listener::~Listener() {
  stop_.store(true);
  if (stop_pipe_[1] >= 0) {
    const char byte = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_pipe_[1], &byte, 1);
  }
  if (thread_.joinable()) thread_.join();
  for (int fd : stop_pipe_) {
    if (fd >= 0) ::close(fd);
  }
}

bool Listener::stopping() const { return stop_.load(); }

bool Listener::WaitReadable(int fd, std::chrono::milliseconds timeout) {
  pollfd fds[2] = {{.fd = stop_pipe_[0], .events = POLLIN, .revents = 0},
                   {.fd = fd, .events = POLLIN, .revents = 0}};
  // poll() skips negative descriptors, so a missing pipe or socket only
  // leaves the timeout.
  if (::poll(fds, 2, static_cast<int>(timeout.count())) <= 0) return false;
  if (fds[0].revents != 0) return false;
  return fds[1].revents != 0;
}

void Listener::Run() {
  std::chrono::milliseconds backoff = kMinBackoff;
  std::unique_ptr<Connection> conn;
  while (!stopping()) {
    if (conn == nullptr) {
      core::StatusOr<std::unique_ptr<Connection>> fresh = Connection::Open(config_);
      core::Status listening = fresh.status();
      if (fresh.ok()) {
        char* ident = PQescapeIdentifier((*fresh)->raw(), channel_.data(), channel_.size());
        if (ident != nullptr) {
          listening = (*fresh)->ExecScript(std::string("LISTEN ") + ident, "listen");
          PQfreemem(ident);
        } else {
          listening = core::InternalError("postgres: bad channel name");
        }
      }
      if (!listening.ok()) {
        WaitReadable(-1, backoff);
        backoff = std::min(backoff * 2, kMaxBackoff);
        continue;
      }
      conn = std::move(fresh).value();
      backoff = kMinBackoff;
      on_event_(std::nullopt);
    }

    PGconn* pg = conn->raw();
    // The timeout only bounds how long a silently dead connection goes
    // unnoticed between checks of its status.
    const bool readable = WaitReadable(PQsocket(pg), std::chrono::milliseconds(1000));
    if (readable && PQconsumeInput(pg) == 0) {
      conn.reset();
      continue;
    }
    while (PGnotify* n = PQnotifies(pg)) {
      std::string payload = n->extra != nullptr ? n->extra : "";
      PQfreemem(n);
      on_event_(std::move(payload));
    }
    if (PQstatus(pg) != CONNECTION_OK) conn.reset();
  }
}

}  // namespace sked::store::postgres_internal
