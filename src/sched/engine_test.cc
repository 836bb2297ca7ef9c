#include "sched/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>

#include "sched/task_service.h"
#include "store/sqlite/sqlite_store.h"
#include "testing/fake_clock.h"
#include "testing/fake_executor.h"
#include "testing/flaky_store.h"
#include "testing/task_factory.h"
#include "testing/wait.h"

namespace sked::sched {
namespace {

using core::ExecResult;
using core::TaskState;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::WaitFor;

// The engine under test, with its fakes (river's testBundle).
struct Bundle {
  testing::FakeClock clock{testing::kTestEpoch};
  std::unique_ptr<core::Store> store;
  testing::FlakyStore* flaky = nullptr;  // set when made with flaky = true
  testing::FakeExecutor executor{"builtin", /*durable=*/false};
  ExecutorRegistry registry;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<TaskService> service;
  testing::TaskFactory factory{testing::kTestEpoch};

  // A test that ended early (a failed ASSERT) may leave launches or failures
  // held, or the store down: stopping the engine would then wait forever.
  ~Bundle() {
    executor.HoldLaunches(false);
    if (flaky != nullptr) {
      flaky->ReleaseFailures();
      flaky->SetDown(false);
    }
  }

  core::Task Get(const std::string& id) { return *store->TaskGet(id); }
  TaskState StateOf(const std::string& id) { return Get(id).state; }
  std::string Create(const std::function<void(core::Task&)>& edit = {}) {
    auto r = service->Create(factory.Make(edit));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r->task.id;
  }
  // A task due in an hour, claimed at its run_at with a 10 s lease by a node
  // that then died: the lease is never renewed. Written past a flaky store.
  core::Task ClaimedByDeadNode() {
    core::Store& s = flaky != nullptr ? flaky->inner() : *store;
    auto t = factory.Make([&](core::Task& x) { x.run_at = clock.Now() + seconds(3600); });
    EXPECT_TRUE(s.TaskInsert(t).ok());
    auto claimed = s.TaskClaim({.node = "dead",
                                .now = t.run_at,
                                .lease = seconds(10),
                                .limit = 1,
                                .runners = {"builtin"},
                                .provisioning_runners = {}});
    EXPECT_TRUE(claimed.ok() && claimed->size() == 1u);
    return t;
  }
};

// Another node's row, as its heartbeat at `last_heartbeat` left it.
core::Status OtherNodeBeat(core::Store& store, const std::string& id, core::Time last_heartbeat,
                           int concurrency = 8) {
  return store.NodeHeartbeat({.id = id,
                              .version = "test",
                              .started_at = last_heartbeat - std::chrono::hours(1),
                              .last_heartbeat = last_heartbeat,
                              .concurrency = concurrency});
}

std::unique_ptr<Bundle> MakeBundle(const std::function<void(EngineOptions&)>& edit = {},
                                   bool flaky = false) {
  auto b = std::make_unique<Bundle>();
  auto s = store::OpenSqliteStore({.path = ":memory:"});
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  b->store = std::move(*s);
  if (flaky) {
    auto f = std::make_unique<testing::FlakyStore>(std::move(b->store));
    b->flaky = f.get();
    b->store = std::move(f);
  }
  b->registry.Add(&b->executor);
  EngineOptions o;
  o.node_id = "node-a";
  o.version = "test";
  o.concurrency = 8;
  o.lease = seconds(30);
  o.idle_poll = std::chrono::hours(1);  // only Wake() or a known run_at wakes it
  o.shutdown_grace = milliseconds(0);
  o.backoff_base = seconds(1);
  if (edit) edit(o);
  b->engine = std::make_unique<Engine>(o, *b->store, b->registry, b->clock);
  b->service = std::make_unique<TaskService>(*b->store, b->engine.get(), b->clock);
  EXPECT_TRUE(b->engine->Start().ok());
  return b;
}

TEST(EngineTest, RunsADueTaskAtOnceWhenWoken) {
  auto b = MakeBundle();
  std::string id = b->Create();
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(id); }));
  EXPECT_EQ(b->StateOf(id), TaskState::kRunning);
  ASSERT_TRUE(b->executor.Complete(id, {ExecResult::Kind::kSucceeded, 0, "done", ""}));
  ASSERT_TRUE(WaitFor([&] { return b->StateOf(id) == TaskState::kSucceeded; }));
  auto t = b->Get(id);
  EXPECT_EQ(t.attempt, 1);
  ASSERT_TRUE(t.result.has_value());
  EXPECT_EQ(t.result->output, "done");
  // The counter moves just after the store write the state comes from.
  EXPECT_TRUE(WaitFor([&] { return b->engine->Stats().succeeded == 1; }));
}

