// File: store/postgres/internal/connection.h
//
// A thin layer over libpq for the PostgreSQL backend: statement parameters,
// a result set, and one connection with its session setup and its prepared
// statements (PQprepare once per connection, PQexecPrepared after). This is
// the one place where libpq outcomes become core::Status codes. No libpq type
// leaves store/postgres/.
//
// Error codes: a lost or refused connection, SQLSTATE class 08, 53
// (insufficient resources), 57P01-57P03 (server shutting down), 57014
// (statement timeout) and 55P03 (lock not available) -> kUnavailable; 40001
// (serialization failure) and 40P01 (deadlock) -> kAborted, marked retryable
// so the store re-runs the transaction; 23505 (unique violation) ->
// kAlreadyExists; class 22 (data exception, a value the database refuses) ->
// kInvalidArgument; anything else -> kInternal. Messages name the operation
// and the SQLSTATE, never SQL text or server messages.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/time.h"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace sked::store::postgres_internal {

// How to reach the database; shared by the pool's and the listener's
// connections.
struct ConnectConfig {
  std::string dsn;
  // SET search_path to this schema on connect; empty leaves it alone.
  std::string schema;
  std::chrono::seconds connect_timeout{5};
  std::chrono::milliseconds statement_timeout{0};  // 0: none
};

// Parameters of one statement, filled in order ($1, $2, ...). Text values go
// in text format with their length checked for NUL (which PostgreSQL text
// cannot hold: kInvalidArgument); times go in binary timestamptz format,
// exact to the microsecond. The SQL must cast each time parameter with
// `::timestamptz`.
//
// Thread safety: a value; not shared.
class Params {
 public:
  Params& Add(std::string_view v);
  Params& Add(const std::string& v) { return Add(std::string_view(v)); }
  Params& Add(const char* v) { return Add(std::string_view(v)); }
  Params& Add(int64_t v);
  Params& Add(int v) { return Add(static_cast<int64_t>(v)); }
  Params& Add(core::Time t);
  Params& AddNull();
  template <typename T>
  Params& Add(const std::optional<T>& v) {
    return v.has_value() ? Add(*v) : AddNull();
  }

  int size() const { return static_cast<int>(values_.size()); }
  // The first invalid value's error, else OK.
  const core::Status& status() const { return status_; }

 private:
  friend class Connection;
  struct Value {
    std::string bytes;
    bool null = false;
    bool binary = false;
  };
  std::vector<Value> values_;
  core::Status status_;
};

// `{"a","b"}`: a text[] literal for a `$n::text[]` parameter.
std::string TextArrayLiteral(const std::vector<std::string>& v);
// `{1,2}`: an int[] literal.
std::string IntArrayLiteral(const std::vector<int>& v);
// The same, with NULL elements for nullopt.
std::string NullableTextArrayLiteral(const std::vector<std::optional<std::string>>& v);
std::string NullableInt64ArrayLiteral(const std::vector<std::optional<int64_t>>& v);

// What Connection::ExecPair sends second: one of the statements it was
// given to prepare, with its parameters.
struct SecondStatement {
  std::string_view sql;
  Params params;
};

// The rows of one statement (text format).
//
// Thread safety: a value; not shared.
class Result {
 public:
  Result() = default;
  explicit Result(PGresult* res);
  Result(Result&&) noexcept = default;
  Result& operator=(Result&&) noexcept = default;

  int rows() const;
  // Rows changed by an INSERT/UPDATE/DELETE.
  int64_t affected() const;

  bool IsNull(int row, int col) const;
  std::string_view Text(int row, int col) const;  // "" when NULL
  std::optional<std::string> OptText(int row, int col) const;
  int64_t Int(int row, int col) const;  // 0 when NULL
  std::optional<int64_t> OptInt(int row, int col) const;

 private:
  struct Deleter {
    void operator()(PGresult* r) const;
  };
  std::unique_ptr<PGresult, Deleter> res_;
};

// One libpq connection, its session settings and its prepared statements.
//
// Thread safety: not thread-safe; one thread at a time (the pool hands each
// connection to one caller).
class Connection {
 public:
  // Connects and prepares the session (search_path, statement_timeout).
  // kUnavailable when the server cannot be reached or refuses the login;
  // kFailedPrecondition when it is older than PostgreSQL 14.
  static core::StatusOr<std::unique_ptr<Connection>> Open(const ConnectConfig& config);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // False once the connection is known to be lost. Without blocking, also
  // reads what the server may have sent while the connection sat idle: a
  // server that shut down or dropped us leaves an error and EOF there.
  bool CheckAlive();

