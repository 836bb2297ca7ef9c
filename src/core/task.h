// File: core/task.h
//
// The task: what sked schedules, stores, runs and reports. Its field names match
// the public API (specs/api.md); fields ending in "internal" comments are never
// exposed. The allowed state transitions are one table, IsValidTransition().
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/time.h"

namespace sked::core {

// Persisted and exposed by name; renaming one needs a migration.
enum class TaskState {
  // Waiting for run_at (or for a retry's backoff). Entered on create (API), on a
  // retry after a failed attempt, when a lease expires (rescuer) or is given back
  // at shutdown (engine). Left when a node claims it or it is cancelled.
  kScheduled,
  // Claimed, its runner is acquiring where to run it (e.g. a spot instance is
  // launching). Entered by a claim for runners that provision; left on the job's
  // first heartbeat (running) or an outcome.
  kProvisioning,
  // Claimed and executing under a lease held by one node. Left on an outcome,
  // a retry, a lease expiry (rescuer) or a cancel.
  kRunning,
  // Terminal: the attempt succeeded (engine, or the job's callback).
  kSucceeded,
  // Terminal: the last allowed attempt failed, or the failure was permanent.
  kFailed,
  // Terminal: stopped by a user (cancel) before it finished.
  kCancelled,
};

std::string_view TaskStateName(TaskState s);
std::optional<TaskState> ParseTaskState(std::string_view s);
bool IsTerminal(TaskState s);

// The whole transition table: true when a task may move from `from` to `to`.
bool IsValidTransition(TaskState from, TaskState to);

// The task types the API accepts.
inline constexpr std::string_view kBuiltinTypes[] = {"fizz", "buzz", "fizzbuzz", "foo",
                                                     "bar",  "baz",  "noop"};
inline constexpr std::string_view kContainerType = "container";
bool IsBuiltinType(std::string_view type);

// Runner names (task.runner).
inline constexpr std::string_view kRunnerBuiltin = "builtin";
inline constexpr std::string_view kRunnerDocker = "docker";
inline constexpr std::string_view kRunnerEc2Spot = "ec2-spot";

struct TaskResult {
  int exit_code = 0;
  std::string output;
};

struct Task {
  std::string id;
  std::string type;
  std::string runner;
  std::string queue = "default";
  Time run_at{};
  TaskState state = TaskState::kScheduled;

  // Container tasks only.
  std::string image;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;

  // Attempts: `attempt` counts claims and is the fencing token (monotonic);
  // `free_attempts` counts those that do not use up max_attempts (a lease given
  // back at shutdown, a spot interruption).
  int attempt = 0;
  int max_attempts = 3;
  int free_attempts = 0;
  int64_t timeout_s = 3600;

  std::optional<std::string> idempotency_key;
  std::map<std::string, std::string> labels;
  std::optional<std::string> notify_url;
  std::optional<std::string> schedule_id;
  std::optional<Time> occurrence;

  Time created_at{};
  std::optional<Time> started_at;
  std::optional<Time> finished_at;

  std::optional<std::string> instance_id;
  std::optional<TaskResult> result;
  std::optional<std::string> error;

  // Internal: the node holding the lease, until when, and the runner's
  // external handle for the current attempt (container id, instance id, ...).
  std::optional<std::string> lease_owner;
  std::optional<Time> lease_expires_at;
  std::optional<std::string> handle;

  // Attempts that still count toward max_attempts.
  int ChargedAttempts() const { return attempt - free_attempts; }
};

// One line of a task's history (GET /v1/tasks/{id}/events).
struct TaskEvent {
  Time at{};
  TaskState state = TaskState::kScheduled;
  int attempt = 0;
  std::optional<std::string> node;
  std::optional<std::string> instance_id;
  std::string message;
};

}  // namespace sked::core