TEST(EngineTest, AnAttemptThatEndsAsItStartsIsRecordedByItsClaim) {
  auto b = MakeBundle();
  b->executor.SetInstant("noop", {ExecResult::Kind::kSucceeded, 0, "at once", ""});
  std::string slow = b->Create([](core::Task& t) { t.type = "fizz"; });
  std::string quick = b->Create();  // noop
  ASSERT_TRUE(WaitFor([&] { return b->StateOf(quick) == TaskState::kSucceeded; }));
  auto t = b->Get(quick);
  EXPECT_EQ(t.attempt, 1);
  ASSERT_TRUE(t.result.has_value());
  EXPECT_EQ(t.result->output, "at once");
  ASSERT_TRUE(t.started_at.has_value() && t.finished_at.has_value());
  EXPECT_GE(*t.finished_at, *t.started_at);
  EXPECT_FALSE(t.lease_owner.has_value());
  std::vector<core::LaunchParams> ran = b->executor.RanInstantly();
  ASSERT_EQ(ran.size(), 1u);
  EXPECT_EQ(ran[0].task.id, quick);
  EXPECT_EQ(ran[0].task.attempt, 1);
  EXPECT_EQ(ran[0].node, "node-a");
  // Its history: created, then the outcome; it was never launched.
  auto events = b->store->TaskEventList(quick);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].state, TaskState::kSucceeded);
  EXPECT_EQ((*events)[1].node, std::optional<std::string>("node-a"));
  // The other type is launched as usual.
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(slow); }));
  for (const auto& p : b->executor.Launches()) EXPECT_NE(p.task.id, quick);
  EXPECT_TRUE(WaitFor([&] {
    auto st = b->engine->Stats();
    return st.claimed == 2 && st.succeeded == 1 && st.running == 1;
  }));
}

// The webhook dispatcher is woken for the outcomes whose webhook the store
// queued (a task with a notify_url), whether the attempt ran in its claim or
// was launched, and not for the others.
TEST(EngineTest, OnlyAnOutcomeThatQueuesAWebhookWakesTheDispatcher) {
  std::atomic<int> wakes{0};
  auto b = MakeBundle([&](EngineOptions& o) { o.on_webhook_queued = [&] { ++wakes; }; });
  b->executor.SetInstant("noop", {ExecResult::Kind::kSucceeded, 0, "", ""});
  auto notify = [](core::Task& t) { t.notify_url = "http://127.0.0.1:9/hook"; };

  std::string quiet = b->Create();
  ASSERT_TRUE(WaitFor([&] { return b->StateOf(quiet) == TaskState::kSucceeded; }));
  std::string launched_quiet = b->Create([](core::Task& t) { t.type = "fizz"; });
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(launched_quiet); }));
  ASSERT_TRUE(b->executor.Complete(launched_quiet, {ExecResult::Kind::kSucceeded, 0, "", ""}));
  ASSERT_TRUE(WaitFor([&] { return b->engine->Stats().succeeded == 2; }));
  EXPECT_EQ(wakes.load(), 0);

  std::string instant = b->Create(notify);
  ASSERT_TRUE(WaitFor([&] { return b->StateOf(instant) == TaskState::kSucceeded; }));
  EXPECT_TRUE(WaitFor([&] { return wakes.load() == 1; }));

  std::string launched = b->Create([&](core::Task& t) {
    notify(t);
    t.type = "fizz";
  });
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(launched); }));
  ASSERT_TRUE(b->executor.Complete(launched, {ExecResult::Kind::kSucceeded, 0, "", ""}));
  EXPECT_TRUE(WaitFor([&] { return wakes.load() == 2; }));
}

TEST(EngineTest, AnInstantResultToRetryTakesTheRetryPath) {
  auto b = MakeBundle();
  b->executor.SetInstant("noop", {ExecResult::Kind::kFailed, 1, "", "boom"});
  std::string id = b->Create([](core::Task& t) { t.max_attempts = 2; });
  // One read of the row: two could see it scheduled before its claim, then claimed.
  ASSERT_TRUE(WaitFor([&] {
    core::Task t = b->Get(id);
    return t.state == TaskState::kScheduled && t.attempt == 1;
  }));
  EXPECT_GE(b->Get(id).run_at, b->clock.Now() + milliseconds(500));
  b->clock.Advance(seconds(1));
  ASSERT_TRUE(WaitFor([&] { return b->StateOf(id) == TaskState::kFailed; }));
  auto t = b->Get(id);
  EXPECT_EQ(t.attempt, 2);
  EXPECT_EQ(t.error.value_or(""), "boom");
  EXPECT_EQ(b->executor.RanInstantly().size(), 2u);
  EXPECT_TRUE(b->executor.Launches().empty());
  EXPECT_TRUE(WaitFor([&] {
    auto st = b->engine->Stats();
    return st.retried == 1 && st.failed == 1 && st.running == 0;
  }));
}

TEST(EngineTest, NeverStartsBeforeRunAt) {
  auto b = MakeBundle();
  std::string id = b->Create([&](core::Task& t) { t.run_at = b->clock.Now() + seconds(10); });
  b->clock.Advance(seconds(9) + milliseconds(999));
  b->engine->Wake();
  // The dispatcher has looked (it woke) and must still leave the task alone.
  EXPECT_FALSE(WaitFor([&] { return b->executor.IsLive(id); }, milliseconds(100)));
  EXPECT_EQ(b->StateOf(id), TaskState::kScheduled);
  b->clock.Advance(milliseconds(1));
  // No Wake(): the dispatcher sleeps until exactly the known run_at.
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(id); }));
  EXPECT_GE(*b->Get(id).started_at, b->Get(id).run_at);
}

