// The executor conformance suite on the built-in runner.
#include "conformance/executor_conformance.h"
#include "core/clock.h"
#include "exec/builtin/builtin_executor.h"

namespace sked::testing {
namespace {

core::Task Builtin(const std::string& type) {
  core::Task t;
  t.type = type;
  t.runner = "builtin";
  return t;
}

INSTANTIATE_TEST_SUITE_P(
    Builtin, ExecutorConformanceTest,
    ::testing::Values(ExecutorConformanceParam{
        .name = "builtin",
        .open =
            [] {
              // Real time: fizzbuzz (15 s) is the long task; noop ends at once.
              return std::make_unique<exec::BuiltinExecutor>(
                  exec::BuiltinOptions{.time_scale = 1.0, .bar_url = "http://127.0.0.1:9/"},
                  core::SystemClock::Get());
            },
        .succeeding = [] { return Builtin("noop"); },
        // bar against a closed port: the request fails.
        .failing = [] { return Builtin("bar"); },
        .long_running = [] { return Builtin("fizzbuzz"); },
        .succeeding_output = ""}),
    ExecutorConformanceParamName);

// Which built-in attempts end as they start, and what they return.
TEST(BuiltinRunInstantly, OnlyTypesWithoutAWaitAndNeverBar) {
  auto params = [](const std::string& type) {
    core::Task t = Builtin(type);
    t.id = "t-1";
    t.attempt = 1;
    return core::LaunchParams{.task = t, .node = "n", .job_env = {}};
  };
  exec::BuiltinExecutor real_time({.time_scale = 1.0, .bar_url = "http://127.0.0.1:9/"},
                                  core::SystemClock::Get());
  std::optional<core::ExecResult> noop = real_time.RunInstantly(params("noop"));
  ASSERT_TRUE(noop.has_value());
  EXPECT_EQ(noop->kind, core::ExecResult::Kind::kSucceeded);
  EXPECT_EQ(noop->output, "");
  std::optional<core::ExecResult> baz = real_time.RunInstantly(params("baz"));
  ASSERT_TRUE(baz.has_value());
  EXPECT_EQ(baz->output.rfind("Baz ", 0), 0u) << baz->output;
  for (const char* type : {"fizz", "buzz", "fizzbuzz", "foo", "bar"}) {
    EXPECT_FALSE(real_time.RunInstantly(params(type)).has_value()) << type;
  }
  EXPECT_FALSE(real_time.RunInstantly(params("container")).has_value());

  // Without waits every type but bar (an HTTP request) runs at once.
  exec::BuiltinExecutor no_waits({.time_scale = 0.0, .bar_url = "http://127.0.0.1:9/"},
                                 core::SystemClock::Get());
  std::optional<core::ExecResult> fizz = no_waits.RunInstantly(params("fizz"));
  ASSERT_TRUE(fizz.has_value());
  EXPECT_EQ(fizz->output, "Fizz t-1");
  EXPECT_EQ(no_waits.RunInstantly(params("fizzbuzz"))->output, "Fizz Buzz t-1");
  EXPECT_FALSE(no_waits.RunInstantly(params("bar")).has_value());
}

}  // namespace
}  // namespace sked::testing
