// File: store/postgres/postgres_store.h
//
// The PostgreSQL backend of core::Store: one database shared by many sked
// nodes, which is how sked scales out. Every node claims with
// `FOR UPDATE SKIP LOCKED`, so each due task goes to exactly one node; a node
// that dies holds only leases, which the leader's rescuer takes back once they
// expire. Only this factory is public; libpq types never leave
// store/postgres/.
//
// Each store keeps a fixed-size pool of connections. A connection the server
// dropped (a restart, a network cut) is reopened on its next checkout, so the
// store recovers from an outage without being reopened; while the database
// cannot be reached, calls return kUnavailable (the API answers 503 and the
// engine retries). Inserts, retries and rescues send `NOTIFY sked_due`, and a
// store with a TaskSubscribeDue subscriber LISTENs on its own connection, so
// every node's dispatcher wakes as soon as another node makes work due.
//
// The schema is versioned (migrations/NNNN_name.sql, embedded in the binary)
// and brought up to date when the store opens, under an advisory lock, so
// several nodes may start at once. It needs PostgreSQL 14 or newer.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/status.h"
#include "core/store.h"

namespace sked::store {

inline constexpr int kDefaultPostgresPoolSize = 8;
inline constexpr int kMaxPostgresPoolSize = 256;
inline constexpr char kDefaultPostgresSchema[] = "public";
inline constexpr std::chrono::milliseconds kDefaultPostgresCheckoutTimeout{5000};
inline constexpr std::chrono::seconds kDefaultPostgresConnectTimeout{5};
inline constexpr std::chrono::milliseconds kDefaultPostgresStatementTimeout{30000};
inline constexpr std::chrono::milliseconds kDefaultPostgresLimitedQueuesRecheck{1000};

struct PostgresOptions {
  // A libpq connection string, URI ("postgresql://user@host:5432/db") or
  // key=value form. Required. Its own settings (connect_timeout,
  // application_name, ...) win over the defaults below.
  std::string dsn;

  // The schema holding sked's tables, created if missing. Letters, digits
  // and '_', not starting with a digit, at most 63 characters. Distinct
  // schemas in one database are independent sked installations (tests use
  // a fresh one each).
  // Default: kDefaultPostgresSchema ("public").
  std::string schema = kDefaultPostgresSchema;

  // Connections in the pool, 1 to kMaxPostgresPoolSize. They are opened on
  // first use; at most this many calls run at once, others wait.
  // Default: kDefaultPostgresPoolSize (8).
  int pool_size = kDefaultPostgresPoolSize;

  // How long a call waits for a free pooled connection before it returns
  // kUnavailable; > 0.
  // Default: kDefaultPostgresCheckoutTimeout (5 s).
  std::chrono::milliseconds checkout_timeout = kDefaultPostgresCheckoutTimeout;

  // libpq's connect_timeout for each (re)connection, in whole seconds; >= 1
  // (libpq treats 1 as 2).
  // Default: kDefaultPostgresConnectTimeout (5 s).
  std::chrono::seconds connect_timeout = kDefaultPostgresConnectTimeout;

  // The server cancels a statement that runs longer, and the call returns
  // kUnavailable; 0 disables it.
  // Default: kDefaultPostgresStatementTimeout (30 s).
  std::chrono::milliseconds statement_timeout = kDefaultPostgresStatementTimeout;

  // An inserted task due at least this long after its created_at wakes no
  // node (no NOTIFY): every node's dispatcher looks at the store at least
  // this often anyway (the engine's idle poll), and then learns its run_at.
  // A NOTIFY signals every listening backend and serialises the commits
  // that send one. Zero: every insert notifies.
  // Default: zero.
  std::chrono::milliseconds notify_horizon{0};

  // How long a claim trusts the store's last look at whether any queue has
  // limits (max_running, max_per_second). Without any, a claim takes what is
  // due in one go; with some, a claim that is not full then looks at each
  // limited queue. A limit set through another store (another node) is
  // seen at most this late; one set through this store, at once. > 0.
  // Default: kDefaultPostgresLimitedQueuesRecheck (1 s).
  std::chrono::milliseconds limited_queues_recheck = kDefaultPostgresLimitedQueuesRecheck;
};

// Connects, creates options.schema if missing and migrates it. On OK the
// caller owns the returned store, which is safe for concurrent use from many
// threads. kInvalidArgument for bad options or a malformed dsn; kUnavailable
// when the database cannot be reached; kFailedPrecondition when the server is
// older than PostgreSQL 14 or the schema was migrated by a newer sked;
// kInternal for other database errors.
core::StatusOr<std::unique_ptr<core::Store>> OpenPostgresStore(const PostgresOptions& options);

}  // namespace sked::store
