// Every way to get POST /v1/tasks wrong: the status, the exact error body shape,
// the field it names, and proof that nothing was stored. Then the boundary
// values that must still be accepted.
#include <gmock/gmock.h>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

struct BadCase {
  std::string name;
  std::string body;                  // sent verbatim
  std::optional<std::string> field;  // details.field and the message's prefix, when fixed
};
// gtest prints the case by its name, not as bytes.
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

std::string Repeat(char c, size_t n) { return std::string(n, c); }

std::string Labels(int n) {
  std::string s = "{";
  for (int i = 0; i < n; ++i)
    s += (i ? "," : "") + std::string("\"k") + std::to_string(i) + "\":\"v\"";
  return s + "}";
}

const std::string kLong256 = Repeat('a', 256);

std::vector<BadCase> BadCases() {
  return {
      // Not a JSON object at all.
      {"MalformedJson", R"({"type": "noop")", std::nullopt},
      {"TrailingGarbage", R"({"type": "noop"} x)", std::nullopt},
      {"EmptyBody", "", std::nullopt},
      {"ArrayBody", R"([{"type": "noop"}])", std::nullopt},
      {"StringBody", R"("noop")", std::nullopt},
      {"NumberBody", "42", std::nullopt},
      {"NullBody", "null", std::nullopt},
      {"InvalidUtf8", "{\"type\": \"noop\", \"labels\": {\"team\": \"\xC3\x28\"}}", std::nullopt},
      // Fields.
      {"UnknownField", R"({"type": "noop", "colour": "red"})", "colour"},
      {"MissingType", R"({})", "type"},
      {"UnknownType", R"({"type": "fizzz"})", "type"},
      {"TypeWrongCase", R"({"type": "Fizz"})", "type"},
      {"TypeNotString", R"({"type": 5})", "type"},
      {"TypeNull", R"({"type": null})", "type"},
      {"RunAtWords", R"({"type": "noop", "run_at": "tomorrow"})", "run_at"},
      {"RunAtImpossibleDate", R"({"type": "noop", "run_at": "2026-02-30T00:00:00Z"})", "run_at"},
      {"RunAtNoOffset", R"({"type": "noop", "run_at": "2026-01-01T00:00:00"})", "run_at"},
      {"RunAtEmpty", R"({"type": "noop", "run_at": ""})", "run_at"},
      {"RunAtBefore1970", R"({"type": "noop", "run_at": "1969-12-31T23:59:59Z"})", "run_at"},
      {"RunAtNegativeEpoch", R"({"type": "noop", "run_at": -1})", "run_at"},
      {"RunAtFractionalEpoch", R"({"type": "noop", "run_at": 1700000000.5})", "run_at"},
      {"RunAtEpochAfter9999", R"({"type": "noop", "run_at": 253402300800})", "run_at"},
      {"RunAtBool", R"({"type": "noop", "run_at": true})", "run_at"},
      {"RunAtObject", R"({"type": "noop", "run_at": {}})", "run_at"},
      {"MaxAttemptsZero", R"({"type": "noop", "max_attempts": 0})", "max_attempts"},
      {"MaxAttempts101", R"({"type": "noop", "max_attempts": 101})", "max_attempts"},
      {"MaxAttemptsString", R"({"type": "noop", "max_attempts": "3"})", "max_attempts"},
      {"MaxAttemptsFraction", R"({"type": "noop", "max_attempts": 2.5})", "max_attempts"},
      {"TimeoutZero", R"({"type": "noop", "timeout_s": 0})", "timeout_s"},
      {"TimeoutNegative", R"({"type": "noop", "timeout_s": -1})", "timeout_s"},
      {"TimeoutOverAWeek", R"({"type": "noop", "timeout_s": 604801})", "timeout_s"},
      {"IdempotencyKey256", R"({"type": "noop", "idempotency_key": ")" + kLong256 + "\"}",
       "idempotency_key"},
      {"IdempotencyKeyEmpty", R"({"type": "noop", "idempotency_key": ""})", "idempotency_key"},
      {"IdempotencyKeyNumber", R"({"type": "noop", "idempotency_key": 7})", "idempotency_key"},
      {"LabelsNotObject", R"({"type": "noop", "labels": ["team"]})", "labels"},
      {"LabelValue256", R"({"type": "noop", "labels": {"team": ")" + kLong256 + "\"}}",
       "labels.team"},
      {"LabelValueNumber", R"({"type": "noop", "labels": {"team": 5}})", "labels.team"},
      {"TooManyLabels", R"({"type": "noop", "labels": )" + Labels(65) + "}", "labels"},
      {"LabelKey64", R"({"type": "noop", "labels": {")" + Repeat('k', 64) + R"(": "v"}})",
       std::nullopt},
      {"LabelKeyBadChar", R"({"type": "noop", "labels": {"a b": "v"}})", std::nullopt},
      {"LabelKeyEmpty", R"({"type": "noop", "labels": {"": "v"}})", std::nullopt},
      {"ImageOnBuiltin", R"({"type": "fizz", "image": "busybox:1.36"})", "image"},
      {"CommandOnBuiltin", R"({"type": "fizz", "command": ["echo", "hi"]})", "command"},
      {"EnvOnBuiltin", R"({"type": "fizz", "env": {"K": "V"}})", "env"},
      {"DockerRunnerOnBuiltin", R"({"type": "fizz", "runner": "docker"})", "runner"},
      {"UnknownRunner", R"({"type": "fizz", "runner": "k8s"})", "runner"},
      {"QueueBadChars", R"({"type": "noop", "queue": "bad queue!"})", "queue"},
      {"Queue65", R"({"type": "noop", "queue": ")" + Repeat('q', 65) + "\"}", "queue"},
      {"NotifyUrlFtp", R"({"type": "noop", "notify_url": "ftp://example.com/x"})", "notify_url"},
      {"NotifyUrlNotUrl", R"({"type": "noop", "notify_url": "not a url"})", "notify_url"},
  };
}

