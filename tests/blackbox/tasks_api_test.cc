// The task resource: create, the task JSON, every built-in type running to its
// exact output, get, delete, cancel, events and the idempotency key.
#include <gmock/gmock.h>

#include <regex>
#include <set>

#include "blackbox_test_base.h"
#include "stub_http_server.h"

namespace sked::blackbox {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using TasksApiTest = BlackboxTest;

constexpr const char* kFarFuture = "2100-01-01T00:00:00.000Z";
// Every field the spec and API_NOTES say a task always has.
const char* const kTaskFields[] = {
    "id",      "type",       "run_at",     "state",        "runner",      "image",
    "command", "env",        "attempt",    "max_attempts", "timeout_s",   "idempotency_key",
    "labels",  "created_at", "started_at", "finished_at",  "instance_id", "result",
    "error",   "queue",      "notify_url", "schedule_id",  "occurrence"};

TEST_F(TasksApiTest, CreateReturns201WithLocationAndTheFullTaskJson) {
  StartServer();
  SysMs before = NowMs();
  HttpResponse r = api().PostJson("/v1/tasks", TaskBody("fizz", {{"run_at", kFarFuture}}));
  SysMs after = NowMs();
  ASSERT_EQ(r.status, 201) << Describe(r);
  EXPECT_THAT(r.Header("Content-Type").value_or(""), ::testing::StartsWith("application/json"));
  json::object t = r.Object();
  for (const char* f : kTaskFields)
    EXPECT_TRUE(t.contains(f)) << "missing " << f << ": " << Dump(t);

  std::string id = Str(t, "id");
  EXPECT_TRUE(IsUuidV7(id)) << id;
  auto location = r.Header("Location");
  ASSERT_TRUE(location.has_value()) << Describe(r);
  EXPECT_THAT(*location, ::testing::EndsWith("/v1/tasks/" + id));

  EXPECT_EQ(Str(t, "type"), "fizz");
  EXPECT_EQ(Str(t, "run_at"), kFarFuture);
  EXPECT_EQ(Str(t, "state"), "scheduled");
  EXPECT_EQ(Str(t, "runner"), "builtin");
  EXPECT_EQ(Int(t, "attempt"), 0);
  EXPECT_EQ(Int(t, "max_attempts"), 3);
  EXPECT_EQ(Int(t, "timeout_s"), 3600);
  EXPECT_EQ(Str(t, "queue"), "default");
  for (const char* f :
       {"image", "command", "env", "idempotency_key", "started_at", "finished_at", "instance_id",
        "result", "error", "notify_url", "schedule_id", "occurrence"}) {
    EXPECT_TRUE(IsNull(t, f)) << f << " should be null: " << Dump(t);
  }
  // No labels given: null, or an empty object.
  EXPECT_TRUE(IsNull(t, "labels") ||
              (t.at("labels").is_object() && t.at("labels").as_object().empty()))
      << Dump(t);
  SysMs created = TimeField(t, "created_at");
  EXPECT_GE(created, before - milliseconds(1));
  EXPECT_LE(created, after + milliseconds(1));

  // The Location answers with the same task.
  HttpResponse g = api().Get("/v1/tasks/" + id);
  ASSERT_EQ(g.status, 200) << Describe(g);
  EXPECT_EQ(g.Json(), json::value(t));
}

TEST_F(TasksApiTest, CreateEchoesOptionalFields) {
  StartServer();
  json::object t = CreateTask(TaskBody("buzz", {{"run_at", kFarFuture},
                                                {"max_attempts", 5},
                                                {"timeout_s", 60},
                                                {"idempotency_key", "echo-1"},
                                                {"labels", {{"team", "data"}, {"env", "prod"}}},
                                                {"runner", "builtin"}}));
  EXPECT_EQ(Int(t, "max_attempts"), 5);
  EXPECT_EQ(Int(t, "timeout_s"), 60);
  EXPECT_EQ(Str(t, "idempotency_key"), "echo-1");
  EXPECT_EQ(t.at("labels"), json::value(json::object{{"team", "data"}, {"env", "prod"}}));
  EXPECT_EQ(Str(t, "runner"), "builtin");
}

TEST_F(TasksApiTest, RunAtDefaultsToNow) {
  StartServer();
  SysMs before = NowMs();
  json::object t = CreateTask(TaskBody("noop"));
  SysMs after = NowMs();
  SysMs run_at = TimeField(t, "run_at");
  EXPECT_GE(run_at, before - milliseconds(1));
  EXPECT_LE(run_at, after + milliseconds(1));
}

struct BuiltinCase {
  std::string type;
  std::string prefix;     // output is prefix + task id
  milliseconds scaled;    // the wait at --time-scale 0.01
  milliseconds unscaled;  // the wait the spec names
};
// gtest prints the case by its name, not as bytes.
void PrintTo(const BuiltinCase& c, std::ostream* os) { *os << c.type; }

class BuiltinOutputTest : public BlackboxTest, public ::testing::WithParamInterface<BuiltinCase> {};

TEST_P(BuiltinOutputTest, RunsToSucceededWithExactOutputInResultAndLog) {
  const BuiltinCase& c = GetParam();
  StartServer();
  std::string id = Str(CreateTask(TaskBody(c.type)), "id");
  json::object done = WaitForState(id, "succeeded");
  std::string expected = c.prefix + id;

  const json::object& result = Obj(done, "result");
  EXPECT_EQ(Str(result, "output"), expected);
  EXPECT_EQ(Int(result, "exit_code"), 0);
  EXPECT_TRUE(IsNull(done, "error")) << Dump(done);
  EXPECT_EQ(Int(done, "attempt"), 1);
  SysMs started = TimeField(done, "started_at"), finished = TimeField(done, "finished_at");
  EXPECT_GE(started, TimeField(done, "run_at"));
  // The wait is the spec's, multiplied by the time scale: at least the scaled
  // wait (1 ms for printing to ms), far below the unscaled one.
  EXPECT_GE(finished - started, c.scaled - milliseconds(1));
  EXPECT_LT(finished - started, c.unscaled);
  EXPECT_TRUE(server().WaitForLog(expected)) << "log lacks \"" << expected << "\"";
}

INSTANTIATE_TEST_SUITE_P(
    Types, BuiltinOutputTest,
    ::testing::Values(BuiltinCase{"fizz", "Fizz ", milliseconds(30), seconds(3)},
                      BuiltinCase{"buzz", "Buzz ", milliseconds(50), seconds(5)},
                      BuiltinCase{"fizzbuzz", "Fizz Buzz ", milliseconds(150), seconds(15)},
                      BuiltinCase{"foo", "Foo ", milliseconds(30), seconds(3)}),
    [](const auto& info) { return info.param.type; });

TEST_F(TasksApiTest, NoopSucceedsWithEmptyOutput) {
  StartServer();
  std::string id = Str(CreateTask(TaskBody("noop")), "id");
  json::object done = WaitForState(id, "succeeded");
  EXPECT_EQ(Str(Obj(done, "result"), "output"), "");
  EXPECT_EQ(Int(Obj(done, "result"), "exit_code"), 0);
}

TEST_F(TasksApiTest, BazOutputsANumberFrom0To343) {
  StartServer();
  std::vector<json::object> tasks =
      CreateBatch({TaskBody("baz"), TaskBody("baz"), TaskBody("baz"), TaskBody("baz")});
  static const std::regex kBaz(R"(^Baz (0|[1-9][0-9]*)$)");
  for (const auto& t : tasks) {
    json::object done = WaitForState(Str(t, "id"), "succeeded");
    std::string out = Str(Obj(done, "result"), "output");
    std::smatch m;
    ASSERT_TRUE(std::regex_match(out, m, kBaz)) << out;
    int n = std::stoi(m[1].str());
    EXPECT_GE(n, 0);
    EXPECT_LE(n, 343);
    EXPECT_TRUE(server().WaitForLog(out)) << "log lacks \"" << out << "\"";
  }
}

TEST_F(TasksApiTest, BarOutputsTheStatusCodeOfTheConfiguredUrl) {
  StubHttpServer site(204);
  StartServer({.bar_url = site.url()});
  std::string id = Str(CreateTask(TaskBody("bar")), "id");
  json::object done = WaitForState(id, "succeeded");
  EXPECT_EQ(Str(Obj(done, "result"), "output"), "204");
  ASSERT_FALSE(site.requests().empty());
  EXPECT_THAT(site.requests().front(), ::testing::StartsWith("GET / HTTP/1."));
  EXPECT_TRUE(server().WaitForLog("204"));
}

TEST_F(TasksApiTest, BarAgainstAClosedPortFailsWithAnError) {
  int closed = PickFreePort();  // nothing listens there
  StartServer({.bar_url = "http://127.0.0.1:" + std::to_string(closed) + "/"});
  std::string id = Str(CreateTask(TaskBody("bar", {{"max_attempts", 1}})), "id");
  json::object done = WaitForState(id, "failed", seconds(30));
  EXPECT_EQ(Int(done, "attempt"), 1);
  ASSERT_TRUE(done.at("error").is_string()) << Dump(done);
  EXPECT_FALSE(done.at("error").as_string().empty());
  EXPECT_FALSE(IsNull(done, "finished_at"));
}

TEST_F(TasksApiTest, BarRetriesUntilMaxAttemptsThenFails) {
  int closed = PickFreePort();
  StartServer({.bar_url = "http://127.0.0.1:" + std::to_string(closed) + "/"});
  std::string id = Str(CreateTask(TaskBody("bar", {{"max_attempts", 2}})), "id");
  json::object done = WaitForState(id, "failed", seconds(60));
  EXPECT_EQ(Int(done, "attempt"), 2);
  EXPECT_TRUE(done.at("error").is_string()) << Dump(done);
  std::set<int64_t> running_attempts;
  for (const auto& e : Events(id)) {
    if (Str(e, "state") == "running") running_attempts.insert(Int(e, "attempt"));
  }
  EXPECT_EQ(running_attempts, (std::set<int64_t>{1, 2}));
}

TEST_F(TasksApiTest, GetUnknownOrMalformedIdIs404) {
  StartServer();
  ExpectError(api().Get("/v1/tasks/01890000-0000-7000-8000-000000000000"), 404, "not_found");
  ExpectError(api().Get("/v1/tasks/not-an-id"), 404, "not_found");
  ExpectError(api().Get("/v1/tasks/01890000-0000-7000-8000-000000000000/events"), 404, "not_found");
}

TEST_F(TasksApiTest, DeleteIs204ThenGetAndSecondDeleteAre404) {
  StartServer();
  std::string id = Str(CreateTask(TaskBody("fizz", {{"run_at", kFarFuture}})), "id");
  HttpResponse d = api().Delete("/v1/tasks/" + id);
  EXPECT_EQ(d.status, 204) << Describe(d);
  EXPECT_TRUE(d.body.empty()) << Describe(d);
  ExpectError(api().Get("/v1/tasks/" + id), 404, "not_found");
  ExpectError(api().Delete("/v1/tasks/" + id), 404, "not_found");
  EXPECT_EQ(CountTasks(), 0u);
}

TEST_F(TasksApiTest, DeleteUnknownIs404) {
  StartServer();
  ExpectError(api().Delete("/v1/tasks/01890000-0000-7000-8000-000000000000"), 404, "not_found");
}

// A later "sentinel" task shows the scheduler has gone past the deleted task's
// run_at: once it has run, the deleted one would have run too.
TEST_F(TasksApiTest, DeletedScheduledTaskNeverRuns) {
  StartServer();
  SysMs at = NowMs() + milliseconds(700);
  std::string doomed = Str(CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(at)}})), "id");
  std::string sentinel =
      Str(CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(at + milliseconds(300))}})), "id");
  ASSERT_EQ(api().Delete("/v1/tasks/" + doomed).status, 204);
  WaitForState(sentinel, "succeeded");
  EXPECT_THAT(server().ReadLog(), Not(HasSubstr("Fizz " + doomed)));
  EXPECT_EQ(api().Get("/v1/tasks/" + doomed).status, 404);
}

