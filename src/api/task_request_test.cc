#include "api/task_request.h"

#include <gtest/gtest.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <string>
#include <vector>

#include "api/error_json.h"
#include "api/internal/codec_test_util.h"

namespace sked::api {
namespace {

using testing::IsInvalid;
using testing::IsOk;
using testing::J;

const core::Time kNow = core::TimeFromSeconds(1'800'000'000);

CreateDefaults DockerOnly() {
  return {.default_container_runner = "docker", .container_runners = {"docker"}};
}
CreateDefaults BothRunners() {
  return {.default_container_runner = "docker", .container_runners = {"docker", "ec2-spot"}};
}
CreateDefaults NoRunner() { return {}; }

// A container body with `extra` members merged in (later members win).
boost::json::value Container(boost::json::object extra = {}) {
  boost::json::object o{{"type", "container"}, {"image", "busybox:1.36"}};
  for (auto& kv : extra) o[kv.key()] = kv.value();
  return o;
}

boost::json::value Fizz(boost::json::object extra = {}) {
  boost::json::object o{{"type", "fizz"}};
  for (auto& kv : extra) o[kv.key()] = kv.value();
  return o;
}

struct Reject {
  std::string name;
  boost::json::value body;
  std::string message;
};

void ExpectRejects(const std::vector<Reject>& cases, const CreateDefaults& d = DockerOnly()) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name + ": " + boost::json::serialize(c.body).substr(0, 200));
    EXPECT_TRUE(IsInvalid(ParseCreateTask(c.body, d, kNow), c.message));
  }
}

// --- Accepted bodies ---------------------------------------------------------

TEST(ParseCreateTask, MinimalBuiltinGetsDefaults) {
  auto r = ParseCreateTask(J(R"({"type":"fizz"})"), DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  const core::Task& t = *r;
  EXPECT_EQ(t.type, "fizz");
  EXPECT_EQ(t.runner, "builtin");
  EXPECT_EQ(t.run_at, kNow);
  EXPECT_EQ(t.state, core::TaskState::kScheduled);
  EXPECT_EQ(t.queue, "default");
  EXPECT_EQ(t.max_attempts, 3);
  EXPECT_EQ(t.timeout_s, 3600);
  EXPECT_TRUE(t.image.empty());
  EXPECT_TRUE(t.command.empty());
  EXPECT_TRUE(t.env.empty());
  EXPECT_TRUE(t.labels.empty());
  EXPECT_FALSE(t.idempotency_key);
  EXPECT_FALSE(t.notify_url);
  // The caller sets these.
  EXPECT_TRUE(t.id.empty());
  EXPECT_EQ(t.created_at, core::Time{});
}

TEST(ParseCreateTask, EveryBuiltinTypeIsAccepted) {
  for (const char* type : {"fizz", "buzz", "fizzbuzz", "foo", "bar", "baz", "noop"}) {
    SCOPED_TRACE(type);
    auto r = ParseCreateTask(boost::json::object{{"type", type}}, NoRunner(), kNow);
    ASSERT_TRUE(IsOk(r));
    EXPECT_EQ(r->type, type);
    EXPECT_EQ(r->runner, "builtin");
  }
}

TEST(ParseCreateTask, FullContainerTask) {
  auto r = ParseCreateTask(J(R"({
      "type": "container", "image": "busybox:1.36",
      "command": ["sh", "-c", "echo hi"],
      "env": {"KEY": "VALUE", "_x1": "a=b\nc \"quoted\" é"},
      "runner": "ec2-spot",
      "run_at": "2026-11-23T20:00:00.123+01:00",
      "max_attempts": 5, "timeout_s": 60,
      "idempotency_key": "order-42",
      "labels": {"team": "data", "app.kubernetes.io/name": "x", "empty": ""},
      "queue": "batch_1.x-y",
      "notify_url": "https://hooks.example.com/sked?x=1"})"),
                           BothRunners(), kNow);
  ASSERT_TRUE(IsOk(r));
  const core::Task& t = *r;
  EXPECT_EQ(t.type, "container");
  EXPECT_EQ(t.image, "busybox:1.36");
  EXPECT_EQ(t.command, (std::vector<std::string>{"sh", "-c", "echo hi"}));
  EXPECT_EQ(t.env.at("KEY"), "VALUE");
  EXPECT_EQ(t.env.at("_x1"), "a=b\nc \"quoted\" é");
  EXPECT_EQ(t.runner, "ec2-spot");
  EXPECT_EQ(core::FormatRfc3339(t.run_at), "2026-11-23T19:00:00.123Z");
  EXPECT_EQ(t.max_attempts, 5);
  EXPECT_EQ(t.timeout_s, 60);
  EXPECT_EQ(t.idempotency_key, "order-42");
  EXPECT_EQ(t.labels.size(), 3u);
  EXPECT_EQ(t.labels.at("app.kubernetes.io/name"), "x");
  EXPECT_EQ(t.queue, "batch_1.x-y");
  EXPECT_EQ(t.notify_url, "https://hooks.example.com/sked?x=1");
}

