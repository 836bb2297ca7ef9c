// Queues: PUT /v1/queues/{name} sets max_running and max_per_second, GET
// /v1/queues shows them with counts, and the scheduler keeps every queue
// within its limits without holding back the others.
#include <gmock/gmock.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

using QueuesTest = BlackboxTest;

// The (claimed, finished) times of a finished task, from its history.
std::pair<SysMs, SysMs> RunSpan(const std::vector<json::object>& events) {
  SysMs claimed{}, finished{};
  for (const auto& e : events) {
    const std::string state = Str(e, "state");
    if (state == "running") claimed = TimeField(e, "at");
    if (state == "succeeded" || state == "failed") finished = TimeField(e, "at");
  }
  // An attempt run in its claim (a no-op) has one line: the outcome's.
  if (claimed == SysMs{}) claimed = finished;
  return {claimed, finished};
}

json::object FindQueue(const json::object& list, const std::string& name) {
  for (const auto& q : Arr(list, "queues")) {
    if (Str(q.as_object(), "name") == name) return q.as_object();
  }
  return {};
}

TEST_F(QueuesTest, PutSetsLimitsAndGetListsThemWithCounts) {
  StartServer();
  HttpResponse put =
      api().PutJson("/v1/queues/emails", {{"max_running", 3}, {"max_per_second", 10.5}});
  ASSERT_EQ(put.status, 200) << Describe(put);
  json::object q = put.Object();
  EXPECT_EQ(Str(q, "name"), "emails");
  EXPECT_EQ(Int(q, "max_running"), 3);
  EXPECT_DOUBLE_EQ(q.at("max_per_second").to_number<double>(), 10.5);
  EXPECT_EQ(Int(q, "running"), 0);
  EXPECT_EQ(Int(q, "scheduled"), 0);
  EXPECT_FALSE(IsNull(q, "updated_at"));

  CreateTask(TaskBody("noop", {{"queue", "later"}, {"run_at", "2100-01-01T00:00:00Z"}}));
  HttpResponse list = api().Get("/v1/queues");
  ASSERT_EQ(list.status, 200) << Describe(list);
  json::object body = list.Object();
  EXPECT_EQ(Int(FindQueue(body, "emails"), "max_running"), 3);
  // A queue nobody configured is listed with its tasks and no limits.
  json::object later = FindQueue(body, "later");
  ASSERT_FALSE(later.empty()) << Dump(body);
  EXPECT_EQ(Int(later, "scheduled"), 1);
  EXPECT_TRUE(IsNull(later, "max_running"));
  EXPECT_TRUE(IsNull(later, "max_per_second"));
  EXPECT_TRUE(IsNull(later, "updated_at"));

  // PUT replaces: an absent limit is no limit.
  put = api().PutJson("/v1/queues/emails", {{"max_per_second", nullptr}, {"max_running", 1}});
  ASSERT_EQ(put.status, 200) << Describe(put);
  put = api().PutJson("/v1/queues/emails", json::object{});
  ASSERT_EQ(put.status, 200) << Describe(put);
  q = FindQueue(api().Get("/v1/queues").Object(), "emails");
  EXPECT_TRUE(IsNull(q, "max_running"));
  EXPECT_TRUE(IsNull(q, "max_per_second"));
}

TEST_F(QueuesTest, BadPutsAre400AndChangeNothing) {
  StartServer();
  ASSERT_EQ(api().PutJson("/v1/queues/q", {{"max_running", 2}}).status, 200);
  struct Case {
    std::string target;
    std::string body;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"/v1/queues/q", R"({"max_running": -1})", "max_running"},
      {"/v1/queues/q", R"({"max_running": 1.5})", "max_running"},
      {"/v1/queues/q", R"({"max_running": "3"})", "max_running"},
      {"/v1/queues/q", R"({"max_running": 1000001})", "max_running"},
      {"/v1/queues/q", R"({"max_per_second": 0})", "max_per_second"},
      {"/v1/queues/q", R"({"max_per_second": -2})", "max_per_second"},
      {"/v1/queues/q", R"({"max_per_second": true})", "max_per_second"},
      {"/v1/queues/q", R"({"max_running": 1, "burst": 3})", "burst"},
      {"/v1/queues/q", R"([1, 2])", ""},
      {"/v1/queues/q", R"({"max_running": )", ""},
      {"/v1/queues/bad%20name", R"({"max_running": 1})", "name"},
      {"/v1/queues/" + std::string(65, 'x'), R"({"max_running": 1})", "name"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.target + " " + c.body);
    HttpResponse r = api().Request("PUT", c.target, c.body, {"Content-Type: application/json"});
    if (c.field.empty()) {
      ExpectError(r, 400, "invalid_argument");
    } else {
      ExpectError(r, 400, "invalid_argument", c.field);
    }
  }
  json::object list = api().Get("/v1/queues").Object();
  EXPECT_EQ(Arr(list, "queues").size(), 1u) << Dump(list);
  EXPECT_EQ(Int(FindQueue(list, "q"), "max_running"), 2);
}

