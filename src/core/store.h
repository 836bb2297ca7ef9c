// File: core/store.h
//
// The whole storage contract of sked: tasks, their history, leases, nodes and the
// leader lease. Backends (store/sqlite, store/postgres) implement it and must pass
// the one conformance suite in tests/conformance. No SQL, connection type or
// backend error text crosses this interface.
//
// Rules every backend follows:
// - State changes are compare-and-set; a lost race returns kAborted and changes
//   nothing. Each mutating call appends its TaskEvent(s) in the same transaction.
// - Times come from the caller (`now` fields), so one injected Clock drives them.
// - A deleted task is invisible to every call (kNotFound), and is never claimed.
// - kUnavailable means the database could not be reached: retry the same call.
//
// Thread safety: implementations are safe for concurrent use from many threads.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/task.h"
#include "core/time.h"

namespace sked::core {

struct TaskInsertResult {
  Task task;
  bool inserted = true;  // false: an earlier task with the same idempotency_key
};

// Keyset position in a listing: the last (run_at, id) returned.
struct TaskListCursor {
  Time run_at{};
  std::string id;
};

struct TaskListParams {
  std::vector<TaskState> states;    // empty: any
  std::vector<std::string> types;   // empty: any
  std::optional<Time> since;        // run_at >= since
  std::optional<Time> until;        // run_at < until
  std::vector<std::pair<std::string, std::string>> labels;  // all must match
  std::optional<std::string> queue;
  std::optional<std::string> schedule_id;
  bool ascending = false;           // default: newest run_at first
  int limit = 100;                  // REQUIRES: 1 <= limit <= 1000
  std::optional<TaskListCursor> after;
};

struct TaskPage {
  std::vector<Task> tasks;
  std::optional<TaskListCursor> next;  // set when more rows may follow
};

struct TaskClaimParams {
  std::string node;
  Time now{};
  Duration lease{};                  // lease_expires_at = now + lease
  int limit = 1;                     // at most this many tasks
  std::vector<std::string> runners;  // claim only tasks of these runners
  // Tasks of these runners are claimed into kProvisioning, others into kRunning.
  std::vector<std::string> provisioning_runners;
};

// One running attempt whose lease a node extends.
struct TaskLeaseRef {
  std::string id;
  int attempt = 0;
};

struct TaskLeaseRenewParams {
  std::string node;
  Time now{};
  Duration lease{};
  std::vector<TaskLeaseRef> tasks;
};

struct TaskSetHandleParams {
  std::string id;
  int attempt = 0;
  std::string handle;
  std::optional<std::string> instance_id;
  Time now{};
  std::string message;  // recorded as an event when non-empty
};

// provisioning -> running for the current attempt.
struct TaskMarkRunningParams {
  std::string id;
  int attempt = 0;
  Time now{};
  std::string message;
};

// Records the outcome of attempt `attempt`: running/provisioning -> succeeded or
// failed. Fenced: kAborted unless the task is still in that attempt and not
// finished, so an outcome is recorded exactly once.
struct TaskFinishParams {
  std::string id;
  int attempt = 0;
  TaskState state = TaskState::kSucceeded;  // kSucceeded or kFailed
  std::optional<TaskResult> result;
  std::optional<std::string> error;
  std::optional<std::string> node;
  Time now{};
  std::string message;
};

// running/provisioning -> scheduled for a later attempt, fenced like Finish.
struct TaskRetryParams {
  std::string id;
  int attempt = 0;
  Time run_at{};                    // when the next attempt may start
  std::optional<std::string> error;
  bool free = false;                // true: this attempt does not use up max_attempts
  std::optional<std::string> node;
  Time now{};
  std::string message;
};

struct TaskCancelParams {
  std::string id;
  Time now{};
  std::string message;
};

struct TaskRescueParams {
  Time now{};
  int limit = 1000;
};

struct NodeInfo {
  std::string id;
  std::string version;
  Time started_at{};
  Time last_heartbeat{};
};

class Store {
 public:
  virtual ~Store() = default;

  // --- Tasks ---------------------------------------------------------------

  // Inserts `task` (id, created_at and run_at filled by the caller) in state
  // scheduled with attempt 0. When task.idempotency_key is set and a live task
  // already has it, returns that task with inserted=false and writes nothing.
  // kAlreadyExists if the id is taken.
  virtual StatusOr<TaskInsertResult> TaskInsert(const Task& task) = 0;

  // All of `tasks` or none, in one transaction; results in the same order.
  virtual StatusOr<std::vector<TaskInsertResult>> TaskInsertMany(
      const std::vector<Task>& tasks) = 0;