TEST(ParseCreateTask, ContainerRunnerDefaults) {
  auto r = ParseCreateTask(Container(), DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->runner, "docker");
  EXPECT_TRUE(r->command.empty());
  // No default named: the first enabled runner.
  r = ParseCreateTask(Container(),
                      {.default_container_runner = "", .container_runners = {"ec2-spot"}}, kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->runner, "ec2-spot");
  // A default that is not in the list is enabled too.
  r = ParseCreateTask(Container({{"runner", "docker"}}),
                      {.default_container_runner = "docker", .container_runners = {}}, kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->runner, "docker");
}

TEST(ParseCreateTask, BuiltinMayNameTheBuiltinRunner) {
  auto r = ParseCreateTask(Fizz({{"runner", "builtin"}}), DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->runner, "builtin");
}

TEST(ParseCreateTask, NullCountsAsAbsent) {
  auto r = ParseCreateTask(J(R"({"type":"fizz","run_at":null,"image":null,"command":null,
      "env":null,"runner":null,"max_attempts":null,"timeout_s":null,"idempotency_key":null,
      "labels":null,"queue":null,"notify_url":null})"),
                           DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->run_at, kNow);
  EXPECT_EQ(r->max_attempts, 3);
  EXPECT_EQ(r->queue, "default");
}

