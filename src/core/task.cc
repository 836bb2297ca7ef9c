#include "core/task.h"

#include <algorithm>

namespace sked::core {

std::string_view TaskStateName(TaskState s) {
  switch (s) {
    case TaskState::kScheduled: return "scheduled";
    case TaskState::kProvisioning: return "provisioning";
    case TaskState::kRunning: return "running";
    case TaskState::kSucceeded: return "succeeded";
    case TaskState::kFailed: return "failed";
    case TaskState::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::optional<TaskState> ParseTaskState(std::string_view s) {
  for (auto st : {TaskState::kScheduled, TaskState::kProvisioning, TaskState::kRunning,
                  TaskState::kSucceeded, TaskState::kFailed, TaskState::kCancelled}) {
    if (TaskStateName(st) == s) return st;
  }
  return std::nullopt;
}

bool IsTerminal(TaskState s) {
  return s == TaskState::kSucceeded || s == TaskState::kFailed || s == TaskState::kCancelled;
}

bool IsValidTransition(TaskState from, TaskState to) {
  using S = TaskState;
  switch (from) {
    case S::kScheduled:
      // Claim (provisioning or running), cancel. A task whose attempts are
      // all used up by lost leases fails from scheduled too. An attempt run
      // in its claim's transaction (TaskClaimParams::run_instantly) ends it
      // straight from scheduled.
      return to == S::kProvisioning || to == S::kRunning || to == S::kCancelled ||
             to == S::kFailed || to == S::kSucceeded;
    case S::kProvisioning:
      return to == S::kRunning || to == S::kScheduled || to == S::kSucceeded ||
             to == S::kFailed || to == S::kCancelled;
    case S::kRunning:
      // Scheduled again: a retry, an expired or given-back lease, an interruption.
      return to == S::kScheduled || to == S::kSucceeded || to == S::kFailed ||
             to == S::kCancelled;
    case S::kSucceeded:
    case S::kFailed:
    case S::kCancelled:
      return false;
  }
  return false;
}

bool IsBuiltinType(std::string_view type) {
  return std::find(std::begin(kBuiltinTypes), std::end(kBuiltinTypes), type) !=
         std::end(kBuiltinTypes);
}

}  // namespace sked::core
