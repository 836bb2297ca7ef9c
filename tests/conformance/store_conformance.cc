#include "conformance/store_conformance.h"

#include <gmock/gmock.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <ostream>
#include <set>
#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "core/task.h"
#include "core/time.h"

// Readable failure output for core values. Internal linkage, so another
// test's printer cannot clash with these.
namespace sked::core {
[[maybe_unused]] static void PrintTo(TaskState s, std::ostream* os) {
  *os << TaskStateName(s);
}
[[maybe_unused]] static void PrintTo(const Status& s, std::ostream* os) {
  *os << s.ToString();
}
[[maybe_unused]] static void PrintTo(const TaskLeaseRef& r, std::ostream* os) {
  *os << "{" << r.id << ", attempt " << r.attempt << "}";
}
}  // namespace sked::core

namespace sked::testing {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

using core::StatusCode;
using core::Task;
using core::TaskEvent;
using core::TaskState;
using core::Time;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

// --- Status helpers ----------------------------------------------------------

inline const core::Status& StatusOf(const core::Status& s) { return s; }
template <typename T>
core::Status StatusOf(const core::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  core::Status s = StatusOf(arg);
  if (!s.ok()) *result_listener << "status is " << s.ToString();
  return s.ok();
}

MATCHER_P(StatusIs, code,
          "has status " + std::string(core::StatusCodeName(code))) {
  core::Status s = StatusOf(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code;
}

#define SKED_ASSERT_OK_AND_ASSIGN(lhs, expr) \
  SKED_ASSERT_OK_AND_ASSIGN_IMPL(SKED_CONCAT(sked_sor_, __LINE__), lhs, expr)
#define SKED_ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();    \
  lhs = std::move(tmp).value()

// --- Fixed inputs ------------------------------------------------------------

const Time kT0 = kTestEpoch;
constexpr char kNodeA[] = "node-a";
constexpr char kNodeB[] = "node-b";
constexpr core::Duration kLease = seconds(30);

std::vector<std::string> AllRunners() {
  return {std::string(core::kRunnerBuiltin), std::string(core::kRunnerDocker),
          std::string(core::kRunnerEc2Spot)};
}

int64_t Us(Time t) { return core::ToMicros(t); }
std::optional<int64_t> Us(const std::optional<Time>& t) {
  if (!t.has_value()) return std::nullopt;
  return core::ToMicros(*t);
}

core::TaskClaimParams ClaimParams(Time now, int limit = 100,
                                  std::string node = kNodeA) {
  return core::TaskClaimParams{
      .node = std::move(node),
      .now = now,
      .lease = kLease,
      .limit = limit,
      .runners = AllRunners(),
      .provisioning_runners = {std::string(core::kRunnerEc2Spot)},
  };
}

std::vector<std::string> Ids(const std::vector<Task>& tasks) {
  std::vector<std::string> ids;
  for (const Task& t : tasks) ids.push_back(t.id);
  return ids;
}

std::vector<TaskState> States(const std::vector<TaskEvent>& events) {
  std::vector<TaskState> out;
  for (const TaskEvent& e : events) out.push_back(e.state);
  return out;
}

// Field-by-field, so a failure names the field.
void ExpectSameTask(const Task& got, const Task& want) {
  SCOPED_TRACE("task " + want.id);
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.type, want.type);
  EXPECT_EQ(got.runner, want.runner);
  EXPECT_EQ(got.queue, want.queue);
  EXPECT_EQ(Us(got.run_at), Us(want.run_at));
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.image, want.image);
  EXPECT_EQ(got.command, want.command);
  EXPECT_EQ(got.env, want.env);
  EXPECT_EQ(got.attempt, want.attempt);
  EXPECT_EQ(got.max_attempts, want.max_attempts);
  EXPECT_EQ(got.free_attempts, want.free_attempts);
  EXPECT_EQ(got.timeout_s, want.timeout_s);
  EXPECT_EQ(got.idempotency_key, want.idempotency_key);
  EXPECT_EQ(got.labels, want.labels);
  EXPECT_EQ(got.notify_url, want.notify_url);
  EXPECT_EQ(got.schedule_id, want.schedule_id);
  EXPECT_EQ(Us(got.occurrence), Us(want.occurrence));
  EXPECT_EQ(Us(got.created_at), Us(want.created_at));
  EXPECT_EQ(Us(got.started_at), Us(want.started_at));
  EXPECT_EQ(Us(got.finished_at), Us(want.finished_at));
  EXPECT_EQ(got.instance_id, want.instance_id);
  EXPECT_EQ(got.result.has_value(), want.result.has_value());
  if (got.result.has_value() && want.result.has_value()) {
    EXPECT_EQ(got.result->exit_code, want.result->exit_code);
    EXPECT_EQ(got.result->output, want.result->output);
  }
  EXPECT_EQ(got.error, want.error);
  EXPECT_EQ(got.lease_owner, want.lease_owner);
  EXPECT_EQ(Us(got.lease_expires_at), Us(want.lease_expires_at));
  EXPECT_EQ(got.handle, want.handle);
}

}  // namespace

// --- Fixture -----------------------------------------------------------------

void StoreConformanceTest::SetUp() {
  auto store = GetParam().open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  store_ = std::move(store).value();
  ASSERT_NE(store_, nullptr);
}

void StoreConformanceTest::TearDown() {
  store_.reset();
  if (GetParam().cleanup) GetParam().cleanup();
}

std::string StoreConformanceParamName(
    const ::testing::TestParamInfo<StoreConformanceParam>& info) {
  return info.param.name;
}

namespace {

// --- Helpers that need a store -----------------------------------------------
// They record a failure and return an empty value on error, so a test goes on
// and reports everything that is wrong.

Task Insert(core::Store& store, const Task& t) {
  auto r = store.TaskInsert(t);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return {};
  EXPECT_TRUE(r->inserted);
  return r->task;
}

Task Get(core::Store& store, const std::string& id) {
  auto r = store.TaskGet(id);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Task{};
}

std::vector<Task> Claim(core::Store& store, const core::TaskClaimParams& p) {
  auto r = store.TaskClaim(p);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<Task>{};
}

// Inserts `t` and claims it at t.run_at as `node`. REQUIRES: no other task
// is due by then.
// `threads` claimers at once, each claiming with params(n) until the store has
// nothing left for it. Returns every task id they got back, and every error
// other than kUnavailable (a busy database may ask for a retry; anything else
// is a bug).
struct ClaimRace {
  std::vector<std::string> claimed;
  std::vector<std::string> errors;
};
ClaimRace ClaimUntilEmpty(core::Store& store, int threads,
                          const std::function<core::TaskClaimParams(int n)>& params) {
  std::mutex mu;
  ClaimRace race;
  std::vector<std::thread> running;
  for (int n = 0; n < threads; ++n) {
    running.emplace_back([&, p = params(n)] {
      while (true) {
        auto r = store.TaskClaim(p);
        std::lock_guard lock(mu);
        if (!r.ok()) {
          if (r.status().code() != StatusCode::kUnavailable) {
            race.errors.push_back(r.status().ToString());
            return;
          }
          continue;
        }
        if (r->empty()) return;
        for (const Task& t : *r) race.claimed.push_back(t.id);
      }
    });
  }
  for (std::thread& t : running) t.join();
  return race;
}

Task InsertAndClaim(core::Store& store, const Task& t,
                    core::Duration lease = kLease, std::string node = kNodeA) {
  Insert(store, t);
  core::TaskClaimParams p = ClaimParams(t.run_at, 1, std::move(node));
  p.lease = lease;
  std::vector<Task> claimed = Claim(store, p);
  EXPECT_EQ(claimed.size(), 1u);
  if (claimed.size() != 1) return {};
  EXPECT_EQ(claimed[0].id, t.id) << "another due task was claimed";
  return claimed[0];
}

// Claims the due task `id` again (after a retry or rescue) at `now`.
Task Reclaim(core::Store& store, const std::string& id, Time now,
             std::string node = kNodeA) {
  std::vector<Task> claimed =
      Claim(store, ClaimParams(now, 1, std::move(node)));
  EXPECT_EQ(claimed.size(), 1u);
  if (claimed.size() != 1) return {};
  EXPECT_EQ(claimed[0].id, id);
  return claimed[0];
}

std::vector<TaskEvent> Events(core::Store& store, const std::string& id) {
  auto r = store.TaskEventList(id);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<TaskEvent>{};
}

core::Status Finish(core::Store& store, const Task& t, TaskState state,
                    Time now) {
  return store.TaskFinish(
      {.id = t.id, .attempt = t.attempt, .state = state, .now = now});
}

core::StatusOr<Task> Retry(core::Store& store, const Task& t, Time run_at,
                           Time now, bool free = false) {
  return store.TaskRetry({.id = t.id,
                          .attempt = t.attempt,
                          .run_at = run_at,
                          .error = "boom",
                          .free = free,
                          .node = std::string(kNodeA),
                          .now = now});
}

core::StatusOr<Task> Cancel(core::Store& store, const std::string& id,
                            Time now) {
  return store.TaskCancel(
      {.id = id, .now = now, .message = "cancelled by test"});
}

core::StatusOr<Task> Delete(core::Store& store, const std::string& id,
                            Time now) {
  return store.TaskDelete({.id = id, .now = now, .message = "deleted by test"});
}

// Every page of a listing, following cursors.
std::vector<Task> ListAll(core::Store& store, core::TaskListParams p) {
  std::vector<Task> all;
  for (int page = 0; page < 10000; ++page) {
    auto r = store.TaskList(p);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return all;
    EXPECT_LE(r->tasks.size(), static_cast<size_t>(p.limit));
    all.insert(all.end(), r->tasks.begin(), r->tasks.end());
    if (!r->next.has_value()) return all;
    p.after = r->next;
  }
  ADD_FAILURE() << "listing did not end";
  return all;
}

std::vector<std::string> ListIds(core::Store& store, core::TaskListParams p) {
  return Ids(ListAll(store, std::move(p)));
}

int64_t Count(core::Store& store, TaskState s) {
  auto r = store.TaskCountByState();
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return -1;
  auto it = r->find(s);
  return it == r->end() ? 0 : it->second;
}

}  // namespace

// ===== TaskInsert / TaskGet ==================================================

TEST_P(StoreConformanceTest, TaskInsertStoresEveryFieldInStateScheduled) {
  Task in = factory_.MakeContainer(core::kRunnerDocker, [](Task& t) {
    t.queue = "gpu.batch-1";
    t.run_at = kT0 + seconds(90) + microseconds(123);
    t.command = {"sh", "-c", "echo \"quoted\" 'single' \\ back\nslash", ""};
    t.env = {{"EMPTY", ""},
             {"JSON", "{\"a\":[1,2]}"},
             {"UNICODE", "h\xC3\xA9llo \xE2\x9C\x93"},
             {"NEWLINE", "a\nb\tc"}};
    t.max_attempts = 7;
    t.timeout_s = 604800;
    t.idempotency_key = "key-1";
    t.labels = {
        {"team", "core"}, {"app.kubernetes.io/name", "sked"}, {"a-b_c", "x:y"}};
    t.notify_url = "https://example.com/hook?x=1";
    t.schedule_id = "sched-1";
    t.occurrence = kT0 + seconds(60);
    t.created_at = kT0 - seconds(5);
  });
  // Run-time fields a caller might leave set are not stored: a new task
  // starts scheduled at attempt 0.
  Task dirty = in;
  dirty.state = TaskState::kRunning;
  dirty.attempt = 4;
  dirty.free_attempts = 2;
  dirty.started_at = kT0;
  dirty.finished_at = kT0;
  dirty.instance_id = "i-1";
  dirty.result = core::TaskResult{.exit_code = 3, .output = "x"};
  dirty.error = "e";
  dirty.lease_owner = kNodeA;
  dirty.lease_expires_at = kT0;
  dirty.handle = "h";

  SKED_ASSERT_OK_AND_ASSIGN(core::TaskInsertResult r,
                            store().TaskInsert(dirty));
  EXPECT_TRUE(r.inserted);
  ExpectSameTask(r.task, in);
  SKED_ASSERT_OK_AND_ASSIGN(Task got, store().TaskGet(in.id));
  ExpectSameTask(got, in);
}

TEST_P(StoreConformanceTest, TaskInsertBuiltinTaskRoundTripsEmptyFields) {
  Task in = factory_.Make();
  Insert(store(), in);
  Task got = Get(store(), in.id);
  ExpectSameTask(got, in);
  EXPECT_TRUE(got.image.empty());
  EXPECT_TRUE(got.command.empty());
  EXPECT_TRUE(got.env.empty());
  EXPECT_TRUE(got.labels.empty());
  EXPECT_FALSE(got.idempotency_key.has_value());
}

TEST_P(StoreConformanceTest, TaskInsertRecordsCreatedEvent) {
  Task t = Insert(store(), factory_.Make());
  std::vector<TaskEvent> events = Events(store(), t.id);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, TaskState::kScheduled);
  EXPECT_EQ(events[0].attempt, 0);
  EXPECT_EQ(Us(events[0].at), Us(t.created_at));
}

TEST_P(StoreConformanceTest, TaskInsertDuplicateIdIsAlreadyExists) {
  Task first = Insert(store(), factory_.Make([](Task& t) { t.type = "foo"; }));
  Task again = first;
  again.type = "bar";
  EXPECT_THAT(store().TaskInsert(again), StatusIs(StatusCode::kAlreadyExists));
  EXPECT_EQ(Get(store(), first.id).type, "foo");
  EXPECT_EQ(Events(store(), first.id).size(), 1u);
}