// A task created for later than the dispatcher's next look costs no claim:
// the dispatcher finds it (or learns its run_at) when it looks anyway. One
// due sooner wakes it at once.
TEST(EngineTest, CreatingATaskForLaterDoesNotWakeTheDispatcher) {
  auto b = MakeBundle({}, /*flaky=*/true);
  const core::Time t0 = b->clock.Now();
  // Its first look, at start; then it sleeps for the idle poll (an hour).
  ASSERT_TRUE(WaitFor([&] { return b->flaky->ClaimCalls() >= 1; }));
  EXPECT_FALSE(WaitFor([&] { return b->flaky->ClaimCalls() > 1; }, milliseconds(100)));
  std::string first = b->Create([&](core::Task& t) { t.run_at = t0 + seconds(10); });
  // It woke for that task, looked, and now sleeps until its run_at.
  ASSERT_TRUE(WaitFor([&] { return b->flaky->ClaimCalls() >= 2; }));
  EXPECT_FALSE(WaitFor([&] { return b->flaky->ClaimCalls() > 2; }, milliseconds(100)));
  const int looks = b->flaky->ClaimCalls();

  std::string later = b->Create([&](core::Task& t) { t.run_at = t0 + seconds(20); });
  b->Create([&](core::Task& t) { t.run_at = t0 + seconds(10); });  // no earlier than its sleep
  EXPECT_FALSE(WaitFor([&] { return b->flaky->ClaimCalls() > looks; }, milliseconds(100)));

  std::string sooner = b->Create([&](core::Task& t) { t.run_at = t0 + seconds(5); });
  ASSERT_TRUE(WaitFor([&] { return b->flaky->ClaimCalls() > looks; }));
  EXPECT_FALSE(b->executor.IsLive(sooner));

  // Each starts at its time all the same, woken by nothing but the clock.
  b->clock.Advance(seconds(5));
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(sooner); }));
  b->clock.Advance(seconds(5));
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(first); }));
  EXPECT_FALSE(b->executor.IsLive(later));
  b->clock.Advance(seconds(10));
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(later); }));
}

TEST(EngineTest, FailedAttemptIsRetriedWithBackoffThenFails) {
  auto b = MakeBundle();
  std::string id = b->Create([](core::Task& t) { t.max_attempts = 2; });
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(id); }));
  b->executor.Complete(id, {ExecResult::Kind::kFailed, 1, "", "boom"});
  ASSERT_TRUE(WaitFor([&] { return b->StateOf(id) == TaskState::kScheduled; }));
  auto t = b->Get(id);
  // Backoff for the first failure: 1 s base with equal jitter -> [0.5 s, 1 s].
  EXPECT_GE(t.run_at, b->clock.Now() + milliseconds(500));
  EXPECT_LE(t.run_at, b->clock.Now() + seconds(1));
  EXPECT_FALSE(WaitFor([&] { return b->executor.IsLive(id); }, milliseconds(50)));
  b->clock.Advance(seconds(1));
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(id); }));
  EXPECT_EQ(b->Get(id).attempt, 2);
  b->executor.Complete(id, {ExecResult::Kind::kFailed, 1, "", "boom again"});
  ASSERT_TRUE(WaitFor([&] { return b->StateOf(id) == TaskState::kFailed; }));
  EXPECT_EQ(b->Get(id).error.value_or(""), "boom again");
}

TEST(EngineTest, PermanentFailureIsNotRetried) {
  auto b = MakeBundle();
  std::string id = b->Create();
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(id); }));
  b->executor.Complete(id, {ExecResult::Kind::kFailedPermanent, 2, "", "bad image"});
  ASSERT_TRUE(WaitFor([&] { return b->StateOf(id) == TaskState::kFailed; }));
  EXPECT_EQ(b->Get(id).attempt, 1);
}

TEST(EngineTest, LaunchErrorFailsTheAttempt) {
  auto b = MakeBundle();
  b->executor.SetLaunchError(core::InvalidArgumentError("image: cannot be pulled"));
  std::string id = b->Create();
  ASSERT_TRUE(WaitFor([&] { return b->StateOf(id) == TaskState::kFailed; }));
  EXPECT_EQ(b->Get(id).error.value_or(""), "image: cannot be pulled");
}

TEST(EngineTest, InterruptionReRunsWithoutUsingAnAttempt) {
  auto b = MakeBundle();
  std::string id = b->Create([](core::Task& t) { t.max_attempts = 1; });
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(id); }));
  b->executor.Complete(id, {ExecResult::Kind::kInterrupted, -1, "", "host reclaimed"});
  ASSERT_TRUE(WaitFor([&] { return b->Get(id).attempt == 2 && b->executor.IsLive(id); }));
  b->executor.Complete(id, {ExecResult::Kind::kSucceeded, 0, "ok", ""});
  ASSERT_TRUE(WaitFor([&] { return b->StateOf(id) == TaskState::kSucceeded; }));
}

TEST(EngineTest, TimeoutStopsTheAttempt) {
  auto b = MakeBundle();
  std::string id = b->Create([](core::Task& t) {
    t.timeout_s = 5;
    t.max_attempts = 1;
  });
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(id); }));
  b->clock.Advance(seconds(5));
  ASSERT_TRUE(WaitFor([&] { return b->StateOf(id) == TaskState::kFailed; }));
  EXPECT_EQ(b->Get(id).error.value_or(""), "timed out after 5s");
  EXPECT_FALSE(b->executor.IsLive(id));
  EXPECT_EQ(b->executor.Cancelled().size(), 1u);
}

