// File: store/sqlite/internal/connection.h
//
// A thin layer over the sqlite3 C API for the SQLite backend: one connection
// with its cache of prepared statements, a statement handle that binds and
// reads typed values, a transaction guard, and the one place where sqlite
// result codes become core::Status codes. No sqlite3 type leaves
// store/sqlite/.
//
// Error codes: SQLITE_BUSY/SQLITE_LOCKED -> kUnavailable (retry the call),
// a primary-key constraint -> kAlreadyExists, anything else -> kInternal.
// Messages name the operation and sqlite's generic description of the code,
// never SQL text.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sked::store::sqlite_internal {

// Maps sqlite result code `rc` (extended codes enabled) to a Status for
// operation `what` (e.g. "insert task").
core::Status StatusFromSqlite(int rc, std::string_view what);

class Connection;

// A prepared statement checked out of a Connection's cache. Binding is
// positional: each Bind() fills the next `?`. The first binding error is
// kept and returned by Step()/Run(). On destruction the statement is reset
// and its bindings cleared, ready for the next caller.
//
// Thread safety: used only by the thread that holds its Connection.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  Statement& Bind(int64_t v);
  Statement& Bind(int v) { return Bind(static_cast<int64_t>(v)); }
  Statement& Bind(double v);
  Statement& Bind(std::string_view v);
  Statement& Bind(const std::string& v) { return Bind(std::string_view(v)); }
  Statement& Bind(const char* v) { return Bind(std::string_view(v)); }
  Statement& BindNull();
  template <typename T>
  Statement& Bind(const std::optional<T>& v) {
    return v.has_value() ? Bind(*v) : BindNull();
  }

  // Advances to the next row. true: a row is available; false: done.
  core::StatusOr<bool> Step();
  // Steps until done, ignoring rows.
  core::Status Run();

  // Column accessors for the current row; `col` is 0-based.
  bool IsNull(int col) const;
  int64_t Int(int col) const;
  std::string Text(int col) const;
  std::optional<int64_t> OptInt(int col) const;
  double Double(int col) const;
  std::optional<double> OptDouble(int col) const;
  std::optional<std::string> OptText(int col) const;

 private:
  friend class Connection;
  // `in_use` is the cache entry's flag, cleared on destruction; nullptr for
  // an uncached statement, which is finalized on destruction instead.
  Statement(sqlite3_stmt* stmt, bool* in_use, std::string_view what)
      : stmt_(stmt), in_use_(in_use), what_(what) {}

  sqlite3_stmt* stmt_;
  bool* in_use_;
  std::string_view what_;  // names the operation in error messages
  int next_param_ = 1;
  int bind_rc_ = 0;  // first failing sqlite3_bind_* code, 0 when none
};

// One sqlite3 connection and its prepared statements.
//
// Thread safety: not thread-safe; the owner serialises all use (the store
// guards each Connection with its own mutex).
class Connection {
 public:
  // Opens `path` (":memory:" allowed). `read_only` connections never write.
  static core::StatusOr<std::unique_ptr<Connection>> Open(
      const std::string& path, bool read_only, int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Returns the cached statement for `sql`, preparing it on first use. While
  // it is checked out, another Prepare of the same SQL gets a fresh uncached
  // statement, so nested use is safe.
  // REQUIRES: `what` outlives the returned Statement (a string literal).
  core::StatusOr<Statement> Prepare(std::string_view sql,
                                    std::string_view what);

  // Runs one or more statements without caching (pragmas, migrations,
  // BEGIN/COMMIT).
  core::Status Exec(const std::string& sql, std::string_view what);

  // Rows changed by the last INSERT/UPDATE/DELETE on this connection.
  int64_t Changes() const;

  // True when the connection is inside an explicit transaction.
  bool InTransaction() const;

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  // Bounds the cache: TaskList builds its SQL from the filters present, so
  // the number of distinct statements is bounded but may be a few hundred.
  // Beyond this, statements are prepared per use.
  static constexpr size_t kMaxCachedStatements = 256;

  struct Cached {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };

  sqlite3* db_;
  std::map<std::string, Cached, std::less<>> cache_;
};

// BEGIN on construction via Begin(); ROLLBACK on destruction unless
// Commit() succeeded.
//
// Thread safety: used only by the thread that holds its Connection.
class Transaction {
 public:
  // `immediate` takes the write lock at once (BEGIN IMMEDIATE), so a
  // read-then-write transaction never fails to upgrade half-way.
  static core::StatusOr<Transaction> Begin(Connection& conn, bool immediate);
  Transaction(Transaction&& other) noexcept
      : conn_(other.conn_), done_(other.done_) {
    other.done_ = true;
  }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  core::Status Commit();

 private:
  explicit Transaction(Connection& conn) : conn_(&conn) {}
  Connection* conn_;
  bool done_ = false;
};

}  // namespace sked::store::sqlite_internal
