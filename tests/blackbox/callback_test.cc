// A running attempt and what may change it: the job's callback (token, attempt
// fencing, repeats), cancel and delete. The server runs at --time-scale 0.05, so a
// fizzbuzz task runs 750 ms: long enough to act on it while it runs, and the
// built-in's own result would arrive soon after, when it must not overwrite
// the outcome chosen by the callback, cancel or delete.
#include <gmock/gmock.h>

#include <set>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

using ::testing::HasSubstr;

class RunningTaskTest : public BlackboxTest {
 protected:
  static constexpr milliseconds kFizzBuzzRun = milliseconds(750);  // 15 s * 0.05

  void SetUp() override { StartServer({.time_scale = 0.05}); }

  // A fizzbuzz task seen in state running.
  json::object StartRunning(int max_attempts = 3) {
    std::string id = Str(CreateTask(TaskBody("fizzbuzz", {{"max_attempts", max_attempts}})), "id");
    return WaitForState(id, "running");
  }

  static json::object Body(int64_t attempt, std::string_view status, json::object extra = {}) {
    json::object b{{"attempt", attempt}, {"status", status}};
    for (auto& kv : extra) b[kv.key()] = kv.value();
    return b;
  }

  // Watches the task until well after the built-in attempt that began at
  // `running.started_at` would have ended on its own: it must stay `expected`.
  // (A negative property needs an observation window; this is the only wait
  // of its kind in the suite and it is tied to the task's own timing.)
  void ExpectUnchangedPastBuiltinEnd(const json::object& running, const json::object& expected) {
    SysMs until = TimeField(running, "started_at") + kFizzBuzzRun + milliseconds(500);
    while (NowMs() < until) {
      json::object now = GetTask(Str(expected, "id"));
      ASSERT_EQ(now, expected) << "changed after its outcome was recorded";
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
};

TEST_F(RunningTaskTest, SucceededCallbackAppliesAndTheBuiltinResultDoesNotOverwriteIt) {
  json::object running = StartRunning();
  std::string id = Str(running, "id");
  int64_t attempt = Int(running, "attempt");
  EXPECT_EQ(attempt, 1);
  HttpResponse r = PostCallback(
      id, Body(attempt, "succeeded", {{"exit_code", 0}, {"message", "done by the job"}}),
      TokenFor(id, attempt));
  ASSERT_EQ(r.status, 200) << Describe(r);
  json::object done = GetTask(id);
  EXPECT_EQ(Str(done, "state"), "succeeded");
  EXPECT_EQ(Int(done, "attempt"), attempt);
  EXPECT_FALSE(IsNull(done, "finished_at"));
  ExpectUnchangedPastBuiltinEnd(running, done);
}

TEST_F(RunningTaskTest, FailedCallbackOnTheLastAttemptFailsTheTaskForGood) {
  json::object running = StartRunning(/*max_attempts=*/1);
  std::string id = Str(running, "id");
  int64_t attempt = Int(running, "attempt");
  HttpResponse r = PostCallback(
      id, Body(attempt, "failed", {{"exit_code", 3}, {"message", "boom from the job"}}),
      TokenFor(id, attempt));
  ASSERT_EQ(r.status, 200) << Describe(r);
  json::object done = GetTask(id);
  EXPECT_EQ(Str(done, "state"), "failed");
  ASSERT_TRUE(done.at("error").is_string()) << Dump(done);
  EXPECT_THAT(std::string(done.at("error").as_string()), HasSubstr("boom from the job"));
  ExpectUnchangedPastBuiltinEnd(running, done);
}

TEST_F(RunningTaskTest, WrongOrMissingTokenIs401AndChangesNothing) {
  json::object running = StartRunning();
  std::string id = Str(running, "id");
  int64_t attempt = Int(running, "attempt");
  json::object fail = Body(attempt, "failed", {{"message", "forged"}});
  ExpectError(PostCallback(id, fail, std::nullopt), 401, "unauthenticated");
  ExpectError(PostCallback(id, fail, std::string("0123abcd")), 401, "unauthenticated");
  ExpectError(PostCallback(id, fail, CallbackToken("another-secret", id, attempt)), 401,
              "unauthenticated");
  ExpectError(PostCallback(id, fail, TokenFor(id, attempt + 1)), 401, "unauthenticated");
  ExpectError(PostCallback(id, fail, TokenFor("01890000-0000-7000-8000-000000000000", attempt)),
              401, "unauthenticated");
  // Upper-case hex is not the token.
  std::string upper = TokenFor(id, attempt);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ExpectError(PostCallback(id, fail, upper), 401, "unauthenticated");
  // The attempt then ends on its own, untouched.
  json::object done = WaitForState(id, "succeeded");
  EXPECT_EQ(Int(done, "attempt"), attempt);
  EXPECT_EQ(Str(Obj(done, "result"), "output"), "Fizz Buzz " + id);
}

// A stale attempt is an earlier, real one: attempt 1 after an interruption made
// attempt 2 current. (Attempt 0 never exists; the server may call it invalid.)
TEST_F(RunningTaskTest, StaleOrFutureAttemptIs409AndChangesNothing) {
  json::object first = StartRunning();
  std::string id = Str(first, "id");
  int64_t stale = Int(first, "attempt");
  ASSERT_EQ(PostCallback(id, Body(stale, "interrupted"), TokenFor(id, stale)).status, 200);
  json::object running = WaitForTask(
      id,
      [&](const json::object& t) {
        return Str(t, "state") == "running" && Int(t, "attempt") > stale;
      },
      "running a later attempt");
  int64_t attempt = Int(running, "attempt");
  // Properly signed, but not the current attempt.
  ExpectError(PostCallback(id, Body(stale, "failed"), TokenFor(id, stale)), 409, "conflict");
  ExpectError(PostCallback(id, Body(stale, "succeeded"), TokenFor(id, stale)), 409, "conflict");
  ExpectError(PostCallback(id, Body(attempt + 1, "failed"), TokenFor(id, attempt + 1)), 409,
              "conflict");
  json::object done = WaitForState(id, "succeeded");
  EXPECT_EQ(Int(done, "attempt"), attempt);
  EXPECT_EQ(Str(Obj(done, "result"), "output"), "Fizz Buzz " + id);
}

TEST_F(RunningTaskTest, CallbackForUnknownTaskIs404) {
  std::string id = "01890000-0000-7000-8000-000000000000";
  ExpectError(PostCallback(id, Body(1, "succeeded"), TokenFor(id, 1)), 404, "not_found");
}

TEST_F(RunningTaskTest, RepeatedFinalCallbackIs200WithoutChangeAndAnotherOutcomeIs409) {
  json::object running = StartRunning();
  std::string id = Str(running, "id");
  int64_t attempt = Int(running, "attempt");
  json::object body = Body(attempt, "succeeded", {{"exit_code", 0}});
  ASSERT_EQ(PostCallback(id, body, TokenFor(id, attempt)).status, 200);
  json::object done = GetTask(id);
  HttpResponse again = PostCallback(id, body, TokenFor(id, attempt));
  EXPECT_EQ(again.status, 200) << Describe(again);
  EXPECT_EQ(GetTask(id), done);
  ExpectError(PostCallback(id, Body(attempt, "failed"), TokenFor(id, attempt)), 409, "conflict");
  EXPECT_EQ(GetTask(id), done);
  ExpectUnchangedPastBuiltinEnd(running, done);
}

TEST_F(RunningTaskTest, HeartbeatIs200WithTheTaskAndKeepsItRunning) {
  json::object running = StartRunning();
  std::string id = Str(running, "id");
  int64_t attempt = Int(running, "attempt");
  HttpResponse r = PostCallback(id, Body(attempt, "heartbeat"), TokenFor(id, attempt));
  ASSERT_EQ(r.status, 200) << Describe(r);
  json::object t = r.Object();
  EXPECT_EQ(Str(t, "id"), id);
  EXPECT_EQ(Int(t, "attempt"), attempt);
  json::object done = WaitForState(id, "succeeded");
  EXPECT_EQ(Int(done, "attempt"), attempt);
}

// A spot interruption: the task runs again, and that does not use up an attempt,
// so even max_attempts 1 ends succeeded.
TEST_F(RunningTaskTest, InterruptedCallbackRunsItAgainWithoutChargingAnAttempt) {
  json::object running = StartRunning(/*max_attempts=*/1);
  std::string id = Str(running, "id");
  int64_t attempt = Int(running, "attempt");
  HttpResponse r = PostCallback(id, Body(attempt, "interrupted", {{"message", "spot reclaim"}}),
                                TokenFor(id, attempt));
  ASSERT_EQ(r.status, 200) << Describe(r);
  json::object done = WaitForTask(
      id,
      [&](const json::object& t) {
        return Str(t, "state") == "succeeded" && Int(t, "attempt") > attempt;
      },
      "succeeded in a later attempt");
  EXPECT_EQ(Int(done, "attempt"), attempt + 1);
  EXPECT_EQ(Str(Obj(done, "result"), "output"), "Fizz Buzz " + id);
  std::set<int64_t> running_attempts;
  for (const auto& e : Events(id)) {
    if (Str(e, "state") == "running") running_attempts.insert(Int(e, "attempt"));
  }
  EXPECT_EQ(running_attempts, (std::set<int64_t>{attempt, attempt + 1}));
}

TEST_F(RunningTaskTest, MalformedCallbackBodiesAre400AndChangeNothing) {
  json::object running = StartRunning();
  std::string id = Str(running, "id");
  int64_t attempt = Int(running, "attempt");
  std::string token = TokenFor(id, attempt);
  // Missing status, unknown status, unknown field, wrong type, message too long,
  // malformed JSON, not an object.
  std::vector<std::string> raw = {
      R"({"attempt": )" + std::to_string(attempt) + "}",
      R"({"attempt": )" + std::to_string(attempt) + R"(, "status": "exploded"})",
      R"({"attempt": )" + std::to_string(attempt) + R"(, "status": "failed", "colour": "red"})",
      R"({"attempt": )" + std::to_string(attempt) + R"(, "status": "failed", "exit_code": "3"})",
      R"({"attempt": )" + std::to_string(attempt) + R"(, "status": "failed", "message": ")" +
          std::string(4097, 'm') + "\"}",
      R"({"attempt": )" + std::to_string(attempt) + R"(, "status": "failed")",
      "[]",
  };
  for (const auto& b : raw) {
    SCOPED_TRACE(b.substr(0, 120));
    HttpResponse r =
        api().PostRaw("/v1/tasks/" + id + "/callback", b, {"Authorization: Bearer " + token});
    ExpectError(r, 400, "invalid_argument");
  }
  json::object done = WaitForState(id, "succeeded");
  EXPECT_EQ(Int(done, "attempt"), attempt);
  EXPECT_EQ(Str(Obj(done, "result"), "output"), "Fizz Buzz " + id);
}

TEST_F(RunningTaskTest, CancelRunningTaskKeepsItCancelled) {
  json::object running = StartRunning();
  std::string id = Str(running, "id");
  HttpResponse r = api().Request("POST", "/v1/tasks/" + id + "/cancel");
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_EQ(Str(r.Object(), "state"), "cancelled");
  json::object cancelled = GetTask(id);
  EXPECT_EQ(Str(cancelled, "state"), "cancelled");
  ExpectUnchangedPastBuiltinEnd(running, cancelled);
}

TEST_F(RunningTaskTest, DeleteRunningTaskIs204AndItStaysGone) {
  json::object running = StartRunning();
  std::string id = Str(running, "id");
  ASSERT_EQ(api().Delete("/v1/tasks/" + id).status, 204);
  SysMs until = TimeField(running, "started_at") + kFizzBuzzRun + milliseconds(500);
  while (NowMs() < until) {
    ASSERT_EQ(api().Get("/v1/tasks/" + id).status, 404) << "a deleted task came back";
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(CountTasks(), 0u);
}

}  // namespace
}  // namespace sked::blackbox