TEST_P(StoreConformanceTest, TaskInsertSameIdempotencyKeyReturnsExistingTask) {
  Task first =
      Insert(store(), factory_.Make([](Task& t) { t.idempotency_key = "k"; }));
  Task second = factory_.Make([](Task& t) {
    t.idempotency_key = "k";
    t.type = "buzz";
  });
  SKED_ASSERT_OK_AND_ASSIGN(core::TaskInsertResult r,
                            store().TaskInsert(second));
  EXPECT_FALSE(r.inserted);
  ExpectSameTask(r.task, first);
  EXPECT_THAT(store().TaskGet(second.id), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(Count(store(), TaskState::kScheduled), 1);
  EXPECT_EQ(Events(store(), first.id).size(), 1u);
}

TEST_P(StoreConformanceTest, TaskInsertIdempotencyKeyHeldByFinishedTask) {
  Task first = InsertAndClaim(
      store(), factory_.Make([](Task& t) { t.idempotency_key = "k"; }));
  ASSERT_THAT(Finish(store(), first, TaskState::kSucceeded, kT0), IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(core::TaskInsertResult r,
                            store().TaskInsert(factory_.Make(
                                [](Task& t) { t.idempotency_key = "k"; })));
  EXPECT_FALSE(r.inserted);
  EXPECT_EQ(r.task.id, first.id);
  EXPECT_EQ(r.task.state, TaskState::kSucceeded);
}

TEST_P(StoreConformanceTest, TaskInsertIdempotencyKeyFreedByDelete) {
  Task first =
      Insert(store(), factory_.Make([](Task& t) { t.idempotency_key = "k"; }));
  ASSERT_THAT(Delete(store(), first.id, kT0), IsOk());
  Task second = factory_.Make([](Task& t) { t.idempotency_key = "k"; });
  SKED_ASSERT_OK_AND_ASSIGN(core::TaskInsertResult r,
                            store().TaskInsert(second));
  EXPECT_TRUE(r.inserted);
  EXPECT_EQ(r.task.id, second.id);
}

TEST_P(StoreConformanceTest, TaskInsertWithoutKeyNeverDeduplicates) {
  Task a = factory_.Make();
  Task b = factory_.Make();
  Insert(store(), a);
  Insert(store(), b);
  EXPECT_EQ(Get(store(), a.id).id, a.id);
  EXPECT_EQ(Get(store(), b.id).id, b.id);
}

TEST_P(StoreConformanceTest, TaskGetUnknownIsNotFound) {
  EXPECT_THAT(store().TaskGet("00000000-0000-7000-8000-000000000000"),
              StatusIs(StatusCode::kNotFound));
}

// A store either declines TaskGetAsync (false, and never calls back) or
// answers every read exactly once with what TaskGet answers.
TEST_P(StoreConformanceTest, TaskGetAsyncAnswersAsTaskGetOrDeclines) {
  Task live = Insert(store(), factory_.Make());
  Task gone = Insert(store(), factory_.Make());
  ASSERT_TRUE(store().TaskDelete({.id = gone.id, .now = kT0}).ok());
  const std::vector<std::string> ids = {live.id, gone.id, "00000000-0000-7000-8000-000000000000",
                                        "nope", live.id};
  struct Answers {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::optional<core::StatusOr<Task>>> got;
    std::vector<int> calls;
  };
  auto answers = std::make_shared<Answers>();
  answers->got.resize(ids.size());
  answers->calls.resize(ids.size());
  size_t taken = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    taken += store().TaskGetAsync(ids[i], [answers, i](core::StatusOr<Task> t) {
      std::lock_guard<std::mutex> l(answers->mu);
      ++answers->calls[i];
      answers->got[i] = std::move(t);
      answers->cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> l(answers->mu);
  if (taken == 0) {
    EXPECT_THAT(answers->calls, ::testing::Each(0));
    return;
  }
  ASSERT_EQ(taken, ids.size()) << "a store takes every read or none";
  ASSERT_TRUE(answers->cv.wait_for(l, seconds(30), [&] {
    return std::all_of(answers->got.begin(), answers->got.end(),
                       [](const auto& g) { return g.has_value(); });
  }));
  EXPECT_THAT(answers->calls, ::testing::Each(1));
  for (size_t i : {size_t{0}, size_t{4}}) {
    ASSERT_TRUE(answers->got[i]->ok()) << answers->got[i]->status().ToString();
    ExpectSameTask(**answers->got[i], Get(store(), live.id));
  }
  for (size_t i : {size_t{1}, size_t{2}, size_t{3}}) {
    EXPECT_THAT(*answers->got[i], StatusIs(StatusCode::kNotFound)) << ids[i];
  }
}

// ===== TaskInsertMany ========================================================

TEST_P(StoreConformanceTest, TaskInsertManyInsertsAllInOrder) {
  std::vector<Task> in = {
      factory_.Make(), factory_.Make([](Task& t) { t.type = "foo"; }),
      factory_.Make([](Task& t) { t.idempotency_key = "k"; })};
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<core::TaskInsertResult> r,
                            store().TaskInsertMany(in));
  ASSERT_EQ(r.size(), 3u);
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_TRUE(r[i].inserted);
    ExpectSameTask(r[i].task, in[i]);
    ExpectSameTask(Get(store(), in[i].id), in[i]);
    EXPECT_EQ(Events(store(), in[i].id).size(), 1u);
  }
}

TEST_P(StoreConformanceTest, TaskInsertManyEmptyBatch) {
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<core::TaskInsertResult> r,
                            store().TaskInsertMany({}));
  EXPECT_THAT(r, IsEmpty());
}

TEST_P(StoreConformanceTest, TaskInsertManyRepeatedKeyWithinBatchReturnsFirst) {
  Task a = factory_.Make([](Task& t) { t.idempotency_key = "k"; });
  Task b = factory_.Make([](Task& t) { t.idempotency_key = "k"; });
  Task c = factory_.Make();
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<core::TaskInsertResult> r,
                            store().TaskInsertMany({a, b, c}));
  ASSERT_EQ(r.size(), 3u);
  EXPECT_TRUE(r[0].inserted);
  EXPECT_FALSE(r[1].inserted);
  EXPECT_EQ(r[1].task.id, a.id);
  EXPECT_TRUE(r[2].inserted);
  EXPECT_THAT(store().TaskGet(b.id), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(Count(store(), TaskState::kScheduled), 2);
}

TEST_P(StoreConformanceTest, TaskInsertManyExistingKeyReturnsExisting) {
  Task existing =
      Insert(store(), factory_.Make([](Task& t) { t.idempotency_key = "k"; }));
  Task a = factory_.Make();
  Task b = factory_.Make([](Task& t) { t.idempotency_key = "k"; });
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<core::TaskInsertResult> r,
                            store().TaskInsertMany({a, b}));
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r[0].inserted);
  EXPECT_FALSE(r[1].inserted);
  ExpectSameTask(r[1].task, existing);
  EXPECT_THAT(store().TaskGet(b.id), StatusIs(StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, TaskInsertManyIsAllOrNothingOnExistingId) {
  Task existing =
      Insert(store(), factory_.Make([](Task& t) { t.type = "foo"; }));
  Task a = factory_.Make([](Task& t) { t.idempotency_key = "ka"; });
  Task dup = existing;
  dup.type = "bar";
  Task c = factory_.Make();
  EXPECT_THAT(store().TaskInsertMany({a, dup, c}),
              StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(store().TaskGet(a.id), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store().TaskGet(c.id), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(Get(store(), existing.id).type, "foo");
  EXPECT_EQ(Count(store(), TaskState::kScheduled), 1);
  // The rolled-back element's idempotency key was never taken.
  SKED_ASSERT_OK_AND_ASSIGN(core::TaskInsertResult r, store().TaskInsert(a));
  EXPECT_TRUE(r.inserted);
}

TEST_P(StoreConformanceTest,
       TaskInsertManyDuplicateIdWithinBatchStoresNothing) {
  Task a = factory_.Make();
  Task b = factory_.Make();
  EXPECT_THAT(store().TaskInsertMany({a, b, a}),
              StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(store().TaskGet(a.id), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store().TaskGet(b.id), StatusIs(StatusCode::kNotFound));
}

// ===== TaskList ==============================================================

TEST_P(StoreConformanceTest, TaskListOrdersByRunAtNewestFirstByDefault) {
  std::vector<std::string> ids;
  for (int i : {3, 1, 4, 0, 2}) {
    Task t = Insert(
        store(), factory_.Make([&](Task& t) { t.run_at = kT0 + seconds(i); }));
    ids.push_back(t.id);
  }
  // Inserted at run_at 3,1,4,0,2.
  std::vector<std::string> asc = {ids[3], ids[1], ids[4], ids[0], ids[2]};
  std::vector<std::string> desc(asc.rbegin(), asc.rend());
  SKED_ASSERT_OK_AND_ASSIGN(core::TaskPage page, store().TaskList({}));
  EXPECT_EQ(Ids(page.tasks), desc);
  EXPECT_FALSE(page.next.has_value());
  SKED_ASSERT_OK_AND_ASSIGN(page, store().TaskList({.ascending = true}));
  EXPECT_EQ(Ids(page.tasks), asc);
}

TEST_P(StoreConformanceTest, TaskListReturnsFullTasks) {
  Task in =
      Insert(store(), factory_.MakeContainer(core::kRunnerDocker, [](Task& t) {
        t.labels = {{"k", "v"}};
        t.idempotency_key = "key";
      }));
  SKED_ASSERT_OK_AND_ASSIGN(core::TaskPage page, store().TaskList({}));
  ASSERT_EQ(page.tasks.size(), 1u);
  ExpectSameTask(page.tasks[0], in);
}

TEST_P(StoreConformanceTest, TaskListFiltersByState) {
  Task scheduled = Insert(
      store(), factory_.Make([](Task& t) { t.run_at = kT0 + seconds(100); }));
  Task running = InsertAndClaim(store(), factory_.Make());
  Task cancelled = Insert(
      store(), factory_.Make([](Task& t) { t.run_at = kT0 + seconds(100); }));
  ASSERT_THAT(Cancel(store(), cancelled.id, kT0), IsOk());
  EXPECT_THAT(ListIds(store(), {.states = {TaskState::kRunning}}),
              ElementsAre(running.id));
  EXPECT_THAT(ListIds(store(), {.states = {TaskState::kScheduled,
                                           TaskState::kCancelled}}),
              UnorderedElementsAre(scheduled.id, cancelled.id));
  EXPECT_THAT(ListIds(store(), {.states = {TaskState::kFailed}}), IsEmpty());
  EXPECT_EQ(ListIds(store(), {}).size(), 3u);
}

TEST_P(StoreConformanceTest, TaskListFiltersByType) {
  Task foo = Insert(store(), factory_.Make([](Task& t) { t.type = "foo"; }));
  Task bar = Insert(store(), factory_.Make([](Task& t) { t.type = "bar"; }));
  Insert(store(), factory_.Make([](Task& t) { t.type = "baz"; }));
  EXPECT_THAT(ListIds(store(), {.types = {"foo"}}), ElementsAre(foo.id));
  EXPECT_THAT(ListIds(store(), {.types = {"foo", "bar"}}),
              UnorderedElementsAre(foo.id, bar.id));
  EXPECT_THAT(ListIds(store(), {.types = {"fizz"}}), IsEmpty());
}

TEST_P(StoreConformanceTest, TaskListSinceIsInclusiveUntilIsExclusive) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(Insert(store(), factory_.Make([&](Task& t) {
                    t.run_at = kT0 + seconds(i);
                  })).id);
  }
  EXPECT_THAT(ListIds(store(), {.since = kT0 + seconds(1),
                                .until = kT0 + seconds(3),
                                .ascending = true}),
              ElementsAre(ids[1], ids[2]));
  EXPECT_THAT(ListIds(store(), {.since = kT0 + seconds(3), .ascending = true}),
              ElementsAre(ids[3], ids[4]));
  EXPECT_THAT(ListIds(store(), {.until = kT0 + seconds(1), .ascending = true}),
              ElementsAre(ids[0]));
  EXPECT_THAT(
      ListIds(store(), {.since = kT0 + seconds(2), .until = kT0 + seconds(2)}),
      IsEmpty());
}

TEST_P(StoreConformanceTest, TaskListFiltersByQueue) {
  Task gpu = Insert(store(), factory_.Make([](Task& t) { t.queue = "gpu"; }));
  Insert(store(), factory_.Make());
  EXPECT_THAT(ListIds(store(), {.queue = "gpu"}), ElementsAre(gpu.id));
  EXPECT_EQ(ListIds(store(), {.queue = "default"}).size(), 1u);
  EXPECT_THAT(ListIds(store(), {.queue = "none"}), IsEmpty());
}

TEST_P(StoreConformanceTest, TaskListFiltersByScheduleId) {
  Task s1 = Insert(store(), factory_.Make([](Task& t) {
    t.schedule_id = "s1";
    t.occurrence = kT0;
  }));
  Insert(store(), factory_.Make([](Task& t) { t.schedule_id = "s2"; }));
  Insert(store(), factory_.Make());
  EXPECT_THAT(ListIds(store(), {.schedule_id = "s1"}), ElementsAre(s1.id));
  EXPECT_THAT(ListIds(store(), {.schedule_id = "s3"}), IsEmpty());
}

TEST_P(StoreConformanceTest, TaskListLabelsMustAllMatch) {
  Task prod_core = Insert(store(), factory_.Make([](Task& t) {
    t.labels = {{"env", "prod"}, {"team", "core"}, {"app.io/name", "web"}};
  }));
  Task prod = Insert(store(), factory_.Make([](Task& t) {
    t.labels = {{"env", "prod"}};
  }));
  Task dev_core = Insert(store(), factory_.Make([](Task& t) {
    t.labels = {{"env", "dev"}, {"team", "core"}};
  }));
  Insert(store(), factory_.Make());

  EXPECT_THAT(ListIds(store(), {.labels = {{"env", "prod"}}}),
              UnorderedElementsAre(prod_core.id, prod.id));
  EXPECT_THAT(ListIds(store(), {.labels = {{"env", "prod"}, {"team", "core"}}}),
              ElementsAre(prod_core.id));
  EXPECT_THAT(ListIds(store(), {.labels = {{"team", "core"}}}),
              UnorderedElementsAre(prod_core.id, dev_core.id));
  EXPECT_THAT(ListIds(store(), {.labels = {{"app.io/name", "web"}}}),
              ElementsAre(prod_core.id));
  // Two values for one key can never both match.
  EXPECT_THAT(ListIds(store(), {.labels = {{"env", "prod"}, {"env", "dev"}}}),
              IsEmpty());
  // Values match exactly, not by prefix or case.
  EXPECT_THAT(ListIds(store(), {.labels = {{"env", "pro"}}}), IsEmpty());
  EXPECT_THAT(ListIds(store(), {.labels = {{"env", "PROD"}}}), IsEmpty());
  EXPECT_THAT(ListIds(store(), {.labels = {{"missing", "prod"}}}), IsEmpty());
  // A key that is a value elsewhere does not match.
  EXPECT_THAT(ListIds(store(), {.labels = {{"prod", "env"}}}), IsEmpty());
}

TEST_P(StoreConformanceTest, TaskListCombinesFilters) {
  auto make = [&](std::string type, std::string queue, std::string env,
                  int at) {
    return Insert(store(), factory_.Make([&](Task& t) {
      t.type = type;
      t.queue = queue;
      t.labels = {{"env", env}};
      t.run_at = kT0 + seconds(at);
    }));
  };
  Task match = make("foo", "q1", "prod", 5);
  make("bar", "q1", "prod", 5);   // wrong type
  make("foo", "q2", "prod", 5);   // wrong queue
  make("foo", "q1", "dev", 5);    // wrong label
  make("foo", "q1", "prod", 50);  // outside the window
  Task claimed = make("foo", "q1", "prod", -1);
  ASSERT_EQ(Claim(store(), ClaimParams(kT0, 1)).size(), 1u);  // wrong state
  EXPECT_THAT(ListIds(store(), {.states = {TaskState::kScheduled},
                                .types = {"foo"},
                                .since = kT0 - seconds(10),
                                .until = kT0 + seconds(10),
                                .labels = {{"env", "prod"}},
                                .queue = "q1"}),
              ElementsAre(match.id));
  EXPECT_EQ(Get(store(), claimed.id).state, TaskState::kRunning);
}

TEST_P(StoreConformanceTest, TaskListPaginatesAcrossTiesInBothOrders) {
  // 23 tasks in groups of four sharing a run_at, inserted in an order
  // unrelated to their ids, read three at a time: pages split tie groups.
  std::vector<Task> tasks;
  for (int i = 0; i < 23; ++i) tasks.push_back(factory_.Make());
  std::vector<Task> shuffled = tasks;
  std::reverse(shuffled.begin(), shuffled.end());
  std::rotate(shuffled.begin(), shuffled.begin() + 7, shuffled.end());
  for (size_t i = 0; i < shuffled.size(); ++i) {
    shuffled[i].run_at = kT0 + seconds(static_cast<int>(i) / 4);
    Insert(store(), shuffled[i]);
  }
  std::vector<Task> sorted = shuffled;
  std::sort(sorted.begin(), sorted.end(), [](const Task& a, const Task& b) {
    return std::pair(Us(a.run_at), a.id) < std::pair(Us(b.run_at), b.id);
  });
  std::vector<std::string> asc = Ids(sorted);
  std::vector<std::string> desc(asc.rbegin(), asc.rend());

  for (int limit : {1, 3, 4, 5, 22, 23, 24, 1000}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    EXPECT_EQ(ListIds(store(), {.ascending = true, .limit = limit}), asc);
    EXPECT_EQ(ListIds(store(), {.ascending = false, .limit = limit}), desc);
  }
}

TEST_P(StoreConformanceTest, TaskListPaginatesWithFilters) {
  std::vector<std::string> want;
  for (int i = 0; i < 12; ++i) {
    Task t = Insert(store(), factory_.Make([&](Task& t) {
      t.run_at = kT0 + seconds(i / 3);
      t.type = i % 2 == 0 ? "foo" : "bar";
    }));
    if (t.type == "foo") want.push_back(t.id);
  }
  EXPECT_EQ(ListIds(store(), {.types = {"foo"}, .ascending = true, .limit = 2}),
            want);
}

TEST_P(StoreConformanceTest, TaskListByLabelPaginatesAcrossTiesInBothOrders) {
  // 18 labelled tasks in tie groups of three, among unlabelled and
  // otherwise-labelled ones, inserted out of order, read a few at a time.
  std::vector<Task> labelled;
  for (int i = 0; i < 30; ++i) {
    Task t = factory_.Make([&](Task& t) {
      t.run_at = kT0 + seconds((i * 7) % 30 / 3);
      if (i % 5 == 3) {
        t.labels = {{"env", "dev"}};
      } else if (i % 5 != 4) {
        t.labels = {{"env", "prod"}, {"team", i % 2 == 0 ? "a" : "b"}};
      }
    });
    Insert(store(), t);
    if (i % 5 < 3) labelled.push_back(t);
  }
  ASSERT_EQ(labelled.size(), 18u);
  std::sort(labelled.begin(), labelled.end(), [](const Task& a, const Task& b) {
    return std::pair(Us(a.run_at), a.id) < std::pair(Us(b.run_at), b.id);
  });
  std::vector<std::string> asc = Ids(labelled);
  std::vector<std::string> desc(asc.rbegin(), asc.rend());
  for (int limit : {1, 2, 3, 17, 18, 1000}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    EXPECT_EQ(ListIds(store(), {.labels = {{"env", "prod"}}, .ascending = true, .limit = limit}),
              asc);
    EXPECT_EQ(ListIds(store(), {.labels = {{"env", "prod"}}, .ascending = false, .limit = limit}),
              desc);
  }
  // A window and a second pair narrow the same walk.
  std::vector<std::string> want;
  for (const Task& t : labelled) {
    if (t.run_at >= kT0 + seconds(2) && t.run_at < kT0 + seconds(7) && t.labels.at("team") == "a") {
      want.push_back(t.id);
    }
  }
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(ListIds(store(), {.since = kT0 + seconds(2),
                              .until = kT0 + seconds(7),
                              .labels = {{"env", "prod"}, {"team", "a"}},
                              .ascending = true,
                              .limit = 2}),
            want);
}

TEST_P(StoreConformanceTest, TaskListByLabelSeesARetrysNewRunAt) {
  // A retry moves run_at; a label filter's order and window follow it.
  Task middle = Insert(store(), factory_.Make([](Task& t) {
    t.labels = {{"k", "v"}};
    t.run_at = kT0 + seconds(50);
  }));
  Task early = InsertAndClaim(store(), factory_.Make([](Task& t) {
    t.labels = {{"k", "v"}};
    t.run_at = kT0 - seconds(10);
  }));
  ASSERT_THAT(Retry(store(), early, kT0 + seconds(100), kT0), IsOk());
  EXPECT_THAT(ListIds(store(), {.labels = {{"k", "v"}}, .ascending = true}),
              ElementsAre(middle.id, early.id));
  EXPECT_THAT(ListIds(store(), {.until = kT0, .labels = {{"k", "v"}}}), IsEmpty());
  EXPECT_THAT(ListIds(store(), {.since = kT0 + seconds(100), .labels = {{"k", "v"}}}),
              ElementsAre(early.id));
}

TEST_P(StoreConformanceTest, TaskListNextIsSetWhileMoreFollow) {
  for (int i = 0; i < 3; ++i) {
    Insert(store(),
           factory_.Make([&](Task& t) { t.run_at = kT0 + seconds(i); }));
  }
  SKED_ASSERT_OK_AND_ASSIGN(core::TaskPage page,
                            store().TaskList({.limit = 2}));
  ASSERT_EQ(page.tasks.size(), 2u);
  ASSERT_TRUE(page.next.has_value());
  EXPECT_EQ(page.next->id, page.tasks.back().id);
  EXPECT_EQ(Us(page.next->run_at), Us(page.tasks.back().run_at));
  SKED_ASSERT_OK_AND_ASSIGN(page,
                            store().TaskList({.limit = 2, .after = page.next}));
  EXPECT_EQ(page.tasks.size(), 1u);
  EXPECT_FALSE(page.next.has_value());

  // A page that ends exactly at the last row may or may not carry a cursor;
  // following it must yield nothing more.
  SKED_ASSERT_OK_AND_ASSIGN(page, store().TaskList({.limit = 3}));
  EXPECT_EQ(page.tasks.size(), 3u);
  if (page.next.has_value()) {
    SKED_ASSERT_OK_AND_ASSIGN(
        page, store().TaskList({.limit = 3, .after = page.next}));
    EXPECT_THAT(page.tasks, IsEmpty());
    EXPECT_FALSE(page.next.has_value());
  }
}

TEST_P(StoreConformanceTest, TaskListEmptyStore) {
  SKED_ASSERT_OK_AND_ASSIGN(core::TaskPage page, store().TaskList({}));
  EXPECT_THAT(page.tasks, IsEmpty());
  EXPECT_FALSE(page.next.has_value());
}

// ===== TaskClaim =============================================================

TEST_P(StoreConformanceTest, TaskClaimWaitsForRunAt) {
  Task t = Insert(store(),
                  factory_.Make([](Task& t) { t.run_at = kT0 + seconds(10); }));
  EXPECT_THAT(Claim(store(), ClaimParams(kT0)), IsEmpty());
  EXPECT_THAT(Claim(store(), ClaimParams(kT0 + seconds(10) - microseconds(1))),
              IsEmpty());
  EXPECT_THAT(Ids(Claim(store(), ClaimParams(kT0 + seconds(10)))),
              ElementsAre(t.id));
}

TEST_P(StoreConformanceTest, TaskClaimSetsAttemptLeaseAndStart) {
  Task in = Insert(store(),
                   factory_.Make([](Task& t) { t.run_at = kT0 - seconds(5); }));
  const Time now = kT0;
  std::vector<Task> claimed = Claim(store(), ClaimParams(now));
  ASSERT_EQ(claimed.size(), 1u);
  Task want = in;
  want.state = TaskState::kRunning;
  want.attempt = 1;
  want.started_at = now;
  want.lease_owner = kNodeA;
  want.lease_expires_at = now + kLease;
  ExpectSameTask(claimed[0], want);
  ExpectSameTask(Get(store(), in.id), want);
  // Claimed tasks are not claimed again.
  EXPECT_THAT(Claim(store(), ClaimParams(now + seconds(1), 100, kNodeB)),
              IsEmpty());
}

TEST_P(StoreConformanceTest, TaskClaimClearsPreviousAttemptsHandle) {
  Task t = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(store().TaskSetHandle(
                  {.id = t.id, .attempt = 1, .handle = "h-1", .now = kT0}),
              IsOk());
  ASSERT_THAT(Retry(store(), t, kT0 + seconds(1), kT0), IsOk());
  Task again = Reclaim(store(), t.id, kT0 + seconds(1), kNodeB);
  EXPECT_EQ(again.attempt, 2);
  EXPECT_FALSE(again.handle.has_value());
  EXPECT_EQ(again.lease_owner, std::optional<std::string>(kNodeB));
  EXPECT_EQ(Us(again.started_at), Us(kT0 + seconds(1)));
  EXPECT_FALSE(Get(store(), t.id).handle.has_value());
}

TEST_P(StoreConformanceTest, TaskClaimOrdersByRunAtThenId) {
  std::vector<Task> tasks;
  for (int i = 0; i < 9; ++i) tasks.push_back(factory_.Make());
  // Insert in reverse id order with run_at ties.
  std::vector<int> offsets = {2, 0, 1, 0, 2, 1, 0, 1, 2};
  for (int i = 8; i >= 0; --i) {
    tasks[i].run_at = kT0 - seconds(offsets[i]);
    Insert(store(), tasks[i]);
  }
  std::vector<Task> sorted = tasks;
  std::sort(sorted.begin(), sorted.end(), [](const Task& a, const Task& b) {
    return std::pair(Us(a.run_at), a.id) < std::pair(Us(b.run_at), b.id);
  });
  std::vector<std::string> want = Ids(sorted);

  std::vector<std::string> got = Ids(Claim(store(), ClaimParams(kT0, 2)));
  EXPECT_EQ(got, std::vector<std::string>(want.begin(), want.begin() + 2));
  std::vector<std::string> rest = Ids(Claim(store(), ClaimParams(kT0, 100)));
  EXPECT_EQ(rest, std::vector<std::string>(want.begin() + 2, want.end()));
}

TEST_P(StoreConformanceTest, TaskClaimHonoursLimit) {
  for (int i = 0; i < 5; ++i) Insert(store(), factory_.Make());
  EXPECT_EQ(Claim(store(), ClaimParams(kT0, 2)).size(), 2u);
  EXPECT_EQ(Claim(store(), ClaimParams(kT0, 2)).size(), 2u);
  EXPECT_EQ(Claim(store(), ClaimParams(kT0, 2)).size(), 1u);
  EXPECT_THAT(Claim(store(), ClaimParams(kT0, 2)), IsEmpty());
}

TEST_P(StoreConformanceTest, TaskClaimOnlyListedRunners) {
  Task builtin = Insert(store(), factory_.Make());
  Task docker = Insert(store(), factory_.MakeContainer(core::kRunnerDocker));
  core::TaskClaimParams p = ClaimParams(kT0);
  p.runners = {std::string(core::kRunnerDocker)};
  EXPECT_THAT(Ids(Claim(store(), p)), ElementsAre(docker.id));
  // No runners: nothing is claimable.
  p.runners = {};
  EXPECT_THAT(Claim(store(), p), IsEmpty());
  p.runners = {"unknown"};
  EXPECT_THAT(Claim(store(), p), IsEmpty());
  EXPECT_EQ(Get(store(), builtin.id).state, TaskState::kScheduled);
}

TEST_P(StoreConformanceTest, TaskClaimProvisioningRunnersStartInProvisioning) {
  Task spot = Insert(store(), factory_.MakeContainer(core::kRunnerEc2Spot));
  Task builtin = Insert(store(), factory_.Make());
  std::vector<Task> claimed = Claim(store(), ClaimParams(kT0));
  ASSERT_EQ(claimed.size(), 2u);
  for (const Task& t : claimed) {
    EXPECT_EQ(t.state,
              t.id == spot.id ? TaskState::kProvisioning : TaskState::kRunning);
    EXPECT_EQ(t.attempt, 1);
  }
  EXPECT_EQ(Get(store(), spot.id).state, TaskState::kProvisioning);
  EXPECT_EQ(Get(store(), builtin.id).state, TaskState::kRunning);
}

TEST_P(StoreConformanceTest, TaskClaimSkipsTasksNotScheduled) {
  Task running = InsertAndClaim(store(), factory_.Make());
  Task done = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Finish(store(), done, TaskState::kSucceeded, kT0), IsOk());
  Task cancelled = Insert(store(), factory_.Make());
  ASSERT_THAT(Cancel(store(), cancelled.id, kT0), IsOk());
  Task deleted = Insert(store(), factory_.Make());
  ASSERT_THAT(Delete(store(), deleted.id, kT0), IsOk());
  EXPECT_THAT(Claim(store(), ClaimParams(kT0 + seconds(1000))), IsEmpty());
  EXPECT_EQ(Get(store(), running.id).attempt, 1);
}

TEST_P(StoreConformanceTest, TaskClaimConcurrentClaimersNeverShareATask) {
  constexpr int kTasks = 500;
  constexpr int kThreads = 8;
  std::vector<Task> batch;
  for (int i = 0; i < kTasks; ++i) {
    batch.push_back(
        factory_.Make([&](Task& t) { t.run_at = kT0 - microseconds(i % 17); }));
  }
  ASSERT_THAT(store().TaskInsertMany(batch), IsOk());

  auto [claimed, errors] = ClaimUntilEmpty(store(), kThreads, [](int n) {
    return ClaimParams(kT0, 1 + n % 4, "node-" + std::to_string(n));
  });
  EXPECT_THAT(errors, IsEmpty());
  ASSERT_EQ(claimed.size(), static_cast<size_t>(kTasks));
  std::set<std::string> unique(claimed.begin(), claimed.end());
  EXPECT_EQ(unique.size(), static_cast<size_t>(kTasks));
  EXPECT_EQ(Count(store(), TaskState::kRunning), kTasks);
  for (const Task& t : ListAll(store(), {.limit = 1000}))
    EXPECT_EQ(t.attempt, 1);
}

// ===== TaskClaim with run_instantly ==========================================

// A run_instantly that finishes the tasks in `outcomes` (by id) and leaves
// the others claimed; it records what it was called with.
struct InstantRunner {
  std::map<std::string, core::TaskFinishParams> outcomes;
  std::vector<Task> seen;

  core::TaskClaimParams Params(Time now, int limit = 100) {
    core::TaskClaimParams p = ClaimParams(now, limit);
    p.run_instantly = [this](const Task& t) -> std::optional<core::TaskFinishParams> {
      seen.push_back(t);
      auto it = outcomes.find(t.id);
      if (it == outcomes.end()) return std::nullopt;
      return it->second;
    };
    return p;
  }
};

TEST_P(StoreConformanceTest, TaskClaimRunInstantlyRecordsTheOutcomeInTheClaim) {
  Task quick = Insert(store(), factory_.Make([](Task& t) { t.run_at = kT0 - seconds(2); }));
  Task slow = Insert(store(), factory_.Make([](Task& t) { t.run_at = kT0 - seconds(1); }));
  InstantRunner runner;
  runner.outcomes[quick.id] = {.id = quick.id,
                               .attempt = 1,
                               .state = TaskState::kSucceeded,
                               .result = core::TaskResult{.exit_code = 0, .output = "Baz 7"},
                               .node = std::string(kNodeA),
                               .now = kT0 + microseconds(40),
                               .message = "succeeded"};
  std::vector<Task> claimed = Claim(store(), runner.Params(kT0));

  // The callback saw each task as the claim leaves it.
  ASSERT_EQ(runner.seen.size(), 2u);
  EXPECT_EQ(runner.seen[0].id, quick.id);
  EXPECT_EQ(runner.seen[0].state, TaskState::kRunning);
  EXPECT_EQ(runner.seen[0].attempt, 1);
  EXPECT_EQ(runner.seen[0].lease_owner, std::optional<std::string>(kNodeA));
  EXPECT_EQ(Us(runner.seen[0].started_at), Us(kT0));

  Task done = quick;
  done.state = TaskState::kSucceeded;
  done.attempt = 1;
  done.started_at = kT0;
  done.finished_at = kT0 + microseconds(40);
  done.result = core::TaskResult{.exit_code = 0, .output = "Baz 7"};
  Task running = slow;
  running.state = TaskState::kRunning;
  running.attempt = 1;
  running.started_at = kT0;
  running.lease_owner = kNodeA;
  running.lease_expires_at = kT0 + kLease;
  ASSERT_THAT(Ids(claimed), ElementsAre(quick.id, slow.id));
  ExpectSameTask(claimed[0], done);
  ExpectSameTask(claimed[1], running);
  ExpectSameTask(Get(store(), quick.id), done);
  ExpectSameTask(Get(store(), slow.id), running);

  // One line for the attempt that ran at once: its outcome, naming the node.
  std::vector<TaskEvent> e = Events(store(), quick.id);
  EXPECT_THAT(States(e), ElementsAre(TaskState::kScheduled, TaskState::kSucceeded));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[1].attempt, 1);
  EXPECT_EQ(e[1].node, std::optional<std::string>(kNodeA));
  EXPECT_EQ(e[1].message, "succeeded");
  EXPECT_EQ(Us(e[1].at), Us(kT0 + microseconds(40)));
  e = Events(store(), slow.id);
  EXPECT_THAT(States(e), ElementsAre(TaskState::kScheduled, TaskState::kRunning));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[1].message, "claimed");

  // Neither is claimed again, and the finished one takes no more outcomes.
  EXPECT_THAT(Claim(store(), runner.Params(kT0 + seconds(60))), IsEmpty());
  EXPECT_THAT(Finish(store(), done, TaskState::kFailed, kT0 + seconds(1)),
              StatusIs(StatusCode::kAborted));
  EXPECT_EQ(Count(store(), TaskState::kSucceeded), 1);
  EXPECT_EQ(Count(store(), TaskState::kRunning), 1);
}

