#include "store/postgres/internal/connection.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace sked::store::postgres_internal {
namespace {

// PostgreSQL's binary timestamptz counts microseconds from 2000-01-01 UTC.
constexpr int64_t kPgEpochOffsetMicros = 946'684'800'000'000;

// The oldest server whose EXTRACT(EPOCH ...) returns an exact numeric.
constexpr int kMinServerVersion = 140000;

void IgnoreNotice(void*, const char*) {
  // Notices ("schema already exists, skipping") and the FATAL a server sends
  // an idle connection on shutdown would otherwise go to stderr. Failures
  // reach callers through results and PQstatus instead.
}

std::string Describe(std::string_view what, std::string_view text, std::string_view sqlstate) {
  std::string m = "postgres: ";
  m += what;
  m += ": ";
  m += text;
  if (!sqlstate.empty()) {
    m += " (SQLSTATE ";
    m += sqlstate;
    m += ")";
  }
  return m;
}

void AppendQuotedElement(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace

// --- Params ------------------------------------------------------------------

Params& Params::Add(std::string_view v) {
  if (status_.ok() && v.find('\0') != std::string_view::npos) {
    status_ = core::InvalidArgumentError("postgres: a text value contains a NUL character");
  }
  values_.push_back(Value{.bytes = std::string(v)});
  return *this;
}

Params& Params::Add(int64_t v) {
  values_.push_back(Value{.bytes = std::to_string(v)});
  return *this;
}

Params& Params::Add(core::Time t) {
  const uint64_t pg = static_cast<uint64_t>(core::ToMicros(t) - kPgEpochOffsetMicros);
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<char>((pg >> (56 - 8 * i)) & 0xff);
  }
  values_.push_back(Value{.bytes = std::move(bytes), .binary = true});
  return *this;
}

Params& Params::AddNull() {
  values_.push_back(Value{.null = true});
  return *this;
}

std::string TextArrayLiteral(const std::vector<std::string>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    AppendQuotedElement(out, v[i]);
  }
  out += '}';
  return out;
}

std::string IntArrayLiteral(const std::vector<int>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(v[i]);
  }
  out += '}';
  return out;
}

std::string NullableTextArrayLiteral(const std::vector<std::optional<std::string>>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    if (v[i].has_value()) {
      AppendQuotedElement(out, *v[i]);
    } else {
      out += "NULL";
    }
  }
  out += '}';
  return out;
}

std::string NullableInt64ArrayLiteral(const std::vector<std::optional<int64_t>>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    out += v[i].has_value() ? std::to_string(*v[i]) : "NULL";
  }
  out += '}';
  return out;
}

// --- Result ------------------------------------------------------------------

void Result::Deleter::operator()(PGresult* r) const { PQclear(r); }

Result::Result(PGresult* res) : res_(res) {}

int Result::rows() const { return res_ ? PQntuples(res_.get()) : 0; }

int64_t Result::affected() const {
  if (!res_) return 0;
  const char* n = PQcmdTuples(res_.get());
  int64_t v = 0;
  std::from_chars(n, n + std::strlen(n), v);
  return v;
}

bool Result::IsNull(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }

std::string_view Result::Text(int row, int col) const {
  if (IsNull(row, col)) return {};
  return std::string_view(PQgetvalue(res_.get(), row, col), PQgetlength(res_.get(), row, col));
}

std::optional<std::string> Result::OptText(int row, int col) const {
  if (IsNull(row, col)) return std::nullopt;
  return std::string(Text(row, col));
}