TEST(ParseCreateTask, IntegersMayBeWrittenWithFractionOrExponent) {
  auto r =
      ParseCreateTask(J(R"({"type":"fizz","max_attempts":3.0,"timeout_s":1e2,"run_at":1.8e9})"),
                      DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->max_attempts, 3);
  EXPECT_EQ(r->timeout_s, 100);
  EXPECT_EQ(r->run_at, core::TimeFromSeconds(1'800'000'000));
}

TEST(ParseCreateTask, RunAtForms) {
  struct Case {
    std::string json;
    core::Time want;
  };
  std::vector<Case> cases = {
      {R"("2026-11-23T19:00:00Z")", core::ParseRfc3339("2026-11-23T19:00:00Z").value()},
      {R"("2026-11-23T19:00:00.5-02:30")", core::ParseRfc3339("2026-11-23T21:30:00.5Z").value()},
      {R"("1970-01-01T00:00:00Z")", core::TimeFromSeconds(0)},
      {R"("9999-12-31T23:59:59.999Z")", core::TimeFromMicros(253402300799LL * 1000000 + 999000)},
      {"0", core::TimeFromSeconds(0)},
      {"253402300799", core::TimeFromSeconds(253402300799LL)},
      {"1000", core::TimeFromSeconds(1000)},  // in the past: runs at once
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json);
    auto r = ParseCreateTask(J(R"({"type":"noop","run_at":)" + c.json + "}"), DockerOnly(), kNow);
    ASSERT_TRUE(IsOk(r));
    EXPECT_EQ(r->run_at, c.want);
  }
}

TEST(ParseCreateTask, LimitsAreInclusive) {
  boost::json::array cmd;
  for (int i = 0; i < 256; ++i) cmd.emplace_back(i == 0 ? std::string(32768, 'x') : "a");
  boost::json::object env;
  for (int i = 0; i < 256; ++i) env["V" + std::to_string(i)] = "";
  env["V0"] = std::string(32768, 'v');
  env[std::string(256, 'N')] = "";  // replaces nothing: 257 would be too many, so drop one
  env.erase("V1");
  boost::json::object labels;
  for (int i = 0; i < 63; ++i) labels["k" + std::to_string(i)] = "";
  labels[std::string(63, 'k')] = std::string(255, 'v');
  std::string multibyte_key;
  for (int i = 0; i < 255; ++i) multibyte_key += "é";  // 255 characters, 510 bytes
  std::string url = "https://example.com/" + std::string(2048 - 20, 'p');
  ASSERT_EQ(url.size(), 2048u);
  boost::json::object extra{{"image", std::string(512, 'i')},
                            {"command", cmd},
                            {"env", env},
                            {"labels", labels},
                            {"max_attempts", 100},
                            {"timeout_s", 604800},
                            {"idempotency_key", multibyte_key},
                            {"queue", std::string(64, 'q')},
                            {"notify_url", url}};
  auto r = ParseCreateTask(Container(extra), DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->command.size(), 256u);
  EXPECT_EQ(r->env.size(), 256u);
  EXPECT_EQ(r->labels.size(), 64u);
  EXPECT_EQ(r->max_attempts, 100);
  EXPECT_EQ(r->timeout_s, 604800);

  r = ParseCreateTask(Container({{"command", boost::json::array{}},
                                 {"env", boost::json::object{}},
                                 {"labels", boost::json::object{}},
                                 {"max_attempts", 1},
                                 {"timeout_s", 1},
                                 {"idempotency_key", "k"},
                                 {"queue", "q"},
                                 {"image", "i"}}),
                      DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
}

TEST(ParseCreateTask, NotifyUrlSchemes) {
  for (const char* url : {"http://example.com", "https://example.com:8443/a/b?c=d#e",
                          "HTTPS://EXAMPLE.COM/", "http://127.0.0.1:9/hook"}) {
    SCOPED_TRACE(url);
    EXPECT_TRUE(IsOk(ParseCreateTask(Fizz({{"notify_url", url}}), DockerOnly(), kNow)));
  }
}

// --- Rejected bodies: each names its field ------------------------------------

TEST(ParseCreateTask, RejectsBodyShapeAndUnknownFields) {
  ExpectRejects({
      {"array body", J("[]"), "request body must be a JSON object"},
      {"string body", J(R"("x")"), "request body must be a JSON object"},
      {"null body", J("null"), "request body must be a JSON object"},
      {"unknown field", Fizz({{"foo", 1}}), "foo: unknown field"},
      {"output-only field", Fizz({{"state", "running"}}), "state: unknown field"},
      {"id not settable", Fizz({{"id", "x"}}), "id: unknown field"},
      {"schedule_id not settable", Fizz({{"schedule_id", "x"}}), "schedule_id: unknown field"},
      {"unknown odd key", Fizz({{"a b", 1}}), R"(unknown field "a b")"},
  });
}

TEST(ParseCreateTask, RejectsType) {
  ExpectRejects({
      {"missing", J("{}"), "type: required"},
      {"null", J(R"({"type":null})"), "type: required"},
      {"number", J(R"({"type":1})"), "type: must be a string"},
      {"unknown", J(R"({"type":"shell"})"),
       R"(type: unknown type "shell" (one of fizz, buzz, fizzbuzz, foo, bar, baz, noop, container))"},
      {"case matters", J(R"({"type":"Fizz"})"),
       R"(type: unknown type "Fizz" (one of fizz, buzz, fizzbuzz, foo, bar, baz, noop, container))"},
  });
}

TEST(ParseCreateTask, ContainerNeedsAnEnabledRunner) {
  EXPECT_TRUE(IsInvalid(
      ParseCreateTask(Container(), NoRunner(), kNow),
      "type: container tasks need a container runner (this node has no Docker engine on --docker-host)"));
  // Built-in types need none.
  EXPECT_TRUE(IsOk(ParseCreateTask(Fizz(), NoRunner(), kNow)));
}

TEST(ParseCreateTask, RejectsRunAt) {
  const std::string kNot = "run_at: not a time";
  const std::string kRange =
      "run_at: out of range (epoch seconds 0 to 253402300799, years 1970 to 9999)";
  ExpectRejects({
      {"words", Fizz({{"run_at", "tomorrow"}}), kNot},
      {"no offset", Fizz({{"run_at", "2026-11-23T19:00:00"}}), kNot},
      {"date only", Fizz({{"run_at", "2026-11-23"}}), kNot},
      {"impossible date", Fizz({{"run_at", "2026-02-30T00:00:00Z"}}), kNot},
      {"digit string", Fizz({{"run_at", "1800000000"}}), kNot},
      {"empty string", Fizz({{"run_at", ""}}), kNot},
      {"bool", Fizz({{"run_at", true}}), kNot},
      {"object", Fizz({{"run_at", boost::json::object{}}}), kNot},
      {"fraction", Fizz({{"run_at", 1.5}}), kNot},
      {"year 1969", Fizz({{"run_at", "1969-12-31T23:59:59Z"}}), kNot},
      {"negative", Fizz({{"run_at", -1}}), kRange},
      {"past 9999", Fizz({{"run_at", 253402300800LL}}), kRange},
      {"huge", Fizz({{"run_at", 18446744073709551615ULL}}), kRange},
      {"offset into 1969", Fizz({{"run_at", "1970-01-01T00:00:00+01:00"}}), kRange},
      {"offset into 10000", Fizz({{"run_at", "9999-12-31T23:59:59-01:00"}}), kRange},
  });
}

TEST(ParseCreateTask, RejectsImage) {
  ExpectRejects({
      {"missing", J(R"({"type":"container"})"), "image: required for container tasks"},
      {"null", Container({{"image", nullptr}}), "image: required for container tasks"},
      {"number", Container({{"image", 1}}), "image: must be a string"},
      {"empty", Container({{"image", ""}}), "image: must be 1 to 512 characters"},
      {"too long", Container({{"image", std::string(513, 'i')}}),
       "image: must be 1 to 512 characters"},
      {"space", Container({{"image", "busy box"}}),
       "image: must not contain whitespace or control characters"},
      {"tab", Container({{"image", "busybox\t"}}),
       "image: must not contain whitespace or control characters"},
      {"newline", Container({{"image", "busybox\n"}}),
       "image: must not contain whitespace or control characters"},
      {"nul", Container({{"image", std::string("busy\0box", 8)}}),
       "image: must not contain whitespace or control characters"},
      {"del", Container({{"image", "busy\x7f"}}),
       "image: must not contain whitespace or control characters"},
      {"nbsp", Container({{"image", "busy\u00a0box"}}),
       "image: must not contain whitespace or control characters"},
      {"ideographic space", Container({{"image", "busy\u3000box"}}),
       "image: must not contain whitespace or control characters"},
      {"builtin", Fizz({{"image", "busybox"}}), "image: only allowed for container tasks"},
  });
}

TEST(ParseCreateTask, RejectsCommand) {
  boost::json::array many;
  for (int i = 0; i < 257; ++i) many.emplace_back("a");
  ExpectRejects({
      {"string", Container({{"command", "sh -c x"}}), "command: must be an array of strings"},
      {"object", Container({{"command", boost::json::object{}}}),
       "command: must be an array of strings"},
      {"too many", Container({{"command", many}}), "command: at most 256 elements"},
      {"number element", Container({{"command", J(R"(["sh", 1])")}}),
       "command[1]: must be a string"},
      {"null element", Container({{"command", J(R"([null])")}}), "command[0]: must be a string"},
      {"long element", Container({{"command", boost::json::array{"a", std::string(32769, 'x')}}}),
       "command[1]: longer than 32768 bytes"},
      {"builtin", Fizz({{"command", boost::json::array{}}}),
       "command: only allowed for container tasks"},
  });
}

TEST(ParseCreateTask, RejectsEnv) {
  boost::json::object many;
  for (int i = 0; i < 257; ++i) many["V" + std::to_string(i)] = "";
  const std::string kRule = "(must match [A-Za-z_][A-Za-z0-9_]*)";
  ExpectRejects({
      {"array", Container({{"env", boost::json::array{}}}), "env: must be an object of strings"},
      {"string", Container({{"env", "A=B"}}), "env: must be an object of strings"},
      {"too many", Container({{"env", many}}), "env: at most 256 entries"},
      {"empty name", Container({{"env", J(R"({"":"x"})")}}), "env: empty variable name"},
      {"leading digit", Container({{"env", J(R"({"1FOO":"x"})")}}),
       "env.1FOO: invalid name " + kRule},
      {"dash", Container({{"env", J(R"({"A-B":"x"})")}}), "env.A-B: invalid name " + kRule},
      {"dot", Container({{"env", J(R"({"A.B":"x"})")}}), "env.A.B: invalid name " + kRule},
      {"space", Container({{"env", J(R"({"A B":"x"})")}}), R"(env: invalid name "A B" )" + kRule},
      {"equals", Container({{"env", J(R"({"A=B":"x"})")}}), R"(env: invalid name "A=B" )" + kRule},
      {"non-ascii", Container({{"env", J(R"({"É":"x"})")}}), R"(env: invalid name "É" )" + kRule},
      {"name too long", Container({{"env", boost::json::object{{std::string(257, 'N'), "x"}}}}),
       "env: variable name \"" + std::string(64, 'N') + "...\" is longer than 256 characters"},
      {"reserved", Container({{"env", J(R"({"SKED_TASK_ID":"x"})")}}),
       "env.SKED_TASK_ID: names starting with SKED_ are reserved"},
      {"reserved bare prefix", Container({{"env", J(R"({"SKED_":"x"})")}}),
       "env.SKED_: names starting with SKED_ are reserved"},
      {"number value", Container({{"env", J(R"({"FOO":1})")}}), "env.FOO: must be a string"},
      {"null value", Container({{"env", J(R"({"FOO":null})")}}), "env.FOO: must be a string"},
      {"long value", Container({{"env", boost::json::object{{"FOO", std::string(32769, 'v')}}}}),
       "env.FOO: longer than 32768 bytes"},
      {"NUL in value", Container({{"env", J(R"({"FOO":"a\u0000b"})")}}),
       "env.FOO: must not contain NUL characters"},
      {"builtin", Fizz({{"env", boost::json::object{}}}), "env: only allowed for container tasks"},
  });
  // Lower-case sked_ is not reserved: the rule is about SKED_ names only.
  EXPECT_TRUE(
      IsOk(ParseCreateTask(Container({{"env", J(R"({"sked_x":"1"})")}}), DockerOnly(), kNow)));
}

TEST(ParseCreateTask, RejectsRunner) {
  ExpectRejects(
      {
          {"number", Container({{"runner", 1}}), "runner: must be a string"},
          {"unknown", Container({{"runner", "k8s"}}),
           R"(runner: unknown runner "k8s" (docker or ec2-spot))"},
          {"builtin for container", Container({{"runner", "builtin"}}),
           R"(runner: unknown runner "builtin" (docker or ec2-spot))"},
          {"not enabled", Container({{"runner", "ec2-spot"}}),
           R"(runner: "ec2-spot" is not enabled on this server)"},
          {"container runner for builtin", Fizz({{"runner", "docker"}}),
           R"(runner: built-in types only run on "builtin")"},
          {"number for builtin", Fizz({{"runner", 0}}),
           R"(runner: built-in types only run on "builtin")"},
      },
      DockerOnly());
}

TEST(ParseCreateTask, RejectsIntegers) {
  const std::string kMax = "max_attempts: must be an integer from 1 to 100";
  const std::string kTimeout = "timeout_s: must be an integer from 1 to 604800";
  ExpectRejects({
      {"max zero", Fizz({{"max_attempts", 0}}), kMax},
      {"max 101", Fizz({{"max_attempts", 101}}), kMax},
      {"max negative", Fizz({{"max_attempts", -1}}), kMax},
      {"max string", Fizz({{"max_attempts", "3"}}), kMax},
      {"max fraction", Fizz({{"max_attempts", 2.5}}), kMax},
      {"max bool", Fizz({{"max_attempts", true}}), kMax},
      {"max huge", Fizz({{"max_attempts", 18446744073709551615ULL}}), kMax},
      {"timeout zero", Fizz({{"timeout_s", 0}}), kTimeout},
      {"timeout too big", Fizz({{"timeout_s", 604801}}), kTimeout},
      {"timeout string", Fizz({{"timeout_s", "60"}}), kTimeout},
  });
}

TEST(ParseCreateTask, RejectsIdempotencyKey) {
  ExpectRejects({
      {"number", Fizz({{"idempotency_key", 5}}), "idempotency_key: must be a string"},
      {"empty", Fizz({{"idempotency_key", ""}}), "idempotency_key: must be 1 to 255 characters"},
      {"too long", Fizz({{"idempotency_key", std::string(256, 'k')}}),
       "idempotency_key: must be 1 to 255 characters"},
  });
}

TEST(ParseCreateTask, RejectsLabels) {
  boost::json::object many;
  for (int i = 0; i < 65; ++i) many["k" + std::to_string(i)] = "";
  const std::string kRule = "must be 1 to 63 characters of [A-Za-z0-9_.-/]";
  ExpectRejects({
      {"array", Fizz({{"labels", boost::json::array{}}}), "labels: must be an object of strings"},
      {"too many", Fizz({{"labels", many}}), "labels: at most 64 entries"},
      {"empty key", Fizz({{"labels", J(R"({"":"x"})")}}), "labels: empty key"},
      {"space key", Fizz({{"labels", J(R"({"a b":"x"})")}}), R"(labels: key "a b" )" + kRule},
      {"colon key", Fizz({{"labels", J(R"({"a:b":"x"})")}}), R"(labels: key "a:b" )" + kRule},
      {"long key", Fizz({{"labels", boost::json::object{{std::string(64, 'k'), "x"}}}}),
       "labels." + std::string(64, 'k') + ": key " + kRule},
      {"number value", Fizz({{"labels", J(R"({"team":1})")}}), "labels.team: must be a string"},
      {"long value", Fizz({{"labels", boost::json::object{{"team", std::string(256, 'v')}}}}),
       "labels.team: longer than 255 characters"},
      {"slash key long value",
       Fizz({{"labels", boost::json::object{{"a/b", std::string(256, 'v')}}}}),
       "labels.a/b: longer than 255 characters"},
  });
}

TEST(ParseCreateTask, RejectsQueue) {
  const std::string kRule = "queue: must be 1 to 64 characters of [A-Za-z0-9_.-]";
  ExpectRejects({
      {"number", Fizz({{"queue", 1}}), "queue: must be a string"},
      {"empty", Fizz({{"queue", ""}}), kRule},
      {"too long", Fizz({{"queue", std::string(65, 'q')}}), kRule},
      {"space", Fizz({{"queue", "a b"}}), kRule},
      {"slash", Fizz({{"queue", "a/b"}}), kRule},
  });
}

TEST(ParseCreateTask, RejectsNotifyUrl) {
  const std::string kScheme = "notify_url: must be an http:// or https:// URL";
  ExpectRejects({
      {"number", Fizz({{"notify_url", 1}}), "notify_url: must be a string"},
      {"ftp", Fizz({{"notify_url", "ftp://example.com/x"}}), kScheme},
      {"no scheme", Fizz({{"notify_url", "example.com/hook"}}), kScheme},
      {"no host", Fizz({{"notify_url", "http://"}}), kScheme},
      {"no authority", Fizz({{"notify_url", "http:/path"}}), kScheme},
      {"space", Fizz({{"notify_url", "http://exa mple.com"}}), kScheme},
      {"empty", Fizz({{"notify_url", ""}}), kScheme},
      {"too long", Fizz({{"notify_url", "https://example.com/" + std::string(2029, 'p')}}),
       "notify_url: longer than 2048 characters"},
  });
}

TEST(ParseCreateTask, RejectsInvalidUtf8) {
  // Boost.JSON's parser already refuses invalid UTF-8; values built in code
  // (or parsed with allow_invalid_utf8) are checked here.
  ExpectRejects({
      {"image", Container({{"image", "busy\xff"}}), "image: not valid UTF-8"},
      {"overlong", Container({{"image", "\xc0\xaf"}}), "image: not valid UTF-8"},
      {"surrogate", Container({{"image", "\xed\xa0\x80"}}), "image: not valid UTF-8"},
      {"truncated", Container({{"image", "ab\xe2\x82"}}), "image: not valid UTF-8"},
      {"beyond U+10FFFF", Container({{"image", "\xf4\x90\x80\x80"}}), "image: not valid UTF-8"},
      {"command element", Container({{"command", boost::json::array{"ok", "\x80"}}}),
       "command[1]: not valid UTF-8"},
      {"env value", Container({{"env", boost::json::object{{"FOO", "\xfe"}}}}),
       "env.FOO: not valid UTF-8"},
      {"env key", Container({{"env", boost::json::object{{"\xfe", "x"}}}}),
       "env: a key is not valid UTF-8"},
      {"top-level key", Fizz({{"\xfe", 1}}), "request body: a key is not valid UTF-8"},
      {"label value", Fizz({{"labels", boost::json::object{{"team", "\xc3"}}}}),
       "labels.team: not valid UTF-8"},
  });
}

TEST(ParseCreateTask, FieldPrefixNamesTheElement) {
  auto d = DockerOnly();
  EXPECT_TRUE(
      IsInvalid(ParseCreateTask(J("[]"), d, kNow, "tasks[3]."), "tasks[3]: must be a JSON object"));
  EXPECT_TRUE(IsInvalid(ParseCreateTask(J("{}"), d, kNow, "tasks[3]."), "tasks[3].type: required"));
  EXPECT_TRUE(
      IsInvalid(ParseCreateTask(Container({{"env", J(R"({"SKED_X":"1"})")}}), d, kNow, "tasks[3]."),
                "tasks[3].env.SKED_X: names starting with SKED_ are reserved"));
  EXPECT_TRUE(IsInvalid(ParseCreateTask(Fizz({{"x", 1}}), d, kNow, "tasks[3]."),
                        "tasks[3].x: unknown field"));
  EXPECT_TRUE(IsInvalid(ParseCreateTask(Fizz({{"a b", 1}}), d, kNow, "tasks[3]."),
                        R"(tasks[3]: unknown field "a b")"));
  EXPECT_TRUE(IsInvalid(ParseCreateTask(Container({{"command", J("[1]")}}), d, kNow, "tasks[3]."),
                        "tasks[3].command[0]: must be a string"));
  EXPECT_TRUE(IsInvalid(ParseCreateTask(Container({{"image", "\xff"}}), d, kNow, "tasks[3]."),
                        "tasks[3].image: not valid UTF-8"));
  EXPECT_TRUE(IsInvalid(ParseCreateTask(Container(), NoRunner(), kNow, "tasks[3]."),
                        std::string("tasks[3].type: ") + std::string(kNoContainerRunnerReason)));
  // The HTTP layer reads details.field from the message.
  auto r = ParseCreateTask(Container({{"env", J(R"({"SKED_X":"1"})")}}), d, kNow, "tasks[3].");
  EXPECT_EQ(FieldFromMessage(r.status().message()), "tasks[3].env.SKED_X");
}

// --- ParseTimeValue --------------------------------------------------------------

TEST(ParseTimeValue, AcceptsStringsAndEpochSeconds) {
  EXPECT_EQ(ParseTimeValue(J("0")).value(), core::TimeFromSeconds(0));
  EXPECT_EQ(ParseTimeValue(J("253402300799")).value(), core::TimeFromSeconds(253402300799LL));
  EXPECT_EQ(ParseTimeValue(J("1800000000.0")).value(), core::TimeFromSeconds(1800000000));
  EXPECT_EQ(ParseTimeValue(J(R"("2026-11-23T19:00:00Z")")).value(),
            core::ParseRfc3339("2026-11-23T19:00:00Z").value());
  EXPECT_EQ(ParseTimeValue(J(R"("2026-11-23t19:00:00z")")).value(),
            core::ParseRfc3339("2026-11-23T19:00:00Z").value());
}

TEST(ParseTimeValue, ReasonsCarryNoFieldPath) {
  EXPECT_TRUE(IsInvalid(ParseTimeValue(J(R"("x")")), "not a time"));
  EXPECT_TRUE(IsInvalid(ParseTimeValue(J("null")), "not a time"));
  EXPECT_TRUE(IsInvalid(ParseTimeValue(J("[]")), "not a time"));
  EXPECT_TRUE(IsInvalid(ParseTimeValue(J("-1")),
                        "out of range (epoch seconds 0 to 253402300799, years 1970 to 9999)"));
  EXPECT_TRUE(IsInvalid(ParseTimeValue(J("1e300")),
                        "out of range (epoch seconds 0 to 253402300799, years 1970 to 9999)"));
  EXPECT_TRUE(IsInvalid(ParseTimeValue(J("0.25")), "not a time"));
}

// --- ParseBatch -------------------------------------------------------------------

boost::json::value BatchOf(size_t n) {
  boost::json::array tasks;
  for (size_t i = 0; i < n; ++i) tasks.push_back(boost::json::object{{"type", "noop"}});
  return boost::json::object{{"tasks", tasks}};
}

TEST(ParseBatch, AcceptsOneToAThousandInOrder) {
  auto r = ParseBatch(J(R"({"tasks":[{"type":"fizz"},{"type":"container","image":"a"},
                                     {"type":"buzz","run_at":0}]})"),
                      DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].type, "fizz");
  EXPECT_EQ((*r)[1].runner, "docker");
  EXPECT_EQ((*r)[2].run_at, core::TimeFromSeconds(0));
  EXPECT_EQ(ParseBatch(BatchOf(1), DockerOnly(), kNow)->size(), 1u);
  EXPECT_EQ(ParseBatch(BatchOf(1000), DockerOnly(), kNow)->size(), 1000u);
}

