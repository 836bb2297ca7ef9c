// PostgreSQL-specific behaviour of the store, beyond the conformance suite:
// migrations raced by several nodes, claims from separate stores (separate
// pools, as separate nodes would have), LISTEN/NOTIFY wake-ups across stores,
// and an outage of the database itself, which the store must ride out
// without being reopened.
//
// Most tests use the database named by $SKED_TEST_PG_DSN (scripts/test.sh
// sets it), each in a fresh schema dropped afterwards; without it they fail
// with a message saying how to run them. The outage test starts and stops a
// throwaway cluster of its own with scripts/pg-throwaway.sh.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <latch>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/status.h"
#include "core/store.h"
#include "core/time.h"
#include "store/postgres/internal/batch_fence.h"
#include "store/postgres/internal/connection.h"
#include "store/postgres/internal/migrations.h"
#include "store/postgres/internal/task_list_query.h"
#include "store/postgres/postgres_store.h"
#include "store/postgres/testing/pg_test_env.h"
#include "testing/task_factory.h"
#include "testing/wait.h"

namespace sked::store {
namespace {

namespace pgtest = postgres_testing;
using core::StatusCode;
using core::Task;
using core::TaskState;
using core::Time;
using std::chrono::seconds;
using testing::kTestEpoch;
using testing::TaskFactory;
using testing::WaitFor;

const Time kT0 = kTestEpoch;

std::vector<std::string> AllRunners() {
  return {std::string(core::kRunnerBuiltin), std::string(core::kRunnerDocker),
          std::string(core::kRunnerEc2Spot)};
}

// TaskGetAsync, waited for.
core::StatusOr<Task> GetAsync(core::Store& store, const std::string& id) {
  auto answer = std::make_shared<std::promise<core::StatusOr<Task>>>();
  std::future<core::StatusOr<Task>> f = answer->get_future();
  if (!store.TaskGetAsync(id, [answer](core::StatusOr<Task> t) { answer->set_value(std::move(t)); })) {
    return core::InternalError("TaskGetAsync declined the read");
  }
  if (f.wait_for(seconds(60)) != std::future_status::ready) {
    return core::InternalError("TaskGetAsync never answered");
  }
  return f.get();
}

core::TaskClaimParams ClaimParams(std::string node, Time now, int limit) {
  return core::TaskClaimParams{.node = std::move(node),
                               .now = now,
                               .lease = seconds(30),
                               .limit = limit,
                               .runners = AllRunners(),
                               .provisioning_runners = {}};
}

// Records what a TaskSubscribeDue subscriber was called with.
class DueRecorder {
 public:
  std::function<void(Time)> Fn() {
    return [this](Time t) {
      std::lock_guard lock(mu_);
      calls_.push_back(t);
    };
  }
  // Calls with Time{}: the listener (re)connected.
  int Connects() const {
    std::lock_guard lock(mu_);
    int n = 0;
    for (Time t : calls_) n += t == Time{} ? 1 : 0;
    return n;
  }
  bool Saw(Time t) const {
    std::lock_guard lock(mu_);
    for (Time c : calls_) {
      if (c == t) return true;
    }
    return false;
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return calls_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<Time> calls_;
};

// Gives each test a fresh schema in $SKED_TEST_PG_DSN's database.
class PostgresStoreTest : public pgtest::FreshSchemaTest {
 protected:
  PostgresOptions Options(int pool_size = 4) const {
    return {.dsn = dsn_, .schema = schema_, .pool_size = pool_size};
  }

  std::unique_ptr<core::Store> Open(int pool_size = 4) {
    auto store = OpenPostgresStore(Options(pool_size));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // The window between autovacuum's first VACUUM of a filled tasks table and
  // its ANALYZE: `select` (the values of `columns`) goes into tasks, which is
  // vacuumed and never analysed (autovacuum is off for it). The schema must
  // have been migrated (Open).
  void FillWithoutStatistics(const std::string& columns, const std::string& select) {
    const std::string tasks = "\"" + schema_ + "\".tasks";
    ASSERT_TRUE(
        pgtest::ExecSql(dsn_, "ALTER TABLE " + tasks + " SET (autovacuum_enabled = off)").ok());
    ASSERT_TRUE(
        pgtest::ExecSql(dsn_, "INSERT INTO " + tasks + " (" + columns + ") " + select).ok());
    ASSERT_TRUE(pgtest::ExecSql(dsn_, "VACUUM " + tasks).ok());
    auto analysed = pgtest::QueryValue(dsn_, "SELECT count(*) FROM pg_stats WHERE schemaname = '" +
                                                 schema_ + "' AND tablename = 'tasks'");
    ASSERT_TRUE(analysed.ok()) << analysed.status().ToString();
    ASSERT_EQ(analysed->value_or(""), "0") << "the table must not have been analysed";
  }

  // A counter of one of the schema's indexes in pg_stat_user_indexes
  // (idx_scan, idx_tup_read, ...); -1 when it cannot be read. A backend's
  // counters arrive when it has exited or at its next flush.
  int64_t IndexStat(const std::string& index, const std::string& column = "idx_scan") {
    auto v = pgtest::QueryValue(dsn_, "SELECT " + column +
                                          " FROM pg_stat_user_indexes WHERE schemaname = '" +
                                          schema_ + "' AND indexrelname = '" + index + "'");
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() && v->has_value() ? std::stoll(**v) : -1;
  }

  TaskFactory factory_;
};

// ===== Options ===============================================================

TEST(PostgresOptionsTest, RejectsBadOptionsBeforeConnecting) {
  // No server is needed: every one fails validation.
  const std::string dsn = "postgresql://nobody@127.0.0.1:1/none";
  auto code = [](const PostgresOptions& o) { return OpenPostgresStore(o).status().code(); };
  EXPECT_EQ(code({.dsn = ""}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.dsn = "host='unterminated"}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.dsn = "bogus_option=1"}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.dsn = dsn, .schema = ""}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.dsn = dsn, .schema = "1abc"}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.dsn = dsn, .schema = "a-b"}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.dsn = dsn, .schema = std::string(64, 'a')}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.dsn = dsn, .pool_size = 0}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.dsn = dsn, .pool_size = kMaxPostgresPoolSize + 1}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.dsn = dsn, .checkout_timeout = std::chrono::milliseconds(0)}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.dsn = dsn, .connect_timeout = seconds(0)}), StatusCode::kInvalidArgument);
}

TEST(PostgresOptionsTest, UnreachableDatabaseIsUnavailable) {
  // Port 1 on loopback refuses at once.
  auto store = OpenPostgresStore({.dsn = "postgresql://sked@127.0.0.1:1/sked_test"});
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable) << store.status().ToString();
}

// ===== Migrations ============================================================

TEST_F(PostgresStoreTest, MigrationsFromFourStoresAtOnceApplyOnce) {
  constexpr int kStores = 4;
  std::latch start(kStores);
  std::vector<core::Status> results(kStores);
  std::vector<std::unique_ptr<core::Store>> stores(kStores);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStores; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto s = OpenPostgresStore(Options(2));
      results[i] = s.status();
      if (s.ok()) stores[i] = std::move(s).value();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kStores; ++i) {
    EXPECT_TRUE(results[i].ok()) << "store " << i << ": " << results[i].ToString();
  }

  const size_t want = postgres_internal::EmbeddedMigrations().size();
  ASSERT_GE(want, 1u);
  auto count =
      pgtest::QueryValue(dsn_, "SELECT count(*) || '/' || count(DISTINCT version) FROM \"" +
                                   schema_ + "\".schema_migrations");
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(count->value_or(""), std::to_string(want) + "/" + std::to_string(want));

  // Every store works on the one schema.
  for (int i = 0; i < kStores; ++i) {
    ASSERT_NE(stores[i], nullptr);
    auto r = stores[i]->TaskInsert(factory_.Make());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  }
  auto counts = stores[0]->TaskCountByState();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[TaskState::kScheduled], kStores);

  // Reopening a current schema changes nothing.
  EXPECT_NE(Open(), nullptr);
  count = pgtest::QueryValue(dsn_, "SELECT count(*) FROM \"" + schema_ + "\".schema_migrations");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->value_or(""), std::to_string(want));
}