int64_t Result::Int(int row, int col) const {
  std::string_view s = Text(row, col);
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::optional<int64_t> Result::OptInt(int row, int col) const {
  if (IsNull(row, col)) return std::nullopt;
  return Int(row, col);
}

// --- Connection --------------------------------------------------------------

core::StatusOr<std::unique_ptr<Connection>> Connection::Open(const ConnectConfig& config) {
  // Defaults first and the dsn last: with expand_dbname, later keywords win,
  // so the dsn's own settings override these.
  const std::string timeout = std::to_string(config.connect_timeout.count());
  const char* keys[] = {"connect_timeout",  "keepalives",
                        "keepalives_idle",  "keepalives_interval",
                        "keepalives_count", "fallback_application_name",
                        "dbname",           nullptr};
  const char* values[] = {timeout.c_str(),    "1",    "30", "10", "3", "sked",
                          config.dsn.c_str(), nullptr};
  PGconn* pg = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (pg == nullptr) {
    return core::UnavailableError("postgres: connect: out of memory");
  }
  std::unique_ptr<Connection> conn(new Connection(pg));
  if (PQstatus(pg) != CONNECTION_OK) {
    // libpq's text names hosts and users; it stays out of the status.
    return core::UnavailableError(
        "postgres: connect: the database cannot be reached or refused the "
        "connection");
  }
  PQsetNoticeProcessor(pg, IgnoreNotice, nullptr);
  if (PQserverVersion(pg) < kMinServerVersion) {
    return core::FailedPreconditionError("postgres: the server is older than PostgreSQL 14");
  }

  // No bitmap scans: every statement of the store is built for an ordered
  // index scan that stops at its LIMIT. A bitmap scan reads every entry that
  // matches and sorts them, and the planner takes one when it believes few
  // rows match: right after autovacuum's first VACUUM of a filled tasks table,
  // before its ANALYZE, TaskNextRunAt read and sorted all 57 000 scheduled
  // tasks, 38 ms a call, and held the sustained benchmark's jobs for a
  // second (bench/README.md, fifth pass).
  std::string setup = "SET enable_bitmapscan = off; SET statement_timeout = " +
                      std::to_string(config.statement_timeout.count());
  if (!config.schema.empty()) {
    char* ident = PQescapeIdentifier(pg, config.schema.data(), config.schema.size());
    if (ident == nullptr) {
      return core::InvalidArgumentError("postgres: schema name is invalid");
    }
    setup += "; SET search_path TO ";
    setup += ident;
    PQfreemem(ident);
  }
  RETURN_IF_ERROR(conn->ExecScript(setup, "set up session"));
  return conn;
}

Connection::~Connection() { PQfinish(pg_); }

bool Connection::CheckAlive() {
  if (broken_ || PQstatus(pg_) != CONNECTION_OK) return false;
  // A few rounds: an error message and the EOF after it may need one read
  // each.
  for (int i = 0; i < 4; ++i) {
    pollfd p{.fd = PQsocket(pg_), .events = POLLIN, .revents = 0};
    if (p.fd < 0) return false;
    if (::poll(&p, 1, 0) <= 0) break;
    if (PQconsumeInput(pg_) == 0) {
      broken_ = true;
      return false;
    }
  }
  while (PGnotify* n = PQnotifies(pg_)) PQfreemem(n);
  if (PQstatus(pg_) != CONNECTION_OK) broken_ = true;
  return !broken_;
}

core::Status Connection::Lost(std::string_view what, std::string_view sqlstate) {
  broken_ = true;
  return core::UnavailableError(
      Describe(what, "the connection to the database was lost", sqlstate));
}

core::Status Connection::Check(PGresult* res, std::string_view what) {
  retryable_ = false;
  const ExecStatusType st = res == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(res);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return core::OkStatus();
  if (PQstatus(pg_) != CONNECTION_OK) return Lost(what);
  const char* field = res == nullptr ? nullptr : PQresultErrorField(res, PG_DIAG_SQLSTATE);
  const std::string_view code = field == nullptr ? "" : field;
  const std::string_view cls = code.substr(0, std::min<size_t>(2, code.size()));

  if (cls == "08" || code == "57P01" || code == "57P02" || code == "57P03") {
    return Lost(what, code);
  }
  if (cls == "53" || code == "57014" || code == "55P03") {
    return core::UnavailableError(Describe(what, "the database is busy or out of resources", code));
  }
  if (code == "40001" || code == "40P01") {
    retryable_ = true;
    return core::AbortedError(Describe(what, "lost a race with a concurrent transaction", code));
  }
  if (code == "23505") {
    return core::AlreadyExistsError(Describe(what, "already exists", code));
  }
  if (cls == "22") {
    return core::InvalidArgumentError(Describe(what, "the database refused a value", code));
  }
  if (code.empty()) {
    return core::InternalError(Describe(what, "the statement failed", code));
  }
  return core::InternalError(Describe(what, "database error", code));
}

// Params as the arrays libpq takes; `params` must outlive it.
struct Connection::ParamArrays {
  explicit ParamArrays(const Params& params)
      : n(params.size()), values(n), lengths(n), formats(n) {
    for (int i = 0; i < n; ++i) {
      const Params::Value& v = params.values_[i];
      values[i] = v.null ? nullptr : v.bytes.data();
      lengths[i] = static_cast<int>(v.bytes.size());
      formats[i] = v.binary ? 1 : 0;
    }
  }
  int n;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
};

core::StatusOr<const std::string*> Connection::Prepare(std::string_view sql,
                                                      std::string_view what) {
  std::string key(sql);
  auto it = prepared_.find(key);
  if (it != prepared_.end()) return &it->second;
  if (prepared_.size() >= kMaxPrepared) return nullptr;
  std::string name = "sked_" + std::to_string(prepared_.size() + 1);
  PGresult* res = PQprepare(pg_, name.c_str(), key.c_str(), 0, nullptr);
  core::Status s = Check(res, what);
  PQclear(res);
  if (!s.ok()) return s;
  return &prepared_.emplace(std::move(key), std::move(name)).first->second;
}

core::StatusOr<Result> Connection::Exec(std::string_view sql, const Params& params,
                                        std::string_view what) {
  if (!params.status().ok()) return params.status();
  if (broken_) return Lost(what);
  ASSIGN_OR_RETURN(const std::string* name, Prepare(sql, what));
  if (name == nullptr) return ExecOnce(sql, params, what);
  const ParamArrays a(params);
  PGresult* res = PQexecPrepared(pg_, name->c_str(), a.n, a.values.data(), a.lengths.data(),
                                 a.formats.data(), /*resultFormat=*/0);
  Result result(res);
  RETURN_IF_ERROR(Check(res, what));
  return result;
}

core::Status Connection::Send(std::string_view sql, const Params& params, std::string_view what) {
  if (!params.status().ok()) return params.status();
  if (broken_) return Lost(what);
  ASSIGN_OR_RETURN(const std::string* name, Prepare(sql, what));
  if (!Queue(sql, name, params)) return Lost(what);
  return core::OkStatus();
}

int Connection::socket() const { return PQsocket(pg_); }

std::optional<core::StatusOr<Result>> Connection::Receive(std::string_view what) {
  if (PQconsumeInput(pg_) == 0) {
    return core::StatusOr<Result>(Lost(what));
  }
  if (PQisBusy(pg_) != 0) return std::nullopt;
  // One statement gives one result, then NULL; keep the first error.
  std::optional<core::StatusOr<Result>> out;
  while (PGresult* res = PQgetResult(pg_)) {
    core::Status s = Check(res, what);
    if (!out.has_value() || (out->ok() && !s.ok())) {
      if (s.ok()) {
        out.emplace(Result(res));
        continue;
      }
      out.emplace(std::move(s));
    }
    PQclear(res);
  }
  if (!out.has_value()) {
    out.emplace(Lost(what));
  }
  return out;
}

bool Connection::Queue(std::string_view sql, const std::string* name, const Params& params) {
  const ParamArrays a(params);
  if (name != nullptr) {
    return PQsendQueryPrepared(pg_, name->c_str(), a.n, a.values.data(), a.lengths.data(),
                               a.formats.data(), /*resultFormat=*/0) != 0;
  }
  const std::string text(sql);
  return PQsendQueryParams(pg_, text.c_str(), a.n, nullptr, a.values.data(), a.lengths.data(),
                           a.formats.data(), /*resultFormat=*/0) != 0;
}

bool Connection::EndOfStatement() {
  PGresult* extra = PQgetResult(pg_);
  if (extra == nullptr) return true;
  PQclear(extra);
  return false;
}

core::Status Connection::SyncAndLeavePipeline(std::string_view what) {
  if (PQpipelineSync(pg_) == 0) return Lost(what);
  return LeavePipeline(what);
}

core::Status Connection::LeavePipeline(std::string_view what) {
  core::Status first_error;
  // Whatever is still queued before the Sync reports (an aborted statement,
  // a failed commit), then the Sync itself.
  while (true) {
    PGresult* res = PQgetResult(pg_);
    if (res == nullptr) {
      if (PQstatus(pg_) != CONNECTION_OK) return Lost(what);
      continue;  // the end of one statement's results
    }
    const ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_PIPELINE_SYNC) {
      PQclear(res);
      break;
    }
    if (st != PGRES_PIPELINE_ABORTED) {
      core::Status s = Check(res, what);
      if (first_error.ok() && !s.ok()) first_error = std::move(s);
    }
    PQclear(res);
  }
  if (PQexitPipelineMode(pg_) == 0) return Lost(what);
  return first_error;
}