  // Runs `sql` as a prepared statement of this connection, preparing it on
  // first use. Statements past a bound are run unprepared.
  core::StatusOr<Result> Exec(std::string_view sql, const Params& params, std::string_view what);
  // Sends `sql` (prepared as Exec does) without waiting for its result: the
  // caller polls socket() for input and calls Receive. One statement at a
  // time; the sending itself may block while the socket's buffer is full.
  core::Status Send(std::string_view sql, const Params& params, std::string_view what);
  // After Send: reads what has arrived without blocking. nullopt while the
  // result is incomplete; then the statement's result or error, mapped as
  // Exec maps it.
  std::optional<core::StatusOr<Result>> Receive(std::string_view what);
  // The descriptor to poll between Send and Receive.
  int socket() const;
  // Two statements in one transaction, in two round trips instead of the
  // four of BEGIN, first, second, COMMIT: the extended protocol's implicit
  // transaction (libpq's pipeline mode) holds from `first_sql` until the
  // Sync sent after the second statement, which commits both. `then` gets
  // the first statement's result and returns the second: one of
  // `second_sqls` (each prepared before the pipeline starts) with its
  // parameters, or nullopt to run no second statement. The first statement
  // must write nothing (it may lock rows): when there is no second, or
  // `then` fails, the Sync that ends the transaction commits what the first
  // did. Returns the second result, nullopt when there was none, or the
  // first error (nothing committed when a statement or the commit fails).
  core::StatusOr<std::optional<Result>> ExecPair(
      std::string_view first_sql, const Params& first_params,
      std::initializer_list<std::string_view> second_sqls,
      const std::function<core::StatusOr<std::optional<SecondStatement>>(const Result&)>& then,
      std::string_view what);
  // Runs `sql` with parameters but without preparing it (one-off statements).
  core::StatusOr<Result> ExecOnce(std::string_view sql, const Params& params,
                                  std::string_view what);
  // Runs one or more statements without parameters (BEGIN, migrations).
  core::Status ExecScript(const std::string& sql, std::string_view what);

  // Ends an open or failed transaction; a failure marks the connection
  // broken.
  void Rollback();
  bool InTransaction() const;

  bool broken() const { return broken_; }
  // True when the last failed statement was a serialization failure or a
  // deadlock: the whole transaction may simply run again.
  bool last_error_retryable() const { return retryable_; }

  // The raw handle, for the listener's socket loop.
  PGconn* raw() { return pg_; }

 private:
  explicit Connection(PGconn* pg) : pg_(pg) {}

  // Bounds the statement cache: TaskList builds its SQL from the filters
  // present, so the number of distinct statements is bounded but may be a
  // few hundred.
  static constexpr size_t kMaxPrepared = 256;

  // Marks the connection broken and returns the kUnavailable that says so.
  core::Status Lost(std::string_view what, std::string_view sqlstate = "");
  // OK for a successful result; otherwise the mapped error (and `broken_`,
  // `retryable_` updated).
  core::Status Check(PGresult* res, std::string_view what);
  // The name of `sql`'s prepared statement, preparing it on first use;
  // nullptr past kMaxPrepared (then the statement runs unprepared).
  core::StatusOr<const std::string*> Prepare(std::string_view sql, std::string_view what);
  struct ParamArrays;
  // Sends `sql` (prepared as `name`, or unnamed when name is nullptr) without
  // waiting for its result, in or out of pipeline mode; false when libpq
  // refused it.
  bool Queue(std::string_view sql, const std::string* name, const Params& params);
  // In pipeline mode, after a statement's one result: whether the NULL that
  // ends its results follows (anything else: the protocol went astray).
  bool EndOfStatement();
  // In pipeline mode: sends a Sync, then LeavePipeline.
  core::Status SyncAndLeavePipeline(std::string_view what);
  // In pipeline mode, a Sync sent: reads every result up to the Sync's and
  // leaves pipeline mode. The first error among them (a failed commit), or OK.
  core::Status LeavePipeline(std::string_view what);

  PGconn* pg_;
  bool broken_ = false;
  bool retryable_ = false;
  std::unordered_map<std::string, std::string> prepared_;  // sql -> name
};

}  // namespace sked::store::postgres_internal