TEST_P(StoreConformanceTest, TaskClaimRunInstantlyRecordsAFailureWithItsError) {
  Task t = Insert(store(), factory_.Make());
  InstantRunner runner;
  runner.outcomes[t.id] = {.id = t.id,
                           .attempt = 1,
                           .state = TaskState::kFailed,
                           .result = core::TaskResult{.exit_code = 2, .output = "no"},
                           .error = "bad input",
                           .node = std::string(kNodeA),
                           .now = kT0};
  std::vector<Task> claimed = Claim(store(), runner.Params(kT0));
  ASSERT_EQ(claimed.size(), 1u);
  Task got = Get(store(), t.id);
  EXPECT_EQ(got.state, TaskState::kFailed);
  EXPECT_EQ(got.error, std::optional<std::string>("bad input"));
  ASSERT_TRUE(got.result.has_value());
  EXPECT_EQ(got.result->exit_code, 2);
  EXPECT_FALSE(got.lease_owner.has_value());
  std::vector<TaskEvent> e = Events(store(), t.id);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[1].state, TaskState::kFailed);
  EXPECT_EQ(e[1].message, "failed: bad input");
}

// Attempts that all ran in their claim: each comes back with at least its
// dispatch fields and its outcome (a store need not read the rest of the
// row); TaskGet has the whole task.
TEST_P(StoreConformanceTest, TaskClaimReturnsWhatItRanWithItsDispatchFieldsAndOutcome) {
  std::vector<Task> tasks;
  for (int i = 0; i < 2; ++i) {
    tasks.push_back(Insert(store(), factory_.Make([&](Task& t) {
      t.run_at = kT0 - seconds(2 - i);
      t.max_attempts = 3 + i;
      t.timeout_s = 60 + i;
      t.labels = {{"team", "t" + std::to_string(i)}};
      if (i == 1) t.notify_url = "http://127.0.0.1:9/hook";
    })));
  }
  InstantRunner runner;
  for (int i = 0; i < 2; ++i) {
    runner.outcomes[tasks[i].id] = {.id = tasks[i].id,
                                    .attempt = 1,
                                    .state = TaskState::kSucceeded,
                                    .result = core::TaskResult{.exit_code = 0,
                                                               .output = "out " + std::to_string(i)},
                                    .node = std::string(kNodeA),
                                    .now = kT0 + microseconds(40 + i)};
  }
  std::vector<Task> claimed = Claim(store(), runner.Params(kT0));
  ASSERT_THAT(Ids(claimed), ElementsAre(tasks[0].id, tasks[1].id));
  ASSERT_EQ(runner.seen.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    for (const Task* t : {&runner.seen[i], &claimed[i]}) {
      EXPECT_EQ(t->id, tasks[i].id);
      EXPECT_EQ(t->type, tasks[i].type);
      EXPECT_EQ(t->runner, tasks[i].runner);
      EXPECT_EQ(t->queue, tasks[i].queue);
      EXPECT_EQ(Us(t->run_at), Us(tasks[i].run_at));
      EXPECT_EQ(t->attempt, 1);
      EXPECT_EQ(t->max_attempts, 3 + i);
      EXPECT_EQ(t->free_attempts, 0);
      EXPECT_EQ(t->timeout_s, 60 + i);
      EXPECT_EQ(t->notify_url, tasks[i].notify_url);
      EXPECT_EQ(Us(t->started_at), Us(kT0));
    }
    EXPECT_EQ(runner.seen[i].state, TaskState::kRunning);
    EXPECT_EQ(claimed[i].state, TaskState::kSucceeded);
    EXPECT_EQ(Us(claimed[i].finished_at), Us(kT0 + microseconds(40 + i)));
    ASSERT_TRUE(claimed[i].result.has_value());
    EXPECT_EQ(claimed[i].result->output, "out " + std::to_string(i));
    EXPECT_FALSE(claimed[i].error.has_value());
    EXPECT_FALSE(claimed[i].lease_owner.has_value());
    Task whole = tasks[i];
    whole.state = TaskState::kSucceeded;
    whole.attempt = 1;
    whole.started_at = kT0;
    whole.finished_at = kT0 + microseconds(40 + i);
    whole.result = claimed[i].result;
    ExpectSameTask(Get(store(), tasks[i].id), whole);
  }
}

TEST_P(StoreConformanceTest, TaskClaimRunInstantlyWithAnOutcomeThatIsNotFinalChangesNothing) {
  Task t = Insert(store(), factory_.Make());
  InstantRunner runner;
  runner.outcomes[t.id] = {.id = t.id, .attempt = 1, .state = TaskState::kRunning, .now = kT0};
  EXPECT_THAT(store().TaskClaim(runner.Params(kT0)), StatusIs(StatusCode::kInvalidArgument));
  Task got = Get(store(), t.id);
  EXPECT_EQ(got.state, TaskState::kScheduled);
  EXPECT_EQ(got.attempt, 0);
  EXPECT_EQ(Events(store(), t.id).size(), 1u);
}

TEST_P(StoreConformanceTest, TaskClaimRunInstantlyConcurrentClaimersRecordEachTaskOnce) {
  constexpr int kTasks = 400;
  constexpr int kThreads = 6;
  std::vector<Task> batch;
  for (int i = 0; i < kTasks; ++i) {
    batch.push_back(factory_.Make([&](Task& t) { t.run_at = kT0 - microseconds(i % 13); }));
  }
  ASSERT_THAT(store().TaskInsertMany(batch), IsOk());
  // Every other task runs at once, whoever claims it.
  std::set<std::string> instant;
  for (int i = 0; i < kTasks; i += 2) instant.insert(batch[i].id);

  auto [returned, errors] = ClaimUntilEmpty(store(), kThreads, [&instant](int n) {
    const std::string node = "node-" + std::to_string(n);
    core::TaskClaimParams p = ClaimParams(kT0, 1 + n % 5, node);
    p.run_instantly = [&instant, node](const Task& t) -> std::optional<core::TaskFinishParams> {
      if (!instant.count(t.id)) return std::nullopt;
      return core::TaskFinishParams{
          .id = t.id, .attempt = t.attempt, .state = TaskState::kSucceeded, .node = node, .now = kT0};
    };
    return p;
  });
  EXPECT_THAT(errors, IsEmpty());
  ASSERT_EQ(returned.size(), static_cast<size_t>(kTasks));
  EXPECT_EQ(std::set<std::string>(returned.begin(), returned.end()).size(),
            static_cast<size_t>(kTasks));
  EXPECT_EQ(Count(store(), TaskState::kSucceeded), kTasks / 2);
  EXPECT_EQ(Count(store(), TaskState::kRunning), kTasks / 2);
  for (const Task& t : ListAll(store(), {.limit = 1000})) {
    EXPECT_EQ(t.attempt, 1);
    EXPECT_EQ(t.state, instant.count(t.id) ? TaskState::kSucceeded : TaskState::kRunning);
    EXPECT_EQ(Events(store(), t.id).size(), 2u) << t.id;
  }
}

// ===== TaskNextRunAt =========================================================

TEST_P(StoreConformanceTest, TaskNextRunAtIsEarliestScheduledOfRunners) {
  const std::vector<std::string> builtin = {std::string(core::kRunnerBuiltin)};
  SKED_ASSERT_OK_AND_ASSIGN(std::optional<Time> next,
                            store().TaskNextRunAt(AllRunners()));
  EXPECT_FALSE(next.has_value());

  Insert(store(), factory_.Make([](Task& t) { t.run_at = kT0 + seconds(30); }));
  Insert(store(), factory_.Make([](Task& t) { t.run_at = kT0 + seconds(20); }));
  Insert(store(), factory_.MakeContainer(core::kRunnerDocker, [](Task& t) {
    t.run_at = kT0 + seconds(5);
  }));
  Task cancelled = Insert(
      store(), factory_.Make([](Task& t) { t.run_at = kT0 + seconds(1); }));
  ASSERT_THAT(Cancel(store(), cancelled.id, kT0), IsOk());
  Task deleted = Insert(
      store(), factory_.Make([](Task& t) { t.run_at = kT0 + seconds(2); }));
  ASSERT_THAT(Delete(store(), deleted.id, kT0), IsOk());
  InsertAndClaim(store(),
                 factory_.Make([](Task& t) { t.run_at = kT0 - seconds(100); }));

  SKED_ASSERT_OK_AND_ASSIGN(next, store().TaskNextRunAt(builtin));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(Us(*next), Us(kT0 + seconds(20)));
  SKED_ASSERT_OK_AND_ASSIGN(next, store().TaskNextRunAt(AllRunners()));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(Us(*next), Us(kT0 + seconds(5)));
  SKED_ASSERT_OK_AND_ASSIGN(
      next, store().TaskNextRunAt({std::string(core::kRunnerEc2Spot)}));
  EXPECT_FALSE(next.has_value());
}

