#include "store/sqlite/internal/migrations.h"

#include <set>
#include <string>

namespace sked::store::sqlite_internal {

core::Status Migrate(Connection& conn, std::span<const Migration> migrations) {
  ASSIGN_OR_RETURN(Transaction txn,
                   Transaction::Begin(conn, /*immediate=*/true));
  RETURN_IF_ERROR(
      conn.Exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                "  version    INTEGER NOT NULL PRIMARY KEY,"
                "  name       TEXT    NOT NULL,"
                "  applied_at INTEGER NOT NULL"  // microseconds, database clock
                ") STRICT",
                "create schema_migrations"));

  std::set<int64_t> applied;
  {
    ASSIGN_OR_RETURN(Statement st,
                     conn.Prepare("SELECT version FROM schema_migrations",
                                  "read schema_migrations"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      applied.insert(st.Int(0));
    }
  }
  std::set<int64_t> known;
  for (const Migration& m : migrations) known.insert(m.version);
  for (int64_t v : applied) {
    if (!known.contains(v)) {
      return core::FailedPreconditionError(
          "sqlite: the database has schema version " + std::to_string(v) +
          ", which this build does not know; it was migrated by a newer sked");
    }
  }

  for (const Migration& m : migrations) {
    if (applied.contains(m.version)) continue;
    RETURN_IF_ERROR(conn.Exec(std::string(m.sql),
                              "apply migration " + std::string(m.name)));
    ASSIGN_OR_RETURN(
        Statement st,
        conn.Prepare(
            "INSERT INTO schema_migrations (version, name, applied_at) "
            "VALUES (?, ?, CAST((julianday('now') - 2440587.5) * 86400000000.0 "
            "AS INTEGER))",
            "record migration"));
    RETURN_IF_ERROR(st.Bind(m.version).Bind(m.name).Run());
  }
  return txn.Commit();
}

}  // namespace sked::store::sqlite_internal
