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

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/schedule.h"
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

struct TaskClaimParams {
  std::string node;
  Time now{};
  Duration lease{};                  // lease_expires_at = now + lease
  int limit = 1;                     // at most this many tasks
  std::vector<std::string> runners;  // claim only tasks of these runners
  // Tasks of these runners are claimed into kProvisioning, others into kRunning.
  std::vector<std::string> provisioning_runners;
  // Runs an attempt that ends the moment it starts (a no-op) while the claim
  // still holds its row: called with the task as claimed (running, its new
  // attempt), it returns the outcome, or nullopt to leave the task claimed.
  // The task it is called with may carry only its dispatch fields (id, type,
  // runner, queue, run_at, attempt, max_attempts, free_attempts, timeout_s,
  // notify_url) besides what the claim set: a store need read no more of a
  // row before it knows the attempt must be launched, or whether its outcome
  // queues a webhook.
  // The store then records that outcome in the claim's own transaction:
  // scheduled -> succeeded or failed, attempt + 1, started_at = now,
  // finished_at = the outcome's time, no lease, and one history line (the
  // outcome's) instead of "claimed" and the outcome. No one ever sees such an
  // attempt running, and a claim that does not commit leaves the task
  // scheduled, so the attempt runs again, like any in-process attempt after a
  // crash. Called on the claimer's thread; it must not call the store. A
  // backend may claim some tasks without calling it (those of queues with
  // limits). Empty: every task is claimed.
  std::function<std::optional<TaskFinishParams>(const Task& claimed)> run_instantly;
  // When set and the claim took fewer than `limit` tasks, a store may also
  // answer TaskNextRunAt(runners) here, as the claim left the store, where it
  // costs no round trip of its own (the engine asks it after every such
  // claim). Left empty when it did not.
  std::optional<std::optional<Time>>* next_run_at = nullptr;
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

// running/provisioning -> scheduled for a later attempt, fenced like Finish.
struct TaskRetryParams {
  std::string id;
  int attempt = 0;
  Time run_at{};                    // when the next attempt may start
  std::optional<std::string> error;
  // The failed attempt's result (exit code, log tail), kept on the task so
  // the last attempt's is visible; nullopt leaves the stored one.
  std::optional<TaskResult> result;
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
  // An attempt with a handle lives outside its node (a container, an
  // instance) and a node that can reach it may adopt it: it is rescued only
  // once its lease expired more than this long ago.
  Duration handle_grace{};
};

// Takes over a running attempt whose node died (or this node, restarted).
struct TaskAdoptParams {
  std::string id;
  int attempt = 0;
  std::string node;
  Time now{};
  Duration lease{};
};

struct NodeInfo {
  std::string id;
  std::string version;
  Time started_at{};
  Time last_heartbeat{};
  // Attempts the node runs at once; 0: it claims no task (a node that serves
  // only the API, or one that has stopped).
  int concurrency = 0;
};

// A queue's limits (PUT /v1/queues/{name}). A queue nobody configured has
// none. A claim never takes a task of a queue past either limit.
struct QueueLimits {
  std::string name;
  // Tasks of the queue provisioning or running at once, across all nodes;
  // 0 holds the queue. nullopt: no limit.
  std::optional<int64_t> max_running;
  // Claims per second, across all nodes, > 0: a token bucket that holds up
  // to max(1, max_per_second) claims and refills at max_per_second, so 10
  // allows bursts of 10 and 10 per second on average, 0.5 one claim every
  // 2 s. nullopt: no limit.
  std::optional<double> max_per_second;
  Time updated_at{};
};

// The claims a rate-limited queue's bucket holds at `now`: `tokens` as last
// stored at `stored_at` (nullopt: a full bucket), refilled since at `rate`
// per second, capped at max(1, rate). Both backends keep the bucket in the
// queue's row and use this one rule.
inline double QueueBucketTokens(double rate, std::optional<double> tokens,
                                std::optional<Time> stored_at, Time now) {
  const double capacity = rate < 1.0 ? 1.0 : rate;
  if (!tokens || !stored_at) return capacity;
  const double elapsed_s =
      now > *stored_at ? std::chrono::duration<double>(now - *stored_at).count() : 0.0;
  const double t = *tokens + elapsed_s * rate;
  return t > capacity ? capacity : t;
}

// kInvalidArgument unless the name is 1 to 64 characters of [A-Za-z0-9_.-],
// max_running >= 0 and max_per_second is finite and > 0.
inline Status ValidateQueueLimits(const QueueLimits& q) {
  if (q.name.empty() || q.name.size() > 64) {
    return InvalidArgumentError("queue name must be 1 to 64 characters");
  }
  for (char c : q.name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return InvalidArgumentError("queue name must be characters of [A-Za-z0-9_.-]");
  }
  if (q.max_running.has_value() && *q.max_running < 0) {
    return InvalidArgumentError("max_running must be >= 0");
  }
  if (q.max_per_second.has_value() && !(*q.max_per_second > 0 && *q.max_per_second <= 1e9)) {
    return InvalidArgumentError("max_per_second must be > 0");
  }
  return OkStatus();
}

struct QueueInfo {
  QueueLimits limits;      // name, and no limits for an unconfigured queue
  int64_t running = 0;     // live tasks provisioning or running
  int64_t scheduled = 0;   // live tasks waiting
};

// One webhook delivery: POST the task to `url` after it reached
// `task_state`. Queued by the store itself when a task with a notify_url
// reaches a final state.
struct WebhookDelivery {
  int64_t id = 0;
  std::string task_id;
  std::string url;
  TaskState task_state = TaskState::kSucceeded;
  int attempt = 0;  // deliveries tried, this one included once claimed
};

struct WebhookClaimParams {
  std::string node;
  Time now{};
  Duration lease{};
  int limit = 1;
};

// The outcome of delivery attempt `attempt`. Fenced like a task's: kAborted
// unless the delivery is still pending in that attempt.
struct WebhookFinishParams {
  int64_t id = 0;
  int attempt = 0;
  bool delivered = false;
  // When not delivered: the next try, or nullopt to give up (state failed).
  std::optional<Time> retry_at;
  std::string error;  // why it was not delivered
  std::string node;
  Time now{};
};

struct ScheduleListParams {
  int limit = 100;                      // REQUIRES: 1 <= limit <= 1000
  std::optional<std::string> after_id;  // keyset: ids greater than this
};

struct SchedulePage {
  std::vector<Schedule> schedules;  // by id (creation order)
  std::optional<std::string> next;  // the last id, when more may follow
};

// Creates a schedule's due occurrences and moves it on, atomically.
struct ScheduleFireParams {
  std::string id;
  // Compare-and-set: applies only while the schedule is unpaused and its
  // next_run_at is still this, so two nodes never create one occurrence twice.
  std::optional<Time> expected_next_run_at;
  std::optional<Time> next_run_at;  // the new value
  // Ready tasks (id, created_at, run_at, schedule_id, occurrence set) to insert.
  std::vector<Task> occurrences;
  // Against the schedule's live tasks: kSkip inserts nothing when there is
  // one; kCancelPrevious cancels them first.
  OverlapPolicy overlap = OverlapPolicy::kAllow;
  Time now{};
};

struct ScheduleFireResult {
  std::vector<Task> inserted;
  std::vector<Task> cancelled;  // as they were before (to stop their attempts)
  int skipped = 0;              // occurrences not created because of kSkip
};

// Rules of a task's row that every backend applies alike.

// No node holds the task's lease.
inline void ClearLease(Task& t) {
  t.lease_owner.reset();
  t.lease_expires_at.reset();
}

// The task as TaskClaim leaves it: provisioning (a runner of
// p.provisioning_runners) or running, in its next attempt, started at p.now,
// leased to p.node until p.now + p.lease, without the last attempt's handle.
inline void ApplyClaim(const TaskClaimParams& p, Task& t) {
  const bool provisions = std::find(p.provisioning_runners.begin(), p.provisioning_runners.end(),
                                    t.runner) != p.provisioning_runners.end();
  t.state = provisions ? TaskState::kProvisioning : TaskState::kRunning;
  t.attempt += 1;
  t.lease_owner = p.node;
  t.lease_expires_at = p.now + p.lease;
  t.started_at = p.now;
  t.handle.reset();
}

// kInvalidArgument unless the outcome is a final one (succeeded, failed).
inline Status CheckFinishState(const TaskFinishParams& p) {
  if (p.state == TaskState::kSucceeded || p.state == TaskState::kFailed) return OkStatus();
  return InvalidArgumentError("finish state must be succeeded or failed");
}

// The task as TaskFinish leaves it: in p.state, finished at p.now, with the
// outcome's result and error, no lease.
inline void ApplyFinish(const TaskFinishParams& p, Task& t) {
  t.state = p.state;
  t.finished_at = p.now;
  t.result = p.result;
  t.error = p.error;
  ClearLease(t);
}

// The line TaskFinish adds to the task's history: params.message, or the
// state ("succeeded", "failed: <error>"); one text for every backend.
inline std::string FinishEventMessage(const TaskFinishParams& p) {
  if (!p.message.empty()) return p.message;
  if (p.state == TaskState::kFailed && p.error.has_value()) return "failed: " + *p.error;
  return std::string(TaskStateName(p.state));
}

// The line WebhookFinish adds to the task's history; one text for every
// backend.
inline std::string WebhookEventMessage(const WebhookFinishParams& p) {
  const std::string n = std::to_string(p.attempt);
  if (p.delivered) return "webhook delivered (attempt " + n + ")";
  return "webhook attempt " + n + " failed: " + p.error +
         (p.retry_at.has_value() ? "; will retry" : "; giving up");
}

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

