// bench/claim_client.cc: drains the due tasks of a sked schema with the
// statements of sked's own claim, from a bare libpq client (no engine, no
// threads, no HTTP), to weigh what a sked node adds to its SQL
// (bench/README.md, ninth pass; bench/drain_compare.py runs it).
//
// usage: sked-claim-client DSN SCHEMA [sked|lean] [BATCH]
//   sked (default): kClaimLockSql, then kClaimWriteAlikeSql with every task
//        succeeded as a no-op does, in one pipelined transaction, as
//        PostgresStore::ClaimRunningInstantly sends them.
//   lean: the least a claim could ask: the same rows locked but only their
//        ids sent back, the outcome spelt in the SQL.
//   BATCH: tasks a claim locks at most (default 512, sked's claim batch).
// Prints one JSON line: jobs, seconds, backend_cpu_s (the server process's
// user + system time from /proc, so run it on the database's machine).

#include <libpq-fe.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include "store/postgres/internal/claim_sql.h"

namespace {

using sked::store::postgres_internal::kClaimLockSql;
using sked::store::postgres_internal::kClaimWriteAlikeSql;

constexpr char kLeanWriteSql[] =
    "UPDATE tasks t SET state = 'succeeded', attempt = t.attempt + 1,"
    " started_at = $2::timestamptz, finished_at = $2::timestamptz, result_exit_code = 0,"
    " result_output = '', error = NULL, handle = NULL, lease_owner = NULL,"
    " lease_expires_at = NULL, line_seq = nextval('task_events_seq_seq'),"
    " line_node = 'claim-client', line_message = 'succeeded'"
    " FROM unnest($1::uuid[]) AS p(id) WHERE t.id = p.id";

[[noreturn]] void Die(PGconn* pg, const char* what) {
  std::fprintf(stderr, "claim-client: %s: %s", what, PQerrorMessage(pg));
  std::exit(1);
}

// Seconds of CPU the process `pid` has used (utime + stime).
double CpuSeconds(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), {});
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::stol(field);
  }
  return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The next result of a pipeline; dies on an error.
PGresult* Next(PGconn* pg, const char* what) {
  PGresult* r = PQgetResult(pg);
  const ExecStatusType s = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
  if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) Die(pg, what);
  return r;
}

// Reads past the NULL that ends a statement's results in a pipeline.
void EndOfStatement(PGconn* pg, const char* what) {
  if (PQgetResult(pg) != nullptr) Die(pg, what);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: sked-claim-client DSN SCHEMA [sked|lean] [BATCH]\n");
    return 2;
  }
  const std::string_view mode = argc > 3 ? argv[3] : "sked";
  if (mode != "sked" && mode != "lean") {
    std::fprintf(stderr, "claim-client: statements are sked or lean, not %s\n", argv[3]);
    return 2;
  }
  const bool lean = mode == "lean";
  const std::string batch = argc > 4 ? argv[4] : "512";
  PGconn* pg = PQconnectdb(argv[1]);
  if (PQstatus(pg) != CONNECTION_OK) Die(pg, "connect");
  const std::string search_path = std::string("SET search_path = \"") + argv[2] + "\"";
  PQclear(PQexec(pg, search_path.c_str()));
  // The lean lock: kClaimLockSql's own conditions, only the ids sent back.
  const std::string lock_sql =
      lean ? "SELECT id" + std::string(std::strstr(kClaimLockSql, " FROM tasks"))
           : std::string(kClaimLockSql);
  for (auto [name, sql] : {std::pair<const char*, const char*>{"lock", lock_sql.c_str()},
                           {"write", lean ? kLeanWriteSql : kClaimWriteAlikeSql}}) {
    PGresult* r = PQprepare(pg, name, sql, 0, nullptr);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) Die(pg, name);
    PQclear(r);
  }
  const int backend = PQbackendPID(pg);
  const double cpu0 = CpuSeconds(backend);
  const auto t0 = std::chrono::steady_clock::now();
  long jobs = 0;
  if (PQenterPipelineMode(pg) == 0) Die(pg, "pipeline");
  while (true) {
    const char* lock_params[3] = {"now", "{builtin}", batch.c_str()};
    if (PQsendQueryPrepared(pg, "lock", 3, lock_params, nullptr, nullptr, 0) == 0 ||
        PQsendFlushRequest(pg) == 0 || PQflush(pg) != 0) {
      Die(pg, "send lock");
    }
    PGresult* locked = Next(pg, "lock");
    EndOfStatement(pg, "lock");
    const int rows = PQntuples(locked);
    std::string ids = "{", at_us = "{", outputs = "{";
    for (int i = 0; i < rows; ++i) {
      const char* sep = i == 0 ? "" : ",";
      ids.append(sep).append(PQgetvalue(locked, i, 0));
      const long long now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
      at_us.append(sep).append(std::to_string(now_us));
      outputs.append(sep).append("\"\"");
    }
    PQclear(locked);
    ids += "}";
    at_us += "}";
    outputs += "}";
    if (rows > 0) {
      const std::string now = "now";
      if (lean) {
        const char* p[2] = {ids.c_str(), now.c_str()};
        if (PQsendQueryPrepared(pg, "write", 2, p, nullptr, nullptr, 0) == 0) Die(pg, "write");
      } else {
        const char* p[9] = {ids.c_str(), at_us.c_str(), outputs.c_str(), "succeeded", "0",
                            nullptr,     "claim-client", "succeeded", now.c_str()};
        if (PQsendQueryPrepared(pg, "write", 9, p, nullptr, nullptr, 0) == 0) Die(pg, "write");
      }
    }
    // The Sync commits the pair (or only the lock, when nothing was due).
    if (PQpipelineSync(pg) == 0) Die(pg, "sync");
    if (rows > 0) {
      PGresult* written = Next(pg, "write");
      if (std::atol(PQcmdTuples(written)) != rows) {
        std::fprintf(stderr, "claim-client: a locked row was not written\n");
        return 1;
      }
      PQclear(written);
      EndOfStatement(pg, "write");
    }
    PGresult* sync = PQgetResult(pg);
    if (sync == nullptr || PQresultStatus(sync) != PGRES_PIPELINE_SYNC) Die(pg, "commit");
    PQclear(sync);
    if (rows == 0) break;
    jobs += rows;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"jobs\": %ld, \"seconds\": %.4f, \"backend_cpu_s\": %.2f}\n", jobs, seconds,
              CpuSeconds(backend) - cpu0);
  PQfinish(pg);
  return 0;
}
