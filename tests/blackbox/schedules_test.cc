// Schedules: POST /v1/schedules turns a cron expression into tasks, one per
// occurrence, each at its cron time; pause, resume, delete and the listing of
// a schedule's occurrences; bad input is 400 and stores nothing.
#include <gmock/gmock.h>

#include <set>
#include <string>
#include <vector>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

class SchedulesTest : public BlackboxTest {
 protected:
  json::object CreateSchedule(const json::object& body) {
    HttpResponse r = api().PostJson("/v1/schedules", body);
    if (r.status != 201) throw std::runtime_error("create schedule: " + Describe(r));
    return r.Object();
  }
  std::vector<json::object> Occurrences(const std::string& schedule_id) {
    return ListAll("schedule_id=" + schedule_id + "&order=asc&limit=1000");
  }
};

TEST_F(SchedulesTest, EverySecondCreatesOneTaskPerSecondStartingOnTime) {
  StartServer();
  json::object s = CreateSchedule({{"cron", "* * * * * *"},
                                   {"timezone", "Europe/Berlin"},
                                   {"task", {{"type", "noop"}, {"labels", {{"from", "cron"}}}}}});
  const std::string id = Str(s, "id");
  EXPECT_TRUE(IsUuidV7(id));
  EXPECT_EQ(Str(s, "cron"), "* * * * * *");
  EXPECT_EQ(Str(s, "overlap"), "allow");
  EXPECT_EQ(Str(s, "catch_up"), "latest");
  EXPECT_FALSE(s.at("paused").as_bool());
  const SysMs first = TimeField(s, "next_run_at");
  EXPECT_EQ(first.time_since_epoch() % seconds(1), milliseconds(0)) << "a whole second";
  EXPECT_GT(first, TimeField(s, "created_at"));

  ASSERT_TRUE(WaitUntil([&] {
    int done = 0;
    for (const auto& t : Occurrences(id)) done += Str(t, "state") == "succeeded";
    return done >= 3;
  })) << "three occurrences did not run";
  std::vector<json::object> occ = Occurrences(id);
  std::set<SysMs> seen;
  for (const auto& t : occ) {
    SCOPED_TRACE(Dump(t));
    EXPECT_EQ(Str(t, "schedule_id"), id);
    const SysMs at = TimeField(t, "occurrence");
    EXPECT_EQ(TimeField(t, "run_at"), at);
    EXPECT_TRUE(seen.insert(at).second) << "an occurrence was created twice";
    EXPECT_GE(at, first);
    EXPECT_EQ(Str(Obj(t, "labels"), "from"), "cron");
    if (Str(t, "state") == "succeeded") EXPECT_GE(TimeField(t, "started_at"), at);
  }
  // Consecutive seconds, none missing.
  SysMs expect = first;
  for (const SysMs& at : seen) {
    EXPECT_EQ(at, expect);
    expect = at + seconds(1);
  }
}

TEST_F(SchedulesTest, PauseStopsOccurrencesResumeStartsThemDeleteRemovesTheSchedule) {
  StartServer();
  const std::string id =
      Str(CreateSchedule({{"cron", "* * * * * *"}, {"task", {{"type", "noop"}}}}), "id");
  ASSERT_TRUE(WaitUntil([&] { return !Occurrences(id).empty(); }));

  HttpResponse paused = api().PostJson("/v1/schedules/" + id + "/pause", json::object{});
  ASSERT_EQ(paused.status, 200) << Describe(paused);
  const SysMs paused_at = NowMs();
  EXPECT_TRUE(paused.Object().at("paused").as_bool());
  EXPECT_TRUE(IsNull(paused.Object(), "next_run_at"));
  const size_t at_pause = Occurrences(id).size();
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_EQ(Occurrences(id).size(), at_pause) << "a paused schedule made tasks";
  // Occurrences made ahead of their time were cancelled: nothing after the
  // pause ran.
  for (const auto& t : Occurrences(id)) {
    if (TimeField(t, "run_at") > paused_at + milliseconds(5)) {
      EXPECT_EQ(Str(t, "state"), "cancelled") << Dump(t);
    }
  }

  HttpResponse resumed = api().PostJson("/v1/schedules/" + id + "/resume", json::object{});
  ASSERT_EQ(resumed.status, 200) << Describe(resumed);
  EXPECT_FALSE(resumed.Object().at("paused").as_bool());
  EXPECT_GT(TimeField(resumed.Object(), "next_run_at"), NowMs() - seconds(1));
  ASSERT_TRUE(WaitUntil([&] { return Occurrences(id).size() > at_pause; }));

  HttpResponse list = api().Get("/v1/schedules");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(Arr(list.Object(), "schedules").size(), 1u);

  ASSERT_EQ(api().Delete("/v1/schedules/" + id).status, 204);
  ExpectError(api().Get("/v1/schedules/" + id), 404, "not_found");
  ExpectError(api().Delete("/v1/schedules/" + id), 404, "not_found");
  ExpectError(api().PostJson("/v1/schedules/" + id + "/pause", json::object{}), 404, "not_found");
  // Its tasks stay; no new ones come, and none made ahead runs.
  const size_t after_delete = Occurrences(id).size();
  const SysMs deleted_at = NowMs();
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_EQ(Occurrences(id).size(), after_delete);
  EXPECT_GT(after_delete, 0u);
  for (const auto& t : Occurrences(id)) {
    if (TimeField(t, "run_at") > deleted_at + milliseconds(5)) {
      EXPECT_EQ(Str(t, "state"), "cancelled") << Dump(t);
    }
  }
}

