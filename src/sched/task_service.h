// File: sched/task_service.h
//
// What the API asks of the scheduler: create, read, list, cancel and delete
// tasks, apply a job's callback, and report nodes and readiness. It assigns ids
// and creation times, keeps state changes going through the store's
// compare-and-set calls, and tells the local Engine when to wake or to stop an
// attempt. It knows no HTTP and no JSON.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "core/store.h"
#include "core/task.h"
#include "sched/engine.h"

namespace sked::sched {

enum class CallbackStatus { kSucceeded, kFailed, kInterrupted, kHeartbeat };

struct CallbackParams {
  std::string id;
  int attempt = 0;
  CallbackStatus status = CallbackStatus::kSucceeded;
  std::optional<int> exit_code;
  std::optional<std::string> message;
};

class TaskService {
 public:
  // `engine` may be null (an API-only node); everything else must outlive this.
  TaskService(core::Store& store, Engine* engine, const core::Clock& clock);

  // Assigns id and created_at, stores the task, wakes the engine. Returns the
  // stored task; inserted=false when the idempotency key matched an earlier one.
  core::StatusOr<core::TaskInsertResult> Create(core::Task task);
  // All or nothing.
  core::StatusOr<std::vector<core::TaskInsertResult>> CreateMany(std::vector<core::Task> tasks);

  core::StatusOr<core::Task> Get(const std::string& id);
  // Get without blocking, where the store can (core::Store::TaskGetAsync):
  // false, and `done` is never called, where it cannot.
  bool GetAsync(const std::string& id, std::function<void(core::StatusOr<core::Task>)> done);
  core::StatusOr<core::TaskPage> List(const core::TaskListParams& params);
  core::StatusOr<std::vector<core::TaskEvent>> Events(const std::string& id);

  // Stops a live task and keeps it as cancelled. See Store::TaskCancel.
  core::StatusOr<core::Task> Cancel(const std::string& id);
  // Stops and removes the task. kNotFound if absent.
  core::Status Delete(const std::string& id);

  // Applies a job's report for `attempt` (the caller has checked its token):
  // kNotFound for an unknown task, kAborted for a stale attempt or an outcome
  // that contradicts the recorded one; a repeated identical report is OK and
  // changes nothing. `failed` is final for the task: the job itself says so.
  core::StatusOr<core::Task> Callback(const CallbackParams& params);

  core::StatusOr<std::vector<core::NodeInfo>> Nodes();
  // Sets a queue's limits (see core::QueueLimits); the engine looks again at
  // once, since lifting a limit may make tasks claimable.
  core::StatusOr<core::QueueLimits> PutQueue(const core::QueueLimits& limits);
  core::StatusOr<std::vector<core::QueueInfo>> Queues();
  core::StatusOr<std::map<core::TaskState, int64_t>> CountByState();
  core::Status Ready();

 private:
  std::string NewId(core::Time now);
  void Stop(const core::Task& before);

  core::Store& store_;
  Engine* engine_;
  const core::Clock& clock_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

}  // namespace sked::sched
