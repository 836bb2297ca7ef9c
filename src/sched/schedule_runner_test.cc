#include "sched/schedule_runner.h"

#include <gtest/gtest.h>

#include <memory>

#include "core/time.h"
#include "sched/schedule_service.h"
#include "store/sqlite/sqlite_store.h"
#include "testing/fake_clock.h"

namespace sked::sched {
namespace {

using core::CatchUpPolicy;
using core::OverlapPolicy;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

core::Time At(const char* rfc3339) { return *core::ParseRfc3339(rfc3339); }

core::Schedule Hourly(OverlapPolicy overlap, CatchUpPolicy catch_up, core::Time next) {
  core::Schedule s;
  s.id = "s";
  s.cron = "0 * * * *";
  s.timezone = "UTC";
  s.task.type = "noop";
  s.task.runner = "builtin";
  s.overlap = overlap;
  s.catch_up = catch_up;
  s.next_run_at = next;
  return s;
}

std::vector<std::string> Times(const std::vector<core::Time>& ts) {
  std::vector<std::string> out;
  for (auto t : ts) out.push_back(core::FormatRfc3339(t));
  return out;
}

// --- PlanFiring: which occurrences one firing creates ------------------------

TEST(PlanFiringTest, OnTimeFiresTheOneOccurrenceAndMovesToTheNext) {
  ScheduleCalendar cal;
  auto s = Hourly(OverlapPolicy::kSkip, CatchUpPolicy::kLatest, At("2026-12-03T10:00:00Z"));
  auto plan = PlanFiring(s, At("2026-12-03T10:00:00.002Z"), seconds(5), seconds(60), cal);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(Times(plan->occurrences), std::vector<std::string>{"2026-12-03T10:00:00.000Z"});
  EXPECT_EQ(core::FormatRfc3339(*plan->next_run_at), "2026-12-03T11:00:00.000Z");
}

TEST(PlanFiringTest, AllowOverlapFiresWithinTheLookaheadOthersWaitForTheirTime) {
  ScheduleCalendar cal;
  const core::Time now = At("2026-12-03T09:59:57Z");
  auto allow = Hourly(OverlapPolicy::kAllow, CatchUpPolicy::kLatest, At("2026-12-03T10:00:00Z"));
  auto plan = PlanFiring(allow, now, seconds(5), seconds(60), cal);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Times(plan->occurrences), std::vector<std::string>{"2026-12-03T10:00:00.000Z"});
  auto skip = Hourly(OverlapPolicy::kSkip, CatchUpPolicy::kLatest, At("2026-12-03T10:00:00Z"));
  plan = PlanFiring(skip, now, seconds(5), seconds(60), cal);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->occurrences.empty());
  EXPECT_EQ(core::FormatRfc3339(*plan->next_run_at), "2026-12-03T10:00:00.000Z") << "not yet";
}

TEST(PlanFiringTest, CatchUpAfterThreeMissedHours) {
  ScheduleCalendar cal;
  const core::Time next = At("2026-12-03T07:00:00Z");
  const core::Time now = At("2026-12-03T10:30:00Z");  // 07:00, 08:00, 09:00, 10:00 missed
  auto all = PlanFiring(Hourly(OverlapPolicy::kAllow, CatchUpPolicy::kAll, next), now, seconds(0),
                        seconds(60), cal);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->occurrences.size(), 4u);
  EXPECT_EQ(core::FormatRfc3339(*all->next_run_at), "2026-12-03T11:00:00.000Z");
  auto latest = PlanFiring(Hourly(OverlapPolicy::kAllow, CatchUpPolicy::kLatest, next), now,
                           seconds(0), seconds(60), cal);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(Times(latest->occurrences), std::vector<std::string>{"2026-12-03T10:00:00.000Z"});
  auto none = PlanFiring(Hourly(OverlapPolicy::kAllow, CatchUpPolicy::kNone, next), now,
                         seconds(0), seconds(60), cal);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->occurrences.empty());
  EXPECT_EQ(core::FormatRfc3339(*none->next_run_at), "2026-12-03T11:00:00.000Z");
  // `none` still runs an occurrence that is only a little late.
  none = PlanFiring(Hourly(OverlapPolicy::kAllow, CatchUpPolicy::kNone, next),
                    At("2026-12-03T10:00:30Z"), seconds(0), seconds(60), cal);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(Times(none->occurrences), std::vector<std::string>{"2026-12-03T10:00:00.000Z"});
}

TEST(PlanFiringTest, OverlapPolicyTrimsACatchUpBatch) {
  ScheduleCalendar cal;
  const core::Time next = At("2026-12-03T07:00:00Z");
  const core::Time now = At("2026-12-03T10:30:00Z");
  auto skip = PlanFiring(Hourly(OverlapPolicy::kSkip, CatchUpPolicy::kAll, next), now, seconds(5),
                         seconds(60), cal);
  ASSERT_TRUE(skip.ok());
  EXPECT_EQ(Times(skip->occurrences), std::vector<std::string>{"2026-12-03T07:00:00.000Z"});
  auto cancel = PlanFiring(Hourly(OverlapPolicy::kCancelPrevious, CatchUpPolicy::kAll, next), now,
                           seconds(5), seconds(60), cal);
  ASSERT_TRUE(cancel.ok());
  EXPECT_EQ(Times(cancel->occurrences), std::vector<std::string>{"2026-12-03T10:00:00.000Z"});
}