// ===== TaskLeaseRenew ========================================================

TEST_P(StoreConformanceTest, TaskLeaseRenewExtendsHeldLeases) {
  Task a = InsertAndClaim(store(), factory_.Make());
  Task b =
      InsertAndClaim(store(), factory_.MakeContainer(core::kRunnerEc2Spot));
  EXPECT_EQ(b.state, TaskState::kProvisioning);
  const Time now = kT0 + seconds(20);
  SKED_ASSERT_OK_AND_ASSIGN(
      std::vector<core::TaskLeaseRef> lost,
      store().TaskLeaseRenew(
          {.node = kNodeA,
           .now = now,
           .lease = seconds(60),
           .tasks = {{a.id, a.attempt}, {b.id, b.attempt}}}));
  EXPECT_THAT(lost, IsEmpty());
  EXPECT_EQ(Us(Get(store(), a.id).lease_expires_at), Us(now + seconds(60)));
  EXPECT_EQ(Us(Get(store(), b.id).lease_expires_at), Us(now + seconds(60)));
  // The renewed lease is no longer expired at the old deadline.
  SKED_ASSERT_OK_AND_ASSIGN(
      std::vector<Task> rescued,
      store().TaskRescue({.now = kT0 + kLease + seconds(1)}));
  EXPECT_THAT(rescued, IsEmpty());
}

TEST_P(StoreConformanceTest, TaskLeaseRenewReturnsLostRefs) {
  // `rescued` is claimed first with a short lease, so only it expires.
  Task rescued = InsertAndClaim(store(), factory_.Make(), seconds(1));
  Task held = InsertAndClaim(store(), factory_.Make());
  Task cancelled = InsertAndClaim(store(), factory_.Make());
  Task deleted = InsertAndClaim(store(), factory_.Make());
  Task finished = InsertAndClaim(store(), factory_.Make());
  Task retried = InsertAndClaim(store(), factory_.Make());
  Task other_node = InsertAndClaim(store(), factory_.Make(), kLease, kNodeB);

  ASSERT_THAT(Cancel(store(), cancelled.id, kT0), IsOk());
  ASSERT_THAT(Delete(store(), deleted.id, kT0), IsOk());
  ASSERT_THAT(Finish(store(), finished, TaskState::kFailed, kT0), IsOk());
  ASSERT_THAT(Retry(store(), retried, kT0 + seconds(100), kT0), IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<Task> r,
                            store().TaskRescue({.now = kT0 + seconds(2)}));
  ASSERT_THAT(Ids(r), ElementsAre(rescued.id));

  const std::vector<core::TaskLeaseRef> refs = {
      {rescued.id, 1},
      {held.id, 1},
      {cancelled.id, 1},
      {deleted.id, 1},
      {finished.id, 1},
      {retried.id, 1},
      {other_node.id, 1},
      {held.id, 2},
      {"00000000-0000-7000-8000-000000000000", 1}};
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<core::TaskLeaseRef> lost,
                            store().TaskLeaseRenew({.node = kNodeA,
                                                    .now = kT0 + seconds(3),
                                                    .lease = kLease,
                                                    .tasks = refs}));
  std::vector<std::pair<std::string, int>> got;
  for (const auto& ref : lost) got.emplace_back(ref.id, ref.attempt);
  std::vector<std::pair<std::string, int>> want;
  for (const auto& ref : refs) {
    if (!(ref.id == held.id && ref.attempt == 1))
      want.emplace_back(ref.id, ref.attempt);
  }
  EXPECT_THAT(got, UnorderedElementsAreArray(want));
  EXPECT_EQ(Us(Get(store(), held.id).lease_expires_at),
            Us(kT0 + seconds(3) + kLease));
  // The other node's lease was not touched by node-a's renewal.
  EXPECT_EQ(Us(Get(store(), other_node.id).lease_expires_at), Us(kT0 + kLease));
}

TEST_P(StoreConformanceTest, TaskLeaseRenewLostAfterReclaimByNewAttempt) {
  Task first = InsertAndClaim(store(), factory_.Make(), seconds(1));
  ASSERT_THAT(store().TaskRescue({.now = kT0 + seconds(2)}), IsOk());
  Task second = Reclaim(store(), first.id, kT0 + seconds(2), kNodeB);
  EXPECT_EQ(second.attempt, 2);
  // node-a still thinks it runs attempt 1; node-b holds attempt 2.
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<core::TaskLeaseRef> lost,
                            store().TaskLeaseRenew({.node = kNodeA,
                                                    .now = kT0 + seconds(3),
                                                    .lease = kLease,
                                                    .tasks = {{first.id, 1}}}));
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].id, first.id);
  EXPECT_EQ(lost[0].attempt, 1);
  SKED_ASSERT_OK_AND_ASSIGN(lost,
                            store().TaskLeaseRenew({.node = kNodeB,
                                                    .now = kT0 + seconds(3),
                                                    .lease = kLease,
                                                    .tasks = {{first.id, 2}}}));
  EXPECT_THAT(lost, IsEmpty());
}

TEST_P(StoreConformanceTest, TaskLeaseRenewEmpty) {
  SKED_ASSERT_OK_AND_ASSIGN(
      std::vector<core::TaskLeaseRef> lost,
      store().TaskLeaseRenew(
          {.node = kNodeA, .now = kT0, .lease = kLease, .tasks = {}}));
  EXPECT_THAT(lost, IsEmpty());
}

// ===== TaskSetHandle =========================================================

TEST_P(StoreConformanceTest, TaskSetHandleSavesHandleAndInstance) {
  Task t =
      InsertAndClaim(store(), factory_.MakeContainer(core::kRunnerEc2Spot));
  ASSERT_THAT(store().TaskSetHandle({.id = t.id,
                                     .attempt = 1,
                                     .handle = "sir-123",
                                     .instance_id = "i-0abc",
                                     .now = kT0 + seconds(1),
                                     .message = "spot request sir-123"}),
              IsOk());
  Task got = Get(store(), t.id);
  EXPECT_EQ(got.handle, std::optional<std::string>("sir-123"));
  EXPECT_EQ(got.instance_id, std::optional<std::string>("i-0abc"));
  EXPECT_EQ(got.state, TaskState::kProvisioning);
  std::vector<TaskEvent> events = Events(store(), t.id);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().message, "spot request sir-123");
  EXPECT_EQ(events.back().instance_id, std::optional<std::string>("i-0abc"));
  EXPECT_EQ(events.back().attempt, 1);

  // Without a message no event is added; without an instance the saved one
  // stays.
  const size_t before = events.size();
  ASSERT_THAT(store().TaskSetHandle({.id = t.id,
                                     .attempt = 1,
                                     .handle = "sir-456",
                                     .now = kT0 + seconds(2)}),
              IsOk());
  got = Get(store(), t.id);
  EXPECT_EQ(got.handle, std::optional<std::string>("sir-456"));
  EXPECT_EQ(got.instance_id, std::optional<std::string>("i-0abc"));
  EXPECT_EQ(Events(store(), t.id).size(), before);
}

TEST_P(StoreConformanceTest, TaskSetHandleFencesStaleAttempts) {
  Task scheduled = Insert(
      store(), factory_.Make([](Task& t) { t.run_at = kT0 + seconds(50); }));
  EXPECT_THAT(
      store().TaskSetHandle(
          {.id = scheduled.id, .attempt = 0, .handle = "h", .now = kT0}),
      StatusIs(StatusCode::kAborted));

  Task t = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Retry(store(), t, kT0, kT0), IsOk());
  Task again = Reclaim(store(), t.id, kT0);
  EXPECT_THAT(store().TaskSetHandle(
                  {.id = t.id, .attempt = 1, .handle = "old", .now = kT0}),
              StatusIs(StatusCode::kAborted));
  EXPECT_THAT(store().TaskSetHandle(
                  {.id = t.id, .attempt = 3, .handle = "future", .now = kT0}),
              StatusIs(StatusCode::kAborted));
  EXPECT_FALSE(Get(store(), t.id).handle.has_value());
  ASSERT_THAT(Finish(store(), again, TaskState::kSucceeded, kT0), IsOk());
  EXPECT_THAT(store().TaskSetHandle(
                  {.id = t.id, .attempt = 2, .handle = "late", .now = kT0}),
              StatusIs(StatusCode::kAborted));

  EXPECT_THAT(
      store().TaskSetHandle({.id = "00000000-0000-7000-8000-000000000000",
                             .attempt = 1,
                             .handle = "h"}),
      StatusIs(StatusCode::kNotFound));
  Task deleted = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Delete(store(), deleted.id, kT0), IsOk());
  EXPECT_THAT(
      store().TaskSetHandle({.id = deleted.id, .attempt = 1, .handle = "h"}),
      StatusIs(StatusCode::kNotFound));
}

// ===== TaskMarkRunning =======================================================

TEST_P(StoreConformanceTest, TaskMarkRunningMovesProvisioningToRunning) {
  Task t =
      InsertAndClaim(store(), factory_.MakeContainer(core::kRunnerEc2Spot));
  ASSERT_EQ(t.state, TaskState::kProvisioning);
  ASSERT_THAT(store().TaskMarkRunning({.id = t.id,
                                       .attempt = 1,
                                       .now = kT0 + seconds(40),
                                       .message = "booted"}),
              IsOk());
  Task got = Get(store(), t.id);
  EXPECT_EQ(got.state, TaskState::kRunning);
  EXPECT_EQ(got.attempt, 1);
  EXPECT_EQ(got.lease_owner, std::optional<std::string>(kNodeA));
  std::vector<TaskEvent> events = Events(store(), t.id);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().state, TaskState::kRunning);
  EXPECT_EQ(events.back().message, "booted");
  EXPECT_EQ(Us(events.back().at), Us(kT0 + seconds(40)));

  // Only once per attempt.
  EXPECT_THAT(store().TaskMarkRunning({.id = t.id, .attempt = 1, .now = kT0}),
              StatusIs(StatusCode::kAborted));
}

TEST_P(StoreConformanceTest, TaskMarkRunningFencesOtherStates) {
  Task running = InsertAndClaim(store(), factory_.Make());
  EXPECT_THAT(
      store().TaskMarkRunning({.id = running.id, .attempt = 1, .now = kT0}),
      StatusIs(StatusCode::kAborted));

  Task spot =
      InsertAndClaim(store(), factory_.MakeContainer(core::kRunnerEc2Spot));
  EXPECT_THAT(
      store().TaskMarkRunning({.id = spot.id, .attempt = 2, .now = kT0}),
      StatusIs(StatusCode::kAborted));
  ASSERT_THAT(Retry(store(), spot, kT0 + seconds(1000), kT0), IsOk());
  EXPECT_THAT(
      store().TaskMarkRunning({.id = spot.id, .attempt = 1, .now = kT0}),
      StatusIs(StatusCode::kAborted));
  EXPECT_EQ(Get(store(), spot.id).state, TaskState::kScheduled);

  Task cancelled = InsertAndClaim(
      store(), factory_.MakeContainer(core::kRunnerEc2Spot, [](Task& t) {
        t.run_at = kT0 + seconds(1);
      }));
  ASSERT_THAT(Cancel(store(), cancelled.id, kT0 + seconds(1)), IsOk());
  EXPECT_THAT(
      store().TaskMarkRunning({.id = cancelled.id, .attempt = 1, .now = kT0}),
      StatusIs(StatusCode::kAborted));
  EXPECT_EQ(Get(store(), cancelled.id).state, TaskState::kCancelled);

  EXPECT_THAT(store().TaskMarkRunning(
                  {.id = "00000000-0000-7000-8000-000000000000", .attempt = 1}),
              StatusIs(StatusCode::kNotFound));
}

// ===== TaskFinish ============================================================

TEST_P(StoreConformanceTest, TaskFinishSucceededRecordsOutcome) {
  Task t = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(
      store().TaskFinish(
          {.id = t.id,
           .attempt = 1,
           .state = TaskState::kSucceeded,
           .result = core::TaskResult{.exit_code = 0, .output = "Fizz\n"},
           .node = std::string(kNodeA),
           .now = kT0 + seconds(3),
           .message = "exit 0"}),
      IsOk());
  Task got = Get(store(), t.id);
  EXPECT_EQ(got.state, TaskState::kSucceeded);
  EXPECT_EQ(got.attempt, 1);
  EXPECT_EQ(Us(got.finished_at), Us(kT0 + seconds(3)));
  ASSERT_TRUE(got.result.has_value());
  EXPECT_EQ(got.result->exit_code, 0);
  EXPECT_EQ(got.result->output, "Fizz\n");
  EXPECT_FALSE(got.error.has_value());
  EXPECT_EQ(Us(got.started_at), Us(kT0));
  std::vector<TaskEvent> events = Events(store(), t.id);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().state, TaskState::kSucceeded);
  EXPECT_EQ(events.back().node, std::optional<std::string>(kNodeA));
  EXPECT_EQ(events.back().message, "exit 0");
}

TEST_P(StoreConformanceTest, TaskFinishFailedRecordsError) {
  Task t =
      InsertAndClaim(store(), factory_.MakeContainer(core::kRunnerEc2Spot));
  ASSERT_EQ(t.state, TaskState::kProvisioning);
  ASSERT_THAT(store().TaskFinish(
                  {.id = t.id,
                   .attempt = 1,
                   .state = TaskState::kFailed,
                   .result = core::TaskResult{.exit_code = 2, .output = "oops"},
                   .error = "image not found",
                   .now = kT0 + seconds(1)}),
              IsOk());
  Task got = Get(store(), t.id);
  EXPECT_EQ(got.state, TaskState::kFailed);
  EXPECT_EQ(got.error, std::optional<std::string>("image not found"));
  ASSERT_TRUE(got.result.has_value());
  EXPECT_EQ(got.result->exit_code, 2);
  EXPECT_EQ(Us(got.finished_at), Us(kT0 + seconds(1)));
}

TEST_P(StoreConformanceTest, TaskFinishIsRecordedOnce) {
  Task t = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Finish(store(), t, TaskState::kSucceeded, kT0), IsOk());
  const size_t events = Events(store(), t.id).size();
  EXPECT_THAT(Finish(store(), t, TaskState::kSucceeded, kT0 + seconds(1)),
              StatusIs(StatusCode::kAborted));
  EXPECT_THAT(Finish(store(), t, TaskState::kFailed, kT0 + seconds(1)),
              StatusIs(StatusCode::kAborted));
  Task got = Get(store(), t.id);
  EXPECT_EQ(got.state, TaskState::kSucceeded);
  EXPECT_EQ(Us(got.finished_at), Us(kT0));
  EXPECT_EQ(Events(store(), t.id).size(), events);
}

TEST_P(StoreConformanceTest, TaskFinishFencesStaleAttempt) {
  Task first = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Retry(store(), first, kT0, kT0), IsOk());
  // The task is scheduled: no attempt can finish.
  EXPECT_THAT(Finish(store(), first, TaskState::kSucceeded, kT0),
              StatusIs(StatusCode::kAborted));
  Task second = Reclaim(store(), first.id, kT0, kNodeB);
  EXPECT_THAT(Finish(store(), first, TaskState::kSucceeded, kT0),
              StatusIs(StatusCode::kAborted));
  Task got = Get(store(), first.id);
  EXPECT_EQ(got.state, TaskState::kRunning);
  EXPECT_EQ(got.attempt, 2);
  EXPECT_THAT(Finish(store(), second, TaskState::kSucceeded, kT0), IsOk());
}

TEST_P(StoreConformanceTest, TaskFinishAfterCancelOrDelete) {
  Task cancelled = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Cancel(store(), cancelled.id, kT0), IsOk());
  EXPECT_THAT(Finish(store(), cancelled, TaskState::kSucceeded, kT0),
              StatusIs(StatusCode::kAborted));
  EXPECT_EQ(Get(store(), cancelled.id).state, TaskState::kCancelled);

  Task deleted = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Delete(store(), deleted.id, kT0), IsOk());
  EXPECT_THAT(Finish(store(), deleted, TaskState::kSucceeded, kT0),
              StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store().TaskFinish(
                  {.id = "00000000-0000-7000-8000-000000000000", .attempt = 1}),
              StatusIs(StatusCode::kNotFound));
}

// ===== TaskRetry =============================================================

TEST_P(StoreConformanceTest, TaskRetryReschedulesWithCharge) {
  Task t = InsertAndClaim(store(),
                          factory_.Make([](Task& t) { t.max_attempts = 3; }));
  const Time next = kT0 + seconds(60);
  SKED_ASSERT_OK_AND_ASSIGN(Task r, Retry(store(), t, next, kT0 + seconds(1)));
  EXPECT_EQ(r.state, TaskState::kScheduled);
  EXPECT_EQ(Us(r.run_at), Us(next));
  EXPECT_EQ(r.attempt, 1);
  EXPECT_EQ(r.free_attempts, 0);
  EXPECT_EQ(r.ChargedAttempts(), 1);
  EXPECT_EQ(r.error, std::optional<std::string>("boom"));
  EXPECT_FALSE(r.lease_owner.has_value());
  EXPECT_FALSE(r.lease_expires_at.has_value());
  EXPECT_FALSE(r.finished_at.has_value());
  ExpectSameTask(Get(store(), t.id), r);

  EXPECT_THAT(Claim(store(), ClaimParams(next - microseconds(1))), IsEmpty());
  Task again = Reclaim(store(), t.id, next);
  EXPECT_EQ(again.attempt, 2);
}

TEST_P(StoreConformanceTest, TaskRetryFailsWhenAttemptsAreUsedUp) {
  Task t = InsertAndClaim(store(),
                          factory_.Make([](Task& t) { t.max_attempts = 2; }));
  SKED_ASSERT_OK_AND_ASSIGN(Task r, Retry(store(), t, kT0 + seconds(1), kT0));
  EXPECT_EQ(r.state, TaskState::kScheduled);
  Task second = Reclaim(store(), t.id, kT0 + seconds(1));
  ASSERT_EQ(second.attempt, 2);
  SKED_ASSERT_OK_AND_ASSIGN(
      r, Retry(store(), second, kT0 + seconds(100), kT0 + seconds(2)));
  EXPECT_EQ(r.state, TaskState::kFailed);
  EXPECT_EQ(r.error, std::optional<std::string>("boom"));
  EXPECT_EQ(Us(r.finished_at), Us(kT0 + seconds(2)));
  EXPECT_FALSE(r.lease_owner.has_value());
  ExpectSameTask(Get(store(), t.id), r);
  EXPECT_THAT(Claim(store(), ClaimParams(kT0 + seconds(1000))), IsEmpty());
  std::vector<TaskEvent> events = Events(store(), t.id);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().state, TaskState::kFailed);
}