// The timeout fires while Launch is still under way (a slow engine API), and
// its failure cannot be recorded yet: the attempt is stopped as soon as its
// handle is known, instead of running on beside its failure.
TEST(EngineTest, AnAttemptThatTimesOutWhileLaunchingIsStoppedOnceLaunched) {
  auto b = MakeBundle({}, /*flaky=*/true);
  b->executor.HoldLaunches(true);
  std::string id = b->Create([](core::Task& t) {
    t.timeout_s = 5;
    t.max_attempts = 1;
  });
  ASSERT_TRUE(WaitFor([&] { return b->executor.Waiting() == 1; }));
  b->flaky->SetDown(true);  // the failure waits in the engine, so the attempt stays its own
  b->clock.Advance(seconds(5));
  ASSERT_TRUE(WaitFor([&] { return b->engine->Stats().timed_out == 1; }));
  EXPECT_TRUE(b->executor.Cancelled().empty());  // no handle to stop yet
  b->executor.HoldLaunches(false);
  ASSERT_TRUE(WaitFor([&] { return b->executor.Cancelled().size() == 1; }));
  EXPECT_FALSE(b->executor.IsLive(id));
  b->flaky->SetDown(false);
  b->clock.Advance(seconds(1));  // the engine tries the store again after 200 ms
  ASSERT_TRUE(WaitFor([&] { return b->StateOf(id) == TaskState::kFailed; }));
  EXPECT_EQ(b->Get(id).error.value_or(""), "timed out after 5s");
}

TEST(EngineTest, CancelStopsTheLocalAttemptAndItsOutcomeIsIgnored) {
  auto b = MakeBundle();
  std::string id = b->Create();
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(id); }));
  auto t = b->service->Cancel(id);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->state, TaskState::kCancelled);
  EXPECT_FALSE(b->executor.IsLive(id));
  EXPECT_EQ(b->executor.Cancelled().size(), 1u);
  EXPECT_EQ(b->StateOf(id), TaskState::kCancelled);
}

TEST(EngineTest, LostLeaseStopsTheAttempt) {
  auto b = MakeBundle([](EngineOptions& o) { o.lease = seconds(3); });
  std::string id = b->Create();
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(id); }));
  // Another node cancels it in the store directly; this node learns it at the
  // next renewal.
  ASSERT_TRUE(b->store->TaskCancel({.id = id, .now = b->clock.Now(), .message = "x"}).ok());
  b->clock.Advance(seconds(1));
  ASSERT_TRUE(WaitFor([&] { return !b->executor.IsLive(id); }));
  EXPECT_EQ(b->engine->Stats().leases_lost, 1);
}

TEST(EngineTest, RescuesTasksOfADeadNode) {
  auto b = MakeBundle([](EngineOptions& o) { o.rescue_interval = seconds(1); });
  const core::Task t = b->ClaimedByDeadNode();
  b->clock.Set(t.run_at + seconds(11));
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(t.id); }));
  EXPECT_EQ(b->Get(t.id).attempt, 2);
  EXPECT_EQ(b->Get(t.id).lease_owner.value_or(""), "node-a");
  // Counted after the store's rescue commits, so maybe after the launch.
  EXPECT_TRUE(WaitFor([&] { return b->engine->Stats().rescued >= 1; }));
}

// The outage tests' engine: on a flaky store, with ClaimedByDeadNode's 10 s
// lease and a rescue every second.
std::unique_ptr<Bundle> OutageBundle() {
  return MakeBundle(
      [](EngineOptions& o) {
        o.lease = seconds(10);
        o.rescue_interval = seconds(1);
      },
      /*flaky=*/true);
}

// The dead node's task `t` was rescued, once, and runs here in its second
// attempt.
void ExpectRescuedOnce(Bundle& b, const core::Task& t) {
  ASSERT_TRUE(WaitFor([&] { return b.executor.IsLive(t.id); }));
  EXPECT_EQ(b.Get(t.id).attempt, 2);
  // Counted after the store's rescue commits, so maybe after the launch.
  ASSERT_TRUE(WaitFor([&] { return b.engine->Stats().rescued >= 1; }));
  EXPECT_EQ(b.engine->Stats().rescued, 1);
}

// A database outage longer than the lease: the task keeps running here, so
// when the store is back the leader must let this node renew the lease
// rather than rescue the task and run it a second time.
TEST(EngineTest, AfterAnOutageLeasesAreRenewedNotRescued) {
  auto b = OutageBundle();
  std::string id = b->Create();
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(id); }));
  ASSERT_TRUE(WaitFor([&] { return b->engine->Stats().leader; }));
  const core::Time t0 = b->clock.Now();

  b->flaky->SetDown(true);
  b->clock.Advance(seconds(15));  // the lease (t0 + 10 s) runs out meanwhile
  ASSERT_TRUE(WaitFor([&] { return !b->engine->Stats().leader; }));  // an election failed
  b->flaky->SetDown(false);

  // The first rescue tick after the outage: without the settling time it
  // would take the expired lease back here.
  b->clock.Advance(seconds(1));
  ASSERT_TRUE(WaitFor([&] { return b->engine->Stats().leader; }));
  // The next renewal (every lease / 3) extends the lease past the settling time.
  b->clock.Advance(seconds(3));
  ASSERT_TRUE(WaitFor([&] {
    auto t = b->store->TaskGet(id);
    return t.ok() && t->lease_expires_at && *t->lease_expires_at > t0 + seconds(25);
  }));
  b->clock.Advance(seconds(10));  // past the settling time: the lease holds
  ASSERT_TRUE(WaitFor([&] {
    auto t = b->store->TaskGet(id);
    return t.ok() && t->lease_expires_at && *t->lease_expires_at > t0 + seconds(30);
  }));

  EXPECT_EQ(b->engine->Stats().rescued, 0);
  EXPECT_EQ(b->engine->Stats().leases_lost, 0);
  EXPECT_TRUE(b->executor.IsLive(id));
  ASSERT_TRUE(b->executor.Complete(id, {ExecResult::Kind::kSucceeded, 0, "once", ""}));
  ASSERT_TRUE(WaitFor([&] { return b->StateOf(id) == TaskState::kSucceeded; }));
  EXPECT_EQ(b->Get(id).attempt, 1);
  EXPECT_EQ(b->executor.Launches().size(), 1u);
}

