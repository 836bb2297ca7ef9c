#include "store/postgres/internal/migrations.h"

#include <set>

namespace sked::store::postgres_internal {
namespace {

std::string QuoteIdent(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

core::Status MigrateInTransaction(Connection& conn, const std::string& schema,
                                  std::span<const Migration> migrations) {
  // A migration may rebuild an index on a big table, and other nodes wait
  // for the lock meanwhile: no statement timeout here.
  RETURN_IF_ERROR(conn.ExecScript("SET LOCAL statement_timeout = 0", "migrate"));
  RETURN_IF_ERROR(conn.ExecOnce("SELECT pg_advisory_xact_lock($1::int8)",
                                Params().Add(kMigrationLockKey), "take the migration lock")
                      .status());
  // Checked before CREATE SCHEMA, which needs the CREATE privilege on the
  // database even when the schema exists.
  ASSIGN_OR_RETURN(Result found,
                   conn.ExecOnce("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
                                 Params().Add(schema), "look up the schema"));
  if (found.rows() == 0) {
    RETURN_IF_ERROR(conn.ExecScript("CREATE SCHEMA " + QuoteIdent(schema), "create schema"));
  }
  RETURN_IF_ERROR(
      conn.ExecScript("SET LOCAL search_path TO " + QuoteIdent(schema), "select the schema"));
  RETURN_IF_ERROR(
      conn.ExecScript("CREATE TABLE IF NOT EXISTS schema_migrations ("
                      "  version    integer     NOT NULL PRIMARY KEY,"
                      "  name       text        NOT NULL,"
                      "  applied_at timestamptz NOT NULL DEFAULT now()"
                      ")",
                      "create schema_migrations"));

  ASSIGN_OR_RETURN(Result rows, conn.ExecOnce("SELECT version FROM schema_migrations", Params(),
                                              "read schema_migrations"));
  std::set<int64_t> applied;
  for (int i = 0; i < rows.rows(); ++i) applied.insert(rows.Int(i, 0));
  std::set<int64_t> known;
  for (const Migration& m : migrations) known.insert(m.version);
  for (int64_t v : applied) {
    if (!known.contains(v)) {
      return core::FailedPreconditionError(
          "postgres: schema " + schema + " has version " + std::to_string(v) +
          ", which this build does not know; it was migrated by a newer sked");
    }
  }

  for (const Migration& m : migrations) {
    if (applied.contains(m.version)) continue;
    RETURN_IF_ERROR(conn.ExecScript(std::string(m.sql), "apply migration " + std::string(m.name)));
    RETURN_IF_ERROR(conn.ExecOnce("INSERT INTO schema_migrations (version, name) "
                                  "VALUES ($1::int, $2)",
                                  Params().Add(m.version).Add(m.name), "record migration")
                        .status());
  }
  return core::OkStatus();
}

}  // namespace

core::Status Migrate(Connection& conn, const std::string& schema,
                     std::span<const Migration> migrations) {
  RETURN_IF_ERROR(conn.ExecScript("BEGIN", "begin migration"));
  core::Status s = MigrateInTransaction(conn, schema, migrations);
  if (s.ok()) s = conn.ExecScript("COMMIT", "commit migration");
  conn.Rollback();  // no-op after a commit
  return s;
}

}  // namespace sked::store::postgres_internal