  // TaskGet for a caller that must not block (the HTTP server's I/O
  // threads). False, and `done` is never called, when the store has no such
  // path: the caller then calls TaskGet from a thread that may block.
  // Otherwise `done` gets what TaskGet would return, exactly once, on a
  // thread of the store's (or on the caller's before this returns); it must
  // not block.
  virtual bool TaskGetAsync(const std::string& id,
                            std::function<void(StatusOr<Task>)> done) {
    (void)id;
    (void)done;
    return false;
  }

  // Ordered by (run_at, id), descending unless params.ascending.
  virtual StatusOr<TaskPage> TaskList(const TaskListParams& params) = 0;

  // Claims due tasks (state scheduled, run_at <= now), oldest run_at first:
  // sets the state, attempt += 1, the lease, started_at, clears the handle.
  // Returns the claimed tasks as they now are: those params.run_instantly ran
  // in their final state, possibly with only their dispatch fields
  // (TaskClaimParams::run_instantly) and what the claim and the outcome wrote
  // (a claim of hundreds of no-ops need not read hundreds of whole rows that
  // nobody looks at; TaskGet reads the whole task). No task is returned to
  // two claimers while its lease holds. Queue limits hold across concurrent
  // claimers: a queue at its max_running or rate is skipped, and does not
  // hold back the due tasks of other queues behind it.
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

