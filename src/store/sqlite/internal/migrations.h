// File: store/sqlite/internal/migrations.h
//
// The SQLite schema's versioned migrations (src/store/sqlite/migrations/
// NNNN_name.sql, embedded at build time by cmake/embed_migrations.cmake) and the
// runner that brings a database up to date when the store opens.
//
// Thread safety: EmbeddedMigrations() returns immutable data; Migrate() uses
// the connection it is given, which the caller holds exclusively.
#pragma once

#include <span>
#include <string_view>

#include "core/status.h"
#include "store/sqlite/internal/connection.h"

namespace sked::store::sqlite_internal {

struct Migration {
  int version;            // NNNN from the file name, >= 1
  std::string_view name;  // file name without ".sql", e.g. "0001_init"
  std::string_view sql;
};

// Every migration, ascending by version. Defined in the generated
// embedded_migrations.cc.
std::span<const Migration> EmbeddedMigrations();

// Applies, in one IMMEDIATE transaction, each of `migrations` not yet recorded
// in schema_migrations, in version order, and records it. OK when the schema
// is current afterwards. kFailedPrecondition when the database has a version
// this binary does not know (it was migrated by a newer sked); kUnavailable
// when another process holds the write lock past the busy timeout.
core::Status Migrate(Connection& conn, std::span<const Migration> migrations);

}  // namespace sked::store::sqlite_internal