TEST_F(SchedulesTest, SkipOverlapNeverRunsTwoOccurrencesAtOnce) {
  StartServer({.time_scale = 0.5});  // fizz runs 1.5 s; the schedule fires every second
  const std::string id = Str(CreateSchedule({{"cron", "* * * * * *"},
                                             {"overlap", "skip"},
                                             {"task", {{"type", "fizz"}}}}),
                             "id");
  std::this_thread::sleep_for(milliseconds(4500));
  ASSERT_EQ(api().PostJson("/v1/schedules/" + id + "/pause", json::object{}).status, 200);
  std::vector<json::object> occ = Occurrences(id);
  ASSERT_GE(occ.size(), 2u);
  for (const auto& t : occ) WaitForState(Str(t, "id"), "succeeded", seconds(10));
  // Each occurrence was created only after the one before had finished.
  for (size_t i = 1; i < occ.size(); ++i) {
    json::object prev = GetTask(Str(occ[i - 1], "id"));
    EXPECT_GE(TimeField(occ[i], "created_at"), TimeField(prev, "finished_at"))
        << Dump(prev) << " overlaps " << Dump(occ[i]);
  }
}

TEST_F(SchedulesTest, BadSchedulesAre400AndStoreNothing) {
  StartServer();
  struct Case {
    std::string body;
    std::string field;
  };
  const std::vector<Case> cases = {
      {R"({"task": {"type": "noop"}})", "cron"},
      {R"({"cron": "61 * * * *", "task": {"type": "noop"}})", "cron"},
      {R"({"cron": "* * * *", "task": {"type": "noop"}})", "cron"},
      {R"({"cron": "0 0 30 2 *", "task": {"type": "noop"}})", "cron"},
      {R"({"cron": "@reboot", "task": {"type": "noop"}})", "cron"},
      {R"({"cron": "* * * * *"})", "task"},
      {R"({"cron": "* * * * *", "timezone": "Mars/Olympus", "task": {"type": "noop"}})",
       "timezone"},
      {R"({"cron": "* * * * *", "timezone": "../../etc/passwd", "task": {"type": "noop"}})",
       "timezone"},
      {R"({"cron": "* * * * *", "overlap": "sometimes", "task": {"type": "noop"}})", "overlap"},
      {R"({"cron": "* * * * *", "catch_up": 3, "task": {"type": "noop"}})", "catch_up"},
      {R"({"cron": "* * * * *", "paused": "no", "task": {"type": "noop"}})", "paused"},
      {R"({"cron": "* * * * *", "task": {"type": "noop", "run_at": "2030-01-01T00:00:00Z"}})",
       "task.run_at"},
      {R"({"cron": "* * * * *", "task": {"type": "noop", "idempotency_key": "k"}})",
       "task.idempotency_key"},
      {R"({"cron": "* * * * *", "task": {"type": "nope"}})", "task.type"},
      {R"({"cron": "* * * * *", "task": {"type": "noop"}, "every": "day"})", "every"},
      {R"({"cron": "* * * * *", "notify_url": "ftp://x", "task": {"type": "noop"}})",
       "notify_url"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    ExpectError(api().PostRaw("/v1/schedules", c.body), 400, "invalid_argument", c.field);
  }
  ExpectError(api().PostRaw("/v1/schedules", "{\"cron\": "), 400, "invalid_argument");
  ExpectError(api().Get("/v1/schedules?limit=0"), 400, "invalid_argument");
  ExpectError(api().Get("/v1/schedules?color=red"), 400, "invalid_argument");
  ExpectError(api().Get("/v1/schedules/0193a6c4-0000-7000-8000-000000000000"), 404, "not_found");
  HttpResponse list = api().Get("/v1/schedules");
  ASSERT_EQ(list.status, 200);
  EXPECT_TRUE(Arr(list.Object(), "schedules").empty());
  EXPECT_EQ(CountTasks(), 0u);
}

}  // namespace
}  // namespace sked::blackbox
