// File: store/sqlite/sqlite_store.h
//
// The SQLite backend of core::Store: a single-file (or in-memory) database for
// one node or a few nodes sharing a local disk, and the store every `sched`
// test uses. Only this factory is public; sqlite3 types never leave
// store/sqlite/.
//
// The database runs in WAL mode with synchronous=NORMAL and foreign keys on.
// All writes go through one connection, serialised by a mutex (SQLite allows
// one writer at a time anyway), each in a BEGIN IMMEDIATE transaction; reads
// use a small pool of read-only connections, which WAL lets run while a write
// is in progress. Several processes may open the same file: a call that waits
// longer than `busy_timeout` for another process's lock returns kUnavailable.
//
// The schema is versioned (migrations/NNNN_name.sql, embedded in the binary)
// and brought up to date when the store opens.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/status.h"
#include "core/store.h"

namespace sked::store {

inline constexpr int kDefaultSqliteReadConnections = 4;
inline constexpr int kMaxSqliteReadConnections = 64;
inline constexpr std::chrono::milliseconds kDefaultSqliteBusyTimeout{5000};

struct SqliteOptions {
  // The database file, created with its parent directory if missing; or
  // ":memory:" for a private in-memory database that lives as long as the
  // store (one connection serves reads and writes). Required.
  std::string path;

  // Read-only connections for concurrent reads of a file database, 0 to
  // 64; 0 sends reads through the writer connection. Ignored for ":memory:".
  // Default: kDefaultSqliteReadConnections (4).
  int read_connections = kDefaultSqliteReadConnections;

  // How long a call waits for a lock held by another connection or process
  // before it returns kUnavailable; >= 0.
  // Default: kDefaultSqliteBusyTimeout (5 s).
  std::chrono::milliseconds busy_timeout = kDefaultSqliteBusyTimeout;
};

// Opens (creating if needed) and migrates the database at options.path.
// On OK the caller owns the returned store, which is safe for concurrent use
// from many threads. kInvalidArgument for bad options; kFailedPrecondition
// when the file was migrated by a newer sked, or WAL cannot be enabled;
// kUnavailable when another process holds the database locked past the busy
// timeout; kInternal when the file cannot be created or opened.
core::StatusOr<std::unique_ptr<core::Store>> OpenSqliteStore(
    const SqliteOptions& options);

}  // namespace sked::store
