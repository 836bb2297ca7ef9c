#include "api/schedule_json.h"

#include <gtest/gtest.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <set>
#include <string>
#include <vector>

#include "api/error_json.h"
#include "api/internal/codec_test_util.h"
#include "cron/cron.h"

namespace sked::api {
namespace {

using testing::IsInvalid;
using testing::IsOk;
using testing::J;

const core::Time kNow = core::TimeFromSeconds(1'800'000'000);

CreateDefaults DockerOnly() {
  return {.default_container_runner = "docker", .container_runners = {"docker"}};
}

core::Time At(std::string_view s) { return core::ParseRfc3339(s).value(); }

// A minimal valid body ({"cron": "*/5 * * * *", "task": {"type": "fizz"}}) with
// `extra` members merged in (later members win).
boost::json::value Body(boost::json::object extra = {}) {
  boost::json::object o{{"cron", "*/5 * * * *"}, {"task", boost::json::object{{"type", "fizz"}}}};
  for (auto& kv : extra) o[kv.key()] = kv.value();
  return o;
}

// A body whose task template is {"type": "fizz"} with `extra` merged in.
boost::json::value WithTask(boost::json::object extra) {
  boost::json::object task{{"type", "fizz"}};
  for (auto& kv : extra) task[kv.key()] = kv.value();
  return Body({{"task", task}});
}

struct Reject {
  std::string name;
  boost::json::value body;
  std::string message;
};

void ExpectRejects(const std::vector<Reject>& cases, const CreateDefaults& d = DockerOnly()) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name + ": " + boost::json::serialize(c.body).substr(0, 200));
    EXPECT_TRUE(IsInvalid(ParseCreateSchedule(c.body, d, kNow), c.message));
  }
}

std::set<std::string> Keys(const boost::json::object& o) {
  std::set<std::string> keys;
  for (const auto& kv : o) keys.emplace(kv.key());
  return keys;
}

// --- ParseCreateSchedule: accepted bodies ------------------------------------

TEST(ParseCreateSchedule, MinimalGetsDefaults) {
  auto r = ParseCreateSchedule(J(R"({"cron":"*/5 * * * *","task":{"type":"fizz"}})"), DockerOnly(),
                               kNow);
  ASSERT_TRUE(IsOk(r));
  const core::Schedule& s = *r;
  EXPECT_EQ(s.cron, "*/5 * * * *");
  EXPECT_EQ(s.timezone, "UTC");
  EXPECT_EQ(s.overlap, core::OverlapPolicy::kAllow);
  EXPECT_EQ(s.catch_up, core::CatchUpPolicy::kLatest);
  EXPECT_FALSE(s.notify_url);
  EXPECT_FALSE(s.paused);
  EXPECT_EQ(s.created_at, kNow);
  EXPECT_EQ(s.updated_at, kNow);
  // The service fills these.
  EXPECT_TRUE(s.id.empty());
  EXPECT_FALSE(s.next_run_at);
  // The template is what ParseCreateTask makes of the task body.
  EXPECT_EQ(s.task.type, "fizz");
  EXPECT_EQ(s.task.runner, "builtin");
  EXPECT_EQ(s.task.queue, "default");
  EXPECT_EQ(s.task.max_attempts, 3);
  EXPECT_EQ(s.task.timeout_s, 3600);
  EXPECT_FALSE(s.task.idempotency_key);
  EXPECT_FALSE(s.task.notify_url);
}