// The settling time delays a real rescue by one lease, no more.
TEST(EngineTest, AfterAnOutageADeadNodesTasksAreStillRescued) {
  auto b = OutageBundle();
  const core::Task t = b->ClaimedByDeadNode();
  b->clock.Set(t.run_at + seconds(5));
  b->flaky->SetDown(true);
  b->clock.Advance(seconds(10));  // its lease ran out during the outage
  ASSERT_TRUE(WaitFor([&] { return !b->engine->Stats().last_error.empty(); }));
  b->flaky->SetDown(false);
  b->clock.Advance(seconds(11));
  ExpectRescuedOnce(*b, t);
}

// An outage lasts until the last failing call was made. An error that comes
// back late (here: held until the clock has moved a whole lease on) marks
// when its call was made, not when it came back: stamped on its return, it
// would put the outage's end past the last tick, and no rescue would follow.
TEST(EngineTest, AnErrorThatComesBackLateDoesNotPostponeTheRescue) {
  auto b = OutageBundle();
  const core::Task t = b->ClaimedByDeadNode();
  b->clock.Set(t.run_at + seconds(5));
  b->flaky->HoldFailures();
  b->flaky->SetDown(true);
  b->clock.Advance(seconds(10));  // the dead node's lease runs out
  ASSERT_TRUE(WaitFor([&] { return b->flaky->FailuresWaiting() > 0; }));
  b->flaky->SetDown(false);
  b->clock.Advance(seconds(11));  // a lease and more since the failing calls
  b->flaky->ReleaseFailures();
  ExpectRescuedOnce(*b, t);
}

// --- Adoption of external attempts (containers) ----------------------------

// A store, a durable "docker" fake and a builtin fake, and an engine on them.
struct DurableBundle {
  testing::FakeClock clock{testing::kTestEpoch};
  std::unique_ptr<core::Store> store;
  testing::FakeExecutor docker{"docker", /*durable=*/true};
  testing::FakeExecutor builtin{"builtin", /*durable=*/false};
  ExecutorRegistry registry;
  std::unique_ptr<Engine> engine;
  testing::TaskFactory factory{testing::kTestEpoch};

  // cloud: the durable fake acts as a cloud runner (provisions, shared).
  explicit DurableBundle(bool cloud = false) {
    docker.SetCloud(cloud, cloud);
    store = std::move(store::OpenSqliteStore({.path = ":memory:"})).value();
    registry.Add(&docker);
    registry.Add(&builtin);
    EngineOptions o;
    o.node_id = "node-a";
    o.version = "test";
    o.lease = seconds(10);
    o.rescue_interval = seconds(1);
    o.idle_poll = std::chrono::hours(1);
    o.shutdown_grace = milliseconds(0);  // the fake clock would never end a grace
    engine = std::make_unique<Engine>(o, *store, registry, clock);
  }
  // As Bundle's: a held launch must not outlive a test that ended early.
  ~DurableBundle() { docker.HoldLaunches(false); }
  // A task of `runner` claimed by a node that then died, with `handle` saved.
  core::Task ClaimedByDeadNode(const std::string& runner, const std::string& handle) {
    auto t = factory.Make([&](core::Task& x) {
      x.runner = runner;
      x.type = runner == "docker" ? "container" : "noop";
      x.image = runner == "docker" ? "img" : "";
      x.run_at = clock.Now() + seconds(3600);
    });
    EXPECT_TRUE(store->TaskInsert(t).ok());
    auto claimed = store->TaskClaim({.node = "dead",
                                     .now = t.run_at,
                                     .lease = seconds(10),
                                     .limit = 1,
                                     .runners = {runner},
                                     .provisioning_runners = {}});
    EXPECT_TRUE(claimed.ok() && claimed->size() == 1u);
    if (!handle.empty()) {
      EXPECT_TRUE(
          store->TaskSetHandle({.id = t.id, .attempt = 1, .handle = handle, .now = t.run_at})
              .ok());
    }
    return t;
  }
};

TEST(EngineTest, AdoptsADeadNodesExternalAttemptInsteadOfRunningItAgain) {
  DurableBundle b;
  core::Task t = b.ClaimedByDeadNode("docker", "ext-1");
  b.docker.SetExternal({{t.id, 1, "ext-1"}});
  b.clock.Set(t.run_at + seconds(5));  // the dead node's lease still holds
  ASSERT_TRUE(b.engine->Start().ok());
  EXPECT_FALSE(WaitFor([&] { return !b.docker.Adopted().empty(); }, milliseconds(100)));
  b.clock.Set(t.run_at + seconds(11));  // now it has run out
  ASSERT_TRUE(WaitFor([&] { return b.docker.Adopted().size() == 1; }));
  auto adopted = *b.store->TaskGet(t.id);
  EXPECT_EQ(adopted.attempt, 1);
  EXPECT_EQ(adopted.lease_owner.value_or(""), "node-a");
  ASSERT_TRUE(b.docker.Complete(t.id, {ExecResult::Kind::kSucceeded, 0, "from before", ""}));
  ASSERT_TRUE(WaitFor([&] { return b.store->TaskGet(t.id)->state == TaskState::kSucceeded; }));
  EXPECT_EQ(b.store->TaskGet(t.id)->attempt, 1);
  EXPECT_TRUE(b.docker.Launches().empty()) << "the job was started again";
  EXPECT_EQ(b.engine->Stats().adopted, 1);
}