TEST_F(PostgresStoreTest, SchemaFromNewerSkedIsFailedPrecondition) {
  ASSERT_NE(Open(), nullptr);
  ASSERT_TRUE(pgtest::ExecSql(dsn_, "INSERT INTO \"" + schema_ +
                                        "\".schema_migrations (version, name) "
                                        "VALUES (9999, '9999_future')")
                  .ok());
  auto store = OpenPostgresStore(Options());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition) << store.status().ToString();
}

// ===== Values PostgreSQL refuses =============================================

TEST_F(PostgresStoreTest, NulInTextIsInvalidArgument) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  Task t = factory_.Make([](Task& t) { t.labels = {{"k", std::string("a\0b", 3)}}; });
  auto r = store->TaskInsert(t);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  t = factory_.Make([](Task& t) { t.queue = std::string("q\0", 2); });
  r = store->TaskInsert(t);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  // The store is still usable afterwards.
  EXPECT_TRUE(store->TaskInsert(factory_.Make()).ok());
}

// ===== Claims across stores ==================================================

TEST_F(PostgresStoreTest, ClaimFromFourStoresClaimsEachTaskOnce) {
  constexpr int kStores = 4;
  constexpr int kThreadsPerStore = 4;
  constexpr int kTasks = 2000;
  std::vector<std::unique_ptr<core::Store>> stores;
  for (int i = 0; i < kStores; ++i) {
    stores.push_back(Open(kThreadsPerStore));
    ASSERT_NE(stores.back(), nullptr);
  }

  std::vector<Task> batch;
  for (int i = 0; i < kTasks; ++i) {
    batch.push_back(factory_.Make([&](Task& t) {
      // Ties and a spread of run_at values, all due at kT0.
      t.run_at = kT0 - std::chrono::milliseconds(i % 37);
      if (i % 5 == 0) t.runner = std::string(core::kRunnerDocker);
    }));
    if (batch.size() == 500) {
      auto r = stores[(i / 500) % kStores]->TaskInsertMany(batch);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      batch.clear();
    }
  }

  std::mutex mu;
  std::vector<std::string> claimed;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  std::latch start(kStores * kThreadsPerStore);
  const auto began = std::chrono::steady_clock::now();
  for (int s = 0; s < kStores; ++s) {
    for (int n = 0; n < kThreadsPerStore; ++n) {
      threads.emplace_back([&, s, n] {
        core::Store& store = *stores[s];
        const std::string node = "node-" + std::to_string(s) + "-" + std::to_string(n);
        start.arrive_and_wait();
        for (int round = 0;; ++round) {
          auto r = store.TaskClaim(ClaimParams(node, kT0, 1 + (n + round) % 10));
          std::lock_guard lock(mu);
          if (!r.ok()) {
            errors.push_back(r.status().ToString());
            return;
          }
          if (r->empty()) return;
          for (const Task& t : *r) {
            EXPECT_EQ(t.attempt, 1);
            EXPECT_EQ(t.lease_owner, std::optional<std::string>(node));
            claimed.push_back(t.id);
          }
        }
      });
    }
  }
  for (std::thread& t : threads) t.join();
  const auto elapsed = std::chrono::steady_clock::now() - began;

  EXPECT_THAT(errors, ::testing::IsEmpty());
  ASSERT_EQ(claimed.size(), static_cast<size_t>(kTasks));
  std::set<std::string> unique(claimed.begin(), claimed.end());
  EXPECT_EQ(unique.size(), static_cast<size_t>(kTasks));
  auto counts = stores[0]->TaskCountByState();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[TaskState::kRunning], kTasks);
  EXPECT_EQ((*counts)[TaskState::kScheduled], 0);
  // One "claimed" event per task: no claim was recorded twice.
  auto events = pgtest::QueryValue(
      dsn_, "SELECT count(*) FROM \"" + schema_ + "\".task_events WHERE message = 'claimed'");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->value_or(""), std::to_string(kTasks));

  const double ms = std::chrono::duration<double, std::milli>(elapsed).count();
  const double per_s = kTasks / (ms / 1000.0);
  RecordProperty("claim_ms", std::to_string(static_cast<int>(ms)));
  RecordProperty("claims_per_second", std::to_string(static_cast<int>(per_s)));
  std::printf(
      "claimed %d tasks from %d stores x %d threads in %.0f ms: %.0f "
      "tasks/s\n",
      kTasks, kStores, kThreadsPerStore, ms, per_s);
}

// An attempt run in its claim writes its history line on the task's row
// (migration 0012), not into task_events; a claimed one still inserts its
// "claimed" line. TaskEventList shows both (store conformance); this is the
// write the drain no longer pays.
// Whether any queue has limits is read again at most every
// limited_queues_recheck: in between, a claim costs no statement for it (at a
// steady rate of due tasks, every claim is one that is not full), and a limit
// another node sets is seen once the interval has passed.
TEST_F(PostgresStoreTest, AQueueLimitSetElsewhereIsSeenOnceTheRecheckIntervalPassed) {
  PostgresOptions o = Options();
  // Long enough that a loaded machine still makes the next three calls within it.
  o.limited_queues_recheck = std::chrono::milliseconds(1500);
  auto looked = OpenPostgresStore(o);
  ASSERT_TRUE(looked.ok()) << looked.status().ToString();
  core::Store& a = **looked;
  auto b = Open();
  ASSERT_NE(b, nullptr);
  auto first = a.TaskClaim(ClaimParams("node-a", kT0, 10));  // no queue has limits
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(first->empty());

  ASSERT_TRUE(b->QueuePut({.name = "limited", .max_running = 1, .updated_at = kT0}).ok());
  Task t = factory_.Make([](Task& t) {
    t.queue = "limited";
    t.run_at = kT0 - seconds(1);
  });
  ASSERT_TRUE(b->TaskInsert(t).ok());
  // Within the interval a trusts its last look, and the claim's own statement
  // leaves limited queues to the look.
  auto within = a.TaskClaim(ClaimParams("node-a", kT0, 10));
  ASSERT_TRUE(within.ok()) << within.status().ToString();
  EXPECT_TRUE(within->empty());

  std::this_thread::sleep_for(std::chrono::milliseconds(1550));
  auto after = a.TaskClaim(ClaimParams("node-a", kT0, 10));
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].id, t.id);
}

TEST_F(PostgresStoreTest, NonPositiveLimitedQueuesRecheckIsInvalid) {
  PostgresOptions o = Options();
  o.limited_queues_recheck = std::chrono::milliseconds(0);
  auto store = OpenPostgresStore(o);
  EXPECT_EQ(store.status().code(), core::StatusCode::kInvalidArgument);
}

