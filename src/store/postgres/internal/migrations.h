// File: store/postgres/internal/migrations.h
//
// The PostgreSQL schema's versioned migrations (src/store/postgres/migrations/
// NNNN_name.sql, embedded at build time by cmake/embed_migrations.cmake) and the
// runner that brings a schema up to date when the store opens.
//
// Thread safety: EmbeddedMigrations() returns immutable data; Migrate() uses
// the connection it is given, which the caller holds exclusively. Several
// processes may migrate the same database at once: an advisory lock
// serialises them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"
#include "store/postgres/internal/connection.h"

namespace sked::store::postgres_internal {

struct Migration {
  int version;            // NNNN from the file name, >= 1
  std::string_view name;  // file name without ".sql", e.g. "0001_init"
  std::string_view sql;
};

// Every migration, ascending by version. Defined in the generated
// embedded_migrations.cc.
std::span<const Migration> EmbeddedMigrations();

// The advisory lock key every sked node takes while migrating ("sked_mig").
inline constexpr int64_t kMigrationLockKey = 0x736b65645f6d6967;

// In one transaction holding pg_advisory_xact_lock(kMigrationLockKey):
// creates `schema` if missing, then applies each of `migrations` not yet
// recorded in its schema_migrations, in version order, and records it. The
// connection's search_path must name `schema`. OK when the schema is current
// afterwards. kFailedPrecondition when it has a version this binary does not
// know (it was migrated by a newer sked); kUnavailable when the database
// cannot be reached.
core::Status Migrate(Connection& conn, const std::string& schema,
                     std::span<const Migration> migrations);

}  // namespace sked::store::postgres_internal