TEST_F(TasksApiTest, CancelScheduledTaskIs200CancelledAndRepeatable) {
  StartServer();
  std::string id = Str(CreateTask(TaskBody("fizz", {{"run_at", kFarFuture}})), "id");
  HttpResponse c = api().Request("POST", "/v1/tasks/" + id + "/cancel");
  ASSERT_EQ(c.status, 200) << Describe(c);
  json::object t = c.Object();
  EXPECT_EQ(Str(t, "id"), id);
  EXPECT_EQ(Str(t, "state"), "cancelled");
  EXPECT_EQ(Str(GetTask(id), "state"), "cancelled");

  HttpResponse again = api().Request("POST", "/v1/tasks/" + id + "/cancel");
  ASSERT_EQ(again.status, 200) << Describe(again);
  EXPECT_EQ(again.Json(), json::value(GetTask(id))) << "a second cancel must change nothing";
  EXPECT_EQ(Str(again.Object(), "state"), "cancelled");
}

TEST_F(TasksApiTest, CancelledTaskNeverRuns) {
  StartServer();
  SysMs at = NowMs() + milliseconds(700);
  std::string doomed = Str(CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(at)}})), "id");
  std::string sentinel =
      Str(CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(at + milliseconds(300))}})), "id");
  ASSERT_EQ(api().Request("POST", "/v1/tasks/" + doomed + "/cancel").status, 200);
  WaitForState(sentinel, "succeeded");
  json::object t = GetTask(doomed);
  EXPECT_EQ(Str(t, "state"), "cancelled");
  EXPECT_TRUE(IsNull(t, "started_at")) << Dump(t);
  EXPECT_THAT(server().ReadLog(), Not(HasSubstr("Fizz " + doomed)));
}