TEST_F(PostgresStoreTest, AnAttemptRunInItsClaimKeepsItsLineOnTheRow) {
  std::unique_ptr<core::Store> store = Open();
  ASSERT_NE(store, nullptr);
  Task quick = factory_.Make([](Task& t) { t.run_at = kT0 - seconds(2); });
  Task slow = factory_.Make([](Task& t) { t.run_at = kT0 - seconds(1); });
  ASSERT_TRUE(store->TaskInsertMany({quick, slow}).ok());
  core::TaskClaimParams p{.node = "node-a", .now = kT0, .lease = seconds(30), .limit = 10,
                          .runners = AllRunners()};
  p.run_instantly = [&](const Task& t) -> std::optional<core::TaskFinishParams> {
    if (t.id != quick.id) return std::nullopt;
    return core::TaskFinishParams{.id = t.id, .attempt = t.attempt,
                                  .state = TaskState::kSucceeded, .node = "node-a", .now = kT0};
  };
  auto claimed = store->TaskClaim(p);
  ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  ASSERT_EQ(claimed->size(), 2u);

  const std::string events = "\"" + schema_ + "\".task_events";
  auto count = [&](const std::string& id) {
    auto v = pgtest::QueryValue(dsn_, "SELECT count(*) FROM " + events + " WHERE task_id = '" +
                                          id + "' AND attempt = 1");
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? v->value_or("") : "";
  };
  EXPECT_EQ(count(quick.id), "0");
  EXPECT_EQ(count(slow.id), "1");
  auto line = pgtest::QueryValue(dsn_, "SELECT line_node || ' ' || line_message FROM \"" +
                                           schema_ + "\".tasks WHERE id = '" + quick.id +
                                           "' AND line_seq IS NOT NULL");
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  EXPECT_EQ(line->value_or(""), "node-a succeeded");
  auto history = store->TaskEventList(quick.id);
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[1].message, "succeeded");
}

// A claim whose attempts all ended alike (a batch of no-ops) is written by
// a statement of its own (kClaimWriteAlikeSql): each task must still come
// out with its own output and end time, as the general write leaves it.
// A claim that runs what it took and is not full answers TaskNextRunAt in
// its own write (TaskClaimParams::next_run_at): the first run_at still
// scheduled once it committed, or none; a full claim, or one that took
// nothing, leaves the question to the caller.
TEST_F(PostgresStoreTest, AClaimThatIsNotFullAnswersTheNextRunAtInItsWrite) {
  std::unique_ptr<core::Store> store = Open();
  ASSERT_NE(store, nullptr);
  Task due = factory_.Make([](Task& t) { t.run_at = kT0 - seconds(1); });
  Task later = factory_.Make([](Task& t) { t.run_at = kT0 + seconds(5); });
  Task elsewhere = factory_.Make([](Task& t) {  // not a runner this claim takes
    t.runner = std::string(core::kRunnerDocker);
    t.run_at = kT0 + seconds(2);
  });
  ASSERT_TRUE(store->TaskInsertMany({due, later, elsewhere}).ok());
  auto claim = [&](Time now, int limit, std::optional<std::optional<Time>>& next) {
    core::TaskClaimParams p{.node = "node-a", .now = now, .lease = seconds(30), .limit = limit,
                            .runners = {std::string(core::kRunnerBuiltin)}};
    p.run_instantly = [&](const Task& t) -> std::optional<core::TaskFinishParams> {
      return core::TaskFinishParams{.id = t.id, .attempt = t.attempt,
                                    .state = TaskState::kSucceeded,
                                    .result = core::TaskResult{.exit_code = 0, .output = ""},
                                    .node = "node-a", .now = now};
    };
    p.next_run_at = &next;
    return store->TaskClaim(p);
  };

  std::optional<std::optional<Time>> next;
  auto first = claim(kT0, 10, next);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].id, due.id);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, std::optional<Time>(later.run_at));
  auto asked = store->TaskNextRunAt({std::string(core::kRunnerBuiltin)});
  ASSERT_TRUE(asked.ok());
  EXPECT_EQ(*asked, *next);

  std::optional<std::optional<Time>> none_due;
  auto nothing = claim(kT0, 10, none_due);
  ASSERT_TRUE(nothing.ok());
  EXPECT_TRUE(nothing->empty());
  EXPECT_FALSE(none_due.has_value());

  Task a = factory_.Make([](Task& t) { t.run_at = kT0 + seconds(3); });
  Task b = factory_.Make([](Task& t) { t.run_at = kT0 + seconds(4); });
  ASSERT_TRUE(store->TaskInsertMany({a, b}).ok());
  std::optional<std::optional<Time>> full;
  auto two = claim(kT0 + seconds(4), 2, full);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2u);
  EXPECT_FALSE(full.has_value());

  std::optional<std::optional<Time>> last;
  auto rest = claim(kT0 + seconds(10), 10, last);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].id, later.id);
  ASSERT_TRUE(last.has_value());
  EXPECT_FALSE(last->has_value());  // nothing of these runners is scheduled
}

TEST_F(PostgresStoreTest, AttemptsThatEndedAlikeKeepTheirOwnOutputAndTime) {
  std::unique_ptr<core::Store> store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<Task> batch;
  for (int i = 0; i < 3; ++i) {
    batch.push_back(factory_.Make([&](Task& t) { t.run_at = kT0 - seconds(10 - i); }));
  }
  ASSERT_TRUE(store->TaskInsertMany(batch).ok());
  auto index_of = [&](const std::string& id) {
    for (int i = 0; i < 3; ++i) {
      if (batch[i].id == id) return i;
    }
    return -1;
  };
  core::TaskClaimParams p{.node = "node-a", .now = kT0, .lease = seconds(30), .limit = 10,
                          .runners = AllRunners()};
  p.run_instantly = [&](const Task& t) -> std::optional<core::TaskFinishParams> {
    const int i = index_of(t.id);
    return core::TaskFinishParams{
        .id = t.id, .attempt = t.attempt, .state = TaskState::kSucceeded,
        .result = core::TaskResult{.exit_code = 0, .output = i == 2 ? "" : "out " + std::to_string(i)},
        .node = "node-a", .now = kT0 + std::chrono::milliseconds(i + 1)};
  };
  auto claimed = store->TaskClaim(p);
  ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  ASSERT_EQ(claimed->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    auto t = store->TaskGet(batch[i].id);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->state, TaskState::kSucceeded);
    EXPECT_EQ(t->attempt, 1);
    EXPECT_EQ(t->started_at, kT0);
    EXPECT_EQ(t->finished_at, kT0 + std::chrono::milliseconds(i + 1));
    ASSERT_TRUE(t->result.has_value());
    EXPECT_EQ(t->result->exit_code, 0);
    EXPECT_EQ(t->result->output, i == 2 ? "" : "out " + std::to_string(i));
    EXPECT_EQ(t->error, std::nullopt);
    EXPECT_EQ(t->lease_owner, std::nullopt);
    EXPECT_EQ(t->lease_expires_at, std::nullopt);
    auto history = store->TaskEventList(batch[i].id);
    ASSERT_TRUE(history.ok()) << history.status().ToString();
    ASSERT_EQ(history->size(), 2u);
    EXPECT_EQ((*history)[1].message, "succeeded");
    EXPECT_EQ((*history)[1].node, "node-a");
    EXPECT_EQ((*history)[1].at, kT0 + std::chrono::milliseconds(i + 1));
    EXPECT_EQ((*history)[1].attempt, 1);
  }

  // Failed alike, without a result: the error and its line, no exit code.
  Task failing = factory_.Make([](Task& t) { t.run_at = kT0 - seconds(1); });
  ASSERT_TRUE(store->TaskInsertMany({failing}).ok());
  p.run_instantly = [&](const Task& t) -> std::optional<core::TaskFinishParams> {
    return core::TaskFinishParams{.id = t.id, .attempt = t.attempt, .state = TaskState::kFailed,
                                  .error = "boom", .node = "node-a", .now = kT0};
  };
  claimed = store->TaskClaim(p);
  ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  ASSERT_EQ(claimed->size(), 1u);
  auto t = store->TaskGet(failing.id);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->state, TaskState::kFailed);
  EXPECT_EQ(t->result.has_value(), false);
  EXPECT_EQ(t->error, "boom");
  auto history = store->TaskEventList(failing.id);
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[1].message, "failed: boom");
}