core::StatusOr<std::optional<Result>> Connection::ExecPair(
    std::string_view first_sql, const Params& first_params,
    std::initializer_list<std::string_view> second_sqls,
    const std::function<core::StatusOr<std::optional<SecondStatement>>(const Result&)>& then,
    std::string_view what) {
  if (!first_params.status().ok()) return first_params.status();
  if (broken_) return Lost(what);
  // Prepared before the pipeline, where a prepare would be one more message
  // to wait for.
  ASSIGN_OR_RETURN(const std::string* first, Prepare(first_sql, what));
  for (std::string_view sql : second_sqls) RETURN_IF_ERROR(Prepare(sql, what).status());
  if (PQenterPipelineMode(pg_) == 0) return Lost(what);
  // The first statement, and a Flush so that its result comes back while the
  // transaction stays open.
  if (!Queue(first_sql, first, first_params) || PQsendFlushRequest(pg_) == 0 ||
      PQflush(pg_) != 0) {
    return Lost(what);
  }
  PGresult* res = PQgetResult(pg_);
  core::Status s = Check(res, what);
  Result first_result(res);
  if (res != nullptr && !EndOfStatement()) return Lost(what);
  if (!s.ok()) {
    (void)SyncAndLeavePipeline(what);
    return s;
  }
  core::StatusOr<std::optional<SecondStatement>> next = then(first_result);
  if (next.ok() && next->has_value()) {
    if (std::find(second_sqls.begin(), second_sqls.end(), (*next)->sql) == second_sqls.end()) {
      next = core::InternalError(std::string(what) + ": a second statement not given to prepare");
    } else if (!(*next)->params.status().ok()) {
      next = (*next)->params.status();
    }
  }
  if (!next.ok() || !next->has_value()) {
    RETURN_IF_ERROR(SyncAndLeavePipeline(what));
    if (!next.ok()) return next.status();
    return std::optional<Result>();
  }
  // Prepared above: this finds the name.
  ASSIGN_OR_RETURN(const std::string* second, Prepare((*next)->sql, what));
  if (!Queue((*next)->sql, second, (*next)->params)) return Lost(what);
  if (PQpipelineSync(pg_) == 0) return Lost(what);
  res = PQgetResult(pg_);
  s = Check(res, what);
  Result second_result(res);
  if (res != nullptr && !EndOfStatement()) return Lost(what);
  // The Sync went with the statement; its result says whether the commit held.
  core::Status committed = LeavePipeline(what);
  RETURN_IF_ERROR(s);
  RETURN_IF_ERROR(committed);
  return std::optional<Result>(std::move(second_result));
}

core::StatusOr<Result> Connection::ExecOnce(std::string_view sql, const Params& params,
                                            std::string_view what) {
  if (!params.status().ok()) return params.status();
  if (broken_) return Lost(what);
  const std::string text(sql);
  const ParamArrays a(params);
  PGresult* res = PQexecParams(pg_, text.c_str(), a.n, /*paramTypes=*/nullptr, a.values.data(),
                               a.lengths.data(), a.formats.data(),
                               /*resultFormat=*/0);
  Result result(res);
  RETURN_IF_ERROR(Check(res, what));
  return result;
}

core::Status Connection::ExecScript(const std::string& sql, std::string_view what) {
  if (broken_) return Lost(what);
  PGresult* res = PQexec(pg_, sql.c_str());
  Result holder(res);
  return Check(res, what);
}

bool Connection::InTransaction() const {
  const PGTransactionStatusType t = PQtransactionStatus(pg_);
  return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

void Connection::Rollback() {
  if (broken_ || !InTransaction()) return;
  const bool retryable = retryable_;
  if (!ExecScript("ROLLBACK", "roll back").ok()) broken_ = true;
  retryable_ = retryable;
}

}  // namespace sked::store::postgres_internal