TEST(ParseCreateSchedule, CronForms) {
  struct Case {
    std::string given;
    std::string stored;
  };
  std::vector<Case> cases = {
      {"*/5 * * * *", "*/5 * * * *"},          // 5 fields
      {"0 9 * * MON-FRI", "0 9 * * MON-FRI"},  // names
      {"30 */5 * * * *", "30 */5 * * * *"},    // 6 fields, seconds first
      {"@hourly", "@hourly"},                  // aliases
      {"@daily", "@daily"},
      {"@midnight", "@midnight"},
      {"@weekly", "@weekly"},
      {"@monthly", "@monthly"},
      {"@yearly", "@yearly"},
      {"@annually", "@annually"},
      {"@Daily", "@Daily"},              // stored as given
      {"  0  9 * * *\n", "0  9 * * *"},  // trimmed, inner spacing kept
      {"\t@hourly ", "@hourly"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.given);
    auto r = ParseCreateSchedule(Body({{"cron", c.given}}), DockerOnly(), kNow);
    ASSERT_TRUE(IsOk(r));
    EXPECT_EQ(r->cron, c.stored);
  }
}

TEST(ParseCreateSchedule, CronAtTheLengthLimit) {
  // "10,0,0,...,0 * * * *": 256 characters, limit inclusive, counted after trimming.
  std::string expr = "10";
  for (int i = 0; i < 123; ++i) expr += ",0";
  expr += " * * * *";
  ASSERT_EQ(expr.size(), 256u);
  auto r = ParseCreateSchedule(Body({{"cron", "  " + expr + "\n"}}), DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->cron, expr);
  EXPECT_TRUE(IsInvalid(ParseCreateSchedule(Body({{"cron", "0," + expr}}), DockerOnly(), kNow),
                        "cron: longer than 256 characters"));
}

TEST(ParseCreateSchedule, TimeZones) {
  for (const char* tz : {"UTC", "Etc/UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"}) {
    SCOPED_TRACE(tz);
    auto r = ParseCreateSchedule(Body({{"timezone", tz}}), DockerOnly(), kNow);
    ASSERT_TRUE(IsOk(r));
    EXPECT_EQ(r->timezone, tz);
  }
  auto r = ParseCreateSchedule(Body({{"timezone", nullptr}}), DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->timezone, "UTC");
}

TEST(ParseCreateSchedule, EveryOverlapValue) {
  struct Case {
    const char* name;
    core::OverlapPolicy want;
  };
  for (const Case& c :
       {Case{"allow", core::OverlapPolicy::kAllow}, Case{"skip", core::OverlapPolicy::kSkip},
        Case{"cancel_previous", core::OverlapPolicy::kCancelPrevious}}) {
    SCOPED_TRACE(c.name);
    auto r = ParseCreateSchedule(Body({{"overlap", c.name}}), DockerOnly(), kNow);
    ASSERT_TRUE(IsOk(r));
    EXPECT_EQ(r->overlap, c.want);
  }
}

TEST(ParseCreateSchedule, EveryCatchUpValue) {
  struct Case {
    const char* name;
    core::CatchUpPolicy want;
  };
  for (const Case& c :
       {Case{"none", core::CatchUpPolicy::kNone}, Case{"latest", core::CatchUpPolicy::kLatest},
        Case{"all", core::CatchUpPolicy::kAll}}) {
    SCOPED_TRACE(c.name);
    auto r = ParseCreateSchedule(Body({{"catch_up", c.name}}), DockerOnly(), kNow);
    ASSERT_TRUE(IsOk(r));
    EXPECT_EQ(r->catch_up, c.want);
  }
}

