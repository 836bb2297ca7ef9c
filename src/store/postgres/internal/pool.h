// File: store/postgres/internal/pool.h
//
// A fixed-size pool of PostgreSQL connections with a blocking checkout. Slots
// connect on first use; a connection found lost at checkout (the server
// restarted, the network dropped it) is replaced by a new one, so the pool
// recovers from an outage by itself. While connecting fails, further
// attempts wait out a short, growing backoff and checkouts that need a
// connection fail fast with kUnavailable instead of piling up.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <vector>

#include "core/status.h"
#include "store/postgres/internal/connection.h"
#include "store/postgres/internal/thread_annotations.h"

namespace sked::store::postgres_internal {

// Thread safety: safe for concurrent use.
class Pool {
 public:
  // A checked-out connection; returns it to the pool when destroyed. A
  // connection left inside a transaction is rolled back first.
  //
  // Thread safety: used by the thread that checked it out.
  class Lease {
   public:
    Lease(Lease&& other) noexcept : pool_(other.pool_), conn_(std::move(other.conn_)) {
      other.pool_ = nullptr;
    }
    Lease& operator=(Lease&&) = delete;
    ~Lease();

    Connection& conn() { return *conn_; }

   private:
    friend class Pool;
    Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Pool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  // REQUIRES: size >= 1, checkout_timeout > 0.
  Pool(ConnectConfig config, int size, std::chrono::milliseconds checkout_timeout);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Puts an open connection (the one migrations ran on) into a free slot.
  // REQUIRES: no checkout has happened yet.
  void Adopt(std::unique_ptr<Connection> conn) SKED_PG_LOCKS_EXCLUDED(mu_);

  // Waits up to the checkout timeout for a free slot, then hands out its
  // connection, (re)connecting it if needed. kUnavailable when no slot frees
  // in time or the database cannot be reached; kFailedPrecondition when a new
  // connection finds an unsupported server.
  core::StatusOr<Lease> Checkout() SKED_PG_LOCKS_EXCLUDED(mu_);

 private:
  void Return(std::unique_ptr<Connection> conn) SKED_PG_LOCKS_EXCLUDED(mu_);

  // Connects, unless a recent failure's backoff still runs.
  core::StatusOr<std::unique_ptr<Connection>> Connect() SKED_PG_LOCKS_EXCLUDED(mu_);

  static constexpr std::chrono::milliseconds kMinBackoff{50};
  static constexpr std::chrono::milliseconds kMaxBackoff{1000};

  const ConnectConfig config_;
  const std::chrono::milliseconds checkout_timeout_;

  Mutex mu_;
  std::condition_variable freed_;
  int free_slots_ SKED_PG_GUARDED_BY(mu_);
  // Open connections of free slots, most recently used last; a free slot
  // without one connects at checkout.
  std::vector<std::unique_ptr<Connection>> idle_ SKED_PG_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point next_connect_ SKED_PG_GUARDED_BY(mu_);
  std::chrono::milliseconds backoff_ SKED_PG_GUARDED_BY(mu_){0};
};

}  // namespace sked::store::postgres_internal
