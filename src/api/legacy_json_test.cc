#include "api/legacy_json.h"

#include <gtest/gtest.h>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <string>

#include "api/internal/codec_test_util.h"
#include "api/internal/codec_util.h"

namespace sked::api {
namespace {

using testing::IsInvalid;
using testing::IsOk;
using testing::J;

// 2027-01-15T08:00:00Z.
const core::Time kNow = core::TimeFromSeconds(1800000000 - 1800000000 % 86400 + 8 * 3600);
const CreateDefaults kDocker{.default_container_runner = "docker", .container_runners = {"docker"}};

core::Time At(std::string_view rfc3339) { return core::ParseRfc3339(rfc3339).value(); }

TEST(LegacyStatusWord, MapsEveryState) {
  EXPECT_EQ(LegacyStatusWord(core::TaskState::kScheduled), "SCHEDULED");
  EXPECT_EQ(LegacyStatusWord(core::TaskState::kProvisioning), "RUNNING");
  EXPECT_EQ(LegacyStatusWord(core::TaskState::kRunning), "RUNNING");
  EXPECT_EQ(LegacyStatusWord(core::TaskState::kSucceeded), "DONE");
  EXPECT_EQ(LegacyStatusWord(core::TaskState::kFailed), "FAILED");
  EXPECT_EQ(LegacyStatusWord(core::TaskState::kCancelled), "FAILED");
}

TEST(LegacyJobToJson, ContainerTask) {
  core::Task t;
  t.id = "0193a6f0-1234-7abc-8def-0123456789ab";
  t.type = "container";
  t.image = "busybox:1.36";
  t.env = {{"K", "V"}};
  t.run_at = At("2026-11-23T19:00:00.123Z");
  t.state = core::TaskState::kFailed;
  t.error = "exit code 1";
  t.lease_owner = "node-1";
  EXPECT_EQ(boost::json::value(LegacyJobToJson(t)),
            J(R"({"id":"0193a6f0-1234-7abc-8def-0123456789ab","docker_image":"busybox:1.36",
                  "env_vars":{"K":"V"},"scheduled_for":"2026-11-23T19:00:00.123Z",
                  "status":"FAILED","error_message":"exit code 1"})"));
}

TEST(LegacyJobToJson, BuiltinTask) {
  core::Task t;
  t.id = "x";
  t.type = "fizz";
  t.run_at = core::TimeFromSeconds(0);
  t.state = core::TaskState::kRunning;
  EXPECT_EQ(boost::json::value(LegacyJobToJson(t)),
            J(R"({"id":"x","docker_image":null,"env_vars":{},
                  "scheduled_for":"1970-01-01T00:00:00.000Z","status":"RUNNING",
                  "error_message":null})"));
}

TEST(LegacyNotFoundMessage, IsTheBriefsText) {
  EXPECT_EQ(LegacyNotFoundMessage("abc"), "Job id abc was not found");
}

// --- POST /schedule ----------------------------------------------------------

TEST(ParseLegacySchedule, MakesAContainerTask) {
  auto r = ParseLegacySchedule(
      J(R"({"docker_image":"busybox","scheduled_for":"2026-11-23T20:00:00+01:00",
                                     "env_vars":{"K":"V","_2":""}})"),
      kDocker, kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->type, "container");
  EXPECT_EQ(r->runner, "docker");
  EXPECT_EQ(r->image, "busybox");
  EXPECT_EQ(r->run_at, At("2026-11-23T19:00:00Z"));
  EXPECT_EQ(r->env, (std::map<std::string, std::string>{{"K", "V"}, {"_2", ""}}));
  EXPECT_EQ(r->queue, "default");
  EXPECT_EQ(r->max_attempts, 3);
  EXPECT_EQ(r->state, core::TaskState::kScheduled);
  EXPECT_TRUE(r->id.empty());
}

TEST(ParseLegacySchedule, RunnerComesFromTheServer) {
  auto r = ParseLegacySchedule(J(R"({"docker_image":"a","scheduled_for":0})"),
                               {.default_container_runner = "", .container_runners = {"ec2-spot"}},
                               kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->runner, "ec2-spot");
  EXPECT_TRUE(
      IsInvalid(ParseLegacySchedule(J(R"({"docker_image":"a","scheduled_for":0})"), {}, kNow),
                kNoContainerRunnerReason));
}

TEST(ParseLegacySchedule, ScheduledForForms) {
  struct Case {
    std::string json;
    core::Time want;
  };
  const std::vector<Case> cases = {
      {R"("2026-11-23T19:00:00Z")", At("2026-11-23T19:00:00Z")},
      {R"("2026-11-23T19:00:00.250-05:00")", At("2026-11-24T00:00:00.250Z")},
      {"1800000000", core::TimeFromSeconds(1800000000)},
      {"1800000000.0", core::TimeFromSeconds(1800000000)},
      {R"("1800000000")", core::TimeFromSeconds(1800000000)},
      {R"(" 1800000000 ")", core::TimeFromSeconds(1800000000)},
      {"0", core::TimeFromSeconds(0)},
      {"253402300799", core::TimeFromSeconds(253402300799LL)},
      // HH:MM: its next occurrence after now (08:00 UTC), in UTC.
      {R"("09:30")", kNow + std::chrono::minutes(90)},
      {R"("9:30")", kNow + std::chrono::minutes(90)},
      {R"("23:59")", kNow + std::chrono::hours(15) + std::chrono::minutes(59)},
      {R"("07:59")", kNow + std::chrono::hours(24) - std::chrono::minutes(1)},
      {R"("08:00")", kNow + std::chrono::hours(24)},  // now itself is not after now
      {R"("00:00")", kNow + std::chrono::hours(16)},
      {R"("08:00:30")", kNow + std::chrono::seconds(30)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json);
    auto r = ParseLegacySchedule(J(R"({"docker_image":"busybox","scheduled_for":)" + c.json + "}"),
                                 kDocker, kNow);
    ASSERT_TRUE(IsOk(r));
    EXPECT_EQ(r->run_at, c.want);
  }
}

TEST(ParseLegacySchedule, TheBriefsExactMessages) {
  struct Case {
    std::string body;
    std::string_view message;
  };
  const std::vector<Case> cases = {
      {R"({"scheduled_for":"09:30"})", kDockerImageEmpty},
      {R"({"docker_image":null,"scheduled_for":"09:30"})", kDockerImageEmpty},
      {R"({"docker_image":"","scheduled_for":"09:30"})", kDockerImageEmpty},
      {R"({"docker_image":"  ","scheduled_for":"09:30"})", kDockerImageEmpty},
      {R"({})", kDockerImageEmpty},  // the first missing field is named
      {R"({"docker_image":"busybox"})", kScheduledForEmpty},
      {R"({"docker_image":"busybox","scheduled_for":null})", kScheduledForEmpty},
      {R"({"docker_image":"busybox","scheduled_for":""})", kScheduledForEmpty},
      {R"({"docker_image":"busybox","scheduled_for":" "})", kScheduledForEmpty},
      {R"({"docker_image":"busybox","scheduled_for":"tomorrow"})", kScheduledForNotATime},
      {R"({"docker_image":"busybox","scheduled_for":"24:00"})", kScheduledForNotATime},
      {R"({"docker_image":"busybox","scheduled_for":"12:60"})", kScheduledForNotATime},
      {R"({"docker_image":"busybox","scheduled_for":"123:00"})", kScheduledForNotATime},
      {R"({"docker_image":"busybox","scheduled_for":"12:5"})", kScheduledForNotATime},
      {R"({"docker_image":"busybox","scheduled_for":"2026-11-23T19:00:00"})",
       kScheduledForNotATime},
      {R"({"docker_image":"busybox","scheduled_for":-1})", kScheduledForNotATime},
      {R"({"docker_image":"busybox","scheduled_for":1.5})", kScheduledForNotATime},
      {R"({"docker_image":"busybox","scheduled_for":253402300800})", kScheduledForNotATime},
      {R"({"docker_image":"busybox","scheduled_for":"-5"})", kScheduledForNotATime},
      {R"({"docker_image":"busybox","scheduled_for":true})", kScheduledForNotATime},
      {R"({"docker_image":"busybox","scheduled_for":{}})", kScheduledForNotATime},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    EXPECT_TRUE(IsInvalid(ParseLegacySchedule(J(c.body), kDocker, kNow), c.message));
  }
}

TEST(ParseLegacySchedule, OtherRejections) {
  struct Case {
    std::string body;
    std::string message;
  };
  const std::string kOk = R"("docker_image":"busybox","scheduled_for":"09:30")";
  const std::vector<Case> cases = {
      {"[]", "request body must be a JSON object"},
      {R"({"docker_image":5,"scheduled_for":"09:30"})", "docker_image field must be a string"},
      {R"({"docker_image":"busy box","scheduled_for":"09:30"})",
       "docker_image field is not a valid image (at most 512 characters, no whitespace or "
       "control characters)"},
      {"{" + kOk + R"(,"env_vars":[]})", "env_vars field must be an object of strings"},
      {"{" + kOk + R"(,"env_vars":{"1A":"x"}})",
       R"(env_vars field has an invalid name "1A" (must match [A-Za-z_][A-Za-z0-9_]*))"},
      {"{" + kOk + R"(,"env_vars":{"":"x"}})",
       R"(env_vars field has an invalid name "" (must match [A-Za-z_][A-Za-z0-9_]*))"},
      {"{" + kOk + R"(,"env_vars":{"SKED_ATTEMPT":"x"}})",
       R"(env_vars field has a reserved name "SKED_ATTEMPT" (names starting with SKED_ are set by sked))"},
      {"{" + kOk + R"(,"env_vars":{"A":1}})", R"(env_vars field value of "A" must be a string)"},
      {"{" + kOk + R"(,"id":"x"})", R"(unknown field "id")"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    EXPECT_TRUE(IsInvalid(ParseLegacySchedule(J(c.body), kDocker, kNow), c.message));
  }
  boost::json::object big_value{{"docker_image", "a"},
                                {"scheduled_for", 0},
                                {"env_vars", boost::json::object{{"A", std::string(32769, 'v')}}}};
  EXPECT_TRUE(IsInvalid(ParseLegacySchedule(big_value, kDocker, kNow),
                        R"(env_vars field value of "A" is longer than 32768 bytes)"));
  boost::json::object many;
  for (int i = 0; i < 257; ++i) many["V" + std::to_string(i)] = "";
  EXPECT_TRUE(IsInvalid(
      ParseLegacySchedule(
          boost::json::object{{"docker_image", "a"}, {"scheduled_for", 0}, {"env_vars", many}},
          kDocker, kNow),
      "env_vars field has more than 256 entries"));
  EXPECT_TRUE(
      IsInvalid(ParseLegacySchedule(boost::json::object{{"docker_image", "\xff"}}, kDocker, kNow),
                "docker_image: not valid UTF-8"));
}

// --- POST /task/set and POST /task ---------------------------------------------

TEST(ParseTaskSet, KindsAreLoose) {
  struct Case {
    const char* kind;
    const char* type;
  };
  for (const Case& c : {Case{"Fizz", "fizz"}, Case{"fizz", "fizz"}, Case{"BUZZ", "buzz"},
                        Case{"FizzBuzz", "fizzbuzz"}, Case{"fizzbuzz", "fizzbuzz"},
                        Case{"Fizz Buzz", "fizzbuzz"}, Case{"fizz_buzz", "fizzbuzz"}}) {
    SCOPED_TRACE(c.kind);
    auto r = ParseTaskSet(boost::json::object{{"kind", c.kind}, {"when", 1800000000}}, kNow);
    ASSERT_TRUE(IsOk(r));
    EXPECT_EQ(r->type, c.type);
    EXPECT_EQ(r->runner, "builtin");
    EXPECT_EQ(r->queue, "default");
    EXPECT_EQ(r->run_at, core::TimeFromSeconds(1800000000));
  }
}

TEST(ParseTaskSet, WhenForms) {
  EXPECT_EQ(ParseTaskSet(J(R"({"kind":"Fizz"})"), kNow)->run_at, kNow);
  EXPECT_EQ(ParseTaskSet(J(R"({"kind":"Fizz","when":null})"), kNow)->run_at, kNow);
  EXPECT_EQ(ParseTaskSet(J(R"({"kind":"Fizz","when":"1800000000"})"), kNow)->run_at,
            core::TimeFromSeconds(1800000000));
  EXPECT_EQ(ParseTaskSet(J(R"({"kind":"Fizz","when":"2026-11-23T19:00:00Z"})"), kNow)->run_at,
            At("2026-11-23T19:00:00Z"));
}

TEST(ParseTaskSet, Rejects) {
  struct Case {
    std::string body, message;
  };
  const std::vector<Case> cases = {
      {"[]", "request body must be a JSON object"},
      {"{}", "kind: required"},
      {R"({"kind":1})", "kind: must be a string"},
      {R"({"kind":"Foo"})", "kind: must be one of Fizz, Buzz, FizzBuzz"},
      {R"({"kind":"Fuzz"})", "kind: must be one of Fizz, Buzz, FizzBuzz"},
      {R"({"kind":"Fizz","when":"soon"})", "when: not a time"},
      {R"({"kind":"Fizz","when":""})", "when: not a time"},
      {R"({"kind":"Fizz","when":"09:30"})", "when: not a time"},
      {R"({"kind":"Fizz","when":true})", "when: not a time"},
      {R"({"kind":"Fizz","when":-1})",
       "when: out of range (epoch seconds 0 to 253402300799, years 1970 to 9999)"},
      {R"({"kind":"Fizz","type":"fizz"})", "type: unknown field"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    EXPECT_TRUE(IsInvalid(ParseTaskSet(J(c.body), kNow), c.message));
  }
}

TEST(ParseTaskBrief, TypesAndSendTs) {
  for (const char* type : {"Foo", "bar", "BAZ"}) {
    SCOPED_TRACE(type);
    auto r = ParseTaskBrief(
        boost::json::object{{"type", type}, {"send_ts", "2026-11-23T19:00:00Z"}}, kNow);
    ASSERT_TRUE(IsOk(r));
    EXPECT_EQ(r->type, detail::ToLowerAscii(type));
    EXPECT_EQ(r->runner, "builtin");
    EXPECT_EQ(r->run_at, At("2026-11-23T19:00:00Z"));
  }
  EXPECT_EQ(ParseTaskBrief(J(R"({"type":"Foo"})"), kNow)->run_at, kNow);
  EXPECT_EQ(ParseTaskBrief(J(R"({"type":"Foo","send_ts":0})"), kNow)->run_at,
            core::TimeFromSeconds(0));
  EXPECT_TRUE(IsInvalid(ParseTaskBrief(J(R"({})"), kNow), "type: required"));
  EXPECT_TRUE(IsInvalid(ParseTaskBrief(J(R"({"type":"Fizz"})"), kNow),
                        "type: must be one of Foo, Bar, Baz"));
  EXPECT_TRUE(
      IsInvalid(ParseTaskBrief(J(R"({"type":"Foo","send_ts":"x"})"), kNow), "send_ts: not a time"));
  EXPECT_TRUE(
      IsInvalid(ParseTaskBrief(J(R"({"type":"Foo","kind":"Fizz"})"), kNow), "kind: unknown field"));
}

// --- PUT /callback/{id} -------------------------------------------------------

TEST(ParseLegacyCallback, KeysChooseTheOutcome) {
  auto r = ParseLegacyCallback(J("{}"));
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->status, "succeeded");
  EXPECT_FALSE(r->message);

  r = ParseLegacyCallback(J("null"));
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->status, "succeeded");

  r = ParseLegacyCallback(J(R"({"failed":"","error_message":"disk full"})"));
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->status, "failed");
  EXPECT_EQ(r->message, "disk full");

