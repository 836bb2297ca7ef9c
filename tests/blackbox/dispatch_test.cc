// When tasks run: never before run_at, soon after it, once each, and how run_at
// is read and echoed.
#include <gmock/gmock.h>

#include <algorithm>
#include <map>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

using DispatchTest = BlackboxTest;

size_t Occurrences(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1))
    ++n;
  return n;
}

// "Soon after run_at": the spec promises milliseconds under normal load; a shared
// CI machine gets a generous bound.
constexpr milliseconds kStartSlack = milliseconds(1000);

TEST_F(DispatchTest, FutureTaskStaysScheduledUntilRunAtThenStartsSoonAfter) {
  StartServer();
  SysMs run_at = NowMs() + milliseconds(1500);
  std::string id = Str(CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(run_at)}})), "id");

  // Watch it until just before run_at: it must not have started.
  int looks = 0;
  while (NowMs() < run_at - milliseconds(50)) {
    json::object t = GetTask(id);
    ASSERT_EQ(Str(t, "state"), "scheduled") << "started early: " << Dump(t);
    ASSERT_TRUE(IsNull(t, "started_at")) << Dump(t);
    ++looks;
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_GT(looks, 0);

  json::object done = WaitForState(id, "succeeded");
  SysMs started = TimeField(done, "started_at");
  EXPECT_EQ(TimeField(done, "run_at"), run_at);
  EXPECT_GE(started, run_at);
  EXPECT_LE(started - run_at, kStartSlack);
  for (const auto& e : Events(id)) {
    if (Str(e, "state") == "running") {
      EXPECT_GE(TimeField(e, "at"), run_at) << Dump(e);
    }
  }
}

TEST_F(DispatchTest, StaggeredTasksEachStartAtOrAfterTheirRunAtInOrder) {
  StartServer();
  SysMs base = NowMs() + milliseconds(400);
  std::vector<std::string> ids(5);
  std::vector<SysMs> run_ats(5);
  for (int i = 4; i >= 0; --i) {  // created latest-first
    run_ats[i] = base + milliseconds(250) * i;
    ids[i] = Str(CreateTask(TaskBody("noop", {{"run_at", Rfc3339(run_ats[i])}})), "id");
  }
  std::vector<SysMs> starts;
  for (int i = 0; i < 5; ++i) {
    json::object done = WaitForState(ids[i], "succeeded");
    SysMs started = TimeField(done, "started_at");
    EXPECT_GE(started, run_ats[i]) << "task " << i;
    EXPECT_LE(started - run_ats[i], kStartSlack) << "task " << i;
    starts.push_back(started);
  }
  EXPECT_TRUE(std::is_sorted(starts.begin(), starts.end()));
}

TEST_F(DispatchTest, PastRunAtRunsAtOnceAndEchoesInUtc) {
  StartServer();
  json::object t = CreateTask(TaskBody("fizz", {{"run_at", 1700000000}}));
  EXPECT_EQ(Str(t, "run_at"), "2023-11-14T22:13:20.000Z");
  json::object done = WaitForState(Str(t, "id"), "succeeded");
  EXPECT_LE(TimeField(done, "started_at") - TimeField(done, "created_at"), kStartSlack);
}

TEST_F(DispatchTest, EpochSecondsRunAtIsEchoedAsRfc3339Utc) {
  StartServer();
  json::object t = CreateTask(TaskBody("fizz", {{"run_at", 4102444800LL}}));
  EXPECT_EQ(Str(t, "run_at"), "2100-01-01T00:00:00.000Z");
  EXPECT_EQ(Str(GetTask(Str(t, "id")), "run_at"), "2100-01-01T00:00:00.000Z");
}

TEST_F(DispatchTest, OffsetRunAtIsEchoedInUtc) {
  StartServer();
  EXPECT_EQ(Str(CreateTask(TaskBody("fizz", {{"run_at", "2099-06-01T12:00:00+02:00"}})), "run_at"),
            "2099-06-01T10:00:00.000Z");
  EXPECT_EQ(
      Str(CreateTask(TaskBody("fizz", {{"run_at", "2099-06-01T12:00:00.250-05:30"}})), "run_at"),
      "2099-06-01T17:30:00.250Z");
  // An offset that crosses midnight and the year.
  EXPECT_EQ(Str(CreateTask(TaskBody("fizz", {{"run_at", "2099-01-01T01:00:00+03:00"}})), "run_at"),
            "2098-12-31T22:00:00.000Z");
}

TEST_F(DispatchTest, NearFutureOffsetRunAtIsHonoured) {
  StartServer();
  // run_at 1 s ahead, written in +02:00.
  SysMs run_at = std::chrono::ceil<seconds>(NowMs() + milliseconds(1000));
  SysMs local = run_at + std::chrono::hours(2);
  std::string s = Rfc3339(local);
  s = s.substr(0, 19) + "+02:00";  // whole seconds, then the offset
  json::object t = CreateTask(TaskBody("noop", {{"run_at", s}}));
  EXPECT_EQ(TimeField(t, "run_at"), run_at);
  json::object done = WaitForState(Str(t, "id"), "succeeded");
  EXPECT_GE(TimeField(done, "started_at"), run_at);
}

TEST_F(DispatchTest, ManyDueTasksEachRunExactlyOnce) {
  StartServer();
  json::array bodies;
  for (int i = 0; i < 30; ++i) bodies.push_back(TaskBody(i % 2 ? "fizz" : "foo"));
  std::vector<json::object> created = CreateBatch(bodies);
  for (const auto& t : created) {
    std::string id = Str(t, "id");
    json::object done = WaitForState(id, "succeeded", seconds(20));
    EXPECT_EQ(Int(done, "attempt"), 1) << Dump(done);
  }
  std::string log = server().ReadLog();
  for (const auto& t : created) {
    std::string id = Str(t, "id");
    std::string line = (Str(t, "type") == "fizz" ? "Fizz " : "Foo ") + id;
    EXPECT_EQ(Occurrences(log, line), 1u) << line;
    int running = 0;
    for (const auto& e : Events(id)) running += Str(e, "state") == "running";
    EXPECT_EQ(running, 1) << id;
  }
}

TEST_F(DispatchTest, ConcurrencyOneRunsOneTaskAtATime) {
  StartServer({.concurrency = 1});
  std::vector<json::object> created =
      CreateBatch({TaskBody("fizz"), TaskBody("fizz"), TaskBody("fizz"), TaskBody("fizz")});
  std::vector<std::pair<SysMs, SysMs>> spans;
  for (const auto& t : created) {
    json::object done = WaitForState(Str(t, "id"), "succeeded");
    spans.emplace_back(TimeField(done, "started_at"), TimeField(done, "finished_at"));
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    EXPECT_GE(spans[i].first, spans[i - 1].second) << "two tasks ran at once with --concurrency 1";
  }
}

}  // namespace
}  // namespace sked::blackbox