TEST(PlanFiringTest, AYearOfMissedSecondsIsCappedPerFiring) {
  ScheduleCalendar cal;
  auto s = Hourly(OverlapPolicy::kAllow, CatchUpPolicy::kAll, At("2026-01-01T00:00:00Z"));
  s.cron = "* * * * * *";
  auto plan = PlanFiring(s, At("2026-12-01T00:00:00Z"), seconds(0), seconds(60), cal);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->occurrences.size(), static_cast<size_t>(kMaxOccurrencesPerFiring));
  EXPECT_EQ(core::FormatRfc3339(*plan->next_run_at), "2026-01-01T00:16:40.000Z");
}

TEST(PlanFiringTest, FollowsTheZonesDaylightSavingTime) {
  ScheduleCalendar cal;
  auto s = Hourly(OverlapPolicy::kAllow, CatchUpPolicy::kAll, At("2026-03-27T08:00:00Z"));
  s.cron = "0 9 * * *";  // 09:00 Berlin: 08:00 UTC in winter, 07:00 UTC in summer
  s.timezone = "Europe/Berlin";
  auto plan = PlanFiring(s, At("2026-03-30T12:00:00Z"), seconds(0), seconds(60), cal);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Times(plan->occurrences),
            (std::vector<std::string>{"2026-03-27T08:00:00.000Z", "2026-03-28T08:00:00.000Z",
                                      "2026-03-29T07:00:00.000Z", "2026-03-30T07:00:00.000Z"}));
}

// --- The runner against a real store ------------------------------------------

struct Bundle {
  testing::FakeClock clock{At("2026-12-03T09:58:00Z")};
  std::unique_ptr<core::Store> store;
  ScheduleCalendar calendar;
  std::unique_ptr<ScheduleService> service;

  Bundle() {
    store = std::move(store::OpenSqliteStore({.path = ":memory:"})).value();
    service = std::make_unique<ScheduleService>(*store, calendar, clock);
  }
  std::unique_ptr<ScheduleRunner> Runner() {
    ScheduleRunnerOptions o;
    o.lookahead = seconds(5);
    return std::make_unique<ScheduleRunner>(o, *store, calendar, clock);
  }
  size_t TaskCount() { return store->TaskList({.limit = 1000})->tasks.size(); }
};

TEST(ScheduleRunnerTest, CreatesEachOccurrenceOnceAcrossRunners) {
  Bundle b;
  auto created = b.service->Create(Hourly(OverlapPolicy::kAllow, CatchUpPolicy::kLatest, {}));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(core::FormatRfc3339(*created->next_run_at), "2026-12-03T10:00:00.000Z");
  auto a = b.Runner(), c = b.Runner();  // two nodes
  EXPECT_EQ(a->FireDue() + c->FireDue(), 0);  // 2 minutes early
  b.clock.Set(At("2026-12-03T09:59:56Z"));
  EXPECT_EQ(a->FireDue() + c->FireDue(), 1);
  EXPECT_EQ(a->FireDue() + c->FireDue(), 0);
  auto tasks = b.store->TaskList({.limit = 1000})->tasks;
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(core::FormatRfc3339(tasks[0].run_at), "2026-12-03T10:00:00.000Z");
  EXPECT_EQ(tasks[0].schedule_id, created->id);
  EXPECT_EQ(core::FormatRfc3339(*tasks[0].occurrence), "2026-12-03T10:00:00.000Z");
  EXPECT_EQ(core::FormatRfc3339(*b.service->Get(created->id)->next_run_at),
            "2026-12-03T11:00:00.000Z");
}

TEST(ScheduleRunnerTest, PausedSchedulesCreateNothingAndResumeFromNow) {
  Bundle b;
  auto s = b.service->Create(Hourly(OverlapPolicy::kAllow, CatchUpPolicy::kAll, {}));
  ASSERT_TRUE(s.ok());
  auto paused = b.service->Pause(s->id);
  ASSERT_TRUE(paused.ok());
  EXPECT_TRUE(paused->paused);
  EXPECT_FALSE(paused->next_run_at.has_value());
  auto runner = b.Runner();
  b.clock.Set(At("2026-12-03T13:30:00Z"));
  EXPECT_EQ(runner->FireDue(), 0);
  EXPECT_EQ(b.TaskCount(), 0u);
  auto resumed = b.service->Resume(s->id);
  ASSERT_TRUE(resumed.ok());
  EXPECT_EQ(core::FormatRfc3339(*resumed->next_run_at), "2026-12-03T14:00:00.000Z")
      << "what fell in the pause does not run";
  EXPECT_EQ(runner->FireDue(), 0);
  EXPECT_EQ(b.TaskCount(), 0u);
}

TEST(ScheduleRunnerTest, ANotifyUrlOfTheScheduleGoesToItsOccurrences) {
  Bundle b;
  core::Schedule in = Hourly(OverlapPolicy::kAllow, CatchUpPolicy::kLatest, {});
  in.notify_url = "http://127.0.0.1:9/s";
  in.task.labels = {{"team", "data"}};
  ASSERT_TRUE(b.service->Create(in).ok());
  b.clock.Set(At("2026-12-03T10:00:00Z"));
  auto runner = b.Runner();
  ASSERT_EQ(runner->FireDue(), 1);
  auto t = b.store->TaskList({.limit = 10})->tasks.at(0);
  EXPECT_EQ(t.notify_url, std::optional<std::string>("http://127.0.0.1:9/s"));
  EXPECT_EQ(t.labels.at("team"), "data");
  EXPECT_EQ(t.state, core::TaskState::kScheduled);
}

}  // namespace
}  // namespace sked::sched