class CreateValidationTest : public BlackboxTest, public ::testing::WithParamInterface<BadCase> {};

TEST_P(CreateValidationTest, Is400InvalidArgumentAndStoresNothing) {
  const BadCase& c = GetParam();
  StartServer();
  HttpResponse r = api().PostRaw("/v1/tasks", c.body);
  // Label key errors leave the field open: the key's path or "labels".
  ExpectError(r, 400, "invalid_argument", c.field);
  EXPECT_EQ(CountTasks(), 0u) << "a rejected create stored a task";
}

INSTANTIATE_TEST_SUITE_P(Bodies, CreateValidationTest, ::testing::ValuesIn(BadCases()),
                         [](const auto& info) { return info.param.name; });

using CreateLimitsTest = BlackboxTest;

TEST_F(CreateLimitsTest, ContainerTypeWithoutAContainerRunnerIs400WithTheDocumentedMessage) {
  StartServer();
  HttpResponse r =
      api().PostJson("/v1/tasks", json::object{{"type", "container"},
                                               {"image", "busybox:1.36"},
                                               {"command", json::array{"sh", "-c", "echo hi"}}});
  json::object err = ExpectError(r, 400, "invalid_argument", "type");
  EXPECT_EQ(err["message"], json::value("type: container tasks need a container runner (this node "
                                        "has no Docker engine on --docker-host)"))
      << Describe(r);
  EXPECT_EQ(CountTasks(), 0u);
}

TEST_F(CreateLimitsTest, BodyOver1MiBIs413PayloadTooLarge) {
  StartServer();
  std::string body =
      R"({"type": "noop", "labels": {"big": ")" + Repeat('x', (1 << 20) + 1024) + "\"}}";
  HttpResponse r = api().PostRaw("/v1/tasks", body);
  ExpectError(r, 413, "payload_too_large");
  EXPECT_EQ(CountTasks(), 0u);
}

TEST_F(CreateLimitsTest, BodyJustUnder1MiBIsReadAndValidated) {
  StartServer();
  // Valid JSON under the limit: refused for the label's length, not for the size.
  std::string body =
      R"({"type": "noop", "labels": {"big": ")" + Repeat('x', (1 << 20) - 1024) + "\"}}";
  ExpectError(api().PostRaw("/v1/tasks", body), 400, "invalid_argument", "labels.big");
  EXPECT_EQ(CountTasks(), 0u);
}

struct GoodCase {
  std::string name;
  json::object body;
  std::optional<std::string> run_at_echo;  // expected run_at in the answer
};
// gtest prints the case by its name, not as bytes.
void PrintTo(const GoodCase& c, std::ostream* os) { *os << c.name; }

std::vector<GoodCase> GoodCases() {
  json::object labels64;
  for (int i = 0; i < 64; ++i) labels64["k" + std::to_string(i)] = "v";
  return {
      {"IdempotencyKey255", TaskBody("noop", {{"idempotency_key", Repeat('i', 255)}}), {}},
      {"LabelValue255", TaskBody("noop", {{"labels", {{"team", Repeat('v', 255)}}}}), {}},
      {"LabelKey63", TaskBody("noop", {{"labels", {{Repeat('k', 63), "v"}}}}), {}},
      {"LabelKeyPunctuation", TaskBody("noop", {{"labels", {{"a.b-c_d/e", "v"}}}}), {}},
      {"Labels64", TaskBody("noop", {{"labels", labels64}}), {}},
      {"MaxAttempts1", TaskBody("noop", {{"max_attempts", 1}}), {}},
      {"MaxAttempts100", TaskBody("noop", {{"max_attempts", 100}}), {}},
      {"Timeout1", TaskBody("noop", {{"timeout_s", 1}}), {}},
      {"TimeoutAWeek", TaskBody("noop", {{"timeout_s", 604800}}), {}},
      {"RunnerBuiltin", TaskBody("fizz", {{"runner", "builtin"}}), {}},
      {"Queue64", TaskBody("noop", {{"queue", Repeat('q', 64)}}), {}},
      {"RunAtEpochZero", TaskBody("noop", {{"run_at", 0}}), "1970-01-01T00:00:00.000Z"},
      {"RunAtEpochMax", TaskBody("noop", {{"run_at", 253402300799LL}}), "9999-12-31T23:59:59.000Z"},
      {"RunAtLowerCaseTz", TaskBody("noop", {{"run_at", "2099-06-01t12:00:00z"}}),
       "2099-06-01T12:00:00.000Z"},
      {"RunAtMicroseconds", TaskBody("noop", {{"run_at", "2099-06-01T12:00:00.123456Z"}}),
       "2099-06-01T12:00:00.123Z"},
  };
}

class CreateAcceptedTest : public BlackboxTest, public ::testing::WithParamInterface<GoodCase> {};

TEST_P(CreateAcceptedTest, Is201) {
  const GoodCase& c = GetParam();
  StartServer();
  HttpResponse r = api().PostJson("/v1/tasks", c.body);
  ASSERT_EQ(r.status, 201) << Describe(r);
  if (c.run_at_echo) {
    EXPECT_EQ(Str(r.Object(), "run_at"), *c.run_at_echo);
  }
  EXPECT_EQ(CountTasks(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Bodies, CreateAcceptedTest, ::testing::ValuesIn(GoodCases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace sked::blackbox
