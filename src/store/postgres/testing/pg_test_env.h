// File: store/postgres/testing/pg_test_env.h
//
// What tests against PostgreSQL share (the `postgres` CTest label): the DSN
// of the throwaway cluster that scripts/test.sh starts and exports as
// SKED_TEST_PG_DSN, fresh schema names so every test has an empty database
// of its own, dropping them afterwards, and FreshSchemaTest, a fixture that
// does both. Test-only; libpq stays inside.
//
// Thread safety: free functions; safe for concurrent use.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "core/status.h"

namespace sked::store::postgres_testing {

inline constexpr char kDsnVariable[] = "SKED_TEST_PG_DSN";

// $SKED_TEST_PG_DSN, or nullopt when it is unset or empty.
std::optional<std::string> TestDsn();

// Why a `postgres` test cannot run without a DSN, and how to run it.
std::string MissingDsnMessage();

// "sked_test_" and 16 random hex digits: a schema no other test uses.
std::string RandomSchemaName();

// Runs `sql` (no parameters, one or more statements) on a new connection to
// `dsn`. kUnavailable when it cannot connect, kInternal when the SQL fails.
core::Status ExecSql(const std::string& dsn, const std::string& sql);

// The first column of the first row `sql` returns, as text; nullopt for NULL
// or no row.
core::StatusOr<std::optional<std::string>> QueryValue(const std::string& dsn,
                                                      const std::string& sql);

// DROP SCHEMA IF EXISTS `schema` CASCADE.
core::Status DropSchema(const std::string& dsn, const std::string& schema);

// A test with a schema of its own (schema_, named but not created) in the
// database at dsn_ ($SKED_TEST_PG_DSN), dropped when the test ends. A fixture
// deriving from it calls its SetUp first and its TearDown once nothing of the
// test still uses the schema.
class FreshSchemaTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::string dsn_;
  std::string schema_;
};

}  // namespace sked::store::postgres_testing
