#include "store/sqlite/internal/connection.h"

#include <sqlite3.h>

#include <utility>

namespace sked::store::sqlite_internal {

core::Status StatusFromSqlite(int rc, std::string_view what) {
  std::string msg = "sqlite: ";
  msg += what;
  msg += ": ";
  msg += sqlite3_errstr(rc);  // generic text for the code; never SQL
  switch (rc & 0xFF) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
      return core::OkStatus();
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return core::UnavailableError(std::move(msg));
    default:
      break;
  }
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
    return core::AlreadyExistsError(std::move(msg));
  return core::InternalError(std::move(msg));
}

// --- Statement ---------------------------------------------------------------

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      in_use_(std::exchange(other.in_use_, nullptr)),
      what_(other.what_),
      next_param_(other.next_param_),
      bind_rc_(other.bind_rc_) {}

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  if (in_use_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *in_use_ = false;
  } else {
    sqlite3_finalize(stmt_);
  }
}

Statement& Statement::Bind(int64_t v) {
  int rc = sqlite3_bind_int64(stmt_, next_param_++, v);
  if (rc != SQLITE_OK && bind_rc_ == 0) bind_rc_ = rc;
  return *this;
}

Statement& Statement::Bind(double v) {
  int rc = sqlite3_bind_double(stmt_, next_param_++, v);
  if (rc != SQLITE_OK && bind_rc_ == 0) bind_rc_ = rc;
  return *this;
}

Statement& Statement::Bind(std::string_view v) {
  int rc = sqlite3_bind_text64(stmt_, next_param_++, v.data(), v.size(),
                               SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_rc_ == 0) bind_rc_ = rc;
  return *this;
}

Statement& Statement::BindNull() {
  int rc = sqlite3_bind_null(stmt_, next_param_++);
  if (rc != SQLITE_OK && bind_rc_ == 0) bind_rc_ = rc;
  return *this;
}

core::StatusOr<bool> Statement::Step() {
  if (bind_rc_ != 0) return StatusFromSqlite(bind_rc_, what_);
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // With the v2 prepare API sqlite3_step already returns the specific
  // (extended) code.
  return StatusFromSqlite(rc, what_);
}

core::Status Statement::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return core::OkStatus();
  }
}

bool Statement::IsNull(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

double Statement::Double(int col) const { return sqlite3_column_double(stmt_, col); }

std::optional<double> Statement::OptDouble(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Double(col);
}

int64_t Statement::Int(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

std::string Statement::Text(int col) const {
  const auto* p =
      reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  if (p == nullptr) return {};
  return std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::optional<int64_t> Statement::OptInt(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Int(col);
}

std::optional<std::string> Statement::OptText(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Text(col);
}

// --- Connection --------------------------------------------------------------

core::StatusOr<std::unique_ptr<Connection>> Connection::Open(
    const std::string& path, bool read_only, int busy_timeout_ms) {
  // NOMUTEX: the store serialises each connection itself.
  int flags = SQLITE_OPEN_NOMUTEX |
              (read_only ? SQLITE_OPEN_READONLY
                         : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_close_v2(db);  // a handle is returned even on failure
    return StatusFromSqlite(rc, "open database");
  }
  auto conn = std::unique_ptr<Connection>(new Connection(db));
  sqlite3_extended_result_codes(db, 1);
  rc = sqlite3_busy_timeout(db, busy_timeout_ms);
  if (rc != SQLITE_OK) return StatusFromSqlite(rc, "set busy timeout");
  return conn;
}

Connection::~Connection() {
  for (auto& [sql, cached] : cache_) sqlite3_finalize(cached.stmt);
  sqlite3_close_v2(db_);
}

core::StatusOr<Statement> Connection::Prepare(std::string_view sql,
                                              std::string_view what) {
  auto it = cache_.find(sql);
  if (it != cache_.end() && !it->second.in_use) {
    it->second.in_use = true;
    return Statement(it->second.stmt, &it->second.in_use, what);
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return StatusFromSqlite(rc, what);
  }
  if (it != cache_.end() || cache_.size() >= kMaxCachedStatements) {
    return Statement(stmt, nullptr, what);  // finalized after this use
  }
  auto [pos, inserted] = cache_.emplace(std::string(sql), Cached{stmt, true});
  return Statement(stmt, &pos->second.in_use, what);
}

core::Status Connection::Exec(const std::string& sql, std::string_view what) {
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  return StatusFromSqlite(rc, what);
}

int64_t Connection::Changes() const { return sqlite3_changes64(db_); }

bool Connection::InTransaction() const {
  return sqlite3_get_autocommit(db_) == 0;
}

// --- Transaction -------------------------------------------------------------

core::StatusOr<Transaction> Transaction::Begin(Connection& conn,
                                               bool immediate) {
  RETURN_IF_ERROR(
      conn.Exec(immediate ? "BEGIN IMMEDIATE" : "BEGIN", "begin transaction"));
  return Transaction(conn);
}

Transaction::~Transaction() {
  // A failed statement may already have rolled the transaction back.
  if (!done_ && conn_->InTransaction()) {
    (void)conn_->Exec("ROLLBACK", "roll back transaction");
  }
}

core::Status Transaction::Commit() {
  core::Status s = conn_->Exec("COMMIT", "commit transaction");
  if (s.ok()) done_ = true;
  return s;
}

}  // namespace sked::store::sqlite_internal
