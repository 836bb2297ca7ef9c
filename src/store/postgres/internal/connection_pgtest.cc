// Connection::ExecPair against a real server: two statements in the
// protocol's implicit transaction commit together, hold their locks in
// between, and leave nothing behind when either (or the caller) fails.
#include "store/postgres/internal/connection.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "store/postgres/testing/pg_test_env.h"

namespace sked::store::postgres_internal {
namespace {

using core::StatusCode;
namespace pgtest = postgres_testing;

class ExecPairTest : public pgtest::FreshSchemaTest {
 protected:
  void SetUp() override {
    pgtest::FreshSchemaTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(pgtest::ExecSql(dsn_, "CREATE SCHEMA " + schema_).ok());
    ASSERT_TRUE(pgtest::ExecSql(dsn_, "CREATE TABLE " + schema_ +
                                          ".t (id int PRIMARY KEY, v int NOT NULL CHECK (v >= 0))")
                    .ok());
    ASSERT_TRUE(pgtest::ExecSql(dsn_, "INSERT INTO " + schema_ + ".t VALUES (1, 0), (2, 0)").ok());
    a_ = Open();
    b_ = Open();
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    pgtest::FreshSchemaTest::TearDown();
  }

  std::unique_ptr<Connection> Open() {
    auto c = Connection::Open({.dsn = dsn_, .schema = schema_});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  std::string V(int id) {
    auto v = pgtest::QueryValue(dsn_, "SELECT v FROM " + schema_ + ".t WHERE id = " +
                                          std::to_string(id));
    return v.ok() ? v->value_or("") : v.status().ToString();
  }
  // The ids `c` can lock now, skipping locked rows.
  std::string Lockable(Connection& c) {
    auto r = c.Exec("SELECT string_agg(id::text, ',' ORDER BY id) FROM"
                    " (SELECT id FROM t FOR UPDATE SKIP LOCKED) x",
                    Params(), "lockable");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::string(r->Text(0, 0)) : "";
  }

  static constexpr char kLock[] = "SELECT id FROM t WHERE id = $1::int FOR UPDATE";
  static constexpr char kAdd[] = "UPDATE t SET v = v + $2::int WHERE id = $1::int";

  std::unique_ptr<Connection> a_;
  std::unique_ptr<Connection> b_;
};

TEST_F(ExecPairTest, BothStatementsCommitAndTheLockHoldsInBetween) {
  std::string seen_by_b;
  auto r = a_->ExecPair(
      kLock, Params().Add(1), {kAdd},
      [&](const Result& locked) -> core::StatusOr<std::optional<SecondStatement>> {
        EXPECT_EQ(locked.rows(), 1);
        seen_by_b = Lockable(*b_);  // row 1 is a_'s until the Sync
        return std::optional<SecondStatement>({kAdd, Params().Add(1).Add(5)});
      },
      "pair");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->affected(), 1);
  EXPECT_EQ(seen_by_b, "2");
  EXPECT_EQ(V(1), "5");
  EXPECT_EQ(Lockable(*b_), "1,2");  // committed: nothing stays locked
  EXPECT_FALSE(a_->InTransaction());
  // The connection goes on as usual, pairs and single statements alike.
  ASSERT_TRUE(a_->ExecPair(
                    kLock, Params().Add(2), {kAdd},
                    [](const Result&) { return std::optional<SecondStatement>({kAdd, Params().Add(2).Add(1)}); },
                    "again")
                  .ok());
  EXPECT_EQ(V(2), "1");
  EXPECT_TRUE(a_->Exec("SELECT 1", Params(), "one").ok());
}

TEST_F(ExecPairTest, TheCallerChoosesTheSecondStatement) {
  static constexpr char kSet[] = "UPDATE t SET v = $2::int WHERE id = $1::int";
  auto set = [](int v) {
    return [v](const Result&) -> core::StatusOr<std::optional<SecondStatement>> {
      return std::optional<SecondStatement>({kSet, Params().Add(1).Add(v)});
    };
  };
  auto r = a_->ExecPair(kLock, Params().Add(1), {kAdd, kSet}, set(9), "pair");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(V(1), "9");
  // One it was not given to prepare is a bug: nothing runs, nothing stays locked.
  r = a_->ExecPair(kLock, Params().Add(1), {kAdd}, set(3), "pair");
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_EQ(V(1), "9");
  EXPECT_EQ(Lockable(*b_), "1,2");
}

TEST_F(ExecPairTest, NoSecondStatementReleasesTheLocks) {
  auto r = a_->ExecPair(
      kLock, Params().Add(1), {kAdd},
      [](const Result&) -> core::StatusOr<std::optional<SecondStatement>> {
        return std::optional<SecondStatement>();
      },
      "pair");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(Lockable(*b_), "1,2");
  EXPECT_EQ(V(1), "0");
}

TEST_F(ExecPairTest, ACallerThatFailsWritesNothing) {
  auto r = a_->ExecPair(
      kLock, Params().Add(1), {kAdd},
      [](const Result&) -> core::StatusOr<std::optional<SecondStatement>> {
        return core::InvalidArgumentError("no");
      },
      "pair");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Lockable(*b_), "1,2");
  EXPECT_EQ(V(1), "0");
  EXPECT_TRUE(a_->Exec("SELECT 1", Params(), "one").ok());
}

TEST_F(ExecPairTest, AFailingStatementCommitsNothing) {
  // The second statement fails (the CHECK): the first one's effects roll
  // back with it. The first writes here, which ExecPair's contract forbids
  // its callers, to show that the two are one transaction.
  constexpr char kWrite[] = "UPDATE t SET v = 7 WHERE id = $1::int RETURNING id";
  auto r = a_->ExecPair(
      kWrite, Params().Add(2), {kAdd},
      [](const Result&) { return std::optional<SecondStatement>({kAdd, Params().Add(1).Add(-1)}); }, "pair");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(V(2), "0");
  EXPECT_EQ(V(1), "0");
  // The first one fails: `then` is not called.
  bool called = false;
  r = a_->ExecPair(
      "SELECT id FROM t WHERE id = 1 / ($1::int - 1)", Params().Add(1), {kAdd},
      [&](const Result&) {
        called = true;
        return std::optional<SecondStatement>({kAdd, Params().Add(1).Add(1)});
      },
      "pair");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_FALSE(called);
  EXPECT_EQ(Lockable(*b_), "1,2");
  EXPECT_FALSE(a_->broken());
  EXPECT_TRUE(a_->Exec("SELECT 1", Params(), "one").ok());
}

}  // namespace
}  // namespace sked::store::postgres_internal