  r = ParseLegacyCallback(J(R"({"failed":""})"));
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->status, "failed");
  EXPECT_FALSE(r->message);

  r = ParseLegacyCallback(J(R"({"failed":true,"error_message":null})"));
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->status, "failed");
  EXPECT_FALSE(r->message);

  r = ParseLegacyCallback(J(R"({"schedule":""})"));
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->status, "interrupted");
}

TEST(ParseLegacyCallback, Rejects) {
  EXPECT_TRUE(IsInvalid(ParseLegacyCallback(J("[]")), "request body must be a JSON object"));
  EXPECT_TRUE(IsInvalid(ParseLegacyCallback(J(R"({"failed":"","schedule":""})")),
                        "failed and schedule cannot be given together"));
  EXPECT_TRUE(IsInvalid(ParseLegacyCallback(J(R"({"error_message":"x"})")),
                        "error_message field is only allowed with failed"));
  EXPECT_TRUE(IsInvalid(ParseLegacyCallback(J(R"({"schedule":"","error_message":"x"})")),
                        "error_message field is only allowed with failed"));
  EXPECT_TRUE(IsInvalid(ParseLegacyCallback(J(R"({"failed":"","error_message":5})")),
                        "error_message field must be a string"));
  EXPECT_TRUE(IsInvalid(ParseLegacyCallback(boost::json::object{
                            {"failed", ""}, {"error_message", std::string(4097, 'm')}}),
                        "error_message field is longer than 4096 characters"));
  EXPECT_TRUE(IsInvalid(ParseLegacyCallback(J(R"({"done":""})")), R"(unknown field "done")"));
}

}  // namespace
}  // namespace sked::api
