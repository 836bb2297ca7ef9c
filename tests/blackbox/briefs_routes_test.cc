// The original briefs' routes, served for their existing clients: /schedule,
// /list, /status, /callback (docker-job), /task/set (fizzbuzz brief) and /task
// (foo/bar/baz brief). Tasks made here are ordinary sked tasks, so the v1 API is
// used to check what they became.
#include <gmock/gmock.h>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

using ::testing::HasSubstr;
using BriefsRoutesTest = BlackboxTest;

constexpr const char* kFarFuture = "2100-01-01T00:00:00.000Z";

// The docker-job error body: exactly {"message": "..."}.
void ExpectMessage(const HttpResponse& r, long status, const std::string& message) {
  EXPECT_EQ(r.status, status) << Describe(r);
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  ASSERT_FALSE(ec) << Describe(r);
  EXPECT_EQ(v, json::value(json::object{{"message", message}})) << Describe(r);
}

// ---- POST /schedule, GET /list ------------------------------------------------

TEST_F(BriefsRoutesTest, ScheduleRejectsAnEmptyDockerImage) {
  StartServer();
  ExpectMessage(
      api().PostJson("/schedule", json::object{{"docker_image", ""}, {"scheduled_for", "10:00"}}),
      400, "docker_image field cannot be empty");
  ExpectMessage(api().PostJson("/schedule", json::object{{"scheduled_for", "10:00"}}), 400,
                "docker_image field cannot be empty");
  EXPECT_EQ(CountTasks(), 0u);
}

TEST_F(BriefsRoutesTest, ScheduleRejectsAnEmptyScheduledFor) {
  StartServer();
  ExpectMessage(api().PostJson("/schedule", json::object{{"docker_image", "busybox:1.36"},
                                                         {"scheduled_for", ""}}),
                400, "scheduled_for field cannot be empty");
  ExpectMessage(api().PostJson("/schedule", json::object{{"docker_image", "busybox:1.36"}}), 400,
                "scheduled_for field cannot be empty");
  EXPECT_EQ(CountTasks(), 0u);
}

TEST_F(BriefsRoutesTest, ScheduleRejectsAScheduledForThatIsNotATime) {
  StartServer();
  for (const char* bad : {"tomorrow", "25:00", "10:60", "2026-02-30T00:00:00Z"}) {
    SCOPED_TRACE(bad);
    ExpectMessage(api().PostJson("/schedule", json::object{{"docker_image", "busybox:1.36"},
                                                           {"scheduled_for", bad}}),
                  400, "scheduled_for field is not a time");
  }
  EXPECT_EQ(CountTasks(), 0u);
}

// /schedule makes a container task; this server has no container runner, so a
// valid request is refused too, but not as a bad time: HH:MM, RFC 3339 and
// epoch seconds are all times.
TEST_F(BriefsRoutesTest, ScheduleReadsEveryTimeFormButNeedsAContainerRunner) {
  StartServer();
  for (json::value when : {json::value("10:00"), json::value("23:59"),
                           json::value("2099-06-01T12:00:00+02:00"), json::value(4102444800LL)}) {
    SCOPED_TRACE(json::serialize(when));
    HttpResponse r = api().PostJson("/schedule", json::object{{"docker_image", "busybox:1.36"},
                                                              {"scheduled_for", when},
                                                              {"env_vars", {{"K", "V"}}}});
    EXPECT_EQ(r.status, 400) << Describe(r);
    EXPECT_THAT(r.body, ::testing::Not(HasSubstr("is not a time")));
    EXPECT_THAT(r.body, ::testing::Not(HasSubstr("cannot be empty")));
  }
  EXPECT_EQ(CountTasks(), 0u);
}

TEST_F(BriefsRoutesTest, ListIsAJsonArray) {
  StartServer();
  HttpResponse r = api().Get("/list");
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_TRUE(r.Json().is_array()) << Describe(r);
}

// ---- GET /status/{id} ---------------------------------------------------------

void ExpectStatusWord(HttpClient& http, const std::string& id, const std::string& word) {
  HttpResponse r = http.Get("/status/" + id);
  EXPECT_EQ(r.status, 200) << Describe(r);
  EXPECT_THAT(r.Header("Content-Type").value_or(""), ::testing::StartsWith("text/plain"));
  EXPECT_EQ(r.body, word);
}