  // kNotFound if absent or deleted.
  virtual StatusOr<Task> TaskGet(const std::string& id) = 0;

  // Ordered by (run_at, id), descending unless params.ascending.
  virtual StatusOr<TaskPage> TaskList(const TaskListParams& params) = 0;

  // Claims due tasks (state scheduled, run_at <= now), oldest run_at first:
  // sets the state, attempt += 1, the lease, started_at, clears the handle.
  // Returns the claimed tasks as they now are. No task is returned to two
  // claimers while its lease holds.
  virtual StatusOr<std::vector<Task>> TaskClaim(const TaskClaimParams& params) = 0;

  // The earliest run_at among scheduled tasks of `runners`, or nullopt.
  virtual StatusOr<std::optional<Time>> TaskNextRunAt(
      const std::vector<std::string>& runners) = 0;

  // Extends the leases `node` holds. Returns the refs it no longer holds
  // (cancelled, deleted, finished, rescued or taken by another attempt); the
  // caller must stop those attempts.
  virtual StatusOr<std::vector<TaskLeaseRef>> TaskLeaseRenew(
      const TaskLeaseRenewParams& params) = 0;

  // Saves the runner's handle for the current attempt. kAborted if the attempt
  // is no longer current.
  virtual Status TaskSetHandle(const TaskSetHandleParams& params) = 0;

  // kAborted unless the task is provisioning in that attempt.
  virtual Status TaskMarkRunning(const TaskMarkRunningParams& params) = 0;

  virtual Status TaskFinish(const TaskFinishParams& params) = 0;

  // If the task has used up max_attempts (counting this one unless free), it
  // fails instead, with params.error. Returns the task as it now is.
  virtual StatusOr<Task> TaskRetry(const TaskRetryParams& params) = 0;

  // scheduled/provisioning/running -> cancelled; returns the task as it was
  // before (so the caller can stop a running attempt) with state cancelled.
  // Cancelling a cancelled task is OK and changes nothing. kFailedPrecondition
  // if it already succeeded or failed; kNotFound if absent or deleted.
  virtual StatusOr<Task> TaskCancel(const TaskCancelParams& params) = 0;

  // Deletes the task: from now on it is invisible and never runs. Returns the
  // task as it was just before (so the caller can stop a running attempt).
  // kNotFound if absent or already deleted.
  virtual StatusOr<Task> TaskDelete(const TaskCancelParams& params) = 0;

  // Moves running/provisioning tasks whose lease expired before `now` back to
  // scheduled (or to failed when they have used up max_attempts). Returns them
  // as they now are.
  virtual StatusOr<std::vector<Task>> TaskRescue(const TaskRescueParams& params) = 0;

  // Oldest first. kNotFound if the task is absent or deleted.
  virtual StatusOr<std::vector<TaskEvent>> TaskEventList(const std::string& id) = 0;

  // Live (not deleted) tasks per state.
  virtual StatusOr<std::map<TaskState, int64_t>> TaskCountByState() = 0;

  // --- Nodes and leadership -----------------------------------------------

  // Creates or refreshes the node's row.
  virtual Status NodeHeartbeat(const NodeInfo& node) = 0;
  virtual StatusOr<std::vector<NodeInfo>> NodeList() = 0;

  // Takes or extends the single leader lease for `ttl`. Returns true when
  // `node` holds it afterwards. A lease expired before `now` may be taken.
  virtual StatusOr<bool> LeaderElect(const std::string& node, Time now, Duration ttl) = 0;
  // Gives the lease up if `node` holds it.
  virtual Status LeaderResign(const std::string& node) = 0;

  // --- Wake-ups across nodes ------------------------------------------------

  // Registers `fn`, called from a backend thread whenever another process may
  // have made tasks due (inserted, retried or rescued them), with the earliest
  // run_at it knows of, so every node's dispatcher wakes at once instead of
  // on its next poll. Replaces an earlier subscriber; an empty `fn` removes it.
  // Backends that serve a single process may never call it (the default).
  virtual void TaskSubscribeDue(std::function<void(Time)> fn) {}

  // --- Installation-wide settings -------------------------------------------

  // Stores `value` under `key` unless the key already has a value, and returns
  // the stored value: the first writer wins, so every node of one database
  // agrees (used for the callback secret). kInvalidArgument for an empty key.
  virtual StatusOr<std::string> SettingInit(const std::string& key, const std::string& value) = 0;

  // --- Health --------------------------------------------------------------

  // OK when the database answers.
  virtual Status Ping() = 0;
};

}  // namespace sked::core