// A backlog analysed while every task was scheduled: the list index and the
// claim index then cost the same to the planner, and a claim that took the
// list index would walk every finished task (migration 0008). Neither the
// claim nor TaskNextRunAt may use it, whatever the statistics say.
TEST_F(PostgresStoreTest, ClaimOnAnAnalysedBacklogNeverUsesTheListIndex) {
  constexpr int kTasks = 3000;
  {
    // One connection: its index statistics reach pg_stat_user_indexes when
    // it closes, all at once.
    std::unique_ptr<core::Store> store = Open(/*pool_size=*/1);
    ASSERT_NE(store, nullptr);
    std::vector<Task> batch;
    for (int i = 0; i < kTasks; ++i) {
      batch.push_back(factory_.Make([&](Task& t) { t.run_at = kT0 - std::chrono::seconds(i); }));
    }
    ASSERT_TRUE(store->TaskInsertMany(batch).ok());
    ASSERT_TRUE(pgtest::ExecSql(dsn_, "ANALYZE \"" + schema_ + "\".tasks").ok());

    int claimed = 0;
    for (int round = 0; round < 8; ++round) {
      auto next = store->TaskNextRunAt(AllRunners());
      ASSERT_TRUE(next.ok()) << next.status().ToString();
      ASSERT_TRUE(next->has_value());
      auto r = store->TaskClaim(ClaimParams("node-a", kT0, 100));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_EQ(r->size(), 100u);
      claimed += static_cast<int>(r->size());
    }
    EXPECT_EQ(claimed, 800);
  }
  // The closed connection's counters arrive when its backend has exited.
  // Eight claims and eight TaskNextRunAt calls, each one index scan.
  ASSERT_TRUE(
      WaitFor([&] { return IndexStat("tasks_claim_idx") + IndexStat("tasks_list_idx") >= 16; }));
  EXPECT_EQ(IndexStat("tasks_list_idx"), 0);
  EXPECT_GE(IndexStat("tasks_claim_idx"), 16);
}

// Autovacuum's first VACUUM of a filled tasks table tells the planner how
// many rows it holds, and the ANALYZE that follows it tells what they hold.
// In between, by the default selectivities, hardly any task is scheduled, and
// a bitmap scan of the claim index with a sort looked cheapest for the
// dispatcher's next-run-at query: it read all 57 000 scheduled tasks on each
// call. The store's sessions plan no bitmap scans, so the call reads the
// claim index in order and stops at its first entry.
TEST_F(PostgresStoreTest, NextRunAtWalksTheClaimIndexBetweenVacuumAndAnalyze) {
  {
    std::unique_ptr<core::Store> store = Open(/*pool_size=*/1);
    ASSERT_NE(store, nullptr);
    // 60 000 tasks: the first 3 000 finished, the rest scheduled.
    ASSERT_NO_FATAL_FAILURE(FillWithoutStatistics(
        "id, type, runner, queue, run_at, state, max_attempts, timeout_s, created_at",
        "SELECT gen_random_uuid(), 'noop', 'builtin', 'default',"
        " timestamptz '2030-01-01' + g * interval '1 ms',"
        " CASE WHEN g <= 3000 THEN 'succeeded' ELSE 'scheduled' END, 1, 60, now()"
        " FROM generate_series(1, 60000) g"));

    for (int call = 0; call < 5; ++call) {
      auto next = store->TaskNextRunAt(AllRunners());
      ASSERT_TRUE(next.ok()) << next.status().ToString();
      ASSERT_TRUE(next->has_value());
      EXPECT_EQ(core::FormatRfc3339(**next), "2030-01-01T00:00:03.001Z");
    }
  }
  // The closed connection's counters arrive when its backend has exited.
  ASSERT_TRUE(WaitFor([&] { return IndexStat("tasks_claim_idx") >= 5; }));
  EXPECT_LT(IndexStat("tasks_claim_idx", "idx_tup_read"), 100)
      << "index entries read by five calls";
}

// Between autovacuum's first VACUUM of a filled table and its ANALYZE, the
// planner must not believe the batch updates' fence leaves a task or two:
// it then ran the batch once per task it scanned, 3 000 times for a batch of
// 3 000 finishes (batch_fence.h). It estimates it as half the table.
TEST_F(PostgresStoreTest, TheBatchFenceLooksLikeHalfTheTableWithoutStatistics) {
  std::unique_ptr<core::Store> store = Open(/*pool_size=*/1);
  ASSERT_NE(store, nullptr);
  ASSERT_NO_FATAL_FAILURE(FillWithoutStatistics(
      "id, type, runner, queue, run_at, state, attempt, max_attempts, timeout_s, created_at",
      "SELECT gen_random_uuid(), 'noop', 'builtin', 'default', now(),"
      " CASE WHEN g <= 3000 THEN 'running' ELSE 'scheduled' END, 1, 1, 60, now()"
      " FROM generate_series(1, 100000) g"));

  auto plan = pgtest::QueryValue(dsn_, "EXPLAIN (FORMAT JSON) SELECT 1 FROM \"" + schema_ +
                                           "\".tasks t WHERE " SKED_PG_LIVE_STATE_FENCE);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_TRUE(plan->has_value());
  const std::string key = "\"Plan Rows\": ";
  const size_t at = (*plan)->find(key);
  ASSERT_NE(at, std::string::npos) << **plan;
  EXPECT_GE(std::stod((*plan)->substr(at + key.size())), 10000) << **plan;
}

