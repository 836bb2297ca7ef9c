// File: store/postgres/internal/listener.h
//
// LISTENs on one notification channel from a dedicated connection and a
// background thread: the thread waits on the connection's socket, reads
// notifications as they arrive, and reconnects with a growing backoff when
// the connection drops. Notifications sent while it was disconnected are
// lost, so it reports each (re)connection too.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "store/postgres/internal/connection.h"

namespace sked::store::postgres_internal {

// Thread safety: construction and destruction from one thread; `on_event`
// runs on the listener's own thread.
class Listener {
 public:
  // Starts the thread. `on_event` gets each notification's payload, and
  // nullopt after each successful LISTEN (the first one included): anything
  // may have happened while no one listened.
  Listener(ConnectConfig config, std::string channel,
           std::function<void(std::optional<std::string>)> on_event);
  // Stops and joins the thread; waits for a connection attempt in progress
  // (at most the connect timeout).
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

 private:
  void Run();
  // Blocks until `fd` is readable (true), `timeout` passes or Stop is
  // requested (false; check stopping()).
  bool WaitReadable(int fd, std::chrono::milliseconds timeout);
  bool stopping() const;

  static constexpr std::chrono::milliseconds kMinBackoff{100};
  static constexpr std::chrono::milliseconds kMaxBackoff{5000};

  const ConnectConfig config_;
  const std::string channel_;
  const std::function<void(std::optional<std::string>)> on_event_;
  std::atomic<bool> stop_{false};
  int stop_pipe_[2] = {-1, -1};  // a byte written to [1] wakes the thread
  std::thread thread_;
};

}  // namespace sked::store::postgres_internal