TEST_F(TasksApiTest, CancelFinishedTaskIs409Conflict) {
  StartServer();
  std::string id = Str(CreateTask(TaskBody("noop")), "id");
  json::object done = WaitForState(id, "succeeded");
  ExpectError(api().Request("POST", "/v1/tasks/" + id + "/cancel"), 409, "conflict");
  EXPECT_EQ(GetTask(id), done) << "a refused cancel must change nothing";
}

TEST_F(TasksApiTest, CancelUnknownTaskIs404) {
  StartServer();
  ExpectError(api().Request("POST", "/v1/tasks/01890000-0000-7000-8000-000000000000/cancel"), 404,
              "not_found");
}

TEST_F(TasksApiTest, EventsOfAFinishedTaskAreOldestFirst) {
  StartServer({.node_id = "bb-node-1"});
  std::string id = Str(CreateTask(TaskBody("fizz")), "id");
  json::object done = WaitForState(id, "succeeded");
  std::vector<json::object> events = Events(id);
  // The states, with repeats (e.g. more than one note while running) merged.
  std::vector<std::string> states;
  std::optional<SysMs> prev;
  for (size_t i = 0; i < events.size(); ++i) {
    SCOPED_TRACE("event " + std::to_string(i) + ": " + Dump(events[i]));
    const json::object& e = events[i];
    for (const char* f : {"at", "state", "attempt", "node", "instance_id", "message"}) {
      EXPECT_TRUE(e.contains(f)) << "missing " << f;
    }
    std::string state = Str(e, "state");
    if (states.empty() || states.back() != state) states.push_back(state);
    EXPECT_EQ(Int(e, "attempt"), state == "scheduled" ? 0 : 1);
    EXPECT_TRUE(e.at("message").is_string());
    EXPECT_TRUE(IsNull(e, "instance_id")) << "built-in tasks have no instance";
    if (state == "running") {
      EXPECT_EQ(Str(e, "node"), "bb-node-1");
      EXPECT_GE(TimeField(e, "at"), TimeField(done, "run_at"));
    }
    SysMs at = TimeField(e, "at");
    if (prev) {
      EXPECT_GE(at, *prev) << "events must be oldest first";
    }
    prev = at;
  }
  EXPECT_EQ(states, (std::vector<std::string>{"scheduled", "running", "succeeded"}));
}