// Task ids are uuid columns (migration 0009). Any other string names no
// task: the store answers for it without a query, whose cast would fail.
TEST_F(PostgresStoreTest, IdThatIsNotAUuidNamesNoTask) {
  std::unique_ptr<core::Store> store = Open();
  ASSERT_NE(store, nullptr);
  Task live = factory_.Make();
  ASSERT_TRUE(store->TaskInsert(live).ok());
  auto claimed = store->TaskClaim(ClaimParams("node-a", kT0, 10));
  ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  ASSERT_EQ(claimed->size(), 1u);

  for (const std::string bad : {"nope", "", "0193A6C8-0000-7000-8000-000000000000",
                                "'; DROP TABLE tasks; --"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(store->TaskGet(bad).status().code(), StatusCode::kNotFound);
    EXPECT_THAT(store->TaskEventList(bad).status().code(), StatusCode::kNotFound);
    EXPECT_THAT(store->TaskCancel({.id = bad, .now = kT0}).status().code(),
                StatusCode::kNotFound);
    EXPECT_THAT(store->TaskDelete({.id = bad, .now = kT0}).status().code(),
                StatusCode::kNotFound);
    EXPECT_EQ(store->TaskFinish({.id = bad, .attempt = 1, .now = kT0}).code(),
              StatusCode::kNotFound);
    Task t = factory_.Make([&](Task& x) { x.id = bad; });
    EXPECT_EQ(store->TaskInsert(t).status().code(), StatusCode::kInvalidArgument);
  }

  // In a batch, the bad row is not found and the good one applies.
  std::vector<core::Status> finished = store->TaskFinishMany(
      {{.id = "nope", .attempt = 1, .now = kT0}, {.id = live.id, .attempt = 1, .now = kT0}});
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_EQ(finished[0].code(), StatusCode::kNotFound);
  EXPECT_TRUE(finished[1].ok()) << finished[1].ToString();

  auto lost = store->TaskLeaseRenew({.node = "node-a",
                                     .now = kT0,
                                     .lease = seconds(30),
                                     .tasks = {{.id = "nope", .attempt = 1}}});
  ASSERT_TRUE(lost.ok()) << lost.status().ToString();
  ASSERT_EQ(lost->size(), 1u);
  EXPECT_EQ(lost->front().id, "nope");

  auto page = store->TaskList(
      {.limit = 10, .after = core::TaskListCursor{.run_at = kT0, .id = "nope"}});
  EXPECT_EQ(page.status().code(), StatusCode::kInvalidArgument);
}

// ===== Reads without blocking ================================================

// TaskGetAsync (the HTTP I/O threads' GET): reads from several threads at
// once share statements on the reader's connections, and each read gets its
// own task, including one its thread inserted just before.
TEST_F(PostgresStoreTest, TaskGetAsyncUnderLoadAnswersEachReadWithItsTask) {
  constexpr int kThreads = 4;
  constexpr int kReads = 300;
  // Before the store: its destructor answers what is still queued.
  std::atomic<int> answered{0};
  std::atomic<int> wrong{0};
  std::unique_ptr<core::Store> store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<Task> tasks;
  for (int i = 0; i < 20; ++i) {
    tasks.push_back(factory_.Make());
    ASSERT_TRUE(store->TaskInsert(tasks.back()).ok());
  }
  std::vector<Task> own;  // one per thread, inserted by it
  for (int t = 0; t < kThreads; ++t) own.push_back(factory_.Make());

  auto read = [&](const std::string& id) {
    return store->TaskGetAsync(id, [&answered, &wrong, id](core::StatusOr<Task> r) {
      if (!r.ok() || r->id != id) ++wrong;
      ++answered;
    });
  };
  std::latch go(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      go.arrive_and_wait();
      for (int i = 0; i < kReads; ++i) {
        EXPECT_TRUE(read(tasks[(t * 7 + i) % tasks.size()].id));
        if (i == kReads / 2) {
          EXPECT_TRUE(store->TaskInsert(own[t]).ok());
          EXPECT_TRUE(read(own[t].id));
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const int total = kThreads * (kReads + 1);
  EXPECT_TRUE(WaitFor([&] { return answered.load() == total; }, seconds(60)))
      << answered.load() << " of " << total << " answered";
  EXPECT_EQ(wrong.load(), 0);
}

// ===== Inserts in groups ======================================================

// Concurrent TaskInsert calls share statements (Batcher; one multi-row
// INSERT for the tasks without an idempotency key): each caller still gets
// what inserting alone gives it, and every field arrives as given. Two
// callers with one idempotency key get one task; a value PostgreSQL refuses
// fails its own insert only.
TEST_F(PostgresStoreTest, ConcurrentInsertsEachGetTheirOwnOutcome) {
  constexpr int kThreads = 8;
  constexpr int kEach = 40;
  std::unique_ptr<core::Store> store = Open();
  ASSERT_NE(store, nullptr);
  // Made up front: the factory is not shared across threads.
  std::vector<std::vector<Task>> plans(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kEach; ++i) {
      plans[t].push_back(factory_.Make([&](Task& x) {
        x.run_at = kT0 + seconds(t * 100 + i) + std::chrono::microseconds(i * 37 + 1);
        x.created_at = kT0 - std::chrono::microseconds(t * 1000 + i);
        if (i % 3 == 0) {
          x.runner = "docker";
          x.type = "container";
          x.image = "busybox:" + std::to_string(i);
          x.command = {"sh", "-c", "echo \"quoted\" \\ back"};
          x.env = {{"A", "1"}, {"B", "two words"}};
        }
        x.queue = i % 2 == 0 ? "default" : "q" + std::to_string(t);
        x.max_attempts = 1 + i % 5;
        x.timeout_s = 60 + i;
        x.labels = {{"team", "t" + std::to_string(t)}, {"n", std::to_string(i)}};
        if (i % 4 == 1) x.notify_url = "http://127.0.0.1:9/hook/" + std::to_string(i);
        if (i % 6 == 2) {
          x.schedule_id = "sched-" + std::to_string(t);
          x.occurrence = x.run_at;
        }
        // Pairs of threads race for the same keys.
        if (i % 4 == 0) x.idempotency_key = "key-" + std::to_string(t / 2) + "-" + std::to_string(i);
        if (i % 10 == 5) x.labels["bad"] = std::string("nul\0inside", 10);
        // Run-time fields a caller left behind: an insert starts fresh.
        x.attempt = 4;
        x.started_at = kT0;
        x.error = "left over";
        x.lease_owner = "node-z";
      }));
    }
  }
  std::vector<std::vector<core::StatusOr<core::TaskInsertResult>>> got(kThreads);
  std::latch go(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      go.arrive_and_wait();
      for (const Task& task : plans[t]) got[t].push_back(store->TaskInsert(task));
    });
  }
  for (std::thread& t : threads) t.join();

  std::map<std::string, std::set<std::string>> ids_by_key;
  std::map<std::string, int> inserted_by_key;
  int inserted = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kEach; ++i) {
      const Task& want = plans[t][i];
      const core::StatusOr<core::TaskInsertResult>& r = got[t][i];
      SCOPED_TRACE("thread " + std::to_string(t) + " insert " + std::to_string(i));
      if (i % 10 == 5) {
        EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
        EXPECT_EQ(store->TaskGet(want.id).status().code(), StatusCode::kNotFound);
        continue;
      }
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      inserted += r->inserted;
      if (want.idempotency_key) {
        ids_by_key[*want.idempotency_key].insert(r->task.id);
        inserted_by_key[*want.idempotency_key] += r->inserted;
        if (!r->inserted) continue;
      }
      EXPECT_TRUE(r->inserted);
      EXPECT_EQ(r->task.id, want.id);
      EXPECT_EQ(r->task.state, TaskState::kScheduled);
      EXPECT_EQ(r->task.attempt, 0);
      EXPECT_FALSE(r->task.started_at.has_value());
      EXPECT_FALSE(r->task.error.has_value());
      EXPECT_FALSE(r->task.lease_owner.has_value());
      // Committed when TaskInsert returned, with every field as given.
      auto read = store->TaskGet(want.id);
      ASSERT_TRUE(read.ok()) << read.status().ToString();
      EXPECT_EQ(read->type, want.type);
      EXPECT_EQ(read->runner, want.runner);
      EXPECT_EQ(read->queue, want.queue);
      EXPECT_EQ(read->run_at, want.run_at);
      EXPECT_EQ(read->state, TaskState::kScheduled);
      EXPECT_EQ(read->image, want.image);
      EXPECT_EQ(read->command, want.command);
      EXPECT_EQ(read->env, want.env);
      EXPECT_EQ(read->attempt, 0);
      EXPECT_EQ(read->max_attempts, want.max_attempts);
      EXPECT_EQ(read->timeout_s, want.timeout_s);
      EXPECT_EQ(read->idempotency_key, want.idempotency_key);
      EXPECT_EQ(read->labels, want.labels);
      EXPECT_EQ(read->notify_url, want.notify_url);
      EXPECT_EQ(read->schedule_id, want.schedule_id);
      EXPECT_EQ(read->occurrence, want.occurrence);
      EXPECT_EQ(read->created_at, want.created_at);
      auto events = store->TaskEventList(want.id);
      ASSERT_TRUE(events.ok()) << events.status().ToString();
      ASSERT_EQ(events->size(), 1u);
      EXPECT_EQ(events->front().message, "created");
      EXPECT_EQ(events->front().at, want.created_at);
    }
  }
  for (const auto& [key, ids] : ids_by_key) {
    EXPECT_EQ(ids.size(), 1u) << key << ": both callers get the one task";
    EXPECT_EQ(inserted_by_key[key], 1) << key;
  }
  auto counts = store->TaskCountByState();
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_EQ((*counts)[TaskState::kScheduled], inserted);
}

