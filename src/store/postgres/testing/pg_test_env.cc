#include "store/postgres/testing/pg_test_env.h"

#include <libpq-fe.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>

namespace sked::store::postgres_testing {
namespace {

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultCloser {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnCloser>;
using ResultPtr = std::unique_ptr<PGresult, ResultCloser>;

core::StatusOr<ConnPtr> Connect(const std::string& dsn) {
  ConnPtr conn(PQconnectdb(dsn.c_str()));
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    return core::UnavailableError(std::string("cannot connect: ") +
                                  (conn ? PQerrorMessage(conn.get()) : "out of memory"));
  }
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

core::StatusOr<ResultPtr> Run(const std::string& dsn, const std::string& sql) {
  ASSIGN_OR_RETURN(ConnPtr conn, Connect(dsn));
  ResultPtr res(PQexec(conn.get(), sql.c_str()));
  const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return core::InternalError("`" + sql + "` failed: " + PQerrorMessage(conn.get()));
  }
  return res;
}

}  // namespace

std::optional<std::string> TestDsn() {
  const char* v = std::getenv(kDsnVariable);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

std::string MissingDsnMessage() {
  return std::string(kDsnVariable) +
         " is not set, so this PostgreSQL test cannot run (it does not pass "
         "without a database). Run the whole suite with `bash "
         "scripts/test.sh`, which starts a throwaway cluster and sets it; or "
         "by hand: `DSN=$(bash scripts/pg-throwaway.sh start /tmp/pgX) && " +
         kDsnVariable +
         "=$DSN ctest --test-dir build -L postgres; bash "
         "scripts/pg-throwaway.sh stop /tmp/pgX`.";
}

std::string RandomSchemaName() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string("sked_test_") + buf;
}

core::Status ExecSql(const std::string& dsn, const std::string& sql) {
  return Run(dsn, sql).status();
}

core::StatusOr<std::optional<std::string>> QueryValue(const std::string& dsn,
                                                      const std::string& sql) {
  ASSIGN_OR_RETURN(ResultPtr res, Run(dsn, sql));
  if (PQntuples(res.get()) == 0 || PQnfields(res.get()) == 0 || PQgetisnull(res.get(), 0, 0)) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(PQgetvalue(res.get(), 0, 0));
}

core::Status DropSchema(const std::string& dsn, const std::string& schema) {
  return ExecSql(dsn, "DROP SCHEMA IF EXISTS \"" + schema + "\" CASCADE");
}

void FreshSchemaTest::SetUp() {
  std::optional<std::string> dsn = TestDsn();
  ASSERT_TRUE(dsn.has_value()) << MissingDsnMessage();
  dsn_ = *dsn;
  schema_ = RandomSchemaName();
}

void FreshSchemaTest::TearDown() {
  if (dsn_.empty() || schema_.empty()) return;  // SetUp found no DSN
  core::Status s = DropSchema(dsn_, schema_);
  EXPECT_TRUE(s.ok()) << "dropping schema " << schema_ << ": " << s.ToString();
}

}  // namespace sked::store::postgres_testing