TEST_F(TasksApiTest, IdempotencyKeyReturnsTheFirstTaskWith200) {
  StartServer();
  json::object body = TaskBody("fizz", {{"run_at", kFarFuture}, {"idempotency_key", "once-1"}});
  HttpResponse first = api().PostJson("/v1/tasks", body);
  ASSERT_EQ(first.status, 201) << Describe(first);
  HttpResponse second = api().PostJson("/v1/tasks", body);
  ASSERT_EQ(second.status, 200) << Describe(second);
  EXPECT_EQ(Str(second.Object(), "id"), Str(first.Object(), "id"));
  EXPECT_EQ(second.Header("Location"), first.Header("Location"));
  EXPECT_EQ(second.Json(), first.Json());
  EXPECT_EQ(CountTasks(), 1u);
}

TEST_F(TasksApiTest, IdempotencyKeyWinsOverADifferentBody) {
  StartServer();
  json::object first =
      CreateTask(TaskBody("fizz", {{"run_at", kFarFuture}, {"idempotency_key", "once-2"}}));
  HttpResponse second = api().PostJson(
      "/v1/tasks", TaskBody("buzz", {{"run_at", kFarFuture}, {"idempotency_key", "once-2"}}));
  ASSERT_EQ(second.status, 200) << Describe(second);
  EXPECT_EQ(second.Json(), json::value(first));
  EXPECT_EQ(CountTasks(), 1u);
}

}  // namespace
}  // namespace sked::blackbox
