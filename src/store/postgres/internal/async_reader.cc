#include "store/postgres/internal/async_reader.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

namespace sked::store::postgres_internal {

AsyncReader::AsyncReader(OpenFn open, SendFn send, FinishFn finish, int connections,
                         size_t max_batch)
    : open_(std::move(open)),
      send_(std::move(send)),
      finish_(std::move(finish)),
      max_batch_(max_batch < 1 ? 1 : max_batch),
      slots_(static_cast<size_t>(connections < 1 ? 1 : connections)) {
  if (::pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) wake_pipe_[0] = wake_pipe_[1] = -1;
  thread_ = std::thread([this] { Loop(); });
}

AsyncReader::~AsyncReader() {
  {
    MutexLock l(&mu_);
    stopping_ = true;
  }
  Wake();
  thread_.join();
  for (int fd : wake_pipe_) {
    if (fd >= 0) ::close(fd);
  }
}

void AsyncReader::Read(std::string key, Done done) {
  bool wake = false;
  {
    MutexLock l(&mu_);
    if (!stopping_) {
      wake = queue_.empty();
      queue_.push_back(Pending{std::move(key), std::move(done)});
      done = nullptr;
    }
  }
  if (done) {
    done(core::UnavailableError("get task: the store is closing"));
    return;
  }
  if (wake) Wake();
}

void AsyncReader::Wake() {
  const char byte = 1;
  // A full pipe already holds a wake-up.
  [[maybe_unused]] ssize_t n = ::write(wake_pipe_[1], &byte, 1);
}

bool AsyncReader::Dispatch(Slot& slot) {
  std::vector<Pending> batch;
  {
    MutexLock l(&mu_);
    if (queue_.empty()) return false;
    const size_t n = std::min(max_batch_, queue_.size());
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  slot.batch = std::move(batch);
  slot.retried = false;
  if (core::Status s = Send(slot); !s.ok()) Finish(slot, std::move(s));
  return true;
}

core::Status AsyncReader::Send(Slot& slot) {
  if (slot.conn == nullptr || slot.conn->broken()) {
    slot.conn.reset();
    core::StatusOr<std::unique_ptr<Connection>> c = open_();
    if (!c.ok()) return c.status();
    slot.conn = std::move(*c);
  }
  std::vector<std::string> keys;
  keys.reserve(slot.batch.size());
  for (const Pending& p : slot.batch) keys.push_back(p.key);
  return send_(*slot.conn, keys);
}

void AsyncReader::Finish(Slot& slot, core::StatusOr<Result> result) {
  // A connection that went stale while idle (the server restarted) fails
  // its next statement: the batch gets one more try on a new one.
  if (!result.ok() && slot.conn != nullptr && slot.conn->broken() && !slot.retried) {
    slot.retried = true;
    slot.conn.reset();
    core::Status s = Send(slot);
    if (s.ok()) return;
    result = std::move(s);
  }
  std::vector<Pending> batch = std::move(slot.batch);
  slot.batch.clear();
  std::vector<std::string> keys;
  keys.reserve(batch.size());
  for (Pending& p : batch) keys.push_back(std::move(p.key));
  std::vector<Value> values = finish_(std::move(result), keys);
  if (slot.conn != nullptr && slot.conn->broken()) slot.conn.reset();
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i].done(i < values.size() ? std::move(values[i])
                                    : Value(core::InternalError("get task: no result")));
  }
}

void AsyncReader::Loop() {
  std::vector<pollfd> fds;
  std::vector<Slot*> polled;
  for (;;) {
    bool busy = false;
    for (Slot& slot : slots_) {
      // A batch that fails at once leaves the slot idle: send the next.
      while (slot.batch.empty() && Dispatch(slot)) {
      }
      busy |= !slot.batch.empty();
    }
    if (!busy) {
      MutexLock l(&mu_);
      if (stopping_ && queue_.empty()) return;
    }
    fds.assign(1, pollfd{.fd = wake_pipe_[0], .events = POLLIN, .revents = 0});
    polled.clear();
    for (Slot& slot : slots_) {
      if (slot.batch.empty()) continue;
      fds.push_back(pollfd{.fd = slot.conn->socket(), .events = POLLIN, .revents = 0});
      polled.push_back(&slot);
    }
    // Without a wake pipe (pipe2 failed), look at the queue every millisecond.
    const int timeout_ms = wake_pipe_[0] < 0 ? 1 : -1;
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0) continue;  // EINTR
    if (fds[0].revents != 0) {
      char buf[64];
      while (::read(wake_pipe_[0], buf, sizeof buf) > 0) {
      }
    }
    for (size_t i = 0; i < polled.size(); ++i) {
      if (fds[i + 1].revents == 0) continue;
      std::optional<core::StatusOr<Result>> r = polled[i]->conn->Receive("get tasks");
      if (r.has_value()) Finish(*polled[i], std::move(*r));
    }
  }
}

}  // namespace sked::store::postgres_internal
