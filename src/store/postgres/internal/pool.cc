#include "store/postgres/internal/pool.h"

#include <algorithm>
#include <utility>

namespace sked::store::postgres_internal {

Pool::Lease::~Lease() {
  if (pool_ == nullptr) return;
  if (conn_ != nullptr && conn_->InTransaction()) conn_->Rollback();
  pool_->Return(std::move(conn_));
}

Pool::Pool(ConnectConfig config, int size, std::chrono::milliseconds checkout_timeout)
    : config_(std::move(config)), checkout_timeout_(checkout_timeout), free_slots_(size) {}

void Pool::Adopt(std::unique_ptr<Connection> conn) {
  MutexLock lock(&mu_);
  idle_.push_back(std::move(conn));
}

void Pool::Return(std::unique_ptr<Connection> conn) {
  {
    MutexLock lock(&mu_);
    if (conn != nullptr && !conn->broken()) idle_.push_back(std::move(conn));
    ++free_slots_;
  }
  freed_.notify_one();
  // A broken connection is closed here, outside the lock.
}

core::StatusOr<std::unique_ptr<Connection>> Pool::Connect() {
  {
    MutexLock lock(&mu_);
    if (std::chrono::steady_clock::now() < next_connect_) {
      return core::UnavailableError("postgres: the database cannot be reached; reconnecting");
    }
  }
  core::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(config_);
  MutexLock lock(&mu_);
  if (conn.ok()) {
    backoff_ = std::chrono::milliseconds(0);
    next_connect_ = {};
  } else {
    backoff_ = std::clamp(backoff_ * 2, kMinBackoff, kMaxBackoff);
    next_connect_ = std::chrono::steady_clock::now() + backoff_;
  }
  return conn;
}

core::StatusOr<Pool::Lease> Pool::Checkout() {
  std::unique_ptr<Connection> conn;
  {
    MutexLock lock(&mu_);
    const auto deadline = std::chrono::steady_clock::now() + checkout_timeout_;
    if (!lock.WaitUntil(freed_, deadline,
                        [&]() SKED_PG_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return free_slots_ > 0; })) {
      return core::UnavailableError("postgres: no pooled connection became free in time");
    }
    --free_slots_;
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  // From here the slot is ours: a Lease (or Return) gives it back.
  if (conn != nullptr && !conn->CheckAlive()) conn.reset();
  if (conn == nullptr) {
    core::StatusOr<std::unique_ptr<Connection>> fresh = Connect();
    if (!fresh.ok()) {
      Return(nullptr);
      return fresh.status();
    }
    conn = std::move(fresh).value();
  }
  return Lease(this, std::move(conn));
}

}  // namespace sked::store::postgres_internal
