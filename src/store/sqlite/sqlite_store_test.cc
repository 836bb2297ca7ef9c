// What only the SQLite backend has: files, migrations, several stores on one
// file, lock timeouts and error mapping. The behaviour every backend shares is
// in tests/conformance.
#include "store/sqlite/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite/internal/migrations.h"
#include "testing/task_factory.h"

namespace sked::store {
namespace {

using core::StatusCode;
using core::Task;
using testing::kTestEpoch;
using testing::TaskFactory;

// A fresh directory per test, removed afterwards.
class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "sked-sqlite-XXXXXX")
            .string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string DbPath() const {
    return (dir_ / "nested" / "dir" / "sked.db").string();
  }

  std::unique_ptr<core::Store> Open(SqliteOptions options) {
    auto s = OpenSqliteStore(options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // Runs `sql` on a raw connection to the test database.
  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  std::filesystem::path dir_;
  TaskFactory factory_;
};

TEST_F(SqliteStoreTest, OpenCreatesParentDirectoriesAndUsesWal) {
  auto store = Open({.path = DbPath()});
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(std::filesystem::exists(DbPath()));
  EXPECT_TRUE(std::filesystem::exists(DbPath() + "-wal"));
}

TEST_F(SqliteStoreTest, ReopenKeepsDataAndAppliesMigrationsOnce) {
  Task t = factory_.Make([](Task& t) { t.labels = {{"k", "v"}}; });
  {
    auto store = Open({.path = DbPath()});
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->TaskInsert(t).ok());
  }
  auto store = Open({.path = DbPath()});
  ASSERT_NE(store, nullptr);
  auto got = store->TaskGet(t.id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->labels, t.labels);

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(
                db, "SELECT COUNT(*), MAX(version) FROM schema_migrations", -1,
                &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  auto migrations = sqlite_internal::EmbeddedMigrations();
  EXPECT_EQ(sqlite3_column_int(st, 0), static_cast<int>(migrations.size()));
  EXPECT_EQ(sqlite3_column_int(st, 1), migrations.back().version);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_F(SqliteStoreTest, EmbeddedMigrationsAreOrderedFromOne) {
  auto migrations = sqlite_internal::EmbeddedMigrations();
  ASSERT_FALSE(migrations.empty());
  EXPECT_EQ(migrations.front().version, 1);
  EXPECT_EQ(migrations.front().name, "0001_init");
  for (size_t i = 1; i < migrations.size(); ++i) {
    EXPECT_GT(migrations[i].version, migrations[i - 1].version);
  }
}

TEST_F(SqliteStoreTest, OpenRefusesASchemaFromANewerBuild) {
  { ASSERT_NE(Open({.path = DbPath()}), nullptr); }
  RawExec(
      "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, "
      "'x', 0)");
  auto s = OpenSqliteStore({.path = DbPath()});
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition)
      << s.status().ToString();
}

TEST_F(SqliteStoreTest, OpenRejectsBadOptions) {
  EXPECT_EQ(OpenSqliteStore({.path = ""}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenSqliteStore({.path = DbPath(), .read_connections = -1})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenSqliteStore({.path = DbPath(),
                             .read_connections = kMaxSqliteReadConnections + 1})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenSqliteStore({.path = DbPath(),
                             .busy_timeout = std::chrono::milliseconds(-1)})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, OpenFailsWhenTheDirectoryCannotBeCreated) {
  std::filesystem::path file = dir_ / "a-file";
  { std::ofstream(file.string()) << "x"; }
  auto s = OpenSqliteStore({.path = (file / "sked.db").string()});
  EXPECT_EQ(s.status().code(), StatusCode::kInternal) << s.status().ToString();
}

TEST_F(SqliteStoreTest, ReadsThroughTheWriterWhenNoReadConnections) {
  auto store = Open({.path = DbPath(), .read_connections = 0});
  ASSERT_NE(store, nullptr);
  Task t = factory_.Make();
  ASSERT_TRUE(store->TaskInsert(t).ok());
  EXPECT_TRUE(store->TaskGet(t.id).ok());
  EXPECT_TRUE(store->Ping().ok());
}

TEST_F(SqliteStoreTest, TwoStoresOnOneFileNeverClaimTheSameTask) {
  // Two stores stand for two processes sharing the file: their writers
  // contend for SQLite's lock rather than for one mutex.
  auto first = Open({.path = DbPath()});
  auto second = Open({.path = DbPath()});
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  constexpr int kTasks = 200;
  std::vector<Task> batch;
  for (int i = 0; i < kTasks; ++i) batch.push_back(factory_.Make());
  ASSERT_TRUE(first->TaskInsertMany(batch).ok());

  std::mutex mu;
  std::vector<std::string> claimed;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int n = 0; n < 4; ++n) {
    core::Store* store = n % 2 == 0 ? first.get() : second.get();
    threads.emplace_back([&, store, n] {
      core::TaskClaimParams p{.node = "node-" + std::to_string(n),
                              .now = kTestEpoch,
                              .lease = std::chrono::seconds(30),
                              .limit = 3,
                              .runners = {"builtin"}};
      while (true) {
        auto r = store->TaskClaim(p);
        std::lock_guard lock(mu);
        if (!r.ok()) {
          if (r.status().code() == StatusCode::kUnavailable) continue;
          errors.push_back(r.status().ToString());
          return;
        }
        if (r->empty()) return;
        for (const Task& t : *r) claimed.push_back(t.id);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kTasks));
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(),
            static_cast<size_t>(kTasks));
}

TEST_F(SqliteStoreTest, LockHeldByAnotherProcessIsUnavailable) {
  auto store =
      Open({.path = DbPath(), .busy_timeout = std::chrono::milliseconds(20)});
  ASSERT_NE(store, nullptr);
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
            SQLITE_OK);

  auto r = store->TaskInsert(factory_.Make());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable)
      << r.status().ToString();
  EXPECT_EQ(r.status().message().find("INSERT"), std::string::npos);
  // Reads go on under WAL while the other writer holds its lock.
  EXPECT_TRUE(store->Ping().ok());
  EXPECT_TRUE(store->TaskList({}).ok());

  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_TRUE(store->TaskInsert(factory_.Make()).ok());
}

TEST_F(SqliteStoreTest, ErrorMessagesCarryNoSql) {
  auto store = Open({.path = ":memory:"});
  ASSERT_NE(store, nullptr);
  Task t = factory_.Make();
  ASSERT_TRUE(store->TaskInsert(t).ok());
  auto dup = store->TaskInsert(t);
  ASSERT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  for (const char* word : {"INSERT", "SELECT", "tasks (", "VALUES"}) {
    EXPECT_EQ(dup.status().message().find(word), std::string::npos)
        << dup.status().message();
  }
}

TEST_F(SqliteStoreTest, TaskListRejectsLimitOutOfRange) {
  auto store = Open({.path = ":memory:"});
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->TaskList({.limit = 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store->TaskList({.limit = 1001}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, NonUtf8BytesRoundTrip) {
  auto store = Open({.path = ":memory:"});
  ASSERT_NE(store, nullptr);
  const std::string bad = "caf\xE9 \xFF\xFE";
  Task t = factory_.MakeContainer("docker", [&](Task& t) {
    t.env = {{"BAD", bad}};
    t.command = {bad};
    t.labels = {{"k", bad}};
  });
  ASSERT_TRUE(store->TaskInsert(t).ok());
  auto got = store->TaskGet(t.id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->env.at("BAD"), bad);
  EXPECT_EQ(got->command, std::vector<std::string>{bad});
  auto page = store->TaskList({.labels = {{"k", bad}}});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->tasks.size(), 1u);
}

TEST_F(SqliteStoreTest, MemoryStoresAreIndependent) {
  auto a = Open({.path = ":memory:"});
  auto b = Open({.path = ":memory:"});
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  Task t = factory_.Make();
  ASSERT_TRUE(a->TaskInsert(t).ok());
  EXPECT_EQ(b->TaskGet(t.id).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace sked::store