TEST_F(BriefsRoutesTest, StatusIsTheBareWordAsPlainText) {
  StartServer();
  std::string later = Str(CreateTask(TaskBody("fizz", {{"run_at", kFarFuture}})), "id");
  std::string done = Str(CreateTask(TaskBody("noop")), "id");
  std::string stopped = Str(CreateTask(TaskBody("fizz", {{"run_at", kFarFuture}})), "id");
  ASSERT_EQ(api().Request("POST", "/v1/tasks/" + stopped + "/cancel").status, 200);
  WaitForState(done, "succeeded");
  ExpectStatusWord(api(), later, "SCHEDULED");
  ExpectStatusWord(api(), done, "DONE");
  ExpectStatusWord(api(), stopped, "FAILED");
}

TEST_F(BriefsRoutesTest, StatusOfARunningTaskIsRunning) {
  StartServer({.time_scale = 0.05});
  std::string id = Str(CreateTask(TaskBody("fizzbuzz")), "id");
  WaitForState(id, "running");
  ExpectStatusWord(api(), id, "RUNNING");
}

TEST_F(BriefsRoutesTest, StatusOfAFailedTaskIsFailed) {
  int closed = PickFreePort();
  StartServer({.bar_url = "http://127.0.0.1:" + std::to_string(closed) + "/"});
  std::string id = Str(CreateTask(TaskBody("bar", {{"max_attempts", 1}})), "id");
  WaitForState(id, "failed", seconds(30));
  ExpectStatusWord(api(), id, "FAILED");
}

TEST_F(BriefsRoutesTest, StatusOfAnUnknownIdIs400WithItsMessage) {
  StartServer();
  std::string id = "01890000-0000-7000-8000-000000000000";
  ExpectMessage(api().Get("/status/" + id), 400, "Job id " + id + " was not found");
}

// ---- PUT /callback/{id} ---------------------------------------------------------

class BriefsCallbackTest : public BlackboxTest {
 protected:
  static constexpr milliseconds kFizzBuzzRun = milliseconds(750);  // 15 s * 0.05
  void SetUp() override { StartServer({.time_scale = 0.05}); }