TEST_P(StoreConformanceTest, TaskRetryFreeDoesNotUseAnAttempt) {
  Task t = InsertAndClaim(store(),
                          factory_.Make([](Task& t) { t.max_attempts = 1; }));
  SKED_ASSERT_OK_AND_ASSIGN(Task r, Retry(store(), t, kT0, kT0, /*free=*/true));
  EXPECT_EQ(r.state, TaskState::kScheduled);
  EXPECT_EQ(r.attempt, 1);
  EXPECT_EQ(r.free_attempts, 1);
  EXPECT_EQ(r.ChargedAttempts(), 0);

  Task second = Reclaim(store(), t.id, kT0);
  EXPECT_EQ(second.attempt, 2);
  SKED_ASSERT_OK_AND_ASSIGN(r, Retry(store(), second, kT0, kT0, /*free=*/true));
  EXPECT_EQ(r.state, TaskState::kScheduled);
  EXPECT_EQ(r.free_attempts, 2);

  Task third = Reclaim(store(), t.id, kT0);
  EXPECT_EQ(third.attempt, 3);
  SKED_ASSERT_OK_AND_ASSIGN(r, Retry(store(), third, kT0, kT0, /*free=*/false));
  EXPECT_EQ(r.state, TaskState::kFailed);
  EXPECT_EQ(r.attempt, 3);
  EXPECT_EQ(r.free_attempts, 2);
}

TEST_P(StoreConformanceTest, TaskRetryIsFencedLikeFinish) {
  Task t = InsertAndClaim(store(),
                          factory_.Make([](Task& t) { t.max_attempts = 5; }));
  ASSERT_THAT(Retry(store(), t, kT0, kT0), IsOk());
  const size_t events = Events(store(), t.id).size();
  EXPECT_THAT(Retry(store(), t, kT0, kT0), StatusIs(StatusCode::kAborted));
  Task second = Reclaim(store(), t.id, kT0);
  EXPECT_THAT(Retry(store(), t, kT0, kT0), StatusIs(StatusCode::kAborted));
  ASSERT_THAT(Finish(store(), second, TaskState::kSucceeded, kT0), IsOk());
  EXPECT_THAT(Retry(store(), second, kT0, kT0), StatusIs(StatusCode::kAborted));
  EXPECT_EQ(Get(store(), t.id).state, TaskState::kSucceeded);
  EXPECT_EQ(Events(store(), t.id).size(), events + 2);  // claim, finish
  Task unknown = t;
  unknown.id = "00000000-0000-7000-8000-000000000000";
  EXPECT_THAT(Retry(store(), unknown, kT0, kT0),
              StatusIs(StatusCode::kNotFound));
}

// ===== TaskCancel ============================================================

TEST_P(StoreConformanceTest, TaskCancelScheduled) {
  Task t = Insert(store(),
                  factory_.Make([](Task& t) { t.run_at = kT0 + seconds(10); }));
  SKED_ASSERT_OK_AND_ASSIGN(Task r, Cancel(store(), t.id, kT0 + seconds(1)));
  EXPECT_EQ(r.state, TaskState::kCancelled);
  EXPECT_EQ(r.id, t.id);
  Task got = Get(store(), t.id);
  EXPECT_EQ(got.state, TaskState::kCancelled);
  EXPECT_EQ(Us(got.finished_at), Us(kT0 + seconds(1)));
  EXPECT_THAT(Claim(store(), ClaimParams(kT0 + seconds(100))), IsEmpty());
  std::vector<TaskEvent> events = Events(store(), t.id);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().state, TaskState::kCancelled);
  EXPECT_EQ(events.back().message, "cancelled by test");
}

TEST_P(StoreConformanceTest, TaskCancelRunningReturnsWhatTheCallerMustStop) {
  Task t = InsertAndClaim(store(), factory_.MakeContainer(core::kRunnerDocker));
  ASSERT_THAT(store().TaskSetHandle(
                  {.id = t.id, .attempt = 1, .handle = "c0ffee", .now = kT0}),
              IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(Task r, Cancel(store(), t.id, kT0 + seconds(1)));
  EXPECT_EQ(r.state, TaskState::kCancelled);
  EXPECT_EQ(r.attempt, 1);
  EXPECT_EQ(r.lease_owner, std::optional<std::string>(kNodeA));
  EXPECT_EQ(r.handle, std::optional<std::string>("c0ffee"));
  EXPECT_EQ(Get(store(), t.id).state, TaskState::kCancelled);
  // The node learns at its next renewal that it lost the attempt.
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<core::TaskLeaseRef> lost,
                            store().TaskLeaseRenew({.node = kNodeA,
                                                    .now = kT0 + seconds(2),
                                                    .lease = kLease,
                                                    .tasks = {{t.id, 1}}}));
  EXPECT_EQ(lost.size(), 1u);
  // Cancelled tasks are not rescued when the old lease runs out.
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<Task> rescued,
                            store().TaskRescue({.now = kT0 + seconds(1000)}));
  EXPECT_THAT(rescued, IsEmpty());
}

TEST_P(StoreConformanceTest, TaskCancelProvisioning) {
  Task t =
      InsertAndClaim(store(), factory_.MakeContainer(core::kRunnerEc2Spot));
  ASSERT_EQ(t.state, TaskState::kProvisioning);
  SKED_ASSERT_OK_AND_ASSIGN(Task r, Cancel(store(), t.id, kT0));
  EXPECT_EQ(r.state, TaskState::kCancelled);
  EXPECT_EQ(r.lease_owner, std::optional<std::string>(kNodeA));
  EXPECT_EQ(Get(store(), t.id).state, TaskState::kCancelled);
}

TEST_P(StoreConformanceTest, TaskCancelTwiceChangesNothing) {
  Task t = Insert(store(), factory_.Make());
  ASSERT_THAT(Cancel(store(), t.id, kT0), IsOk());
  Task before = Get(store(), t.id);
  const size_t events = Events(store(), t.id).size();
  SKED_ASSERT_OK_AND_ASSIGN(Task r, Cancel(store(), t.id, kT0 + seconds(5)));
  EXPECT_EQ(r.state, TaskState::kCancelled);
  ExpectSameTask(Get(store(), t.id), before);
  EXPECT_EQ(Events(store(), t.id).size(), events);
}

TEST_P(StoreConformanceTest, TaskCancelFinishedIsFailedPrecondition) {
  Task ok = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Finish(store(), ok, TaskState::kSucceeded, kT0), IsOk());
  Task failed = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Finish(store(), failed, TaskState::kFailed, kT0), IsOk());
  EXPECT_THAT(Cancel(store(), ok.id, kT0),
              StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(Cancel(store(), failed.id, kT0),
              StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_EQ(Get(store(), ok.id).state, TaskState::kSucceeded);
  EXPECT_EQ(Get(store(), failed.id).state, TaskState::kFailed);
}

TEST_P(StoreConformanceTest, TaskCancelUnknownOrDeletedIsNotFound) {
  EXPECT_THAT(Cancel(store(), "00000000-0000-7000-8000-000000000000", kT0),
              StatusIs(StatusCode::kNotFound));
  Task t = Insert(store(), factory_.Make());
  ASSERT_THAT(Delete(store(), t.id, kT0), IsOk());
  EXPECT_THAT(Cancel(store(), t.id, kT0), StatusIs(StatusCode::kNotFound));
}

// ===== TaskDelete ============================================================

TEST_P(StoreConformanceTest, TaskDeleteMakesTaskInvisible) {
  Task t = Insert(store(), factory_.Make([](Task& t) {
    t.labels = {{"k", "v"}};
    t.run_at = kT0 - seconds(1);
  }));
  Task kept = Insert(
      store(), factory_.Make([](Task& t) { t.run_at = kT0 + seconds(100); }));
  SKED_ASSERT_OK_AND_ASSIGN(Task r, Delete(store(), t.id, kT0));
  ExpectSameTask(r, t);

  EXPECT_THAT(store().TaskGet(t.id), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store().TaskEventList(t.id), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ListIds(store(), {}), ElementsAre(kept.id));
  EXPECT_THAT(ListIds(store(), {.labels = {{"k", "v"}}}), IsEmpty());
  EXPECT_EQ(Count(store(), TaskState::kScheduled), 1);
  SKED_ASSERT_OK_AND_ASSIGN(std::optional<Time> next,
                            store().TaskNextRunAt(AllRunners()));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(Us(*next), Us(kept.run_at));
  EXPECT_THAT(Claim(store(), ClaimParams(kT0)), IsEmpty());
  EXPECT_THAT(Delete(store(), t.id, kT0), StatusIs(StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, TaskDeleteRunningTask) {
  Task t = InsertAndClaim(store(), factory_.MakeContainer(core::kRunnerDocker));
  ASSERT_THAT(store().TaskSetHandle(
                  {.id = t.id, .attempt = 1, .handle = "c0ffee", .now = kT0}),
              IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(Task r, Delete(store(), t.id, kT0 + seconds(1)));
  EXPECT_EQ(r.state, TaskState::kRunning);
  EXPECT_EQ(r.lease_owner, std::optional<std::string>(kNodeA));
  EXPECT_EQ(r.handle, std::optional<std::string>("c0ffee"));
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<core::TaskLeaseRef> lost,
                            store().TaskLeaseRenew({.node = kNodeA,
                                                    .now = kT0 + seconds(2),
                                                    .lease = kLease,
                                                    .tasks = {{t.id, 1}}}));
  EXPECT_EQ(lost.size(), 1u);
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<Task> rescued,
                            store().TaskRescue({.now = kT0 + seconds(1000)}));
  EXPECT_THAT(rescued, IsEmpty());
  EXPECT_EQ(Count(store(), TaskState::kRunning), 0);
  EXPECT_THAT(Delete(store(), t.id, kT0), StatusIs(StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, TaskDeleteFinishedTask) {
  Task t = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Finish(store(), t, TaskState::kSucceeded, kT0), IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(Task r, Delete(store(), t.id, kT0));
  EXPECT_EQ(r.state, TaskState::kSucceeded);
  EXPECT_THAT(store().TaskGet(t.id), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(Count(store(), TaskState::kSucceeded), 0);
}

TEST_P(StoreConformanceTest, TaskDeleteUnknownIsNotFound) {
  EXPECT_THAT(Delete(store(), "00000000-0000-7000-8000-000000000000", kT0),
              StatusIs(StatusCode::kNotFound));
}

// ===== TaskRescue ============================================================

TEST_P(StoreConformanceTest, TaskRescueOnlyExpiredLeases) {
  Task short_lease = InsertAndClaim(store(), factory_.Make(), seconds(10));
  Task long_lease = InsertAndClaim(store(), factory_.Make(), seconds(60));
  Task spot = InsertAndClaim(
      store(), factory_.MakeContainer(core::kRunnerEc2Spot), seconds(10));
  ASSERT_EQ(spot.state, TaskState::kProvisioning);

  // A lease is expired only once `now` is past lease_expires_at.
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<Task> r,
                            store().TaskRescue({.now = kT0 + seconds(10)}));
  EXPECT_THAT(r, IsEmpty());

  SKED_ASSERT_OK_AND_ASSIGN(r, store().TaskRescue({.now = kT0 + seconds(11)}));
  EXPECT_THAT(Ids(r), UnorderedElementsAre(short_lease.id, spot.id));
  for (const Task& t : r) {
    EXPECT_EQ(t.state, TaskState::kScheduled);
    EXPECT_EQ(t.attempt, 1);
    EXPECT_FALSE(t.lease_owner.has_value());
    EXPECT_FALSE(t.lease_expires_at.has_value());
    ExpectSameTask(Get(store(), t.id), t);
  }
  EXPECT_EQ(Get(store(), long_lease.id).state, TaskState::kRunning);

  // Rescued tasks run again, in a new attempt.
  std::vector<Task> again =
      Claim(store(), ClaimParams(kT0 + seconds(11), 100, kNodeB));
  EXPECT_THAT(Ids(again), UnorderedElementsAre(short_lease.id, spot.id));
  for (const Task& t : again) EXPECT_EQ(t.attempt, 2);

  SKED_ASSERT_OK_AND_ASSIGN(r, store().TaskRescue({.now = kT0 + seconds(11)}));
  EXPECT_THAT(r, IsEmpty());
}

TEST_P(StoreConformanceTest, TaskRescueFailsWhenAttemptsAreUsedUp) {
  Task t = InsertAndClaim(
      store(), factory_.Make([](Task& t) { t.max_attempts = 2; }), seconds(10));
  // A free retry (say, a spot interruption) does not count; a lost lease does.
  ASSERT_THAT(Retry(store(), t, kT0, kT0, /*free=*/true), IsOk());
  Reclaim(store(), t.id, kT0);  // attempt 2; the free retry leaves 0 charged
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<Task> r,
                            store().TaskRescue({.now = kT0 + seconds(31)}));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].state, TaskState::kScheduled);
  EXPECT_EQ(r[0].ChargedAttempts(), 1);

  Task third = Reclaim(store(), t.id, kT0 + seconds(31));
  EXPECT_EQ(third.attempt, 3);
  SKED_ASSERT_OK_AND_ASSIGN(r, store().TaskRescue({.now = kT0 + seconds(100)}));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].state, TaskState::kFailed);
  EXPECT_EQ(Us(r[0].finished_at), Us(kT0 + seconds(100)));
  EXPECT_TRUE(r[0].error.has_value());
  ExpectSameTask(Get(store(), t.id), r[0]);
  EXPECT_THAT(Claim(store(), ClaimParams(kT0 + seconds(1000))), IsEmpty());
}

TEST_P(StoreConformanceTest, TaskRescueSingleAttemptTaskFails) {
  Task t = InsertAndClaim(store(),
                          factory_.Make([](Task& t) { t.max_attempts = 1; }));
  SKED_ASSERT_OK_AND_ASSIGN(
      std::vector<Task> r,
      store().TaskRescue({.now = kT0 + kLease + seconds(1)}));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].id, t.id);
  EXPECT_EQ(r[0].state, TaskState::kFailed);
}

TEST_P(StoreConformanceTest, TaskRescueHonoursLimit) {
  for (int i = 0; i < 3; ++i) InsertAndClaim(store(), factory_.Make());
  const Time later = kT0 + kLease + seconds(1);
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<Task> r,
                            store().TaskRescue({.now = later, .limit = 2}));
  EXPECT_EQ(r.size(), 2u);
  SKED_ASSERT_OK_AND_ASSIGN(r, store().TaskRescue({.now = later, .limit = 2}));
  EXPECT_EQ(r.size(), 1u);
  SKED_ASSERT_OK_AND_ASSIGN(r, store().TaskRescue({.now = later, .limit = 2}));
  EXPECT_THAT(r, IsEmpty());
  EXPECT_EQ(Count(store(), TaskState::kScheduled), 3);
}

TEST_P(StoreConformanceTest, TaskRescueIgnoresScheduledAndFinished) {
  Insert(store(), factory_.Make([](Task& t) { t.run_at = kT0 + seconds(5); }));
  Task done = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Finish(store(), done, TaskState::kSucceeded, kT0), IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<Task> r,
                            store().TaskRescue({.now = kT0 + seconds(10000)}));
  EXPECT_THAT(r, IsEmpty());
}

// ===== TaskEventList =========================================================

TEST_P(StoreConformanceTest, TaskEventListRecordsFullLifecycleInOrder) {
  Task t = InsertAndClaim(
      store(), factory_.MakeContainer(core::kRunnerEc2Spot,
                                      [](Task& t) { t.max_attempts = 3; }));
  ASSERT_THAT(store().TaskSetHandle({.id = t.id,
                                     .attempt = 1,
                                     .handle = "sir-1",
                                     .instance_id = "i-1",
                                     .now = kT0 + seconds(1),
                                     .message = "spot request placed"}),
              IsOk());
  ASSERT_THAT(store().TaskMarkRunning({.id = t.id,
                                       .attempt = 1,
                                       .now = kT0 + seconds(2),
                                       .message = "instance up"}),
              IsOk());
  ASSERT_THAT(store().TaskRetry({.id = t.id,
                                 .attempt = 1,
                                 .run_at = kT0 + seconds(10),
                                 .error = "exit 1",
                                 .node = std::string(kNodeA),
                                 .now = kT0 + seconds(3),
                                 .message = "attempt 1 failed; retrying"}),
              IsOk());
  Task second = Reclaim(store(), t.id, kT0 + seconds(10), kNodeB);
  ASSERT_THAT(store().TaskMarkRunning(
                  {.id = t.id, .attempt = 2, .now = kT0 + seconds(11)}),
              IsOk());
  ASSERT_THAT(store().TaskFinish({.id = t.id,
                                  .attempt = 2,
                                  .state = TaskState::kSucceeded,
                                  .result = core::TaskResult{.exit_code = 0},
                                  .node = std::string(kNodeB),
                                  .now = kT0 + seconds(12),
                                  .message = "done"}),
              IsOk());

  std::vector<TaskEvent> e = Events(store(), t.id);
  EXPECT_THAT(States(e),
              ElementsAre(TaskState::kScheduled,     // created
                          TaskState::kProvisioning,  // claimed by node-a
                          TaskState::kProvisioning,  // handle saved
                          TaskState::kRunning,       // instance up
                          TaskState::kScheduled,     // retry
                          TaskState::kProvisioning,  // claimed by node-b
                          TaskState::kRunning,       // marked running
                          TaskState::kSucceeded));   // done
  ASSERT_EQ(e.size(), 8u);
  std::vector<int> attempts;
  for (const TaskEvent& ev : e) attempts.push_back(ev.attempt);
  EXPECT_THAT(attempts, ElementsAre(0, 1, 1, 1, 1, 2, 2, 2));
  std::vector<int64_t> at;
  for (const TaskEvent& ev : e) at.push_back(Us(ev.at));
  EXPECT_THAT(at, ElementsAre(Us(kT0), Us(kT0), Us(kT0 + seconds(1)),
                              Us(kT0 + seconds(2)), Us(kT0 + seconds(3)),
                              Us(kT0 + seconds(10)), Us(kT0 + seconds(11)),
                              Us(kT0 + seconds(12))));
  EXPECT_EQ(e[1].node, std::optional<std::string>(kNodeA));
  EXPECT_EQ(e[2].message, "spot request placed");
  EXPECT_EQ(e[2].instance_id, std::optional<std::string>("i-1"));
  EXPECT_EQ(e[3].message, "instance up");
  EXPECT_EQ(e[4].message, "attempt 1 failed; retrying");
  EXPECT_EQ(e[4].node, std::optional<std::string>(kNodeA));
  EXPECT_EQ(e[5].node, std::optional<std::string>(kNodeB));
  EXPECT_EQ(e[7].message, "done");
  EXPECT_EQ(e[7].node, std::optional<std::string>(kNodeB));
  EXPECT_EQ(second.attempt, 2);
}

