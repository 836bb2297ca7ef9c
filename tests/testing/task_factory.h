// File: tests/testing/task_factory.h
//
// Builds valid tasks for tests: a builtin "noop" task, due and created at the
// factory's time, with a fresh id, which a test then overrides field by field
// (the idea of river's rivershared/testfactory).
//
//   TaskFactory f;
//   core::Task t = f.Make([](core::Task& t) { t.max_attempts = 1; });
//
// Thread safety: not thread-safe; use one factory per test thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/ids.h"
#include "core/task.h"
#include "core/time.h"

namespace sked::testing {

// The fixed time tests start from (2027-01-15T08:00:00Z).
inline const core::Time kTestEpoch = core::TimeFromSeconds(1'800'000'000);

class TaskFactory {
 public:
  explicit TaskFactory(core::Time now = kTestEpoch) : now_(now) {}

  // A valid builtin task: type "noop", runner "builtin", queue "default",
  // run_at = created_at = now(), state scheduled, attempt 0, max_attempts 3.
  // Ids are UUIDv7 strings that sort in creation order. `edit`, when given,
  // may change any field afterwards.
  core::Task Make(const std::function<void(core::Task&)>& edit = {}) {
    core::Task t;
    t.id = NextId();
    t.type = "noop";
    t.runner = std::string(core::kRunnerBuiltin);
    t.queue = "default";
    t.run_at = now_;
    t.created_at = now_;
    t.max_attempts = 3;
    t.timeout_s = 60;
    if (edit) edit(t);
    return t;
  }

  // A valid container task for `runner` ("docker" or "ec2-spot").
  core::Task MakeContainer(std::string_view runner,
                           const std::function<void(core::Task&)>& edit = {}) {
    return Make([&](core::Task& t) {
      t.type = std::string(core::kContainerType);
      t.runner = std::string(runner);
      t.image = "alpine:3.20";
      t.command = {"sh", "-c", "echo hi"};
      t.env = {{"GREETING", "hello"}};
      if (edit) edit(t);
    });
  }

  // A fresh id that sorts after every id this factory returned before.
  std::string NextId() { return core::NewUuidV7(now_, 0, ++counter_); }

  core::Time now() const { return now_; }

 private:
  core::Time now_;
  uint64_t counter_ = 0;
};

}  // namespace sked::testing