TEST(EngineTest, RemovesExternalAttemptsWhoseTaskMovedOn) {
  DurableBundle b;
  core::Task finished = b.ClaimedByDeadNode("docker", "ext-done");
  ASSERT_TRUE(b.store
                  ->TaskFinish({.id = finished.id,
                                .attempt = 1,
                                .state = TaskState::kSucceeded,
                                .now = finished.run_at})
                  .ok());
  b.docker.SetExternal({{finished.id, 1, "ext-done"}, {"no-such-task", 1, "ext-ghost"}});
  b.clock.Set(finished.run_at);
  ASSERT_TRUE(b.engine->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return b.docker.Cancelled().size() == 2; }));
  EXPECT_TRUE(b.docker.Adopted().empty());
}

TEST(EngineTest, AnAttemptWithAHandleIsRescuedOnlyAfterTheAdoptGrace) {
  DurableBundle b;
  core::Task t = b.ClaimedByDeadNode("docker", "ext-2");  // nobody can see it
  b.clock.Set(t.run_at + seconds(11));
  ASSERT_TRUE(b.engine->Start().ok());
  b.clock.Set(t.run_at + seconds(39));  // lease + 3 leases = 40 s
  EXPECT_FALSE(WaitFor([&] { return b.store->TaskGet(t.id)->state == TaskState::kScheduled; },
                       milliseconds(200)));
  b.clock.Set(t.run_at + seconds(41));
  ASSERT_TRUE(WaitFor([&] { return b.docker.Launches().size() == 1; }));
  EXPECT_EQ(b.docker.Launches()[0].task.attempt, 2);
}

TEST(EngineTest, ARunnerBackendThatIsDownDoesNotHoldBackRescues) {
  DurableBundle b;
  b.docker.SetListError(core::UnavailableError("no Docker engine"));
  core::Task t = b.ClaimedByDeadNode("builtin", "");
  b.clock.Set(t.run_at + seconds(11));
  ASSERT_TRUE(b.engine->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return b.builtin.IsLive(t.id); }));
  EXPECT_EQ(b.store->TaskGet(t.id)->attempt, 2);
}

TEST(EngineTest, NeverRunsMoreThanConcurrency) {
  auto b = MakeBundle([](EngineOptions& o) { o.concurrency = 3; });
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(b->Create());
  ASSERT_TRUE(WaitFor([&] { return b->executor.LiveCount() == 3; }));
  EXPECT_FALSE(WaitFor([&] { return b->executor.LiveCount() > 3; }, milliseconds(50)));
  int done = 0;
  while (done < 7) {
    ASSERT_TRUE(WaitFor([&] { return b->executor.LiveCount() > 0; }));
    for (const auto& id : ids)
      if (b->executor.Complete(id, {ExecResult::Kind::kSucceeded, 0, "", ""})) ++done;
    EXPECT_LE(b->executor.LiveCount(), 3u);
  }
  for (const auto& id : ids)
    ASSERT_TRUE(WaitFor([&] { return b->StateOf(id) == TaskState::kSucceeded; }));
  EXPECT_EQ(b->executor.Launches().size(), 7u);
}

// While claims come back full, claimers - 1 threads claim beside the
// dispatcher; together they still never pass the concurrency.
TEST(EngineTest, ABacklogIsClaimedByEveryClaimerWithinTheConcurrency) {
  for (int claimers : {1, 2, 3}) {
    auto b = MakeBundle(
        [&](EngineOptions& o) {
          o.concurrency = 5;
          o.claim_batch = 1;
          o.claimers = claimers;
        },
        /*flaky=*/true);
    b->flaky->SetClaimDelay(milliseconds(20));  // so that claims made at once overlap
    // However late a claimer's thread runs: the claims after the dispatcher's
    // first of the backlog wait for each other (its look at start is done).
    ASSERT_TRUE(WaitFor([&] { return b->flaky->ClaimCalls() == 1; }));
    b->flaky->SetClaimGate(claimers, /*after=*/1);
    for (int i = 0; i < 12; ++i) b->Create();
    ASSERT_TRUE(WaitFor([&] { return b->executor.LiveCount() == 5; })) << claimers;
    EXPECT_FALSE(WaitFor([&] { return b->executor.LiveCount() > 5; }, milliseconds(100)));
    EXPECT_EQ(b->flaky->MaxClaimsInFlight(), claimers);
  }
}