TEST_P(StoreConformanceTest, TaskEventListRecordsCancelAndRescue) {
  Task rescued = InsertAndClaim(store(), factory_.Make(), seconds(1));
  ASSERT_THAT(store().TaskRescue({.now = kT0 + seconds(2)}), IsOk());
  Task cancelled = Insert(
      store(), factory_.Make([](Task& t) { t.run_at = kT0 + seconds(50); }));
  ASSERT_THAT(Cancel(store(), cancelled.id, kT0 + seconds(3)), IsOk());

  EXPECT_THAT(States(Events(store(), rescued.id)),
              ElementsAre(TaskState::kScheduled, TaskState::kRunning,
                          TaskState::kScheduled));
  std::vector<TaskEvent> e = Events(store(), cancelled.id);
  EXPECT_THAT(States(e),
              ElementsAre(TaskState::kScheduled, TaskState::kCancelled));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[1].message, "cancelled by test");
  EXPECT_EQ(Us(e[1].at), Us(kT0 + seconds(3)));
}

TEST_P(StoreConformanceTest, TaskEventListUnknownIsNotFound) {
  EXPECT_THAT(store().TaskEventList("00000000-0000-7000-8000-000000000000"),
              StatusIs(StatusCode::kNotFound));
}

// ===== TaskCountByState ======================================================

TEST_P(StoreConformanceTest, TaskCountByStateCountsLiveTasks) {
  SKED_ASSERT_OK_AND_ASSIGN(auto empty, store().TaskCountByState());
  for (const auto& [state, n] : empty)
    EXPECT_EQ(n, 0) << core::TaskStateName(state);

  Task done = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Finish(store(), done, TaskState::kSucceeded, kT0), IsOk());
  Task failed = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Finish(store(), failed, TaskState::kFailed, kT0), IsOk());
  InsertAndClaim(store(), factory_.Make());
  InsertAndClaim(store(), factory_.MakeContainer(core::kRunnerEc2Spot));
  for (int i = 0; i < 3; ++i) {
    Insert(store(),
           factory_.Make([](Task& t) { t.run_at = kT0 + seconds(9); }));
  }
  Task cancelled = Insert(
      store(), factory_.Make([](Task& t) { t.run_at = kT0 + seconds(9); }));
  ASSERT_THAT(Cancel(store(), cancelled.id, kT0), IsOk());
  Task deleted = Insert(
      store(), factory_.Make([](Task& t) { t.run_at = kT0 + seconds(9); }));
  ASSERT_THAT(Delete(store(), deleted.id, kT0), IsOk());

  EXPECT_EQ(Count(store(), TaskState::kScheduled), 3);
  EXPECT_EQ(Count(store(), TaskState::kProvisioning), 1);
  EXPECT_EQ(Count(store(), TaskState::kRunning), 1);
  EXPECT_EQ(Count(store(), TaskState::kSucceeded), 1);
  EXPECT_EQ(Count(store(), TaskState::kFailed), 1);
  EXPECT_EQ(Count(store(), TaskState::kCancelled), 1);
}

// ===== Nodes =================================================================

TEST_P(StoreConformanceTest, NodeHeartbeatCreatesAndRefreshes) {
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<core::NodeInfo> nodes,
                            store().NodeList());
  EXPECT_THAT(nodes, IsEmpty());

  ASSERT_THAT(store().NodeHeartbeat({.id = kNodeA,
                                     .version = "0.1.0",
                                     .started_at = kT0,
                                     .last_heartbeat = kT0,
                                     .concurrency = 64}),
              IsOk());
  ASSERT_THAT(store().NodeHeartbeat({.id = kNodeB,
                                     .version = "0.1.0",
                                     .started_at = kT0 + seconds(1),
                                     .last_heartbeat = kT0 + seconds(1),
                                     .concurrency = 8}),
              IsOk());
  // A's last heartbeat, as it stops: it claims nothing more.
  ASSERT_THAT(store().NodeHeartbeat({.id = kNodeA,
                                     .version = "0.2.0",
                                     .started_at = kT0,
                                     .last_heartbeat = kT0 + seconds(15),
                                     .concurrency = 0}),
              IsOk());

  SKED_ASSERT_OK_AND_ASSIGN(nodes, store().NodeList());
  ASSERT_EQ(nodes.size(), 2u);
  std::sort(nodes.begin(), nodes.end(),
            [](const core::NodeInfo& a, const core::NodeInfo& b) {
              return a.id < b.id;
            });
  EXPECT_EQ(nodes[0].id, kNodeA);
  EXPECT_EQ(nodes[0].version, "0.2.0");
  EXPECT_EQ(Us(nodes[0].started_at), Us(kT0));
  EXPECT_EQ(Us(nodes[0].last_heartbeat), Us(kT0 + seconds(15)));
  EXPECT_EQ(nodes[0].concurrency, 0);
  EXPECT_EQ(nodes[1].id, kNodeB);
  EXPECT_EQ(Us(nodes[1].last_heartbeat), Us(kT0 + seconds(1)));
  EXPECT_EQ(nodes[1].concurrency, 8);
}

TEST_P(StoreConformanceTest, NodePruneRemovesOnlyNodesSilentSinceBefore) {
  for (auto [id, at] : {std::pair{"gone", kT0}, std::pair{"edge", kT0 + seconds(10)},
                        std::pair{"live", kT0 + seconds(20)}}) {
    ASSERT_THAT(store().NodeHeartbeat({.id = id,
                                       .version = "0.1.0",
                                       .started_at = kT0,
                                       .last_heartbeat = at,
                                       .concurrency = 4}),
                IsOk());
  }
  // A heartbeat exactly at the bound is not before it: the node stays.
  SKED_ASSERT_OK_AND_ASSIGN(int64_t pruned, store().NodePrune(kT0 + seconds(10)));
  EXPECT_EQ(pruned, 1);
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<core::NodeInfo> nodes, store().NodeList());
  std::vector<std::string> ids;
  for (const core::NodeInfo& n : nodes) ids.push_back(n.id);
  EXPECT_THAT(ids, UnorderedElementsAre("edge", "live"));
  // Nothing left that old: nothing to remove.
  SKED_ASSERT_OK_AND_ASSIGN(pruned, store().NodePrune(kT0 + seconds(10)));
  EXPECT_EQ(pruned, 0);
  // A node that heartbeats again after its row was pruned is back.
  ASSERT_THAT(store().NodeHeartbeat({.id = "gone",
                                     .version = "0.1.0",
                                     .started_at = kT0,
                                     .last_heartbeat = kT0 + seconds(30),
                                     .concurrency = 4}),
              IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(nodes, store().NodeList());
  EXPECT_EQ(nodes.size(), 3u);
}

TEST_P(StoreConformanceTest, TaskRetryKeepsTheFailedAttemptsResult) {
  Task t = InsertAndClaim(store(), factory_.Make([](Task& x) { x.max_attempts = 2; }));
  SKED_ASSERT_OK_AND_ASSIGN(Task after,
                            store().TaskRetry({.id = t.id,
                                               .attempt = 1,
                                               .run_at = kT0 + seconds(5),
                                               .error = "exit code 3",
                                               .result = core::TaskResult{3, "log tail"},
                                               .now = kT0}));
  ASSERT_TRUE(after.result.has_value());
  EXPECT_EQ(after.result->exit_code, 3);
  Task stored = Get(store(), t.id);
  ASSERT_TRUE(stored.result.has_value());
  EXPECT_EQ(stored.result->output, "log tail");
  // The last attempt fails the task and its result stays.
  Task second = Reclaim(store(), t.id, kT0 + seconds(5));
  SKED_ASSERT_OK_AND_ASSIGN(after, store().TaskRetry({.id = t.id,
                                                      .attempt = second.attempt,
                                                      .run_at = kT0 + seconds(9),
                                                      .error = "exit code 4",
                                                      .result = core::TaskResult{4, "tail 2"},
                                                      .now = kT0 + seconds(6)}));
  EXPECT_EQ(after.state, TaskState::kFailed);
  stored = Get(store(), t.id);
  ASSERT_TRUE(stored.result.has_value());
  EXPECT_EQ(stored.result->exit_code, 4);
  EXPECT_EQ(stored.error, std::optional<std::string>("exit code 4"));
}

// ===== TaskAdopt and the handle grace of TaskRescue ===========================

TEST_P(StoreConformanceTest, TaskAdoptTakesOverAnExpiredLeaseInTheSameAttempt) {
  Task t = InsertAndClaim(store(), factory_.Make(), seconds(10));
  ASSERT_THAT(store().TaskSetHandle({.id = t.id, .attempt = 1, .handle = "c-1", .now = kT0}),
              IsOk());
  // Still held by node-a: node-b cannot take it; node-a (restarted) can.
  EXPECT_THAT(store().TaskAdopt({.id = t.id, .attempt = 1, .node = kNodeB, .now = kT0 + seconds(5),
                                 .lease = seconds(10)}),
              StatusIs(StatusCode::kAborted));
  SKED_ASSERT_OK_AND_ASSIGN(Task mine, store().TaskAdopt({.id = t.id, .attempt = 1,
                                                          .node = kNodeA, .now = kT0 + seconds(5),
                                                          .lease = seconds(10)}));
  EXPECT_EQ(Us(mine.lease_expires_at), Us(kT0 + seconds(15)));
  // Expired: anyone may adopt; the attempt, state and handle stay.
  SKED_ASSERT_OK_AND_ASSIGN(Task theirs,
                            store().TaskAdopt({.id = t.id, .attempt = 1, .node = kNodeB,
                                               .now = kT0 + seconds(16), .lease = seconds(10)}));
  EXPECT_EQ(theirs.attempt, 1);
  EXPECT_EQ(theirs.state, TaskState::kRunning);
  EXPECT_EQ(theirs.lease_owner, std::optional<std::string>(kNodeB));
  EXPECT_EQ(Get(store(), t.id).handle, std::optional<std::string>("c-1"));
  EXPECT_EQ(Events(store(), t.id).back().message, std::string("adopted by ") + kNodeB);
  // node-b's lease is renewed like any other.
  SKED_ASSERT_OK_AND_ASSIGN(auto lost,
                            store().TaskLeaseRenew({.node = kNodeB, .now = kT0 + seconds(17),
                                                    .lease = seconds(10),
                                                    .tasks = {{t.id, 1}}}));
  EXPECT_THAT(lost, IsEmpty());
  // Another attempt, a finished task, an unknown one: refused.
  EXPECT_THAT(store().TaskAdopt({.id = t.id, .attempt = 2, .node = kNodeB, .now = kT0 + seconds(30),
                                 .lease = seconds(10)}),
              StatusIs(StatusCode::kAborted));
  ASSERT_THAT(Finish(store(), theirs, TaskState::kSucceeded, kT0 + seconds(18)), IsOk());
  EXPECT_THAT(store().TaskAdopt({.id = t.id, .attempt = 1, .node = kNodeB, .now = kT0 + seconds(40),
                                 .lease = seconds(10)}),
              StatusIs(StatusCode::kAborted));
  EXPECT_THAT(store().TaskAdopt({.id = "00000000-0000-7000-8000-000000000000", .attempt = 1,
                                 .node = kNodeB, .now = kT0, .lease = seconds(10)}),
              StatusIs(StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, TaskRescueWaitsTheHandleGraceForAttemptsWithAHandle) {
  Task plain = InsertAndClaim(store(), factory_.Make(), seconds(10));
  Task handled = InsertAndClaim(store(), factory_.Make(), seconds(10));
  ASSERT_THAT(store().TaskSetHandle({.id = handled.id, .attempt = 1, .handle = "c-2", .now = kT0}),
              IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<Task> r,
                            store().TaskRescue({.now = kT0 + seconds(11),
                                                .handle_grace = seconds(30)}));
  EXPECT_THAT(Ids(r), ElementsAre(plain.id));
  SKED_ASSERT_OK_AND_ASSIGN(r, store().TaskRescue({.now = kT0 + seconds(40),
                                                   .handle_grace = seconds(30)}));
  EXPECT_THAT(r, IsEmpty()) << "still inside the grace";
  SKED_ASSERT_OK_AND_ASSIGN(r, store().TaskRescue({.now = kT0 + seconds(41),
                                                   .handle_grace = seconds(30)}));
  EXPECT_THAT(Ids(r), ElementsAre(handled.id));
}

// ===== TaskFinishMany ========================================================

TEST_P(StoreConformanceTest, TaskFinishManyFencesEachItemOnItsOwn) {
  Task ok1 = InsertAndClaim(store(), factory_.Make());
  Task ok2 = InsertAndClaim(store(), factory_.Make());
  Task stale = InsertAndClaim(store(), factory_.Make());
  Task done = InsertAndClaim(store(), factory_.Make());
  Task gone = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Finish(store(), done, TaskState::kSucceeded, kT0), IsOk());
  ASSERT_THAT(Delete(store(), gone.id, kT0), IsOk());
  std::vector<core::TaskFinishParams> batch = {
      {.id = ok1.id, .attempt = 1, .state = TaskState::kSucceeded,
       .result = core::TaskResult{0, "out-1"}, .node = kNodeA, .now = kT0 + seconds(1)},
      {.id = ok2.id, .attempt = 1, .state = TaskState::kFailed,
       .result = core::TaskResult{3, "tail"}, .error = "exit 3", .node = kNodeA,
       .now = kT0 + seconds(2)},
      {.id = stale.id, .attempt = 7, .state = TaskState::kSucceeded, .now = kT0},
      {.id = done.id, .attempt = 1, .state = TaskState::kSucceeded, .now = kT0},
      {.id = gone.id, .attempt = 1, .state = TaskState::kSucceeded, .now = kT0},
      {.id = "00000000-0000-7000-8000-000000000000", .attempt = 1,
       .state = TaskState::kSucceeded, .now = kT0},
      {.id = ok1.id, .attempt = 1, .state = TaskState::kRunning, .now = kT0},
  };
  std::vector<core::Status> st = store().TaskFinishMany(batch);
  ASSERT_EQ(st.size(), batch.size());
  EXPECT_THAT(st[0], IsOk());
  EXPECT_THAT(st[1], IsOk());
  EXPECT_EQ(st[2].code(), StatusCode::kAborted);
  EXPECT_EQ(st[3].code(), StatusCode::kAborted);
  EXPECT_EQ(st[4].code(), StatusCode::kNotFound);
  EXPECT_EQ(st[5].code(), StatusCode::kNotFound);
  EXPECT_EQ(st[6].code(), StatusCode::kInvalidArgument);

  Task a = Get(store(), ok1.id);
  EXPECT_EQ(a.state, TaskState::kSucceeded);
  ASSERT_TRUE(a.result.has_value());
  EXPECT_EQ(a.result->output, "out-1");
  EXPECT_EQ(Us(a.finished_at), Us(kT0 + seconds(1)));
  EXPECT_FALSE(a.lease_owner.has_value());
  Task b = Get(store(), ok2.id);
  EXPECT_EQ(b.state, TaskState::kFailed);
  EXPECT_EQ(b.error, std::optional<std::string>("exit 3"));
  ASSERT_TRUE(b.result.has_value());
  EXPECT_EQ(b.result->exit_code, 3);
  EXPECT_EQ(Get(store(), stale.id).state, TaskState::kRunning);
  // The same history as TaskFinish writes.
  std::vector<TaskEvent> ev = Events(store(), ok2.id);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().state, TaskState::kFailed);
  EXPECT_EQ(ev.back().message, "failed: exit 3");
  EXPECT_EQ(ev.back().node, std::optional<std::string>(kNodeA));
  EXPECT_EQ(Us(ev.back().at), Us(kT0 + seconds(2)));
  // A repeat of an applied batch changes nothing.
  st = store().TaskFinishMany({batch[0]});
  EXPECT_EQ(st[0].code(), StatusCode::kAborted);
}

// ===== Schedules =============================================================

core::Schedule MakeSchedule(const std::string& id, std::optional<Time> next_run_at = kT0) {
  core::Schedule s;
  s.id = id;
  s.cron = "*/5 * * * *";
  s.timezone = "Europe/Berlin";
  s.task.type = "noop";
  s.task.runner = "builtin";
  s.task.queue = "nightly";
  s.task.max_attempts = 4;
  s.task.timeout_s = 120;
  s.task.labels = {{"team", "data"}};
  s.task.notify_url = "http://127.0.0.1:9/task";
  s.overlap = core::OverlapPolicy::kSkip;
  s.catch_up = core::CatchUpPolicy::kAll;
  s.notify_url = "http://127.0.0.1:9/schedule";
  s.next_run_at = next_run_at;
  s.created_at = kT0 - seconds(60);
  s.updated_at = kT0 - seconds(60);
  return s;
}

// The occurrence task a schedule creates for `at`.
Task Occurrence(TaskFactory& factory, const core::Schedule& s, Time at) {
  return factory.Make([&](Task& t) {
    t.schedule_id = s.id;
    t.occurrence = at;
    t.run_at = at;
  });
}

core::StatusOr<core::ScheduleFireResult> Fire(core::Store& store, const core::Schedule& s,
                                              std::vector<Task> occurrences,
                                              std::optional<Time> next,
                                              core::OverlapPolicy overlap, Time now) {
  return store.ScheduleFire({.id = s.id,
                             .expected_next_run_at = s.next_run_at,
                             .next_run_at = next,
                             .occurrences = std::move(occurrences),
                             .overlap = overlap,
                             .now = now});
}

