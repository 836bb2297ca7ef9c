#include "sched/task_service.h"

#include "core/ids.h"

namespace sked::sched {

TaskService::TaskService(core::Store& store, Engine* engine, const core::Clock& clock)
    : store_(store), engine_(engine), clock_(clock), rng_(std::random_device{}()) {}

std::string TaskService::NewId(core::Time now) {
  std::lock_guard lk(rng_mu_);
  uint64_t hi = rng_(), lo = rng_();
  return core::NewUuidV7(now, hi, lo);
}

core::StatusOr<core::TaskInsertResult> TaskService::Create(core::Task task) {
  core::Time now = clock_.Now();
  task.id = NewId(now);
  task.created_at = now;
  task.state = core::TaskState::kScheduled;
  task.attempt = 0;
  auto r = store_.TaskInsert(task);
  if (r.ok() && r->inserted && engine_) engine_->WakeFor(r->task.run_at);
  return r;
}

core::StatusOr<std::vector<core::TaskInsertResult>> TaskService::CreateMany(
    std::vector<core::Task> tasks) {
  core::Time now = clock_.Now();
  for (auto& t : tasks) {
    t.id = NewId(now);
    t.created_at = now;
    t.state = core::TaskState::kScheduled;
    t.attempt = 0;
  }
  auto r = store_.TaskInsertMany(tasks);
  if (r.ok() && engine_) {
    std::optional<core::Time> earliest;
    for (const core::TaskInsertResult& x : *r) {
      if (x.inserted && (!earliest || x.task.run_at < *earliest)) earliest = x.task.run_at;
    }
    if (earliest) engine_->WakeFor(*earliest);
  }
  return r;
}

core::StatusOr<core::Task> TaskService::Get(const std::string& id) { return store_.TaskGet(id); }

bool TaskService::GetAsync(const std::string& id,
                           std::function<void(core::StatusOr<core::Task>)> done) {
  return store_.TaskGetAsync(id, std::move(done));
}

core::StatusOr<core::TaskPage> TaskService::List(const core::TaskListParams& params) {
  return store_.TaskList(params);
}

core::StatusOr<std::vector<core::TaskEvent>> TaskService::Events(const std::string& id) {
  return store_.TaskEventList(id);
}

void TaskService::Stop(const core::Task& before) {
  // The local engine stops its attempt now; a remote node learns it at its next
  // lease renewal, which no longer finds the lease.
  // AbortLocal is a no-op when this node runs no attempt of the task.
  if (engine_) engine_->AbortLocal(before.id);
}

core::StatusOr<core::Task> TaskService::Cancel(const std::string& id) {
  ASSIGN_OR_RETURN(core::Task before,
                   store_.TaskCancel({.id = id, .now = clock_.Now(), .message = "cancelled"}));
  Stop(before);
  return store_.TaskGet(id);
}

core::Status TaskService::Delete(const std::string& id) {
  ASSIGN_OR_RETURN(core::Task before,
                   store_.TaskDelete({.id = id, .now = clock_.Now(), .message = "deleted"}));
  Stop(before);
  return core::OkStatus();
}

namespace {

std::optional<core::TaskState> FinalState(CallbackStatus s) {
  switch (s) {
    case CallbackStatus::kSucceeded: return core::TaskState::kSucceeded;
    case CallbackStatus::kFailed: return core::TaskState::kFailed;
    default: return std::nullopt;
  }
}

}  // namespace

core::StatusOr<core::Task> TaskService::Callback(const CallbackParams& p) {
  ASSIGN_OR_RETURN(core::Task task, store_.TaskGet(p.id));
  if (p.attempt != task.attempt || task.attempt == 0)
    return core::AbortedError("attempt: " + std::to_string(p.attempt) +
                              " is not the current attempt (" + std::to_string(task.attempt) +
                              ")");
  const core::Time now = clock_.Now();
  const std::string msg = p.message.value_or("");
  const bool live = task.state == core::TaskState::kRunning ||
                    task.state == core::TaskState::kProvisioning;
  switch (p.status) {
    case CallbackStatus::kHeartbeat: {
      if (task.state == core::TaskState::kProvisioning) {
        auto st = store_.TaskMarkRunning(
            {.id = p.id, .attempt = p.attempt, .now = now, .message = "first heartbeat"});
        if (!st.ok() && st.code() != core::StatusCode::kAborted) return st;
        return store_.TaskGet(p.id);
      }
      if (task.state == core::TaskState::kRunning) return task;
      return core::AbortedError("status: task is " + std::string(TaskStateName(task.state)) +
                                ", not running");
    }
    case CallbackStatus::kInterrupted: {
      if (task.state == core::TaskState::kScheduled) return task;  // repeated report
      if (!live)
        return core::AbortedError("status: task is " + std::string(TaskStateName(task.state)));
      auto after = store_.TaskRetry({.id = p.id,
                                     .attempt = p.attempt,
                                     .run_at = now,
                                     .error = std::nullopt,
                                     .free = true,
                                     .node = std::nullopt,
                                     .now = now,
                                     .message = "interrupted" + (msg.empty() ? "" : ": " + msg)});
      if (!after.ok()) return after.status();
      if (engine_) {
        // The runner decides what stopping an interrupted attempt means: the
        // ec2-spot runner leaves an instance EC2 is reclaiming to EC2, so the
        // job keeps its warning time to checkpoint.
        engine_->AbortLocal(p.id);
        engine_->Wake();
      }
      return after;
    }
    case CallbackStatus::kSucceeded:
    case CallbackStatus::kFailed: {
      core::TaskState want = *FinalState(p.status);
      if (task.state == want) return task;  // the same final report again
      if (!live)
        return core::AbortedError("status: task already " +
                                  std::string(TaskStateName(task.state)));
      core::TaskResult result{p.exit_code.value_or(want == core::TaskState::kSucceeded ? 0 : 1),
                              msg};
      auto st = store_.TaskFinish(
          {.id = p.id,
           .attempt = p.attempt,
           .state = want,
           .result = result,
           .error = want == core::TaskState::kFailed
                        ? std::optional<std::string>(msg.empty() ? "the job reported failure" : msg)
                        : std::nullopt,
           .node = std::nullopt,
           .now = now,
           .message = std::string("callback: ") + std::string(TaskStateName(want)) +
                      (msg.empty() ? "" : ": " + msg)});
      if (!st.ok()) {
        if (st.code() != core::StatusCode::kAborted) return st;
        ASSIGN_OR_RETURN(core::Task again, store_.TaskGet(p.id));
        if (again.state == want && again.attempt == p.attempt) return again;
        return st;
      }
      if (engine_) engine_->AbortLocal(p.id);
      return store_.TaskGet(p.id);
    }
  }
  return core::InternalError("unknown callback status");
}

core::StatusOr<std::vector<core::NodeInfo>> TaskService::Nodes() { return store_.NodeList(); }

core::StatusOr<core::QueueLimits> TaskService::PutQueue(const core::QueueLimits& limits) {
  auto put = store_.QueuePut(limits);
  if (put.ok() && engine_ != nullptr) engine_->Wake();
  return put;
}

core::StatusOr<std::vector<core::QueueInfo>> TaskService::Queues() { return store_.QueueList(); }

core::StatusOr<std::map<core::TaskState, int64_t>> TaskService::CountByState() {
  return store_.TaskCountByState();
}

core::Status TaskService::Ready() { return store_.Ping(); }

}  // namespace sked::sched