  json::object StartRunning(int max_attempts) {
    std::string id = Str(CreateTask(TaskBody("fizzbuzz", {{"max_attempts", max_attempts}})), "id");
    return WaitForState(id, "running");
  }
  HttpResponse Put(const std::string& id, const json::object& body,
                   std::optional<std::string> token) {
    return api().PutJson("/callback/" + id, body,
                         {token ? "Authorization: Bearer " + *token : "Authorization:"});
  }
  // See RunningTaskTest: the built-in's own end must not overwrite the outcome.
  void ExpectUnchangedPastBuiltinEnd(const json::object& running, const json::object& expected) {
    SysMs until = TimeField(running, "started_at") + kFizzBuzzRun + milliseconds(500);
    while (NowMs() < until) {
      ASSERT_EQ(GetTask(Str(expected, "id")), expected);
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
};

TEST_F(BriefsCallbackTest, EmptyBodyMarksTheTaskDone) {
  json::object running = StartRunning(3);
  std::string id = Str(running, "id");
  HttpResponse r = Put(id, json::object{}, TokenFor(id, Int(running, "attempt")));
  ASSERT_EQ(r.status, 200) << Describe(r);
  json::object done = GetTask(id);
  EXPECT_EQ(Str(done, "state"), "succeeded");
  ExpectStatusWord(api(), id, "DONE");
  ExpectUnchangedPastBuiltinEnd(running, done);
}

TEST_F(BriefsCallbackTest, FailedBodyFailsTheTaskWithItsMessage) {
  json::object running = StartRunning(1);
  std::string id = Str(running, "id");
  HttpResponse r = Put(id, json::object{{"failed", ""}, {"error_message", "disk full"}},
                       TokenFor(id, Int(running, "attempt")));
  ASSERT_EQ(r.status, 200) << Describe(r);
  json::object done = GetTask(id);
  EXPECT_EQ(Str(done, "state"), "failed");
  ASSERT_TRUE(done.at("error").is_string()) << Dump(done);
  EXPECT_THAT(std::string(done.at("error").as_string()), HasSubstr("disk full"));
  ExpectStatusWord(api(), id, "FAILED");
  ExpectUnchangedPastBuiltinEnd(running, done);
}

TEST_F(BriefsCallbackTest, ScheduleBodyRunsItAgainWithoutChargingAnAttempt) {
  json::object running = StartRunning(1);
  std::string id = Str(running, "id");
  int64_t attempt = Int(running, "attempt");
  HttpResponse r = Put(id, json::object{{"schedule", ""}}, TokenFor(id, attempt));
  ASSERT_EQ(r.status, 200) << Describe(r);
  json::object done = WaitForTask(
      id,
      [&](const json::object& t) {
        return Str(t, "state") == "succeeded" && Int(t, "attempt") > attempt;
      },
      "succeeded in a later attempt");
  EXPECT_EQ(Str(Obj(done, "result"), "output"), "Fizz Buzz " + id);
}

TEST_F(BriefsCallbackTest, WrongTokenIs401AndChangesNothing) {
  json::object running = StartRunning(3);
  std::string id = Str(running, "id");
  int64_t attempt = Int(running, "attempt");
  EXPECT_EQ(Put(id, json::object{}, std::nullopt).status, 401);
  EXPECT_EQ(Put(id, json::object{}, CallbackToken("another-secret", id, attempt)).status, 401);
  json::object done = WaitForState(id, "succeeded");
  EXPECT_EQ(Int(done, "attempt"), attempt);
  EXPECT_EQ(Str(Obj(done, "result"), "output"), "Fizz Buzz " + id);
}

// ---- POST /task/set, POST /task, GET /task, DELETE /task ------------------------

TEST_F(BriefsRoutesTest, TaskSetCreatesFizzBuzzKindsThatRun) {
  StartServer();
  int64_t now_s = NowMs().time_since_epoch().count() / 1000;
  const std::vector<std::pair<std::string, std::string>> kinds = {
      {"Fizz", "fizz"}, {"Buzz", "buzz"}, {"FizzBuzz", "fizzbuzz"}, {"fizzbuzz", "fizzbuzz"}};
  for (const auto& [kind, type] : kinds) {
    SCOPED_TRACE(kind);
    HttpResponse r = api().PostJson("/task/set", json::object{{"kind", kind}, {"when", now_s}});
    ASSERT_EQ(r.status, 201) << Describe(r);
    json::object t = r.Object();
    EXPECT_EQ(Str(t, "type"), type);
    EXPECT_EQ(TimeField(t, "run_at"), SysMs(seconds(now_s)));
    std::string id = Str(t, "id");
    json::object done = WaitForState(id, "succeeded");
    std::string prefix = type == "fizz" ? "Fizz " : type == "buzz" ? "Buzz " : "Fizz Buzz ";
    EXPECT_EQ(Str(Obj(done, "result"), "output"), prefix + id);
  }
}

TEST_F(BriefsRoutesTest, TaskSetAcceptsAnRfc3339When) {
  StartServer();
  HttpResponse r =
      api().PostJson("/task/set", json::object{{"kind", "Fizz"}, {"when", kFarFuture}});
  ASSERT_EQ(r.status, 201) << Describe(r);
  EXPECT_EQ(Str(r.Object(), "run_at"), kFarFuture);
}

TEST_F(BriefsRoutesTest, TaskSetRejectsAnUnknownKindOrTime) {
  StartServer();
  EXPECT_EQ(
      api().PostJson("/task/set", json::object{{"kind", "Foo"}, {"when", 4102444800LL}}).status,
      400);
  EXPECT_EQ(
      api().PostJson("/task/set", json::object{{"kind", "Fizz"}, {"when", "tomorrow"}}).status,
      400);
  EXPECT_EQ(CountTasks(), 0u);
}

TEST_F(BriefsRoutesTest, TaskCreatesFooBarBazTypes) {
  StartServer();
  const std::vector<std::pair<std::string, std::string>> types = {
      {"Foo", "foo"}, {"Bar", "bar"}, {"Baz", "baz"}, {"foo", "foo"}};
  for (const auto& [given, type] : types) {
    SCOPED_TRACE(given);
    HttpResponse r =
        api().PostJson("/task", json::object{{"type", given}, {"send_ts", kFarFuture}});
    ASSERT_EQ(r.status, 201) << Describe(r);
    EXPECT_EQ(Str(r.Object(), "type"), type);
    EXPECT_EQ(Str(r.Object(), "run_at"), kFarFuture);
  }
  HttpResponse epoch =
      api().PostJson("/task", json::object{{"type", "Foo"}, {"send_ts", 4102444800LL}});
  ASSERT_EQ(epoch.status, 201) << Describe(epoch);
  EXPECT_EQ(Str(epoch.Object(), "run_at"), kFarFuture);
}

TEST_F(BriefsRoutesTest, TaskFooRunsToItsOutput) {
  StartServer();
  int64_t now_s = NowMs().time_since_epoch().count() / 1000;
  HttpResponse r = api().PostJson("/task", json::object{{"type", "Foo"}, {"send_ts", now_s}});
  ASSERT_EQ(r.status, 201) << Describe(r);
  std::string id = Str(r.Object(), "id");
  EXPECT_EQ(Str(Obj(WaitForState(id, "succeeded"), "result"), "output"), "Foo " + id);
}

TEST_F(BriefsRoutesTest, TaskListFiltersAndGetOne) {
  StartServer();
  std::string foo =
      Str(api().PostJson("/task", json::object{{"type", "Foo"}, {"send_ts", kFarFuture}}).Object(),
          "id");
  std::string baz =
      Str(api().PostJson("/task", json::object{{"type", "Baz"}, {"send_ts", kFarFuture}}).Object(),
          "id");
  std::string fizz = Str(
      api().PostJson("/task/set", json::object{{"kind", "Fizz"}, {"when", 4102444800LL}}).Object(),
      "id");
  std::string noop = Str(CreateTask(TaskBody("noop")), "id");
  WaitForState(noop, "succeeded");

  auto ids = [&](const std::string& query) {
    HttpResponse r = api().Get("/task" + query);
    EXPECT_EQ(r.status, 200) << Describe(r);
    std::set<std::string> out;
    if (r.status != 200) return out;
    json::object answer = r.Object();
    for (const auto& t : Arr(answer, "tasks")) out.insert(Str(t.as_object(), "id"));
    return out;
  };
  EXPECT_EQ(ids(""), (std::set<std::string>{foo, baz, fizz, noop}));
  EXPECT_EQ(ids("?type=foo"), (std::set<std::string>{foo}));
  EXPECT_EQ(ids("?kind=fizz"), (std::set<std::string>{fizz}));
  EXPECT_EQ(ids("?state=scheduled"), (std::set<std::string>{foo, baz, fizz}));
  EXPECT_EQ(ids("?status=succeeded"), (std::set<std::string>{noop}));
  std::string window =
      "?since=" + UrlEncode("2099-12-31T00:00:00Z") + "&until=" + UrlEncode("2100-01-02T00:00:00Z");
  EXPECT_EQ(ids(window), (std::set<std::string>{foo, baz, fizz}));

  HttpResponse one = api().Get("/task/" + foo);
  ASSERT_EQ(one.status, 200) << Describe(one);
  EXPECT_EQ(one.Json(), json::value(GetTask(foo)));
  EXPECT_EQ(api().Get("/task/01890000-0000-7000-8000-000000000000").status, 404);
}

TEST_F(BriefsRoutesTest, TaskDeleteBothFormsRemoveTheTask) {
  StartServer();
  std::string a = Str(CreateTask(TaskBody("foo", {{"run_at", kFarFuture}})), "id");
  std::string b = Str(CreateTask(TaskBody("fizz", {{"run_at", kFarFuture}})), "id");
  HttpResponse d1 = api().Delete("/task/" + a);
  EXPECT_GE(d1.status, 200) << Describe(d1);
  EXPECT_LT(d1.status, 300) << Describe(d1);
  HttpResponse d2 = api().Request("POST", "/task/delete/" + b);
  EXPECT_GE(d2.status, 200) << Describe(d2);
  EXPECT_LT(d2.status, 300) << Describe(d2);
  EXPECT_EQ(api().Get("/v1/tasks/" + a).status, 404);
  EXPECT_EQ(api().Get("/v1/tasks/" + b).status, 404);
  EXPECT_EQ(CountTasks(), 0u);
}

}  // namespace
}  // namespace sked::blackbox