// ===== Labels ================================================================

// A label filter pages through task_labels (migration 0011), not through the
// whole history in run_at order.
TEST_F(PostgresStoreTest, LabelListReadsTheLabelIndexNotTheHistory) {
  constexpr int kTasks = 3000;
  std::vector<std::string> want;  // team-7, newest run_at first
  {
    std::unique_ptr<core::Store> store = Open(/*pool_size=*/1);
    ASSERT_NE(store, nullptr);
    std::vector<Task> batch;
    for (int i = 0; i < kTasks; ++i) {
      batch.push_back(factory_.Make([&](Task& t) {
        t.run_at = kT0 + seconds(i);
        t.labels = {{"team", "team-" + std::to_string(i % 50)}, {"env", "prod"}};
      }));
      if (i % 50 == 7) want.insert(want.begin(), batch.back().id);
    }
    ASSERT_TRUE(store->TaskInsertMany(batch).ok());
    ASSERT_TRUE(pgtest::ExecSql(dsn_, "ANALYZE \"" + schema_ + "\".tasks").ok());
    ASSERT_TRUE(pgtest::ExecSql(dsn_, "ANALYZE \"" + schema_ + "\".task_labels").ok());

    std::vector<std::string> got;
    std::optional<core::TaskListCursor> after;
    do {
      auto page = store->TaskList({.labels = {{"team", "team-7"}}, .limit = 25, .after = after});
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      for (const Task& t : page->tasks) got.push_back(t.id);
      after = page->next;
    } while (after.has_value());
    EXPECT_EQ(got, want);
  }
  // Three pages (60 tasks, 25 a page): three walks of the label index.
  ASSERT_TRUE(WaitFor([&] { return IndexStat("task_labels_pkey") >= 3; }));
  EXPECT_EQ(IndexStat("tasks_list_idx"), 0);
}

// A label list is planned once per connection: after PostgreSQL's five custom
// plans it keeps the statement's generic plan, whatever pair, state and page
// the later calls ask for, and answers each of them as the store does. With the
// task's filters in a plain join with task_labels every call was planned again
// (12 custom plans here): a quarter of the database's time per page. (The
// literal limit matters only at scale, where a generic plan with `LIMIT $n`
// reckons on a tenth of the pair's entries; a table this small cannot show it.)
TEST_F(PostgresStoreTest, ALabelListKeepsOneGenericPlanForEveryPair) {
  std::unique_ptr<core::Store> store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<Task> batch;
  for (int i = 0; i < 2000; ++i) {
    batch.push_back(factory_.Make([&](Task& t) {
      t.run_at = kT0 + seconds(i);
      t.labels = {{"team", "team-" + std::to_string(i % 20)}};
    }));
  }
  ASSERT_TRUE(store->TaskInsertMany(batch).ok());
  for (int i = 0; i < 20; ++i) {  // one cancelled task in each team
    ASSERT_TRUE(store->TaskCancel({.id = batch[i].id, .now = kT0}).ok());
  }
  ASSERT_TRUE(pgtest::ExecSql(dsn_, "ANALYZE \"" + schema_ + "\".tasks").ok());
  ASSERT_TRUE(pgtest::ExecSql(dsn_, "ANALYZE \"" + schema_ + "\".task_labels").ok());

  auto conn = postgres_internal::Connection::Open({.dsn = dsn_, .schema = schema_});
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  std::string sql;
  for (int call = 0; call < 12; ++call) {
    core::TaskListParams params{
        .states = {call % 3 == 0 ? TaskState::kCancelled : TaskState::kScheduled},
        .labels = {{"team", "team-" + std::to_string(call % 5)}},
        .limit = 10};
    const int from = 1000 + 90 * call;  // pages from different places
    params.after = core::TaskListCursor{.run_at = kT0 + seconds(from), .id = batch[from].id};
    auto q = postgres_internal::BuildTaskListQuery(params);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    if (call > 0) {
      ASSERT_EQ(q->sql, sql) << "one statement for every call";
    }
    sql = q->sql;
    auto r = (*conn)->Exec(q->sql, q->params, "list");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::vector<std::string> got;
    for (int row = 0; row < std::min(r->rows(), 10); ++row) got.emplace_back(r->Text(row, 0));
    auto page = store->TaskList(params);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    std::vector<std::string> want;
    for (const Task& t : page->tasks) want.push_back(t.id);
    ASSERT_FALSE(want.empty()) << "call " << call;
    EXPECT_EQ(got, want) << "call " << call;
  }
  auto plans = (*conn)->Exec(
      "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
      " WHERE statement = $1",
      postgres_internal::Params().Add(sql), "plans");
  ASSERT_TRUE(plans.ok()) << plans.status().ToString();
  ASSERT_EQ(plans->rows(), 1);
  EXPECT_EQ(plans->Int(0, 1), 5) << "custom plans";
  EXPECT_EQ(plans->Int(0, 0), 7) << "generic plans";
}

// Tasks written before migration 0011 are in the label index too; a deleted
// one is not.
TEST_F(PostgresStoreTest, LabelIndexHoldsTasksFromBeforeItsMigration) {
  {
    auto conn = postgres_internal::Connection::Open({.dsn = dsn_, .schema = schema_});
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    auto all = postgres_internal::EmbeddedMigrations();
    auto upto = std::find_if(all.begin(), all.end(),
                             [](const postgres_internal::Migration& m) { return m.version > 10; });
    ASSERT_NE(upto, all.end());
    ASSERT_TRUE(postgres_internal::Migrate(**conn, schema_, {all.begin(), upto}).ok());
  }
  const std::string kept = "0193a6c8-0000-7000-8000-000000000001";
  const std::string deleted = "0193a6c8-0000-7000-8000-000000000002";
  const std::string plain = "0193a6c8-0000-7000-8000-000000000003";
  for (const auto& [id, labels, deleted_at] :
       {std::tuple{kept, "{\"env\": \"prod\"}", "NULL"},
        std::tuple{deleted, "{\"env\": \"prod\"}", "now()"}, std::tuple{plain, "{}", "NULL"}}) {
    ASSERT_TRUE(pgtest::ExecSql(dsn_, "INSERT INTO \"" + schema_ +
                                          "\".tasks (id, type, runner, queue, run_at, state,"
                                          " max_attempts, timeout_s, created_at, labels,"
                                          " deleted_at) VALUES ('" +
                                          id +
                                          "', 'noop', 'builtin', 'default', now(), 'scheduled',"
                                          " 1, 60, now(), '" +
                                          labels + "', " + deleted_at + ")")
                    .ok());
  }
  std::unique_ptr<core::Store> store = Open();
  ASSERT_NE(store, nullptr);
  auto page = store->TaskList({.labels = {{"env", "prod"}}});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->tasks.size(), 1u);
  EXPECT_EQ(page->tasks[0].id, kept);
  auto rows = pgtest::QueryValue(dsn_, "SELECT count(*) FROM \"" + schema_ + "\".task_labels");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(rows->value_or(""), "1");

  // Deleting the task takes its rows out of the index.
  ASSERT_TRUE(store->TaskDelete({.id = kept, .now = kT0}).ok());
  rows = pgtest::QueryValue(dsn_, "SELECT count(*) FROM \"" + schema_ + "\".task_labels");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(rows->value_or(""), "0");
}