TEST_P(StoreConformanceTest, ScheduleInsertAndGetRoundTripEveryField) {
  core::Schedule in = MakeSchedule("sched-1");
  in.task.runner = "docker";
  in.task.type = "container";
  in.task.image = "busybox:1.36";
  in.task.command = {"sh", "-c", "echo hi"};
  in.task.env = {{"A", "1"}};
  SKED_ASSERT_OK_AND_ASSIGN(core::Schedule stored, store().ScheduleInsert(in));
  EXPECT_EQ(stored.id, "sched-1");
  SKED_ASSERT_OK_AND_ASSIGN(core::Schedule got, store().ScheduleGet("sched-1"));
  EXPECT_EQ(got.cron, in.cron);
  EXPECT_EQ(got.timezone, in.timezone);
  EXPECT_EQ(got.task.type, "container");
  EXPECT_EQ(got.task.runner, "docker");
  EXPECT_EQ(got.task.queue, "nightly");
  EXPECT_EQ(got.task.image, "busybox:1.36");
  EXPECT_EQ(got.task.command, in.task.command);
  EXPECT_EQ(got.task.env, in.task.env);
  EXPECT_EQ(got.task.max_attempts, 4);
  EXPECT_EQ(got.task.timeout_s, 120);
  EXPECT_EQ(got.task.labels, in.task.labels);
  EXPECT_EQ(got.task.notify_url, in.task.notify_url);
  EXPECT_EQ(got.overlap, core::OverlapPolicy::kSkip);
  EXPECT_EQ(got.catch_up, core::CatchUpPolicy::kAll);
  EXPECT_EQ(got.notify_url, in.notify_url);
  EXPECT_FALSE(got.paused);
  EXPECT_EQ(Us(got.next_run_at), Us(kT0));
  EXPECT_EQ(Us(got.created_at), Us(in.created_at));
  EXPECT_EQ(Us(got.updated_at), Us(in.updated_at));

  EXPECT_THAT(store().ScheduleInsert(in), StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(store().ScheduleGet("nope"), StatusIs(StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, ScheduleListPagesById) {
  for (const char* id : {"s-3", "s-1", "s-2"}) ASSERT_THAT(store().ScheduleInsert(MakeSchedule(id)), IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(core::SchedulePage page, store().ScheduleList({.limit = 2}));
  ASSERT_EQ(page.schedules.size(), 2u);
  EXPECT_EQ(page.schedules[0].id, "s-1");
  EXPECT_EQ(page.schedules[1].id, "s-2");
  ASSERT_TRUE(page.next.has_value());
  SKED_ASSERT_OK_AND_ASSIGN(page, store().ScheduleList({.limit = 2, .after_id = page.next}));
  ASSERT_EQ(page.schedules.size(), 1u);
  EXPECT_EQ(page.schedules[0].id, "s-3");
  EXPECT_FALSE(page.next.has_value());
}

TEST_P(StoreConformanceTest, ScheduleDeleteKeepsItsTasks) {
  core::Schedule s = MakeSchedule("s-del");
  ASSERT_THAT(store().ScheduleInsert(s), IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(core::ScheduleFireResult fired,
                            Fire(store(), s, {Occurrence(factory_, s, kT0)}, kT0 + seconds(300),
                                 core::OverlapPolicy::kAllow, kT0));
  ASSERT_EQ(fired.inserted.size(), 1u);
  ASSERT_THAT(store().ScheduleDelete("s-del"), IsOk());
  EXPECT_THAT(store().ScheduleGet("s-del"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store().ScheduleDelete("s-del"), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(Get(store(), fired.inserted[0].id).schedule_id, std::optional<std::string>("s-del"));
}

TEST_P(StoreConformanceTest, SchedulePausedIsNeverDue) {
  ASSERT_THAT(store().ScheduleInsert(MakeSchedule("a", kT0 + seconds(10))), IsOk());
  ASSERT_THAT(store().ScheduleInsert(MakeSchedule("b", kT0 + seconds(5))), IsOk());
  ASSERT_THAT(store().ScheduleInsert(MakeSchedule("c", kT0 + seconds(50))), IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(std::optional<Time> next, store().ScheduleNextRunAt());
  EXPECT_EQ(Us(next), Us(kT0 + seconds(5)));
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<core::Schedule> due,
                            store().ScheduleListDue(kT0 + seconds(10), 10));
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].id, "b");
  EXPECT_EQ(due[1].id, "a");

  SKED_ASSERT_OK_AND_ASSIGN(core::Schedule paused,
                            store().ScheduleSetPaused("b", true, std::nullopt, kT0 + seconds(1)));
  EXPECT_TRUE(paused.paused);
  EXPECT_FALSE(paused.next_run_at.has_value());
  EXPECT_EQ(Us(paused.updated_at), Us(kT0 + seconds(1)));
  SKED_ASSERT_OK_AND_ASSIGN(due, store().ScheduleListDue(kT0 + seconds(10), 10));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].id, "a");
  SKED_ASSERT_OK_AND_ASSIGN(next, store().ScheduleNextRunAt());
  EXPECT_EQ(Us(next), Us(kT0 + seconds(10)));

  SKED_ASSERT_OK_AND_ASSIGN(core::Schedule resumed,
                            store().ScheduleSetPaused("b", false, kT0 + seconds(7), kT0 + seconds(2)));
  EXPECT_FALSE(resumed.paused);
  EXPECT_EQ(Us(resumed.next_run_at), Us(kT0 + seconds(7)));
  EXPECT_THAT(store().ScheduleSetPaused("nope", true, std::nullopt, kT0),
              StatusIs(StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, ScheduleFireInsertsOccurrencesAndMovesOnOnce) {
  core::Schedule s = MakeSchedule("s-fire");
  ASSERT_THAT(store().ScheduleInsert(s), IsOk());
  std::vector<Task> occ = {Occurrence(factory_, s, kT0 - seconds(300)), Occurrence(factory_, s, kT0)};
  SKED_ASSERT_OK_AND_ASSIGN(core::ScheduleFireResult r,
                            Fire(store(), s, occ, kT0 + seconds(300), core::OverlapPolicy::kAllow, kT0));
  ASSERT_EQ(r.inserted.size(), 2u);
  EXPECT_EQ(r.skipped, 0);
  for (size_t i = 0; i < 2; ++i) {
    Task t = Get(store(), occ[i].id);
    EXPECT_EQ(t.state, TaskState::kScheduled);
    EXPECT_EQ(t.schedule_id, std::optional<std::string>("s-fire"));
    EXPECT_EQ(Us(t.occurrence), Us(occ[i].run_at));
  }
  SKED_ASSERT_OK_AND_ASSIGN(core::Schedule after, store().ScheduleGet("s-fire"));
  EXPECT_EQ(Us(after.next_run_at), Us(kT0 + seconds(300)));
  // The same firing again (a second node with the old next_run_at) is refused
  // and changes nothing.
  EXPECT_THAT(Fire(store(), s, {Occurrence(factory_, s, kT0 + seconds(1))}, kT0 + seconds(600),
                   core::OverlapPolicy::kAllow, kT0),
              StatusIs(StatusCode::kAborted));
  EXPECT_EQ(ListAll(store(), {.limit = 1000}).size(), 2u);
  SKED_ASSERT_OK_AND_ASSIGN(after, store().ScheduleGet("s-fire"));
  EXPECT_EQ(Us(after.next_run_at), Us(kT0 + seconds(300)));
  // Paused or gone: refused too.
  ASSERT_THAT(store().ScheduleSetPaused("s-fire", true, kT0 + seconds(300), kT0), IsOk());
  EXPECT_THAT(Fire(store(), after, {}, kT0 + seconds(600), core::OverlapPolicy::kAllow, kT0),
              StatusIs(StatusCode::kAborted));
  core::Schedule ghost = MakeSchedule("ghost");
  EXPECT_THAT(Fire(store(), ghost, {}, std::nullopt, core::OverlapPolicy::kAllow, kT0),
              StatusIs(StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, ScheduleFireNeverCreatesAnOccurrenceTwice) {
  core::Schedule s = MakeSchedule("s-uniq");
  ASSERT_THAT(store().ScheduleInsert(s), IsOk());
  ASSERT_THAT(Fire(store(), s, {Occurrence(factory_, s, kT0)}, kT0 + seconds(300),
                   core::OverlapPolicy::kAllow, kT0),
              IsOk());
  // Even a caller that got the compare-and-set right cannot repeat an occurrence.
  SKED_ASSERT_OK_AND_ASSIGN(core::Schedule now, store().ScheduleGet("s-uniq"));
  EXPECT_THAT(Fire(store(), now, {Occurrence(factory_, s, kT0)}, kT0 + seconds(600),
                   core::OverlapPolicy::kAllow, kT0),
              StatusIs(StatusCode::kAlreadyExists));
  SKED_ASSERT_OK_AND_ASSIGN(core::Schedule unchanged, store().ScheduleGet("s-uniq"));
  EXPECT_EQ(Us(unchanged.next_run_at), Us(kT0 + seconds(300))) << "a failed fire moved it on";
  EXPECT_EQ(ListAll(store(), {.limit = 1000}).size(), 1u);
}

TEST_P(StoreConformanceTest, ScheduleFireSkipWhileAnEarlierOccurrenceIsLive) {
  core::Schedule s = MakeSchedule("s-skip");
  ASSERT_THAT(store().ScheduleInsert(s), IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(core::ScheduleFireResult first,
                            Fire(store(), s, {Occurrence(factory_, s, kT0)}, kT0 + seconds(300),
                                 core::OverlapPolicy::kSkip, kT0));
  ASSERT_EQ(first.inserted.size(), 1u);
  SKED_ASSERT_OK_AND_ASSIGN(s, store().ScheduleGet("s-skip"));
  SKED_ASSERT_OK_AND_ASSIGN(core::ScheduleFireResult second,
                            Fire(store(), s, {Occurrence(factory_, s, kT0 + seconds(300))},
                                 kT0 + seconds(600), core::OverlapPolicy::kSkip, kT0 + seconds(300)));
  EXPECT_TRUE(second.inserted.empty());
  EXPECT_EQ(second.skipped, 1);
  SKED_ASSERT_OK_AND_ASSIGN(s, store().ScheduleGet("s-skip"));
  EXPECT_EQ(Us(s.next_run_at), Us(kT0 + seconds(600))) << "a skip still moves on";
  // Once the earlier one has finished, the next occurrence is created.
  ASSERT_THAT(Cancel(store(), first.inserted[0].id, kT0 + seconds(400)), IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(core::ScheduleFireResult third,
                            Fire(store(), s, {Occurrence(factory_, s, kT0 + seconds(600))},
                                 kT0 + seconds(900), core::OverlapPolicy::kSkip, kT0 + seconds(600)));
  EXPECT_EQ(third.inserted.size(), 1u);
}

TEST_P(StoreConformanceTest, ScheduleFireCancelPreviousCancelsLiveOccurrences) {
  core::Schedule s = MakeSchedule("s-cancel");
  ASSERT_THAT(store().ScheduleInsert(s), IsOk());
  Task old = Occurrence(factory_, s, kT0);
  ASSERT_THAT(Fire(store(), s, {old}, kT0 + seconds(300), core::OverlapPolicy::kCancelPrevious, kT0),
              IsOk());
  Task running = Reclaim(store(), old.id, kT0);
  ASSERT_EQ(running.state, TaskState::kRunning);
  SKED_ASSERT_OK_AND_ASSIGN(s, store().ScheduleGet("s-cancel"));
  Task next = Occurrence(factory_, s, kT0 + seconds(300));
  SKED_ASSERT_OK_AND_ASSIGN(core::ScheduleFireResult r,
                            Fire(store(), s, {next}, kT0 + seconds(600),
                                 core::OverlapPolicy::kCancelPrevious, kT0 + seconds(300)));
  ASSERT_EQ(r.cancelled.size(), 1u);
  EXPECT_EQ(r.cancelled[0].id, old.id);
  EXPECT_EQ(r.cancelled[0].lease_owner, std::optional<std::string>(kNodeA)) << "as it was";
  EXPECT_EQ(Get(store(), old.id).state, TaskState::kCancelled);
  ASSERT_EQ(r.inserted.size(), 1u);
  EXPECT_EQ(Get(store(), next.id).state, TaskState::kScheduled);
}

TEST_P(StoreConformanceTest, ScheduleFireConcurrentFirersCreateTheOccurrenceOnce) {
  core::Schedule s = MakeSchedule("s-race");
  ASSERT_THAT(store().ScheduleInsert(s), IsOk());
  std::atomic<int> ok{0}, aborted{0}, other{0};
  std::vector<Task> occ;
  for (int n = 0; n < 6; ++n) occ.push_back(Occurrence(factory_, s, kT0));
  std::vector<std::thread> threads;
  for (int n = 0; n < 6; ++n) {
    threads.emplace_back([&, n] {
      auto r = Fire(store(), s, {occ[n]}, kT0 + seconds(300), core::OverlapPolicy::kAllow, kT0);
      if (r.ok()) {
        ++ok;
      } else if (r.status().code() == StatusCode::kAborted ||
                 r.status().code() == StatusCode::kAlreadyExists) {
        ++aborted;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(aborted.load(), 5);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ListAll(store(), {.limit = 1000}).size(), 1u);
}

// ===== Queues ================================================================

core::QueueLimits Limits(std::string name, std::optional<int64_t> max_running,
                         std::optional<double> max_per_second) {
  return {.name = std::move(name),
          .max_running = max_running,
          .max_per_second = max_per_second,
          .updated_at = kT0};
}

std::vector<Task> InsertInQueue(core::Store& store, TaskFactory& factory, const std::string& queue,
                                int n, Time run_at) {
  std::vector<Task> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(Insert(store, factory.Make([&](Task& t) {
      t.queue = queue;
      t.run_at = run_at;
    })));
  }
  return out;
}

TEST_P(StoreConformanceTest, QueuePutStoresAndReplacesLimits) {
  SKED_ASSERT_OK_AND_ASSIGN(core::QueueLimits put, store().QueuePut(Limits("emails", 3, 10.5)));
  EXPECT_EQ(put.name, "emails");
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<core::QueueInfo> queues, store().QueueList());
  ASSERT_EQ(queues.size(), 1u);
  EXPECT_EQ(queues[0].limits.name, "emails");
  EXPECT_EQ(queues[0].limits.max_running, std::optional<int64_t>(3));
  EXPECT_EQ(queues[0].limits.max_per_second, std::optional<double>(10.5));
  EXPECT_EQ(Us(queues[0].limits.updated_at), Us(kT0));

  ASSERT_THAT(store().QueuePut(Limits("emails", std::nullopt, 0.25)), IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(queues, store().QueueList());
  ASSERT_EQ(queues.size(), 1u);
  EXPECT_EQ(queues[0].limits.max_running, std::nullopt);
  EXPECT_EQ(queues[0].limits.max_per_second, std::optional<double>(0.25));
}

TEST_P(StoreConformanceTest, QueuePutRejectsBadLimits) {
  EXPECT_THAT(store().QueuePut(Limits("", 1, std::nullopt)),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store().QueuePut(Limits("bad name", 1, std::nullopt)),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store().QueuePut(Limits("q", -1, std::nullopt)),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store().QueuePut(Limits("q", std::nullopt, 0.0)),
              StatusIs(StatusCode::kInvalidArgument));
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<core::QueueInfo> queues, store().QueueList());
  EXPECT_THAT(queues, IsEmpty());
}

TEST_P(StoreConformanceTest, QueueListCountsRunningAndScheduledPerQueue) {
  ASSERT_THAT(store().QueuePut(Limits("idle", 5, std::nullopt)), IsOk());
  InsertInQueue(store(), factory_, "a", 3, kT0);
  InsertInQueue(store(), factory_, "b", 1, kT0 + seconds(60));
  ASSERT_EQ(Claim(store(), ClaimParams(kT0, 2)).size(), 2u);
  SKED_ASSERT_OK_AND_ASSIGN(std::vector<core::QueueInfo> queues, store().QueueList());
  ASSERT_EQ(queues.size(), 3u);
  EXPECT_EQ(queues[0].limits.name, "a");
  EXPECT_EQ(queues[0].running, 2);
  EXPECT_EQ(queues[0].scheduled, 1);
  EXPECT_EQ(queues[0].limits.max_running, std::nullopt);
  EXPECT_EQ(queues[1].limits.name, "b");
  EXPECT_EQ(queues[1].running, 0);
  EXPECT_EQ(queues[1].scheduled, 1);
  EXPECT_EQ(queues[2].limits.name, "idle");
  EXPECT_EQ(queues[2].limits.max_running, std::optional<int64_t>(5));
  EXPECT_EQ(queues[2].running + queues[2].scheduled, 0);
}

TEST_P(StoreConformanceTest, TaskClaimKeepsAQueueAtMaxRunning) {
  ASSERT_THAT(store().QueuePut(Limits("q", 2, std::nullopt)), IsOk());
  std::vector<Task> tasks = InsertInQueue(store(), factory_, "q", 5, kT0);
  std::vector<Task> first = Claim(store(), ClaimParams(kT0, 10));
  EXPECT_EQ(first.size(), 2u);
  EXPECT_THAT(Claim(store(), ClaimParams(kT0 + seconds(1), 10, kNodeB)), IsEmpty());
  // A finished task frees its slot.
  ASSERT_THAT(Finish(store(), first[0], TaskState::kSucceeded, kT0 + seconds(2)), IsOk());
  std::vector<Task> second = Claim(store(), ClaimParams(kT0 + seconds(2), 10, kNodeB));
  EXPECT_EQ(second.size(), 1u);
  EXPECT_THAT(Claim(store(), ClaimParams(kT0 + seconds(3), 10)), IsEmpty());
}

TEST_P(StoreConformanceTest, TaskClaimMaxRunningZeroHoldsTheQueue) {
  ASSERT_THAT(store().QueuePut(Limits("held", 0, std::nullopt)), IsOk());
  InsertInQueue(store(), factory_, "held", 2, kT0);
  EXPECT_THAT(Claim(store(), ClaimParams(kT0, 10)), IsEmpty());
  // Lifting the limit releases them.
  ASSERT_THAT(store().QueuePut(Limits("held", std::nullopt, std::nullopt)), IsOk());
  EXPECT_EQ(Claim(store(), ClaimParams(kT0, 10)).size(), 2u);
}

TEST_P(StoreConformanceTest, TaskClaimALimitedQueueDoesNotHoldBackOthers) {
  ASSERT_THAT(store().QueuePut(Limits("slow", 1, std::nullopt)), IsOk());
  // The limited queue's tasks come first in run_at order.
  std::vector<Task> slow = InsertInQueue(store(), factory_, "slow", 20, kT0 - seconds(10));
  std::vector<Task> fast = InsertInQueue(store(), factory_, "fast", 3, kT0);
  std::vector<Task> claimed = Claim(store(), ClaimParams(kT0, 4));
  ASSERT_EQ(claimed.size(), 4u);
  int from_slow = 0, from_fast = 0;
  for (const Task& t : claimed) (t.queue == "slow" ? from_slow : from_fast)++;
  EXPECT_EQ(from_slow, 1);
  EXPECT_EQ(from_fast, 3);
}

TEST_P(StoreConformanceTest, TaskClaimKeepsAQueueWithinItsRate) {
  // 2 per second: a burst of 2, then one more every 500 ms.
  ASSERT_THAT(store().QueuePut(Limits("r", std::nullopt, 2.0)), IsOk());
  InsertInQueue(store(), factory_, "r", 10, kT0);
  EXPECT_EQ(Claim(store(), ClaimParams(kT0, 10)).size(), 2u);
  EXPECT_THAT(Claim(store(), ClaimParams(kT0 + milliseconds(499), 10)), IsEmpty());
  EXPECT_EQ(Claim(store(), ClaimParams(kT0 + milliseconds(500), 10)).size(), 1u);
  EXPECT_THAT(Claim(store(), ClaimParams(kT0 + milliseconds(900), 10)), IsEmpty());
  // A long pause refills the bucket to its capacity (2), not beyond.
  EXPECT_EQ(Claim(store(), ClaimParams(kT0 + seconds(60), 10)).size(), 2u);
}

TEST_P(StoreConformanceTest, TaskClaimSlowRateAllowsOneClaimPerPeriod) {
  ASSERT_THAT(store().QueuePut(Limits("r", std::nullopt, 0.5)), IsOk());
  InsertInQueue(store(), factory_, "r", 3, kT0);
  EXPECT_EQ(Claim(store(), ClaimParams(kT0, 10)).size(), 1u);
  EXPECT_THAT(Claim(store(), ClaimParams(kT0 + milliseconds(1999), 10)), IsEmpty());
  EXPECT_EQ(Claim(store(), ClaimParams(kT0 + seconds(2), 10)).size(), 1u);
}

TEST_P(StoreConformanceTest, TaskClaimConcurrentClaimersNeverPassMaxRunning) {
  constexpr int kMax = 3;
  ASSERT_THAT(store().QueuePut(Limits("q", kMax, std::nullopt)), IsOk());
  InsertInQueue(store(), factory_, "q", 40, kT0);
  std::mutex mu;
  std::vector<std::string> claimed;
  std::vector<std::thread> threads;
  for (int n = 0; n < 6; ++n) {
    threads.emplace_back([&, n] {
      for (int i = 0; i < 5; ++i) {
        auto r = store().TaskClaim(ClaimParams(kT0, 2, "node-" + std::to_string(n)));
        if (!r.ok()) continue;
        std::lock_guard lock(mu);
        for (const Task& t : *r) claimed.push_back(t.id);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kMax));
  EXPECT_EQ(Count(store(), TaskState::kRunning), kMax);
}

// ===== Webhooks ==============================================================

constexpr char kHook[] = "http://127.0.0.1:9/hook";

std::vector<core::WebhookDelivery> ClaimHooks(core::Store& store, Time now, int limit = 10,
                                              std::string node = kNodeA,
                                              core::Duration lease = kLease) {
  auto r = store.WebhookClaim({.node = std::move(node), .now = now, .lease = lease, .limit = limit});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<core::WebhookDelivery>{};
}

TEST_P(StoreConformanceTest, WebhookQueuedOnceWhenATaskWithNotifyUrlFinishes) {
  Task t = InsertAndClaim(store(), factory_.Make([](Task& x) { x.notify_url = kHook; }));
  EXPECT_THAT(ClaimHooks(store(), kT0 + seconds(60)), IsEmpty()) << "queued before the end";
  ASSERT_THAT(Finish(store(), t, TaskState::kSucceeded, kT0 + seconds(1)), IsOk());
  std::vector<core::WebhookDelivery> due = ClaimHooks(store(), kT0 + seconds(1));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].task_id, t.id);
  EXPECT_EQ(due[0].url, kHook);
  EXPECT_EQ(due[0].task_state, TaskState::kSucceeded);
  EXPECT_EQ(due[0].attempt, 1);
  // A repeated (fenced-out) finish queues nothing more.
  EXPECT_THAT(Finish(store(), t, TaskState::kSucceeded, kT0 + seconds(2)), Not(IsOk()));
  ASSERT_THAT(store().WebhookFinish({.id = due[0].id, .attempt = 1, .delivered = true,
                                     .node = kNodeA, .now = kT0 + seconds(3)}),
              IsOk());
  EXPECT_THAT(ClaimHooks(store(), kT0 + seconds(3600), 10, kNodeB), IsEmpty());
}

TEST_P(StoreConformanceTest, WebhookQueuedWhenATaskRunInItsClaimFinishes) {
  Task t = Insert(store(), factory_.Make([](Task& x) { x.notify_url = kHook; }));
  InstantRunner runner;
  runner.outcomes[t.id] = {.id = t.id,
                           .attempt = 1,
                           .state = TaskState::kSucceeded,
                           .node = std::string(kNodeA),
                           .now = kT0};
  ASSERT_EQ(Claim(store(), runner.Params(kT0)).size(), 1u);
  std::vector<core::WebhookDelivery> due = ClaimHooks(store(), kT0 + seconds(1));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].task_id, t.id);
  EXPECT_EQ(due[0].task_state, TaskState::kSucceeded);
}

// Lines written after an outcome recorded in the claim come after it in the
// history, whatever their clocks say (a webhook delivered by a node whose
// clock is behind), and the outcome's line keeps its node and message.
TEST_P(StoreConformanceTest, WebhookLinesFollowTheOutcomeOfAnAttemptRunInItsClaim) {
  Task t = Insert(store(), factory_.Make([](Task& x) { x.notify_url = kHook; }));
  InstantRunner runner;
  runner.outcomes[t.id] = {.id = t.id,
                           .attempt = 1,
                           .state = TaskState::kSucceeded,
                           .node = std::string(kNodeA),
                           .now = kT0 + seconds(5),
                           .message = "ran at once"};
  ASSERT_EQ(Claim(store(), runner.Params(kT0)).size(), 1u);
  std::vector<core::WebhookDelivery> due = ClaimHooks(store(), kT0 + seconds(6), 10, kNodeB);
  ASSERT_EQ(due.size(), 1u);
  ASSERT_THAT(store().WebhookFinish({.id = due[0].id,
                                     .attempt = 1,
                                     .delivered = false,
                                     .retry_at = kT0 + seconds(7),
                                     .error = "HTTP 503",
                                     .node = kNodeB,
                                     .now = kT0 + seconds(1)}),
              IsOk());
  due = ClaimHooks(store(), kT0 + seconds(8), 10, kNodeB);
  ASSERT_EQ(due.size(), 1u);
  ASSERT_THAT(store().WebhookFinish({.id = due[0].id, .attempt = 2, .delivered = true,
                                     .node = kNodeB, .now = kT0 + seconds(2)}),
              IsOk());

  std::vector<TaskEvent> e = Events(store(), t.id);
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].message, "created");
  EXPECT_EQ(e[1].state, TaskState::kSucceeded);
  EXPECT_EQ(e[1].attempt, 1);
  EXPECT_EQ(e[1].node, std::optional<std::string>(kNodeA));
  EXPECT_EQ(e[1].message, "ran at once");
  EXPECT_EQ(Us(e[1].at), Us(kT0 + seconds(5)));
  EXPECT_EQ(e[2].message, "webhook attempt 1 failed: HTTP 503; will retry");
  EXPECT_EQ(e[2].node, std::optional<std::string>(kNodeB));
  EXPECT_EQ(e[3].message, "webhook delivered (attempt 2)");
  // Deleted, the task has no history to show.
  ASSERT_TRUE(store().TaskDelete({.id = t.id, .now = kT0 + seconds(9)}).ok());
  EXPECT_THAT(store().TaskEventList(t.id), StatusIs(StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, WebhookNotQueuedWithoutNotifyUrlOrBeforeTheEnd) {
  Task plain = InsertAndClaim(store(), factory_.Make());
  ASSERT_THAT(Finish(store(), plain, TaskState::kSucceeded, kT0), IsOk());
  Task retried = InsertAndClaim(store(), factory_.Make([](Task& x) { x.notify_url = kHook; }));
  ASSERT_THAT(Retry(store(), retried, kT0 + seconds(100), kT0), IsOk());
  EXPECT_THAT(ClaimHooks(store(), kT0 + seconds(50)), IsEmpty());
}

TEST_P(StoreConformanceTest, WebhookQueuedForCancelAndForFailureByRescue) {
  Task cancelled = Insert(store(), factory_.Make([](Task& x) {
    x.notify_url = kHook;
    x.run_at = kT0 + seconds(3600);
  }));
  ASSERT_THAT(Cancel(store(), cancelled.id, kT0), IsOk());
  Task lost = InsertAndClaim(store(), factory_.Make([](Task& x) {
    x.notify_url = "https://example.test/lost";
    x.max_attempts = 1;
  }), seconds(1));
  ASSERT_THAT(store().TaskRescue({.now = kT0 + seconds(2)}), IsOk());
  ASSERT_EQ(Get(store(), lost.id).state, TaskState::kFailed);
  // A deleted task's webhook is not queued.
  Task deleted = Insert(store(), factory_.Make([](Task& x) {
    x.notify_url = kHook;
    x.run_at = kT0 + seconds(3600);
  }));
  ASSERT_THAT(Delete(store(), deleted.id, kT0), IsOk());

  std::vector<core::WebhookDelivery> due = ClaimHooks(store(), kT0 + seconds(10));
  ASSERT_EQ(due.size(), 2u);
  std::map<std::string, TaskState> got;
  for (const auto& d : due) got[d.task_id] = d.task_state;
  EXPECT_EQ(got[cancelled.id], TaskState::kCancelled);
  EXPECT_EQ(got[lost.id], TaskState::kFailed);
}

TEST_P(StoreConformanceTest, WebhookClaimLeasesAndRetryWaitsForItsTime) {
  Task t = InsertAndClaim(store(), factory_.Make([](Task& x) { x.notify_url = kHook; }));
  ASSERT_THAT(Finish(store(), t, TaskState::kFailed, kT0), IsOk());
  std::vector<core::WebhookDelivery> first = ClaimHooks(store(), kT0, 10, kNodeA, seconds(10));
  ASSERT_EQ(first.size(), 1u);
  // Leased: nobody else gets it until the lease ends.
  EXPECT_THAT(ClaimHooks(store(), kT0 + seconds(5), 10, kNodeB), IsEmpty());
  ASSERT_THAT(store().WebhookFinish({.id = first[0].id,
                                     .attempt = 1,
                                     .delivered = false,
                                     .retry_at = kT0 + seconds(30),
                                     .error = "HTTP 500",
                                     .node = kNodeA,
                                     .now = kT0 + seconds(6)}),
              IsOk());
  EXPECT_THAT(ClaimHooks(store(), kT0 + seconds(29), 10, kNodeB), IsEmpty());
  std::vector<core::WebhookDelivery> second = ClaimHooks(store(), kT0 + seconds(30), 10, kNodeB);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].attempt, 2);
  // The first attempt's outcome is stale now.
  EXPECT_THAT(store().WebhookFinish({.id = first[0].id, .attempt = 1, .delivered = true,
                                     .node = kNodeA, .now = kT0 + seconds(31)}),
              StatusIs(StatusCode::kAborted));
  ASSERT_THAT(store().WebhookFinish({.id = second[0].id, .attempt = 2, .delivered = true,
                                     .node = kNodeB, .now = kT0 + seconds(31)}),
              IsOk());
  EXPECT_THAT(ClaimHooks(store(), kT0 + seconds(3600)), IsEmpty()) << "delivered twice";
  EXPECT_THAT(store().WebhookFinish({.id = second[0].id, .attempt = 2, .delivered = true,
                                     .node = kNodeB, .now = kT0 + seconds(32)}),
              StatusIs(StatusCode::kAborted));
  EXPECT_THAT(store().WebhookFinish({.id = 987654321, .attempt = 1, .now = kT0}),
              StatusIs(StatusCode::kNotFound));

  // Each attempt left a line in the task's history.
  std::vector<std::string> messages;
  for (const TaskEvent& e : Events(store(), t.id)) messages.push_back(e.message);
  EXPECT_THAT(messages, Contains("webhook attempt 1 failed: HTTP 500; will retry"));
  EXPECT_THAT(messages, Contains("webhook delivered (attempt 2)"));
}

TEST_P(StoreConformanceTest, WebhookExpiredLeaseIsClaimedAgainAndGivingUpEndsIt) {
  Task t = InsertAndClaim(store(), factory_.Make([](Task& x) { x.notify_url = kHook; }));
  ASSERT_THAT(Finish(store(), t, TaskState::kSucceeded, kT0), IsOk());
  ASSERT_EQ(ClaimHooks(store(), kT0, 10, kNodeA, seconds(10)).size(), 1u);
  // node-a died: after its lease, node-b takes over.
  std::vector<core::WebhookDelivery> again =
      ClaimHooks(store(), kT0 + seconds(10) + microseconds(1), 10, kNodeB);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempt, 2);
  ASSERT_THAT(store().WebhookFinish({.id = again[0].id,
                                     .attempt = 2,
                                     .delivered = false,
                                     .retry_at = std::nullopt,
                                     .error = "connection refused",
                                     .node = kNodeB,
                                     .now = kT0 + seconds(12)}),
              IsOk());
  EXPECT_THAT(ClaimHooks(store(), kT0 + seconds(36000)), IsEmpty());
}

TEST_P(StoreConformanceTest, WebhookConcurrentClaimersNeverShareADelivery) {
  constexpr int kTasks = 60;
  for (int i = 0; i < kTasks; ++i) {
    Task t = Insert(store(), factory_.Make([&](Task& x) {
      x.notify_url = kHook;
      x.run_at = kT0 + seconds(3600);
    }));
    ASSERT_THAT(Cancel(store(), t.id, kT0), IsOk());
  }
  std::mutex mu;
  std::vector<int64_t> claimed;
  std::vector<std::thread> threads;
  for (int n = 0; n < 6; ++n) {
    threads.emplace_back([&, n] {
      while (true) {
        auto r = store().WebhookClaim(
            {.node = "node-" + std::to_string(n), .now = kT0, .lease = kLease, .limit = 1 + n % 3});
        if (!r.ok()) continue;
        if (r->empty()) return;
        std::lock_guard lock(mu);
        for (const auto& d : *r) claimed.push_back(d.id);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<int64_t> unique(claimed.begin(), claimed.end());
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kTasks));
  EXPECT_EQ(unique.size(), static_cast<size_t>(kTasks));
}

// ===== Settings ==============================================================

TEST_P(StoreConformanceTest, SettingInitFirstWriterWins) {
  SKED_ASSERT_OK_AND_ASSIGN(std::string v, store().SettingInit("callback_secret", "first"));
  EXPECT_EQ(v, "first");
  SKED_ASSERT_OK_AND_ASSIGN(v, store().SettingInit("callback_secret", "second"));
  EXPECT_EQ(v, "first");
  SKED_ASSERT_OK_AND_ASSIGN(v, store().SettingInit("other", "x"));
  EXPECT_EQ(v, "x");
}

TEST_P(StoreConformanceTest, SettingInitEmptyKeyIsInvalid) {
  EXPECT_THAT(store().SettingInit("", "v"), StatusIs(StatusCode::kInvalidArgument));
}

TEST_P(StoreConformanceTest, SettingInitConcurrentWritersAgree) {
  constexpr int kThreads = 8;
  std::vector<std::string> seen(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto v = store().SettingInit("shared", "value-" + std::to_string(i));
      seen[i] = v.ok() ? *v : "error: " + v.status().ToString();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_THAT(seen[0], ::testing::StartsWith("value-"));
  for (const auto& v : seen) EXPECT_EQ(v, seen[0]);
}

// ===== Leader ================================================================

TEST_P(StoreConformanceTest, LeaderElectFirstNodeWins) {
  SKED_ASSERT_OK_AND_ASSIGN(bool a,
                            store().LeaderElect(kNodeA, kT0, seconds(10)));
  EXPECT_TRUE(a);
  SKED_ASSERT_OK_AND_ASSIGN(
      bool b, store().LeaderElect(kNodeB, kT0 + seconds(1), seconds(10)));
  EXPECT_FALSE(b);
  SKED_ASSERT_OK_AND_ASSIGN(
      a, store().LeaderElect(kNodeA, kT0 + seconds(2), seconds(10)));
  EXPECT_TRUE(a);
}

TEST_P(StoreConformanceTest,
       LeaderElectHolderExtendsAndOthersTakeOverAfterExpiry) {
  ASSERT_THAT(store().LeaderElect(kNodeA, kT0, seconds(10)), IsOk());
  // node-a extends to kT0 + 15s.
  SKED_ASSERT_OK_AND_ASSIGN(
      bool a, store().LeaderElect(kNodeA, kT0 + seconds(5), seconds(10)));
  EXPECT_TRUE(a);
  SKED_ASSERT_OK_AND_ASSIGN(
      bool b, store().LeaderElect(kNodeB, kT0 + seconds(12), seconds(10)));
  EXPECT_FALSE(b);
  // Still held at the instant it expires.
  SKED_ASSERT_OK_AND_ASSIGN(
      b, store().LeaderElect(kNodeB, kT0 + seconds(15), seconds(10)));
  EXPECT_FALSE(b);
  SKED_ASSERT_OK_AND_ASSIGN(
      b, store().LeaderElect(kNodeB, kT0 + seconds(15) + microseconds(1),
                             seconds(10)));
  EXPECT_TRUE(b);
  SKED_ASSERT_OK_AND_ASSIGN(
      a, store().LeaderElect(kNodeA, kT0 + seconds(16), seconds(10)));
  EXPECT_FALSE(a);
}

TEST_P(StoreConformanceTest,
       LeaderElectHolderMayRenewAfterExpiryIfNobodyTookOver) {
  ASSERT_THAT(store().LeaderElect(kNodeA, kT0, seconds(10)), IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(
      bool a, store().LeaderElect(kNodeA, kT0 + seconds(60), seconds(10)));
  EXPECT_TRUE(a);
  SKED_ASSERT_OK_AND_ASSIGN(
      bool b, store().LeaderElect(kNodeB, kT0 + seconds(65), seconds(10)));
  EXPECT_FALSE(b);
}

TEST_P(StoreConformanceTest, LeaderResignFreesTheLease) {
  ASSERT_THAT(store().LeaderElect(kNodeA, kT0, seconds(60)), IsOk());
  // Only the holder can resign.
  ASSERT_THAT(store().LeaderResign(kNodeB), IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(
      bool b, store().LeaderElect(kNodeB, kT0 + seconds(1), seconds(60)));
  EXPECT_FALSE(b);

  ASSERT_THAT(store().LeaderResign(kNodeA), IsOk());
  SKED_ASSERT_OK_AND_ASSIGN(
      b, store().LeaderElect(kNodeB, kT0 + seconds(2), seconds(60)));
  EXPECT_TRUE(b);
  SKED_ASSERT_OK_AND_ASSIGN(
      bool a, store().LeaderElect(kNodeA, kT0 + seconds(3), seconds(60)));
  EXPECT_FALSE(a);
  // Resigning without holding the lease is OK.
  EXPECT_THAT(store().LeaderResign("node-c"), IsOk());
}

TEST_P(StoreConformanceTest, LeaderElectConcurrentCandidatesElectOne) {
  constexpr int kCandidates = 8;
  std::mutex mu;
  std::vector<std::string> winners;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int n = 0; n < kCandidates; ++n) {
    threads.emplace_back([&, n] {
      std::string node = "node-" + std::to_string(n);
      auto r = store().LeaderElect(node, kT0, seconds(10));
      std::lock_guard lock(mu);
      if (!r.ok()) {
        errors.push_back(r.status().ToString());
      } else if (*r) {
        winners.push_back(node);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_THAT(errors, IsEmpty());
  EXPECT_EQ(winners.size(), 1u);
}

// ===== Ping ==================================================================

TEST_P(StoreConformanceTest, PingAnswers) {
  EXPECT_THAT(store().Ping(), IsOk());
}

}  // namespace sked::testing