TEST(ParseCreateSchedule, Paused) {
  auto r = ParseCreateSchedule(Body({{"paused", true}}), DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_TRUE(r->paused);
  r = ParseCreateSchedule(Body({{"paused", false}}), DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_FALSE(r->paused);
}

TEST(ParseCreateSchedule, NotifyUrlOfScheduleAndOfTemplateStaySeparate) {
  auto r = ParseCreateSchedule(Body({{"notify_url", "https://hooks.example.com/s?x=1"}}),
                               DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->notify_url, "https://hooks.example.com/s?x=1");
  EXPECT_FALSE(r->task.notify_url);

  r = ParseCreateSchedule(WithTask({{"notify_url", "http://127.0.0.1:9/hook"}}), DockerOnly(),
                          kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_FALSE(r->notify_url);
  EXPECT_EQ(r->task.notify_url, "http://127.0.0.1:9/hook");
}

TEST(ParseCreateSchedule, FullContainerTemplate) {
  auto r = ParseCreateSchedule(J(R"({
      "cron": "0 0 3 * * *", "timezone": "Europe/Berlin",
      "task": {"type": "container", "image": "busybox:1.36",
               "command": ["sh", "-c", "echo hi"], "env": {"KEY": "VALUE"},
               "runner": "docker", "max_attempts": 5, "timeout_s": 60,
               "labels": {"team": "data"}, "queue": "nightly",
               "notify_url": "https://t.example.com/"},
      "overlap": "skip", "catch_up": "all",
      "notify_url": "https://s.example.com/", "paused": true})"),
                               DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  const core::Schedule& s = *r;
  EXPECT_EQ(s.cron, "0 0 3 * * *");
  EXPECT_EQ(s.timezone, "Europe/Berlin");
  EXPECT_EQ(s.overlap, core::OverlapPolicy::kSkip);
  EXPECT_EQ(s.catch_up, core::CatchUpPolicy::kAll);
  EXPECT_EQ(s.notify_url, "https://s.example.com/");
  EXPECT_TRUE(s.paused);
  EXPECT_EQ(s.task.type, "container");
  EXPECT_EQ(s.task.runner, "docker");
  EXPECT_EQ(s.task.image, "busybox:1.36");
  EXPECT_EQ(s.task.command, (std::vector<std::string>{"sh", "-c", "echo hi"}));
  EXPECT_EQ(s.task.env.at("KEY"), "VALUE");
  EXPECT_EQ(s.task.max_attempts, 5);
  EXPECT_EQ(s.task.timeout_s, 60);
  EXPECT_EQ(s.task.labels.at("team"), "data");
  EXPECT_EQ(s.task.queue, "nightly");
  EXPECT_EQ(s.task.notify_url, "https://t.example.com/");
}

TEST(ParseCreateSchedule, ContainerTemplateUsesTheDefaultRunner) {
  auto r = ParseCreateSchedule(WithTask({{"type", "container"}, {"image", "alpine"}}), DockerOnly(),
                               kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->task.runner, "docker");
  EXPECT_EQ(r->task.image, "alpine");
}

TEST(ParseCreateSchedule, NullCountsAsAbsent) {
  auto r = ParseCreateSchedule(
      J(R"({"cron":"@daily","task":{"type":"noop","run_at":null,"idempotency_key":null},
            "timezone":null,"overlap":null,"catch_up":null,"notify_url":null,"paused":null})"),
      DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->timezone, "UTC");
  EXPECT_EQ(r->overlap, core::OverlapPolicy::kAllow);
  EXPECT_EQ(r->catch_up, core::CatchUpPolicy::kLatest);
  EXPECT_FALSE(r->notify_url);
  EXPECT_FALSE(r->paused);
  EXPECT_FALSE(r->task.idempotency_key);
}

// --- ParseCreateSchedule: rejected bodies, each naming its field --------------

TEST(ParseCreateSchedule, RejectsBodyShapeAndUnknownFields) {
  ExpectRejects({
      {"array body", J("[]"), "request body must be a JSON object"},
      {"string body", J(R"("x")"), "request body must be a JSON object"},
      {"null body", J("null"), "request body must be a JSON object"},
      {"unknown field", Body({{"foo", 1}}), "foo: unknown field"},
      {"id not settable", Body({{"id", "x"}}), "id: unknown field"},
      {"next_run_at not settable", Body({{"next_run_at", "2026-01-01T00:00:00Z"}}),
       "next_run_at: unknown field"},
      {"created_at not settable", Body({{"created_at", 0}}), "created_at: unknown field"},
      {"unknown odd key", Body({{"a b", 1}}), R"(unknown field "a b")"},
  });
}

TEST(ParseCreateSchedule, RejectsCron) {
  const auto no_cron = J(R"({"task":{"type":"fizz"}})");
  ExpectRejects({
      {"missing", no_cron, "cron: required"},
      {"null", Body({{"cron", nullptr}}), "cron: required"},
      {"number", Body({{"cron", 5}}), "cron: must be a string"},
      {"array", Body({{"cron", boost::json::array{"*", "*"}}}), "cron: must be a string"},
      {"empty", Body({{"cron", ""}}), "cron: want 5 or 6 fields, got 0"},
      {"blank", Body({{"cron", "   "}}), "cron: want 5 or 6 fields, got 0"},
      {"four fields", Body({{"cron", "* * * *"}}), "cron: want 5 or 6 fields, got 4"},
      {"seven fields", Body({{"cron", "* * * * * * *"}}), "cron: want 5 or 6 fields, got 7"},
      {"minute out of range", Body({{"cron", "60 * * * *"}}),
       "cron: minute field: 60 is out of range 0-59"},
      {"unknown alias", Body({{"cron", "@often"}}), "cron: unknown alias '@often'"},
      {"never fires", Body({{"cron", "0 0 30 2 *"}}),
       "cron: never fires: no listed month has any of the listed days of month"},
      {"too long", Body({{"cron", std::string(257, '*')}}), "cron: longer than 256 characters"},
  });
  // Whatever the cron parser says, the message has exactly one "cron: " prefix
  // and names the field for the HTTP layer.
  for (const char* expr : {"* * * * MOO", "@reboot", "@daily 1", "*/0 * * * *", "1-x * * * *"}) {
    SCOPED_TRACE(expr);
    auto want = cron::CronSpec::Parse(expr);
    ASSERT_FALSE(want.ok());
    auto r = ParseCreateSchedule(Body({{"cron", expr}}), DockerOnly(), kNow);
    EXPECT_TRUE(IsInvalid(r, want.status().message()));
    EXPECT_EQ(r.status().message().rfind("cron: cron:", 0), std::string::npos);
    EXPECT_EQ(FieldFromMessage(r.status().message()), "cron");
  }
}

TEST(ParseCreateSchedule, RejectsTimeZone) {
  ExpectRejects({
      {"unknown", Body({{"timezone", "Mars/Olympus"}}),
       "timezone: unknown time zone 'Mars/Olympus'"},
      {"empty", Body({{"timezone", ""}}), "timezone: unknown time zone ''"},
      {"lower case", Body({{"timezone", "europe/berlin"}}),
       "timezone: unknown time zone 'europe/berlin'"},
      {"path traversal", Body({{"timezone", "../../etc/passwd"}}),
       "timezone: unknown time zone '../../etc/passwd'"},
      {"absolute", Body({{"timezone", "/etc/localtime"}}),
       "timezone: unknown time zone '/etc/localtime'"},
      {"offset", Body({{"timezone", "+01:00"}}), "timezone: unknown time zone '+01:00'"},
      {"number", Body({{"timezone", 1}}), "timezone: must be a string"},
      {"bool", Body({{"timezone", true}}), "timezone: must be a string"},
      {"too long", Body({{"timezone", std::string(65, 'Z')}}),
       "timezone: longer than 64 characters"},
  });
}

TEST(ParseCreateSchedule, RejectsOverlapAndCatchUp) {
  const std::string kOverlap = "overlap: must be one of allow, skip, cancel_previous";
  const std::string kCatchUp = "catch_up: must be one of none, latest, all";
  ExpectRejects({
      {"overlap unknown", Body({{"overlap", "forbid"}}), kOverlap},
      {"overlap case", Body({{"overlap", "Skip"}}), kOverlap},
      {"overlap empty", Body({{"overlap", ""}}), kOverlap},
      {"overlap number", Body({{"overlap", 1}}), kOverlap},
      {"overlap bool", Body({{"overlap", false}}), kOverlap},
      {"catch_up unknown", Body({{"catch_up", "first"}}), kCatchUp},
      {"catch_up case", Body({{"catch_up", "ALL"}}), kCatchUp},
      {"catch_up bool", Body({{"catch_up", true}}), kCatchUp},
      {"catch_up array", Body({{"catch_up", boost::json::array{"all"}}}), kCatchUp},
  });
}

TEST(ParseCreateSchedule, RejectsNotifyUrlAndPaused) {
  ExpectRejects({
      {"notify_url number", Body({{"notify_url", 1}}), "notify_url: must be a string"},
      {"notify_url ftp", Body({{"notify_url", "ftp://example.com/x"}}),
       "notify_url: must be an http:// or https:// URL"},
      {"notify_url no host", Body({{"notify_url", "http://"}}),
       "notify_url: must be an http:// or https:// URL"},
      {"notify_url too long",
       Body({{"notify_url", "https://example.com/" + std::string(2029, 'p')}}),
       "notify_url: longer than 2048 characters"},
      {"paused string", Body({{"paused", "true"}}), "paused: must be a boolean"},
      {"paused number", Body({{"paused", 0}}), "paused: must be a boolean"},
  });
}

TEST(ParseCreateSchedule, RejectsTask) {
  ExpectRejects({
      {"missing", J(R"({"cron":"@daily"})"), "task: required"},
      {"null", Body({{"task", nullptr}}), "task: required"},
      {"string", Body({{"task", "fizz"}}), "task: must be a JSON object"},
      {"array", Body({{"task", boost::json::array{}}}), "task: must be a JSON object"},
      {"empty", Body({{"task", boost::json::object{}}}), "task.type: required"},
      {"unknown type", WithTask({{"type", "shell"}}),
       R"(task.type: unknown type "shell" (one of fizz, buzz, fizzbuzz, foo, bar, baz, noop, container))"},
      {"type number", WithTask({{"type", 1}}), "task.type: must be a string"},
      {"unknown task field", WithTask({{"foo", 1}}), "task.foo: unknown field"},
      {"unknown odd task key", WithTask({{"a b", 1}}), R"(task: unknown field "a b")"},
      {"run_at", WithTask({{"run_at", "2026-11-23T19:00:00Z"}}),
       "task.run_at: not allowed in a schedule (each occurrence's run_at is its cron time)"},
      {"run_at garbage", WithTask({{"run_at", "tomorrow"}}),
       "task.run_at: not allowed in a schedule (each occurrence's run_at is its cron time)"},
      {"idempotency_key", WithTask({{"idempotency_key", "k"}}),
       "task.idempotency_key: not allowed in a schedule"},
      {"reserved env",
       WithTask({{"type", "container"}, {"image", "a"}, {"env", J(R"({"SKED_X":"1"})")}}),
       "task.env.SKED_X: names starting with SKED_ are reserved"},
      {"image on builtin", WithTask({{"image", "busybox"}}),
       "task.image: only allowed for container tasks"},
      {"max_attempts", WithTask({{"max_attempts", 0}}),
       "task.max_attempts: must be an integer from 1 to 100"},
      {"task notify_url", WithTask({{"notify_url", "ftp://x"}}),
       "task.notify_url: must be an http:// or https:// URL"},
  });
  EXPECT_TRUE(IsInvalid(ParseCreateSchedule(WithTask({{"type", "container"}, {"image", "a"}}),
                                            CreateDefaults{}, kNow),
                        std::string("task.type: ") + std::string(kNoContainerRunnerReason)));
  auto r = ParseCreateSchedule(WithTask({{"run_at", 0}}), DockerOnly(), kNow);
  EXPECT_EQ(FieldFromMessage(r.status().message()), "task.run_at");
}

TEST(ParseCreateSchedule, RejectsInvalidUtf8) {
  ExpectRejects({
      {"cron", Body({{"cron", "* * * * \xff"}}), "cron: not valid UTF-8"},
      {"timezone", Body({{"timezone", "Europe/\xc0\xaf"}}), "timezone: not valid UTF-8"},
      {"notify_url", Body({{"notify_url", "https://x/\xed\xa0\x80"}}),
       "notify_url: not valid UTF-8"},
      {"top-level key", Body({{"\xfe", 1}}), "request body: a key is not valid UTF-8"},
      {"task image", WithTask({{"type", "container"}, {"image", "busy\xff"}}),
       "task.image: not valid UTF-8"},
      {"task label", WithTask({{"labels", boost::json::object{{"team", "\xc3"}}}}),
       "task.labels.team: not valid UTF-8"},
      {"task key", WithTask({{"\xfe", 1}}), "task: a key is not valid UTF-8"},
  });
}

// --- ScheduleToJson -------------------------------------------------------------

core::Schedule BuiltinSchedule() {
  core::Schedule s;
  s.id = "0193a6f0-1234-7abc-8def-0123456789ab";
  s.cron = "*/5 * * * *";
  s.timezone = "UTC";
  s.task.type = "fizz";
  s.task.runner = "builtin";
  s.created_at = At("2026-11-23T18:59:00Z");
  s.updated_at = At("2026-11-23T19:00:00.250Z");
  return s;
}

TEST(ScheduleToJson, BuiltinWithNulls) {
  core::Schedule s = BuiltinSchedule();
  // Fields of a concrete task never show in the template.
  s.task.id = "task-id";
  s.task.run_at = At("2026-11-23T19:00:00Z");
  s.task.state = core::TaskState::kRunning;
  s.task.attempt = 2;
  s.task.idempotency_key = "k";
  s.task.schedule_id = "x";
  s.task.error = "boom";
  EXPECT_EQ(boost::json::value(ScheduleToJson(s)), boost::json::parse(R"({
      "id": "0193a6f0-1234-7abc-8def-0123456789ab", "cron": "*/5 * * * *", "timezone": "UTC",
      "task": {"type": "fizz", "runner": "builtin", "image": null, "command": null, "env": null,
               "max_attempts": 3, "timeout_s": 3600, "labels": {}, "queue": "default",
               "notify_url": null},
      "overlap": "allow", "catch_up": "latest", "notify_url": null, "paused": false,
      "next_run_at": null,
      "created_at": "2026-11-23T18:59:00.000Z", "updated_at": "2026-11-23T19:00:00.250Z"})"));
}

TEST(ScheduleToJson, ContainerWithEveryValueSet) {
  core::Schedule s = BuiltinSchedule();
  s.cron = "0 0 3 * * *";
  s.timezone = "Europe/Berlin";
  s.task.type = "container";
  s.task.runner = "docker";
  s.task.image = "busybox:1.36";
  s.task.command = {"sh", "-c", "echo hi"};
  s.task.env = {{"KEY", "VALUE"}};
  s.task.max_attempts = 5;
  s.task.timeout_s = 60;
  s.task.labels = {{"team", "data"}};
  s.task.queue = "nightly";
  s.task.notify_url = "https://t.example.com/";
  s.overlap = core::OverlapPolicy::kCancelPrevious;
  s.catch_up = core::CatchUpPolicy::kNone;
  s.notify_url = "https://s.example.com/";
  s.paused = true;
  s.next_run_at = At("2026-11-24T02:00:00Z");
  EXPECT_EQ(boost::json::value(ScheduleToJson(s)), boost::json::parse(R"({
      "id": "0193a6f0-1234-7abc-8def-0123456789ab", "cron": "0 0 3 * * *",
      "timezone": "Europe/Berlin",
      "task": {"type": "container", "runner": "docker", "image": "busybox:1.36",
               "command": ["sh", "-c", "echo hi"], "env": {"KEY": "VALUE"},
               "max_attempts": 5, "timeout_s": 60, "labels": {"team": "data"},
               "queue": "nightly", "notify_url": "https://t.example.com/"},
      "overlap": "cancel_previous", "catch_up": "none", "notify_url": "https://s.example.com/",
      "paused": true, "next_run_at": "2026-11-24T02:00:00.000Z",
      "created_at": "2026-11-23T18:59:00.000Z", "updated_at": "2026-11-23T19:00:00.250Z"})"));
}

TEST(ScheduleToJson, ContainerWithEmptyCommandAndEnvWritesEmptyValues) {
  core::Schedule s = BuiltinSchedule();
  s.task.type = "container";
  s.task.runner = "docker";
  s.task.image = "alpine";
  const boost::json::object task = ScheduleToJson(s).at("task").as_object();
  EXPECT_EQ(task.at("command"), boost::json::array{});
  EXPECT_EQ(task.at("env"), boost::json::object{});
}

TEST(ScheduleToJson, ExactKeys) {
  const boost::json::object o = ScheduleToJson(BuiltinSchedule());
  EXPECT_EQ(Keys(o), (std::set<std::string>{"id", "cron", "timezone", "task", "overlap", "catch_up",
                                            "notify_url", "paused", "next_run_at", "created_at",
                                            "updated_at"}));
  EXPECT_EQ(Keys(o.at("task").as_object()),
            (std::set<std::string>{"type", "runner", "image", "command", "env", "max_attempts",
                                   "timeout_s", "labels", "queue", "notify_url"}));
  EXPECT_EQ(Keys(TaskTemplateToJson(BuiltinSchedule().task)), Keys(o.at("task").as_object()));
}

TEST(ScheduleToJson, EveryPolicyName) {
  core::Schedule s = BuiltinSchedule();
  for (auto [p, name] : {std::pair{core::OverlapPolicy::kAllow, "allow"},
                         std::pair{core::OverlapPolicy::kSkip, "skip"},
                         std::pair{core::OverlapPolicy::kCancelPrevious, "cancel_previous"}}) {
    s.overlap = p;
    EXPECT_EQ(ScheduleToJson(s).at("overlap"), name);
  }
  for (auto [p, name] : {std::pair{core::CatchUpPolicy::kNone, "none"},
                         std::pair{core::CatchUpPolicy::kLatest, "latest"},
                         std::pair{core::CatchUpPolicy::kAll, "all"}}) {
    s.catch_up = p;
    EXPECT_EQ(ScheduleToJson(s).at("catch_up"), name);
  }
}

// What the parser makes of a body, encoded again, is that body with defaults.
TEST(ScheduleToJson, RoundTripsAParsedBody) {
  const boost::json::value body = J(R"({
      "cron": "0 9 * * MON-FRI", "timezone": "America/New_York",
      "task": {"type": "container", "image": "alpine", "command": ["true"], "env": {},
               "runner": "docker", "max_attempts": 2, "timeout_s": 30, "labels": {"a": "b"},
               "queue": "q", "notify_url": null},
      "overlap": "skip", "catch_up": "all", "notify_url": "https://n.example.com/",
      "paused": true})");
  auto r = ParseCreateSchedule(body, DockerOnly(), kNow);
  ASSERT_TRUE(IsOk(r));
  r->id = "sched-1";
  boost::json::object got = ScheduleToJson(*r);
  EXPECT_EQ(got.at("id"), "sched-1");
  EXPECT_TRUE(got.at("next_run_at").is_null());
  EXPECT_EQ(got.at("created_at"), boost::json::value(core::FormatRfc3339(kNow)));
  EXPECT_EQ(got.at("updated_at"), boost::json::value(core::FormatRfc3339(kNow)));
  for (const char* key : {"id", "next_run_at", "created_at", "updated_at"}) got.erase(key);
  EXPECT_EQ(boost::json::value(got), body);
}

}  // namespace
}  // namespace sked::api