// ===== LISTEN / NOTIFY =======================================================

// With a notify horizon, only a task due within it of its creation wakes the
// other nodes; one due later is found by their next look (they look at least
// once a horizon). Notifications arrive in commit order, so a later task
// inserted first would have been seen before the sooner one.
TEST_F(PostgresStoreTest, OnlyTasksDueWithinTheNotifyHorizonWakeOtherNodes) {
  PostgresOptions o = Options();
  o.notify_horizon = std::chrono::milliseconds(500);
  auto opened = OpenPostgresStore(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<core::Store> a = std::move(opened).value();
  auto b = Open();
  ASSERT_NE(b, nullptr);
  DueRecorder rec;
  b->TaskSubscribeDue(rec.Fn());
  ASSERT_TRUE(WaitFor([&] { return rec.Connects() >= 1; })) << "the listener did not connect";

  // The factory's tasks are created at kT0.
  auto at = [&](Time run_at) { return factory_.Make([&](Task& t) { t.run_at = run_at; }); };
  std::vector<Time> later;
  for (int i = 0; i < 8; ++i) later.push_back(kT0 + std::chrono::milliseconds(500 + i));
  ASSERT_TRUE(a->TaskInsert(at(later[0])).ok());
  ASSERT_TRUE(a->TaskInsertMany({at(later[1]), at(later[2])}).ok());
  {
    // Concurrent inserts: the multi-row statement.
    std::vector<Task> tasks;
    for (int i = 3; i < 8; ++i) tasks.push_back(at(later[i]));
    std::vector<std::thread> threads;
    for (const Task& t : tasks) {
      threads.emplace_back([&, t] { EXPECT_TRUE(a->TaskInsert(t).ok()); });
    }
    for (std::thread& t : threads) t.join();
  }
  const Time soon = kT0 + std::chrono::milliseconds(499);
  ASSERT_TRUE(a->TaskInsert(at(soon)).ok());
  EXPECT_TRUE(WaitFor([&] { return rec.Saw(soon); }, seconds(5))) << "no wake-up for a due task";
  for (Time t : later) EXPECT_FALSE(rec.Saw(t)) << "a task due after the horizon woke a node";

  // In a batch, the earliest task due within the horizon is what wakes.
  const Time batch_soon = kT0 - seconds(1);
  ASSERT_TRUE(a->TaskInsertMany({at(kT0 + seconds(60)), at(batch_soon)}).ok());
  EXPECT_TRUE(WaitFor([&] { return rec.Saw(batch_soon); }, seconds(5)));
  EXPECT_FALSE(rec.Saw(kT0 + seconds(60)));
  b->TaskSubscribeDue({});
}

TEST_F(PostgresStoreTest, SubscriberWakesWhenAnotherStoreMakesTasksDue) {
  auto a = Open();
  auto b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  DueRecorder rec;
  b->TaskSubscribeDue(rec.Fn());
  // The first call says the listener is up; notifications from then on
  // arrive.
  ASSERT_TRUE(WaitFor([&] { return rec.Connects() >= 1; })) << "the listener did not connect";

  // An insert.
  const Time r1 = kT0 + seconds(11);
  ASSERT_TRUE(a->TaskInsert(factory_.Make([&](Task& t) { t.run_at = r1; })).ok());
  EXPECT_TRUE(WaitFor([&] { return rec.Saw(r1); }, seconds(5))) << "no wake-up for an insert";

  // A batch: the earliest run_at.
  const Time r2 = kT0 - seconds(2);
  const Time r3 = kT0 - seconds(1);
  ASSERT_TRUE(a->TaskInsertMany({factory_.Make([&](Task& t) { t.run_at = r3; }),
                                 factory_.Make([&](Task& t) { t.run_at = r2; })})
                  .ok());
  EXPECT_TRUE(WaitFor([&] { return rec.Saw(r2); }, seconds(5))) << "no wake-up for a batch";

  // A retry back to scheduled.
  auto claimed = a->TaskClaim(ClaimParams("node-a", kT0, 1));
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  const Time r4 = kT0 + seconds(44);
  ASSERT_TRUE(a->TaskRetry({.id = (*claimed)[0].id, .attempt = 1, .run_at = r4, .now = kT0}).ok());
  EXPECT_TRUE(WaitFor([&] { return rec.Saw(r4); }, seconds(5))) << "no wake-up for a retry";

  // A rescue: the rescued task is due at its old run_at.
  claimed = a->TaskClaim(ClaimParams("node-a", kT0, 1));
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  const Time rescued_run_at = (*claimed)[0].run_at;
  auto rescued = a->TaskRescue({.now = kT0 + seconds(31)});
  ASSERT_TRUE(rescued.ok());
  ASSERT_EQ(rescued->size(), 1u);
  EXPECT_TRUE(WaitFor([&] { return rec.Saw(rescued_run_at); }, seconds(5)))
      << "no wake-up for a rescue";

  // Unsubscribed: B's old subscriber is never called again, while another
  // store's subscriber still hears the next insert.
  b->TaskSubscribeDue({});
  const size_t before = rec.size();
  auto c = Open();
  ASSERT_NE(c, nullptr);
  DueRecorder rec_c;
  c->TaskSubscribeDue(rec_c.Fn());
  ASSERT_TRUE(WaitFor([&] { return rec_c.Connects() >= 1; }));
  const Time r5 = kT0 + seconds(55);
  ASSERT_TRUE(a->TaskInsert(factory_.Make([&](Task& t) { t.run_at = r5; })).ok());
  EXPECT_TRUE(WaitFor([&] { return rec_c.Saw(r5); }, seconds(5)));
  EXPECT_EQ(rec.size(), before);
  c->TaskSubscribeDue({});
}

// ===== Outage ================================================================

// Runs a shell command; its exit status.
int Shell(const std::string& cmd) { return std::system(cmd.c_str()); }

// Runs a shell command and returns its stdout (trailing newline removed).
std::optional<std::string> ShellOutput(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return std::nullopt;
  std::string out;
  char buf[256];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  if (::pclose(p) != 0) return std::nullopt;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
    out.pop_back();
  }
  return out;
}

