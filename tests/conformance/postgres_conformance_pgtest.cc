// Runs the store conformance suite against the PostgreSQL backend, each test
// in a fresh schema (dropped afterwards) of the database named by
// $SKED_TEST_PG_DSN, which scripts/test.sh sets after starting a throwaway
// cluster. Without it every test fails with a message saying how to run
// them: a database test that cannot run must not look like one that passed.
#include <memory>
#include <string>

#include "conformance/store_conformance.h"
#include "store/postgres/postgres_store.h"
#include "store/postgres/testing/pg_test_env.h"

namespace sked::testing {
namespace {

namespace pgtest = store::postgres_testing;

StoreConformanceParam PostgresParam() {
  // The current test's schema, shared by open and cleanup.
  auto schema = std::make_shared<std::string>();
  return {.name = "postgres",
          .open = [schema]() -> core::StatusOr<std::unique_ptr<core::Store>> {
            std::optional<std::string> dsn = pgtest::TestDsn();
            if (!dsn.has_value()) {
              return core::FailedPreconditionError(pgtest::MissingDsnMessage());
            }
            *schema = pgtest::RandomSchemaName();
            // A small pool still lets the concurrency tests' threads overlap.
            return store::OpenPostgresStore({.dsn = *dsn, .schema = *schema, .pool_size = 4});
          },
          .cleanup =
              [schema] {
                std::optional<std::string> dsn = pgtest::TestDsn();
                if (dsn.has_value() && !schema->empty()) {
                  core::Status s = pgtest::DropSchema(*dsn, *schema);
                  EXPECT_TRUE(s.ok()) << "dropping schema " << *schema << ": " << s.ToString();
                }
                schema->clear();
              }};
}

INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformanceTest, ::testing::Values(PostgresParam()),
                         StoreConformanceParamName);

// Says once, at the top, why everything else fails when there is no DSN.
TEST(PostgresConformanceSetup, DsnIsSet) {
  ASSERT_TRUE(pgtest::TestDsn().has_value()) << pgtest::MissingDsnMessage();
}

}  // namespace
}  // namespace sked::testing