TEST(ParseBatch, Rejects) {
  auto d = DockerOnly();
  EXPECT_TRUE(IsInvalid(ParseBatch(J("[]"), d, kNow), "request body must be a JSON object"));
  EXPECT_TRUE(IsInvalid(ParseBatch(J("{}"), d, kNow), "tasks: required"));
  EXPECT_TRUE(IsInvalid(ParseBatch(J(R"({"tasks":null})"), d, kNow), "tasks: required"));
  EXPECT_TRUE(
      IsInvalid(ParseBatch(J(R"({"tasks":{}})"), d, kNow), "tasks: must be an array of tasks"));
  EXPECT_TRUE(
      IsInvalid(ParseBatch(J(R"({"tasks":[]})"), d, kNow), "tasks: must hold at least 1 task"));
  EXPECT_TRUE(IsInvalid(ParseBatch(BatchOf(1001), d, kNow), "tasks: at most 1000 tasks"));
  EXPECT_TRUE(IsInvalid(ParseBatch(J(R"({"tasks":[{"type":"fizz"}],"atomic":true})"), d, kNow),
                        "atomic: unknown field"));
  EXPECT_TRUE(IsInvalid(ParseBatch(J(R"({"tasks":[{"type":"fizz"}],"a b":1})"), d, kNow),
                        R"(unknown field "a b")"));
  EXPECT_TRUE(IsInvalid(ParseBatch(J(R"({"tasks":[{"type":"fizz"}, 7]})"), d, kNow),
                        "tasks[1]: must be a JSON object"));
  EXPECT_TRUE(IsInvalid(ParseBatch(J(R"({"tasks":[{"type":"fizz"},{"type":"fizz"},{}]})"), d, kNow),
                        "tasks[2].type: required"));
  EXPECT_TRUE(IsInvalid(
      ParseBatch(
          J(R"({"tasks":[{"type":"fizz"},{"type":"container","image":"a","env":{"1X":""}}]})"), d,
          kNow),
      "tasks[1].env.1X: invalid name (must match [A-Za-z_][A-Za-z0-9_]*)"));
  EXPECT_TRUE(
      IsInvalid(ParseBatch(J(R"({"tasks":[{"type":"container","image":"a"}]})"), NoRunner(), kNow),
                std::string("tasks[0].type: ") + std::string(kNoContainerRunnerReason)));
  boost::json::object bad_utf8{
      {"tasks", boost::json::array{boost::json::object{{"type", "container"}, {"image", "\xff"}}}}};
  EXPECT_TRUE(IsInvalid(ParseBatch(bad_utf8, d, kNow), "tasks[0].image: not valid UTF-8"));
}

}  // namespace
}  // namespace sked::api