// A throwaway cluster of the test's own, started with
// scripts/pg-throwaway.sh, which it can stop and start again on the same
// port and socket directory.
class PostgresOutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sked-pg-outage.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::optional<std::string> dsn =
        ShellOutput("bash '" SKED_SOURCE_DIR "/scripts/pg-throwaway.sh' start '" + dir_ + "'");
    ASSERT_TRUE(dsn.has_value() && !dsn->empty())
        << "scripts/pg-throwaway.sh could not start a cluster in " << dir_
        << " (is postgresql-15 installed? scripts/install-deps.sh --test)";
    dsn_ = *dsn;
    // postgresql://sked@127.0.0.1:PORT/sked_test
    const size_t colon = dsn_.rfind(':');
    const size_t slash = dsn_.find('/', colon);
    ASSERT_NE(colon, std::string::npos);
    port_ = dsn_.substr(colon + 1, slash - colon - 1);
  }

  void TearDown() override {
    if (!dir_.empty()) {
      Shell("bash '" SKED_SOURCE_DIR "/scripts/pg-throwaway.sh' stop '" + dir_ +
            "' >/dev/null 2>&1");
    }
  }

  // pg_ctl runs as the cluster's owner: sked-pg when the test runs as root
  // (as the script arranges), else the current user.
  std::string AsOwner(const std::string& cmd) const {
    const std::string bin = "/usr/lib/postgresql/15/bin/";
    return "cd / && " + std::string(::geteuid() == 0 ? "runuser -u sked-pg -- " : "") + bin + cmd;
  }

  bool StopCluster() {
    return Shell(AsOwner("pg_ctl -D '" + dir_ + "/data' -m fast -w -t 60 stop") + " >/dev/null") ==
           0;
  }

  // The same options scripts/pg-throwaway.sh starts it with, so the server
  // comes back on the same port and socket directory.
  bool StartCluster() {
    const std::string opts = "-k '" + dir_ + "' -p " + port_ +
                             " -c listen_addresses=127.0.0.1 -c fsync=off"
                             " -c synchronous_commit=off"
                             " -c full_page_writes=off -c max_connections=200";
    return Shell(AsOwner("pg_ctl -D '" + dir_ + "/data' -l '" + dir_ +
                         "/postgres.log' -w -t 60 -o \"" + opts + "\" start") +
                 " >/dev/null") == 0;
  }

  std::string dir_;
  std::string dsn_;
  std::string port_;
  TaskFactory factory_;
};

TEST_F(PostgresOutageTest, CallsAreUnavailableDuringAnOutageAndRecoverAfter) {
  auto opened = OpenPostgresStore({.dsn = dsn_,
                                   .schema = "sked_outage",
                                   .pool_size = 3,
                                   .checkout_timeout = seconds(5),
                                   .connect_timeout = seconds(2)});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<core::Store> store = std::move(opened).value();
  DueRecorder rec;
  store->TaskSubscribeDue(rec.Fn());
  ASSERT_TRUE(WaitFor([&] { return rec.Connects() >= 1; }));

  Task before = factory_.Make();
  ASSERT_TRUE(store->TaskInsert(before).ok());
  // Open every pooled connection, so all of them go stale in the outage.
  {
    std::latch go(3);
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back([&] {
        go.arrive_and_wait();
        for (int j = 0; j < 20; ++j) EXPECT_TRUE(store->Ping().ok());
      });
    }
    for (std::thread& t : threads) t.join();
  }

  ASSERT_TRUE(StopCluster()) << "pg_ctl stop failed";

  Task during = factory_.Make();
  auto expect_unavailable = [](const core::Status& s, const char* call) {
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << call << ": " << s.ToString();
    // Never SQL in a message.
    EXPECT_EQ(s.message().find("SELECT"), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find("INSERT"), std::string::npos) << s.message();
  };
  // Several rounds: the first finds stale connections, later ones fail to
  // reconnect or are turned away by the reconnect backoff.
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    expect_unavailable(store->Ping(), "Ping");
    expect_unavailable(store->TaskGet(before.id).status(), "TaskGet");
    expect_unavailable(GetAsync(*store, before.id).status(), "TaskGetAsync");
    expect_unavailable(store->TaskInsert(during).status(), "TaskInsert");
    expect_unavailable(store->TaskInsertMany({during}).status(), "TaskInsertMany");
    expect_unavailable(store->TaskClaim(ClaimParams("node-a", kT0, 10)).status(), "TaskClaim");
    expect_unavailable(store->TaskList({}).status(), "TaskList");
    expect_unavailable(store->LeaderElect("node-a", kT0, seconds(10)).status(), "LeaderElect");
    expect_unavailable(store->TaskRescue({.now = kT0 + seconds(100)}).status(), "TaskRescue");
  }
  // A node starting now cannot open its store either.
  EXPECT_EQ(OpenPostgresStore({.dsn = dsn_, .schema = "sked_outage"}).status().code(),
            StatusCode::kUnavailable);

  ASSERT_TRUE(StartCluster()) << "pg_ctl start failed; see " << dir_ << "/postgres.log";

  // The same store recovers by itself.
  ASSERT_TRUE(WaitFor([&] { return store->Ping().ok(); }, seconds(30)))
      << "the store did not reconnect";
  // Every pooled connection was replaced: concurrent calls all succeed.
  {
    std::latch go(3);
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back([&] {
        go.arrive_and_wait();
        for (int j = 0; j < 20; ++j) {
          auto r = store->TaskGet(before.id);
          EXPECT_TRUE(r.ok()) << r.status().ToString();
          r = GetAsync(*store, before.id);
          EXPECT_TRUE(r.ok()) << r.status().ToString();
        }
      });
    }
    for (std::thread& t : threads) t.join();
  }

  // Nothing was lost and nothing runs twice: the task from before the outage
  // and the one the caller retries now are each claimed exactly once.
  EXPECT_EQ(store->TaskGet(during.id).status().code(), StatusCode::kNotFound);
  auto inserted = store->TaskInsert(during);
  ASSERT_TRUE(inserted.ok()) << inserted.status().ToString();
  EXPECT_TRUE(inserted->inserted);
  auto claimed = store->TaskClaim(ClaimParams("node-a", kT0, 10));
  ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  std::set<std::string> ids;
  for (const Task& t : *claimed) {
    ids.insert(t.id);
    EXPECT_EQ(t.attempt, 1);
  }
  EXPECT_EQ(ids, (std::set<std::string>{before.id, during.id}));
  claimed = store->TaskClaim(ClaimParams("node-b", kT0 + seconds(1), 10));
  ASSERT_TRUE(claimed.ok());
  EXPECT_THAT(*claimed, ::testing::IsEmpty());

  // The listener reconnected too, and hears new work again.
  EXPECT_TRUE(WaitFor([&] { return rec.Connects() >= 2; }, seconds(30)))
      << "the listener did not reconnect";
  const Time later = kT0 + seconds(77);
  ASSERT_TRUE(store->TaskInsert(factory_.Make([&](Task& t) { t.run_at = later; })).ok());
  EXPECT_TRUE(WaitFor([&] { return rec.Saw(later); }, seconds(5)));
  store->TaskSubscribeDue({});
}

TEST_F(PostgresOutageTest, RestartBetweenCallsIsInvisible) {
  auto opened = OpenPostgresStore({.dsn = dsn_, .schema = "sked_restart", .pool_size = 2});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<core::Store> store = std::move(opened).value();
  Task t = factory_.Make();
  ASSERT_TRUE(store->TaskInsert(t).ok());
  ASSERT_TRUE(GetAsync(*store, t.id).ok());  // opens the async reader's connection

  // The server restarts while the store sits idle: its pooled connection
  // is dead, and the next checkout must notice and replace it rather than
  // fail the call. The async reader's read fails on its dead connection and
  // is sent again on a new one.
  ASSERT_TRUE(StopCluster());
  ASSERT_TRUE(StartCluster());
  auto got = store->TaskGet(t.id);
  EXPECT_TRUE(got.ok()) << got.status().ToString();
  got = GetAsync(*store, t.id);
  EXPECT_TRUE(got.ok()) << got.status().ToString();
  auto claimed = store->TaskClaim(ClaimParams("node-a", kT0, 10));
  ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  EXPECT_EQ(claimed->size(), 1u);
}

}  // namespace
}  // namespace sked::store
