// File: tests/conformance/executor_conformance.h
//
// The one conformance suite every core::Executor (runner) must pass, as the
// store has its own. A runner adds one instantiation that supplies an
// executor and three tasks it can run: one that succeeds, one that fails, and
// one that runs until cancelled. The tests hold it to the contract of
// core/executor.h: done fires exactly once per attempt, a cancelled attempt
// stops and frees what it held, Adopt of an unknown handle is kNotFound, and
// a durable runner lists its live attempts (ListExternal) and forgets them
// once cancelled.
//
// Thread safety: a gtest fixture.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "core/executor.h"
#include "core/task.h"

namespace sked::testing {

struct ExecutorConformanceParam {
  std::string name;  // letters, digits, '_'
  std::function<std::unique_ptr<core::Executor>()> open;
  // Tasks this runner can run (ids, attempt 1 and runner set by the suite).
  std::function<core::Task()> succeeding;
  std::function<core::Task()> failing;
  std::function<core::Task()> long_running;  // runs for minutes unless cancelled
  // What output the succeeding task produces, or "" for anything.
  std::string succeeding_output;
  std::function<void()> cleanup;  // after each test; may be empty
};

inline void PrintTo(const ExecutorConformanceParam& p, std::ostream* os) { *os << p.name; }

class ExecutorConformanceTest : public ::testing::TestWithParam<ExecutorConformanceParam> {
 protected:
  void SetUp() override;
  void TearDown() override;
  core::Executor& executor() { return *executor_; }
  // `base` with a fresh UUIDv7 id, attempt 1, state running.
  core::Task Prepare(core::Task base);

  std::unique_ptr<core::Executor> executor_;
};

std::string ExecutorConformanceParamName(
    const ::testing::TestParamInfo<ExecutorConformanceParam>& info);

}  // namespace sked::testing