  // Many TaskFinish calls at once, each fenced on its own: one status per
  // item, in order (OK, kAborted, kNotFound, ...). A backend may do them in
  // one round trip; when the database fails mid-way every item reports it
  // (kUnavailable: it may have committed, and a repeat is fenced out).
  // The default calls TaskFinish for each.
  virtual std::vector<Status> TaskFinishMany(const std::vector<TaskFinishParams>& batch) {
    std::vector<Status> out;
    out.reserve(batch.size());
    for (const auto& p : batch) out.push_back(TaskFinish(p));
    return out;
  }

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

  // Gives `node` the lease of attempt `attempt` of a provisioning or running
  // task, keeping the attempt, when its lease expired before `now` or `node`
  // holds it already; appends "adopted by <node>". Returns the task.
  // kAborted when the task is in another attempt, finished, or leased to
  // another node; kNotFound if absent or deleted.
  virtual StatusOr<Task> TaskAdopt(const TaskAdoptParams& params) = 0;

  // Moves running/provisioning tasks whose lease expired before `now` back to
  // scheduled (or to failed when they have used up max_attempts); those with a
  // handle only after params.handle_grace more. Returns them as they now are.
  virtual StatusOr<std::vector<Task>> TaskRescue(const TaskRescueParams& params) = 0;