// Another node that claims takes its share of the claimers: with two nodes,
// each keeps one claim in flight. One that claims nothing (concurrency 0: it
// serves only the API, or stopped) or whose heartbeat is older than a lease
// takes none.
TEST(EngineTest, TheNodesThatClaimShareTheClaimers) {
  struct Other {
    int concurrency;
    core::Duration heartbeat_age;
    int claims_in_flight;
  };
  for (const Other& other : {Other{8, seconds(0), 1}, Other{8, seconds(29), 1},
                             Other{0, seconds(0), 2}, Other{8, seconds(31), 2}}) {
    auto b = MakeBundle(
        [&](EngineOptions& o) {
          o.concurrency = 5;
          o.claim_batch = 1;
          o.claimers = 2;
        },
        /*flaky=*/true);
    ASSERT_TRUE(
        OtherNodeBeat(*b->store, "node-b", b->clock.Now() - other.heartbeat_age, other.concurrency)
            .ok());
    b->flaky->SetClaimDelay(milliseconds(20));
    ASSERT_TRUE(WaitFor([&] { return b->flaky->ClaimCalls() == 1; }));  // the look at start
    b->flaky->SetClaimGate(other.claims_in_flight, /*after=*/1);
    for (int i = 0; i < 12; ++i) b->Create();
    ASSERT_TRUE(WaitFor([&] { return b->executor.LiveCount() == 5; })) << other.concurrency;
    EXPECT_EQ(b->flaky->MaxClaimsInFlight(), other.claims_in_flight)
        << "other node: concurrency " << other.concurrency << ", heartbeat "
        << std::chrono::duration_cast<seconds>(other.heartbeat_age).count() << " s old";
  }
}

// The node's row says how many attempts it runs, and once it stops, none:
// the nodes still claiming take its share at their next count.
TEST(EngineTest, TheHeartbeatSaysTheConcurrencyAndStopSaysZero) {
  auto b = MakeBundle([](EngineOptions& o) { o.concurrency = 7; });
  auto concurrency = [&] {
    auto nodes = b->store->NodeList();
    EXPECT_TRUE(nodes.ok());
    return nodes.ok() && nodes->size() == 1 ? (*nodes)[0].concurrency : -1;
  };
  ASSERT_TRUE(WaitFor([&] { return concurrency() == 7; }));
  b->engine->Stop();
  EXPECT_EQ(concurrency(), 0);
}

// A node's id is new at each start: the leader removes the rows of nodes
// silent for longer than the retention, and only those.
TEST(EngineTest, TheLeaderRemovesNodesSilentForLongerThanTheRetention) {
  auto b = MakeBundle([](EngineOptions& o) { o.node_retention = std::chrono::hours(1); });
  ASSERT_TRUE(WaitFor([&] { return b->engine->Stats().leader; }));
  ASSERT_TRUE(OtherNodeBeat(*b->store, "node-gone", b->clock.Now() - std::chrono::hours(2)).ok());
  ASSERT_TRUE(
      OtherNodeBeat(*b->store, "node-quiet", b->clock.Now() - std::chrono::minutes(50)).ok());
  auto ids = [&] {
    std::set<std::string> out;
    auto nodes = b->store->NodeList();
    EXPECT_TRUE(nodes.ok());
    if (nodes.ok())
      for (const core::NodeInfo& n : *nodes) out.insert(n.id);
    return out;
  };
  // The next look (at most a minute away) removes the node silent for 2 h;
  // by then the other has been silent for 51 min, within the hour.
  b->clock.Advance(std::chrono::minutes(1));
  ASSERT_TRUE(WaitFor([&] { return ids().count("node-gone") == 0; }));
  EXPECT_EQ(ids(), (std::set<std::string>{"node-a", "node-quiet"}));
  // Ten minutes on, it is past the hour too; this node heartbeats throughout.
  b->clock.Advance(std::chrono::minutes(10));
  ASSERT_TRUE(WaitFor([&] { return ids().count("node-quiet") == 0; }));
  EXPECT_EQ(ids(), (std::set<std::string>{"node-a"}));
}

TEST(EngineTest, NoRetentionKeepsEveryNode) {
  auto b = MakeBundle([](EngineOptions& o) { o.node_retention = core::Duration::zero(); });
  ASSERT_TRUE(WaitFor([&] { return b->engine->Stats().leader; }));
  ASSERT_TRUE(OtherNodeBeat(*b->store, "node-gone", b->clock.Now() - std::chrono::hours(47)).ok());
  bool gone_listed = false;
  // This node's heartbeat at `at` or later. One look of the leader (a prune,
  // were there a retention) comes between two of them.
  auto beat_since = [&](core::Time at) {
    auto nodes = b->store->NodeList();
    if (!nodes.ok()) return false;
    gone_listed = false;
    bool beat = false;
    for (const core::NodeInfo& n : *nodes) {
      if (n.id == "node-gone") gone_listed = true;
      if (n.id == "node-a" && n.last_heartbeat >= at) beat = true;
    }
    return beat;
  };
  for (int i = 0; i < 2; ++i) {
    b->clock.Advance(std::chrono::minutes(5));
    const core::Time at = b->clock.Now();
    ASSERT_TRUE(WaitFor([&] { return beat_since(at); }));
  }
  EXPECT_TRUE(gone_listed);
}

TEST(EngineTest, StopGivesBackUnfinishedLeasesWithoutUsingAnAttempt) {
  auto b = MakeBundle();
  std::string id = b->Create([](core::Task& t) { t.max_attempts = 1; });
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(id); }));
  b->engine->Stop();
  auto t = b->Get(id);
  EXPECT_EQ(t.state, TaskState::kScheduled);
  EXPECT_EQ(t.ChargedAttempts(), 0);
  EXPECT_FALSE(t.lease_owner.has_value());
}

