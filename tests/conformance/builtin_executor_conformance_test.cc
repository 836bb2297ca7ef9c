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

}  // namespace
}  // namespace sked::testing