TEST_F(QueuesTest, MaxRunningOneRunsTheQueuesTasksOneAtATime) {
  StartServer({.time_scale = 0.05});  // fizz: 150 ms
  ASSERT_EQ(api().PutJson("/v1/queues/serial", {{"max_running", 1}}).status, 200);
  json::array bodies;
  for (int i = 0; i < 5; ++i) bodies.push_back(TaskBody("fizz", {{"queue", "serial"}}));
  std::vector<json::object> created = CreateBatch(bodies);
  std::vector<std::pair<SysMs, SysMs>> spans;
  for (const auto& c : created) {
    WaitForState(Str(c, "id"), "succeeded", seconds(30));
    spans.push_back(RunSpan(Events(Str(c, "id"))));
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    // Each started once the one before it had finished.
    EXPECT_GE(spans[i].first, spans[i - 1].second) << "two ran at once (task " << i << ")";
  }
}

TEST_F(QueuesTest, MaxPerSecondSpacesTheClaims) {
  StartServer();
  // A bucket of 2 refilled at 2 per second: in any interval of L seconds, at
  // most 2 + 2 L claims.
  ASSERT_EQ(api().PutJson("/v1/queues/paced", {{"max_per_second", 2}}).status, 200);
  json::array bodies;
  for (int i = 0; i < 6; ++i) bodies.push_back(TaskBody("noop", {{"queue", "paced"}}));
  std::vector<json::object> created = CreateBatch(bodies);
  std::vector<SysMs> claims;
  for (const auto& c : created) {
    WaitForState(Str(c, "id"), "succeeded", seconds(30));
    claims.push_back(RunSpan(Events(Str(c, "id"))).first);
  }
  std::sort(claims.begin(), claims.end());
  for (size_t i = 0; i < claims.size(); ++i) {
    for (size_t j = i + 1; j < claims.size(); ++j) {
      const double seconds_between =
          std::chrono::duration<double>(claims[j] - claims[i]).count();
      // +0.01: event times are kept to the millisecond.
      EXPECT_LE(static_cast<double>(j - i + 1), 2 + 2 * seconds_between + 0.01)
          << "claims " << i << " to " << j << " came too fast";
    }
  }
  // Six claims at 2 per second after a burst of 2 take at least 2 s.
  EXPECT_GE(claims.back() - claims.front(), milliseconds(1990));
}

TEST_F(QueuesTest, AHeldQueueDoesNotHoldBackOtherQueuesAndResumesWhenLifted) {
  StartServer();
  ASSERT_EQ(api().PutJson("/v1/queues/held", {{"max_running", 0}}).status, 200);
  std::vector<json::object> held =
      CreateBatch({TaskBody("noop", {{"queue", "held"}}), TaskBody("noop", {{"queue", "held"}})});
  std::string other = Str(CreateTask(TaskBody("noop")), "id");
  WaitForState(other, "succeeded");
  for (const auto& h : held) EXPECT_EQ(Str(GetTask(Str(h, "id")), "state"), "scheduled");
  EXPECT_EQ(Int(FindQueue(api().Get("/v1/queues").Object(), "held"), "scheduled"), 2);

  ASSERT_EQ(api().PutJson("/v1/queues/held", {{"max_running", nullptr}}).status, 200);
  for (const auto& h : held) WaitForState(Str(h, "id"), "succeeded");
}

}  // namespace
}  // namespace sked::blackbox