TEST(EngineTest, CallbackDecidesAndTheRunnerResultIsIgnored) {
  auto b = MakeBundle();
  std::string id = b->Create();
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(id); }));
  auto r = b->service->Callback({.id = id,
                                 .attempt = 1,
                                 .status = CallbackStatus::kFailed,
                                 .exit_code = 3,
                                 .message = "job said no"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, TaskState::kFailed);
  EXPECT_FALSE(b->executor.IsLive(id));
  // The same report again: OK, nothing changes. A different one: conflict.
  auto again = b->service->Callback(
      {.id = id, .attempt = 1, .status = CallbackStatus::kFailed, .exit_code = 3, .message = {}});
  EXPECT_TRUE(again.ok());
  auto other = b->service->Callback(
      {.id = id, .attempt = 1, .status = CallbackStatus::kSucceeded, .exit_code = 0, .message = {}});
  EXPECT_EQ(other.status().code(), core::StatusCode::kAborted);
  auto stale = b->service->Callback(
      {.id = id, .attempt = 2, .status = CallbackStatus::kSucceeded, .exit_code = 0, .message = {}});
  EXPECT_EQ(stale.status().code(), core::StatusCode::kAborted);
  EXPECT_EQ(b->StateOf(id), TaskState::kFailed);
}

TEST(EngineTest, ASlowProvisioningLaunchHoldsUpNoOtherTask) {
  DurableBundle b(/*cloud=*/true);
  b.docker.HoldLaunches(true);
  ASSERT_TRUE(b.engine->Start().ok());
  auto cloud = b.factory.Make([](core::Task& t) {
    t.runner = "docker";
    t.type = "container";
    t.image = "img";
  });
  auto local = b.factory.Make({});
  ASSERT_TRUE(b.store->TaskInsert(cloud).ok());
  ASSERT_TRUE(b.store->TaskInsert(local).ok());
  b.engine->Wake();
  // The cloud launch is stuck; the in-process task runs regardless.
  ASSERT_TRUE(WaitFor([&] { return b.docker.Waiting() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return b.builtin.IsLive(local.id); }));
  EXPECT_EQ(b.store->TaskGet(cloud.id)->state, TaskState::kProvisioning);
  b.docker.HoldLaunches(false);
  // The runner's placement is saved: the instance id and a line of history.
  ASSERT_TRUE(WaitFor([&] { return b.store->TaskGet(cloud.id)->instance_id.has_value(); }));
  const std::string handle = "fake-" + cloud.id + "-1";
  EXPECT_EQ(*b.store->TaskGet(cloud.id)->instance_id, handle);
  auto events = *b.store->TaskEventList(cloud.id);
  EXPECT_TRUE(std::any_of(events.begin(), events.end(),
                          [&](const auto& e) { return e.message == "placed on " + handle; }));
  b.engine->Stop();  // waits for no launch thread: none is left
}

TEST(EngineTest, OnlyTheLeaderReconcilesASharedRunner) {
  DurableBundle b(/*cloud=*/true);
  b.docker.SetExternal({{"no-such-task", 1, "stray"}});
  ASSERT_TRUE(*b.store->LeaderElect("node-b", b.clock.Now(), seconds(30)));
  ASSERT_TRUE(b.engine->Start().ok());
  b.clock.Advance(seconds(5));  // several maintenance rounds, node-b still leads
  EXPECT_FALSE(WaitFor([&] { return !b.docker.Cancelled().empty(); }, milliseconds(200)));
  b.clock.Advance(seconds(30));  // node-b's lease ran out: node-a leads
  ASSERT_TRUE(WaitFor([&] { return b.engine->Stats().leader; }));
  b.clock.Advance(seconds(5));  // its next maintenance round reconciles
  ASSERT_TRUE(WaitFor([&] { return b.docker.Cancelled().size() == 1; }));
  EXPECT_EQ(b.docker.Cancelled()[0], "stray");
}

TEST(EngineTest, AnInterruptedCallbackReRunsAtOnceAndStopsTheOldAttempt) {
  auto b = MakeBundle();
  std::string id = b->Create([](core::Task& t) { t.max_attempts = 1; });
  ASSERT_TRUE(WaitFor([&] { return b->executor.IsLive(id); }));
  auto r = b->service->Callback({.id = id,
                                 .attempt = 1,
                                 .status = CallbackStatus::kInterrupted,
                                 .exit_code = std::nullopt,
                                 .message = "spot notice"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Re-run at once on a fresh attempt that costs nothing...
  ASSERT_TRUE(WaitFor([&] { return b->Get(id).attempt == 2; }));
  EXPECT_EQ(b->Get(id).ChargedAttempts(), 1);
  // ...and the interrupted attempt is stopped through its runner, which
  // decides what that means (ec2-spot leaves a reclaimed instance to EC2).
  EXPECT_EQ(b->executor.Cancelled(), std::vector<std::string>{"fake-" + id + "-1"});
}

TEST(RetryBackoffTest, DoublesCapsAndScales) {
  using core::Duration;
  EXPECT_EQ(RetryBackoff(1, seconds(1), seconds(60), 1.0, 1.0), seconds(1));
  EXPECT_EQ(RetryBackoff(1, seconds(1), seconds(60), 1.0, 0.0), milliseconds(500));
  EXPECT_EQ(RetryBackoff(3, seconds(1), seconds(60), 1.0, 1.0), seconds(4));
  EXPECT_EQ(RetryBackoff(30, seconds(1), seconds(60), 1.0, 1.0), seconds(60));
  EXPECT_EQ(RetryBackoff(3, seconds(1), seconds(60), 0.01, 1.0), milliseconds(40));
}

}  // namespace
}  // namespace sked::sched