  // Oldest first. kNotFound if the task is absent or deleted.
  virtual StatusOr<std::vector<TaskEvent>> TaskEventList(const std::string& id) = 0;

  // Live (not deleted) tasks per state.
  virtual StatusOr<std::map<TaskState, int64_t>> TaskCountByState() = 0;

  // --- Nodes and leadership -----------------------------------------------

  // Creates or refreshes the node's row.
  virtual Status NodeHeartbeat(const NodeInfo& node) = 0;
  virtual StatusOr<std::vector<NodeInfo>> NodeList() = 0;
  // Removes the rows of the nodes whose last heartbeat is before
  // `silent_since` (nodes long dead: a node's id is new at each start, so
  // without this the list grows with every restart). Returns how many.
  virtual StatusOr<int64_t> NodePrune(Time silent_since) = 0;

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

  // --- Schedules ------------------------------------------------------------

  // kAlreadyExists if the id is taken; kInvalidArgument for an empty id.
  virtual StatusOr<Schedule> ScheduleInsert(const Schedule& schedule) = 0;
  // kNotFound if absent or deleted.
  virtual StatusOr<Schedule> ScheduleGet(const std::string& id) = 0;
  virtual StatusOr<SchedulePage> ScheduleList(const ScheduleListParams& params) = 0;
  // Removes the schedule; the tasks it created stay. kNotFound if absent.
  virtual Status ScheduleDelete(const std::string& id) = 0;
  // Sets paused and next_run_at (and updated_at = now). kNotFound if absent.
  virtual StatusOr<Schedule> ScheduleSetPaused(const std::string& id, bool paused,
                                               std::optional<Time> next_run_at, Time now) = 0;
  // Unpaused schedules with next_run_at <= before, earliest first.
  virtual StatusOr<std::vector<Schedule>> ScheduleListDue(Time before, int limit) = 0;
  // The earliest next_run_at of the unpaused schedules, or nullopt.
  virtual StatusOr<std::optional<Time>> ScheduleNextRunAt() = 0;
  // See ScheduleFireParams. kAborted when the compare-and-set fails (another
  // node fired it, or it was paused or changed); kNotFound if absent.
  virtual StatusOr<ScheduleFireResult> ScheduleFire(const ScheduleFireParams& params) = 0;

  // --- Queues ---------------------------------------------------------------

  // Creates or replaces the limits of `limits.name`; returns them as stored.
  // kInvalidArgument for an empty name, max_running < 0 or max_per_second
  // <= 0.
  virtual StatusOr<QueueLimits> QueuePut(const QueueLimits& limits) = 0;

  // Every configured queue and every queue a live task names, by name.
  virtual StatusOr<std::vector<QueueInfo>> QueueList() = 0;

  // --- Webhooks -------------------------------------------------------------

  // Claims pending deliveries due by `now` (next_attempt_at <= now) whose
  // lease is free or expired, oldest first: attempt += 1, leased to `node`.
  // No delivery is returned to two claimers while its lease holds.
  virtual StatusOr<std::vector<WebhookDelivery>> WebhookClaim(
      const WebhookClaimParams& params) = 0;

  // Records an attempt's outcome and appends a line to the task's history
  // ("webhook delivered", "webhook failed: <error>"). kAborted for a stale
  // attempt or a delivery no longer pending; kNotFound for an unknown id.
  virtual Status WebhookFinish(const WebhookFinishParams& params) = 0;

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
