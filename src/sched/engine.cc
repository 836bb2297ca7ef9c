#include "sched/engine.h"

#include <algorithm>
#include <utility>

namespace sked::sched {

namespace {

using core::Duration;
using core::ExecResult;
using core::Time;
using std::chrono::milliseconds;

std::string AttemptTag(const std::string& id, int attempt) {
  return "task " + id + " attempt " + std::to_string(attempt);
}

}  // namespace

Engine::Engine(EngineOptions options, core::Store& store, const ExecutorRegistry& executors,
               const core::Clock& clock)
    : options_(std::move(options)),
      store_(store),
      executors_(executors),
      clock_(clock),
      runners_(executors.Kinds()),
      provisioning_runners_(executors.ProvisioningKinds()),
      rng_(std::random_device{}()) {}

Engine::~Engine() { Stop(); }

core::Status Engine::Start() {
  std::lock_guard lk(mu_);
  if (started_) return core::FailedPreconditionError("engine already started");
  started_ = true;
  started_at_ = clock_.Now();
  // Tasks made due by other nodes wake the dispatcher as ours do.
  store_.TaskSubscribeDue([this](Time run_at) { WakeFor(run_at); });
  dispatcher_ = std::thread([this] { DispatchLoop(); });
  for (int i = 1; i < options_.claimers; ++i) {
    backlog_claimers_.emplace_back([this, i] { BacklogLoop(i); });
  }
  maintenance_ = std::thread([this] { MaintenanceLoop(); });
  completer_ = std::thread([this] { CompletionLoop(); });
  return core::OkStatus();
}

void Engine::Wake() {
  std::lock_guard lk(mu_);
  wake_ = true;
  dispatch_cv_.notify_one();
}

void Engine::WakeFor(Time run_at) {
  std::lock_guard lk(mu_);
  if (asleep_until_.has_value() && *asleep_until_ <= run_at) return;
  wake_ = true;
  dispatch_cv_.notify_one();
}

void Engine::Log(core::LogLevel level, const std::string& message) {
  if (options_.logger) options_.logger->Log(level, message);
}

void Engine::NoteError(const core::Status& s, const char* where, Time called_at) {
  std::string text = std::string(where) + ": " + s.ToString();
  Log(core::LogLevel::kWarn, text);
  std::lock_guard lk(mu_);
  stats_.last_error = std::move(text);
  if (s.code() == core::StatusCode::kUnavailable) {
    last_unavailable_ = std::max(last_unavailable_, called_at);
  }
}

double Engine::UnitRandom() {
  std::lock_guard lk(mu_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

// --- Dispatch --------------------------------------------------------------

int Engine::FreeSlots() const {
  return options_.concurrency - static_cast<int>(running_.size()) - reserved_;
}

core::StatusOr<int> Engine::ClaimAndLaunch(Time now, int limit,
                                           std::optional<std::optional<Time>>* next_run_at) {
  // Attempts that end as they start are run inside the claim; a result the
  // claim could not record (one to retry) waits here for it.
  std::map<std::string, ExecResult> ran;
  auto claimed = store_.TaskClaim(
      {.node = options_.node_id,
       .now = now,
       .lease = options_.lease,
       .limit = limit,
       .runners = runners_,
       .provisioning_runners = provisioning_runners_,
       .run_instantly = [&](const core::Task& t) { return RunInstantly(t, ran); },
       .next_run_at = next_run_at});
  if (!claimed.ok()) {
    NoteError(claimed.status(), "claim", now);
    return claimed.status();
  }
  int64_t succeeded = 0, failed = 0;
  bool webhook_queued = false;
  for (auto& t : *claimed) {
    if (core::IsTerminal(t.state)) {  // run in the claim
      ++(t.state == core::TaskState::kSucceeded ? succeeded : failed);
      webhook_queued = webhook_queued || t.notify_url.has_value();
      continue;
    }
    auto result = ran.find(t.id);
    LaunchAttempt(std::move(t), result == ran.end()
                                    ? std::nullopt
                                    : std::optional<ExecResult>(std::move(result->second)));
  }
  if (succeeded + failed > 0) {
    {
      std::lock_guard g(mu_);
      stats_.claimed += succeeded + failed;
      stats_.succeeded += succeeded;
      stats_.failed += failed;
    }
    if (webhook_queued && options_.on_webhook_queued) options_.on_webhook_queued();
  }
  return static_cast<int>(claimed->size());
}

void Engine::DispatchLoop() {
  Duration error_backoff = milliseconds(50);
  std::unique_lock lk(mu_);
  while (!stopping_) {
    wake_ = false;
    int free = FreeSlots();
    Time now = clock_.Now();
    Time deadline = now + options_.idle_poll;
    if (free > 0) {
      int limit = std::min(free, options_.claim_batch);
      reserved_ += limit;
      lk.unlock();
      std::optional<std::optional<Time>> next;
      core::StatusOr<int> claimed = ClaimAndLaunch(now, limit, &next);
      if (claimed.ok() && *claimed < limit && !next) {  // the store did not answer it
        auto n = store_.TaskNextRunAt(runners_);
        if (n.ok()) next = *n;
      }
      lk.lock();
      reserved_ -= limit;
      if (!claimed.ok()) {
        backlog_ = false;
        // From when the claim was made, as NoteError's stamp: a claim that
        // took long to fail has waited its share already (and a clock that
        // jumped meanwhile must not push the retry past its ticks).
        clock_.WaitUntil(lk, dispatch_cv_, now + error_backoff, [&] { return stopping_; });
        error_backoff = std::min<Duration>(error_backoff * 2, std::chrono::seconds(2));
        continue;
      }
      error_backoff = milliseconds(50);
      if (*claimed == limit) {  // more may be due: the backlog claimers join in
        backlog_ = true;
        backlog_cv_.notify_all();
        continue;
      }
      backlog_ = false;
      if (next && *next) {
        if (**next <= now) {
          // Due tasks this claim did not take: their queue is at its limit.
          // A finishing task here wakes us; elsewhere, only time tells.
          deadline = std::min(deadline, now + options_.throttle_poll);
        } else {
          deadline = std::max(std::min(deadline, **next), now + milliseconds(1));
        }
      }
    }
    if (wake_) continue;
    // Sleep until the next known run_at, an idle poll, or Wake() (a new task, a
    // freed slot).
    asleep_until_ = deadline;
    clock_.WaitUntil(lk, dispatch_cv_, deadline, [&] { return stopping_ || wake_; });
    asleep_until_.reset();
  }
}

std::optional<core::TaskFinishParams> Engine::RunInstantly(
    const core::Task& task, std::map<std::string, ExecResult>& ran) {
  core::Executor* executor = executors_.Find(task.runner);
  if (executor == nullptr) return std::nullopt;
  std::optional<ExecResult> result =
      executor->RunInstantly({.task = task, .node = options_.node_id, .job_env = {}});
  if (!result) return std::nullopt;
  Completion c{task.id, task.attempt, std::move(*result), 0};
  std::optional<core::TaskFinishParams> outcome = FinalOutcome(c, clock_.Now());
  if (!outcome) ran[task.id] = std::move(c.result);  // retried: TaskRetry's, after the claim
  return outcome;
}

void Engine::BacklogLoop(int index) {
  std::unique_lock lk(mu_);
  while (true) {
    backlog_cv_.wait(lk, [&] { return stopping_ || backlog_; });
    if (stopping_) return;
    lk.unlock();
    const int share = SharedClaimers();
    lk.lock();
    if (index >= share) {  // other nodes' claims are this one's share
      clock_.WaitUntil(lk, backlog_cv_, clock_.Now() + kClaimersRecount,
                       [&] { return stopping_; });
      continue;
    }
    const int free = FreeSlots();
    if (free <= 0) {
      backlog_ = false;  // the dispatcher claims again when a slot frees
      continue;
    }
    const int limit = std::min(free, options_.claim_batch);
    reserved_ += limit;
    const Time now = clock_.Now();
    lk.unlock();
    core::StatusOr<int> claimed = ClaimAndLaunch(now, limit);
    lk.lock();
    reserved_ -= limit;
    if (!claimed.ok() || *claimed < limit) backlog_ = false;
  }
}

int Engine::SharedClaimers() {
  std::lock_guard g(claimers_mu_);
  const Time now = clock_.Now();
  if (claimers_counted_at_ && now - *claimers_counted_at_ < kClaimersRecount) {
    return shared_claimers_;
  }
  claimers_counted_at_ = now;
  auto nodes = store_.NodeList();
  if (!nodes.ok()) return shared_claimers_;  // the claims will say what is wrong
  int claiming = 1;  // this node, whether or not its heartbeat is written yet
  for (const core::NodeInfo& n : *nodes) {
    if (n.id != options_.node_id && n.concurrency > 0 && now - n.last_heartbeat <= options_.lease) {
      ++claiming;
    }
  }
  shared_claimers_ = std::max(1, options_.claimers / claiming);
  return shared_claimers_;
}

void Engine::LaunchAttempt(core::Task task, std::optional<ExecResult> ran) {
  core::Executor* executor = executors_.Find(task.runner);
  const std::string id = task.id;
  const int attempt = task.attempt;
  Time now = clock_.Now();
  if (executor == nullptr) {  // claim filters by runner, so only a bug gets here
    OnDone(id, attempt,
           {ExecResult::Kind::kFailedPermanent, -1, "", "no runner " + task.runner + " here"});
    return;
  }
  core::LaunchParams params{.task = task, .node = options_.node_id, .job_env = {}};
  if (options_.job_env) params.job_env = options_.job_env(task);
  {
    std::lock_guard lk(mu_);
    Attempt a;
    a.deadline = now + std::chrono::seconds(task.timeout_s);
    a.executor = executor;
    a.task = std::move(task);
    running_[id] = std::move(a);
    ++stats_.claimed;
  }
  if (ran.has_value()) {
    OnDone(id, attempt, std::move(*ran));
    return;
  }
  if (!executor->Provisions()) {
    StartAttempt(executor, std::move(params));
    return;
  }
  // Acquiring a machine takes seconds: not on the dispatcher's thread.
  {
    std::lock_guard lk(mu_);
    ++launching_;
  }
  std::thread([this, executor, params = std::move(params)]() mutable {
    StartAttempt(executor, std::move(params));
    std::lock_guard lk(mu_);
    --launching_;
    idle_cv_.notify_all();
  }).detach();
}

void Engine::StartAttempt(core::Executor* executor, core::LaunchParams params) {
  const std::string id = params.task.id;
  const int attempt = params.task.attempt;
  auto handle = executor->Launch(
      params, [this, id, attempt](ExecResult r) { OnDone(id, attempt, std::move(r)); });
  if (!handle.ok()) {
    auto code = handle.status().code();
    bool permanent = code == core::StatusCode::kInvalidArgument ||
                     code == core::StatusCode::kFailedPrecondition ||
                     code == core::StatusCode::kNotFound;
    OnDone(id, attempt,
           {permanent ? ExecResult::Kind::kFailedPermanent : ExecResult::Kind::kFailed, -1, "",
            handle.status().message()});
    return;
  }
  bool still_ours = false;
  bool timed_out = false;
  {
    std::lock_guard lk(mu_);
    auto it = running_.find(id);
    if (it != running_.end() && it->second.task.attempt == attempt) {
      it->second.handle = *handle;
      still_ours = true;
      timed_out = it->second.timed_out;
    }
  }
  // Aborted while launching, or timed out before its handle was known (so
  // EnforceTimeouts could not stop it): stopped now, or it would run on
  // beside its recorded failure.
  if (!still_ours || timed_out) {
    (void)executor->Cancel(*handle);
    return;
  }
  if (executor->Durable()) {
    core::Executor::Placement placed = executor->Placed(*handle);
    const Time now = clock_.Now();
    auto st = store_.TaskSetHandle({.id = id,
                                    .attempt = attempt,
                                    .handle = *handle,
                                    .instance_id = placed.instance_id,
                                    .now = now,
                                    .message = placed.message});
    if (!st.ok() && st.code() != core::StatusCode::kAborted) NoteError(st, "save handle", now);
  }
}

// --- Outcomes --------------------------------------------------------------

void Engine::OnDone(const std::string& id, int attempt, ExecResult result) {
  std::lock_guard lk(mu_);
  auto it = running_.find(id);
  if (it == running_.end() || it->second.task.attempt != attempt || it->second.finishing) return;
  it->second.finishing = true;
  completions_.push_back({id, attempt, std::move(result), 0});
  completion_cv_.notify_one();
}

void Engine::CompletionLoop() {
  std::unique_lock lk(mu_);
  while (true) {
    completion_cv_.wait(lk, [&] { return !completions_.empty() || stop_threads_; });
    if (completions_.empty()) break;  // stop_threads_ and drained
    std::deque<Completion> batch;
    batch.swap(completions_);
    lk.unlock();
    std::deque<Completion> again;
    std::vector<bool> recorded = RecordFinishes(batch);
    for (size_t i = 0; i < batch.size(); ++i) {
      Completion& c = batch[i];
      if (recorded[i] || RecordCompletion(c)) {
        bool notifies = false;
        {
          std::lock_guard g(mu_);
          auto it = running_.find(c.id);
          if (it != running_.end() && it->second.task.attempt == c.attempt) {
            notifies = it->second.task.notify_url.has_value();
            running_.erase(it);
          }
          wake_ = true;
          dispatch_cv_.notify_one();
          idle_cv_.notify_all();
        }
        if (notifies && options_.on_webhook_queued) options_.on_webhook_queued();
      } else {
        ++c.store_tries;
        again.push_back(std::move(c));
      }
    }
    lk.lock();
    if (!again.empty()) {
      // The store is unreachable: keep the outcomes (their leases are still
      // ours until they expire) and try again shortly.
      for (auto& c : again) completions_.push_back(std::move(c));
      clock_.WaitUntil(lk, completion_cv_, clock_.Now() + milliseconds(200),
                       [&] { return stop_threads_; });
      if (stop_threads_) break;
    }
  }
}

std::optional<core::TaskFinishParams> Engine::FinalOutcome(const Completion& c, Time now) const {
  const auto& r = c.result;
  if (r.kind == ExecResult::Kind::kSucceeded) {
    return core::TaskFinishParams{.id = c.id,
                                  .attempt = c.attempt,
                                  .state = core::TaskState::kSucceeded,
                                  .result = core::TaskResult{r.exit_code, r.output},
                                  .error = std::nullopt,
                                  .node = options_.node_id,
                                  .now = now,
                                  .message = "succeeded"};
  }
  if (r.kind == ExecResult::Kind::kFailedPermanent) {
    return core::TaskFinishParams{.id = c.id,
                                  .attempt = c.attempt,
                                  .state = core::TaskState::kFailed,
                                  .result = core::TaskResult{r.exit_code, r.output},
                                  .error = r.error,
                                  .node = options_.node_id,
                                  .now = now,
                                  .message = "failed permanently: " + r.error};
  }
  return std::nullopt;  // retried or interrupted: TaskRetry's
}

bool Engine::Settled(const core::Status& st, const std::string& tag, Time called_at) {
  if (st.ok()) return true;
  switch (st.code()) {
    case core::StatusCode::kAborted:
    case core::StatusCode::kNotFound:
      // Someone else decided first (a callback, a cancel, a rescue): fencing
      // by attempt kept this stale outcome out.
      Log(core::LogLevel::kDebug, tag + ": outcome not recorded: " + st.message());
      return true;
    case core::StatusCode::kUnavailable:
      NoteError(st, "record outcome", called_at);
      return false;  // kept, to try again
    default:
      NoteError(st, "record outcome", called_at);
      return true;
  }
}

std::vector<bool> Engine::RecordFinishes(std::deque<Completion>& batch) {
  // Final outcomes go to the store in one TaskFinishMany; retries and
  // interruptions (and anything the batch could not settle) take the
  // one-by-one path of RecordCompletion. true: settled here.
  std::vector<bool> settled(batch.size(), false);
  std::vector<core::TaskFinishParams> finishes;
  std::vector<size_t> index;
  const Time now = clock_.Now();
  {
    std::lock_guard lk(mu_);
    for (size_t i = 0; i < batch.size(); ++i) {
      const Completion& c = batch[i];
      auto it = running_.find(c.id);
      if (it == running_.end() || it->second.task.attempt != c.attempt) {
        settled[i] = true;  // aborted meanwhile: nothing to record
        continue;
      }
      if (auto finish = FinalOutcome(c, now)) {
        finishes.push_back(std::move(*finish));
        index.push_back(i);
      }
    }
  }
  if (finishes.empty()) return settled;
  std::vector<core::Status> results = store_.TaskFinishMany(finishes);
  int64_t succeeded = 0, failed = 0;
  for (size_t k = 0; k < index.size(); ++k) {
    const Completion& c = batch[index[k]];
    const std::string tag = AttemptTag(c.id, c.attempt);
    if (results[k].ok()) {
      if (finishes[k].state == core::TaskState::kSucceeded) {
        ++succeeded;
      } else {
        ++failed;
        Log(core::LogLevel::kWarn, tag + " failed permanently: " + c.result.error);
      }
    }
    // Unavailable stays unsettled: RecordCompletion tries it once more.
    settled[index[k]] = Settled(results[k], tag, now);
  }
  std::lock_guard lk(mu_);
  stats_.succeeded += succeeded;
  stats_.failed += failed;
  return settled;
}

bool Engine::RecordCompletion(const Completion& c) {
  core::Task task;
  {
    std::lock_guard lk(mu_);
    auto it = running_.find(c.id);
    if (it == running_.end() || it->second.task.attempt != c.attempt) return true;  // aborted
    task = it->second.task;
  }
  const Time now = clock_.Now();
  const auto& r = c.result;
  const std::string tag = AttemptTag(c.id, c.attempt);
  core::Status st;
  switch (r.kind) {
    case ExecResult::Kind::kSucceeded:
    case ExecResult::Kind::kFailedPermanent: {
      const core::TaskFinishParams finish = *FinalOutcome(c, now);
      st = store_.TaskFinish(finish);
      if (st.ok()) {
        std::lock_guard lk(mu_);
        ++(finish.state == core::TaskState::kSucceeded ? stats_.succeeded : stats_.failed);
      }
      if (r.kind == ExecResult::Kind::kFailedPermanent) {
        Log(core::LogLevel::kWarn, tag + " failed permanently: " + r.error);
      }
      break;
    }
    case ExecResult::Kind::kFailed:
    case ExecResult::Kind::kInterrupted: {
      bool free = r.kind == ExecResult::Kind::kInterrupted;
      Time run_at = now;
      if (!free) {
        run_at += RetryBackoff(task.ChargedAttempts(), options_.backoff_base,
                               options_.backoff_max, options_.time_scale, UnitRandom());
      }
      std::optional<core::TaskResult> result;
      if (!free && (r.exit_code != 0 || !r.output.empty())) {
        result = core::TaskResult{r.exit_code, r.output};
      }
      auto after = store_.TaskRetry({.id = c.id,
                                     .attempt = c.attempt,
                                     .run_at = run_at,
                                     .error = r.error,
                                     .result = result,
                                     .free = free,
                                     .node = options_.node_id,
                                     .now = now,
                                     .message = (free ? "interrupted: " : "attempt failed: ") +
                                                r.error});
      st = after.status();
      if (after.ok()) {
        std::lock_guard lk(mu_);
        if (after->state == core::TaskState::kFailed) {
          ++stats_.failed;
        } else {
          ++stats_.retried;
        }
      }
      Log(core::LogLevel::kWarn,
          tag + (free ? " interrupted: " : " failed: ") + r.error +
              (after.ok() && after->state == core::TaskState::kFailed ? " (no attempts left)"
                                                                      : " (will retry)"));
      if (after.ok() && after->state == core::TaskState::kScheduled) Wake();
      break;
    }
  }
  return Settled(st, tag, now);
}

void Engine::AbortLocal(const std::string& id) {
  core::Executor* executor = nullptr;
  std::optional<std::string> handle;
  {
    std::lock_guard lk(mu_);
    auto it = running_.find(id);
    if (it == running_.end()) return;
    executor = it->second.executor;
    handle = it->second.handle;
    running_.erase(it);
    wake_ = true;
    dispatch_cv_.notify_one();
    idle_cv_.notify_all();
  }
  if (executor && handle) (void)executor->Cancel(*handle);
}

// --- Maintenance -----------------------------------------------------------

void Engine::MaintenanceLoop() {
  const Duration renew_every = options_.lease / 3;
  const Duration tick = std::min<Duration>(renew_every, milliseconds(100));
  Time next_renew = clock_.Now();
  Time next_rescue = clock_.Now();
  Time next_prune = clock_.Now();
  std::unique_lock lk(mu_);
  while (!stop_threads_) {
    const bool stopping = stopping_;
    const bool announce = std::exchange(announce_stop_, false);
    lk.unlock();
    Time now = clock_.Now();
    EnforceTimeouts();
    if (now >= next_renew) {
      RenewLeases();
      AdoptOrphans();
    }
    if (now >= next_renew || announce) Heartbeat(now, stopping);
    if (now >= next_renew) next_renew = now + renew_every;
    if (now >= next_rescue) {
      auto leader = store_.LeaderElect(options_.node_id, now, options_.lease);
      bool is_leader = leader.ok() && *leader;
      if (!leader.ok()) NoteError(leader.status(), "leader election", now);
      {
        std::lock_guard g(mu_);
        stats_.leader = is_leader;
      }
      // After the store was unreachable, every node's leases may have run
      // out while its tasks kept running. Give the nodes one whole lease to
      // renew them (and to record finished outcomes) before taking any back.
      bool outage_settled;
      {
        std::lock_guard g(mu_);
        outage_settled = now - last_unavailable_ >= options_.lease;
      }
      if (is_leader && outage_settled) Rescue();
      if (is_leader && options_.node_retention > Duration::zero() && now >= next_prune) {
        PruneNodes(now);
        next_prune = now + std::min<Duration>(kNodePruneEvery, options_.node_retention / 4);
      }
      next_rescue = now + options_.rescue_interval;
    }
    lk.lock();
    // From the iteration's start: a clock that jumped meanwhile (a suspended
    // VM, a test's fake clock) must not stretch the wait.
    clock_.WaitUntil(lk, maintenance_cv_, now + tick,
                     [&] { return stop_threads_ || announce_stop_; });
  }
}

void Engine::PruneNodes(Time now) {
  auto pruned = store_.NodePrune(now - options_.node_retention);
  if (!pruned.ok()) {
    NoteError(pruned.status(), "prune nodes", now);
  } else if (*pruned > 0) {
    Log(core::LogLevel::kInfo, "removed " + std::to_string(*pruned) +
                                   " node(s) silent for longer than the node retention");
  }
}

void Engine::Heartbeat(Time now, bool stopping) {
  auto st = store_.NodeHeartbeat({.id = options_.node_id,
                                  .version = options_.version,
                                  .started_at = started_at_,
                                  .last_heartbeat = now,
                                  .concurrency = stopping ? 0 : options_.concurrency});
  if (!st.ok()) NoteError(st, "node heartbeat", now);
}

void Engine::RenewLeases() {
  std::vector<core::TaskLeaseRef> refs;
  {
    std::lock_guard lk(mu_);
    for (const auto& [id, a] : running_) refs.push_back({id, a.task.attempt});
  }
  if (refs.empty()) return;
  const Time now = clock_.Now();
  auto lost = store_.TaskLeaseRenew(
      {.node = options_.node_id, .now = now, .lease = options_.lease, .tasks = std::move(refs)});
  if (!lost.ok()) {
    NoteError(lost.status(), "renew leases", now);
    return;
  }
  for (const auto& ref : *lost) {
    bool ours = false;
    {
      std::lock_guard lk(mu_);
      auto it = running_.find(ref.id);
      ours = it != running_.end() && it->second.task.attempt == ref.attempt &&
             !it->second.finishing;
      if (ours) ++stats_.leases_lost;
    }
    if (ours) {
      Log(core::LogLevel::kInfo, AttemptTag(ref.id, ref.attempt) + ": lease lost; stopping it");
      AbortLocal(ref.id);
    }
  }
}

void Engine::EnforceTimeouts() {
  const Time now = clock_.Now();
  std::vector<std::pair<core::Executor*, std::string>> to_cancel;
  std::vector<Completion> timed_out;
  {
    std::lock_guard lk(mu_);
    for (auto& [id, a] : running_) {
      if (a.finishing || now < a.deadline) continue;
      a.finishing = true;
      a.timed_out = true;
      ++stats_.timed_out;
      if (a.handle) to_cancel.emplace_back(a.executor, *a.handle);
      timed_out.push_back({id, a.task.attempt,
                           {ExecResult::Kind::kFailed, -1, "",
                            "timed out after " + std::to_string(a.task.timeout_s) + "s"},
                           0});
    }
  }
  if (timed_out.empty()) return;
  // Stopped first, then recorded: whoever sees the failure finds the attempt
  // gone (its container removed), not still running beside it.
  for (auto& [e, h] : to_cancel) (void)e->Cancel(h);
  std::lock_guard lk(mu_);
  for (Completion& c : timed_out) completions_.push_back(std::move(c));
  completion_cv_.notify_one();
}

void Engine::Rescue() {
  const Duration grace =
      options_.adopt_grace > Duration::zero() ? options_.adopt_grace : options_.lease * 3;
  const Time now = clock_.Now();
  auto rescued = store_.TaskRescue({.now = now, .limit = 1000, .handle_grace = grace});
  if (!rescued.ok()) {
    NoteError(rescued.status(), "rescue", now);
    return;
  }
  if (rescued->empty()) return;
  {
    std::lock_guard lk(mu_);
    stats_.rescued += static_cast<int64_t>(rescued->size());
  }
  Log(core::LogLevel::kInfo,
      "rescued " + std::to_string(rescued->size()) + " task(s) whose lease expired");
  Wake();
}

// --- Adoption --------------------------------------------------------------

void Engine::AdoptOrphans() {
  bool leader;
  {
    std::lock_guard lk(mu_);
    leader = stats_.leader;
  }
  for (const std::string& kind : runners_) {
    core::Executor* executor = executors_.Find(kind);
    if (executor == nullptr || !executor->Durable()) continue;
    // One cloud account seen by every node: the elected node reconciles it.
    if (executor->Shared() && !leader) continue;
    auto external = executor->ListExternal();
    if (!external.ok()) {
      // The runner's backend, not the store: it must not hold back rescues.
      Log(core::LogLevel::kWarn, "list external attempts (" + kind + "): " +
                                     external.status().ToString());
      continue;
    }
    for (const core::ExternalAttempt& a : *external) {
      {
        std::lock_guard lk(mu_);
        if (stopping_) return;
        auto it = running_.find(a.task_id);
        if (it != running_.end() && it->second.task.attempt == a.attempt) continue;  // ours
      }
      const Time now = clock_.Now();
      auto adopted = store_.TaskAdopt({.id = a.task_id,
                                       .attempt = a.attempt,
                                       .node = options_.node_id,
                                       .now = now,
                                       .lease = options_.lease});
      if (adopted.ok()) {
        AdoptAttempt(executor, std::move(*adopted), a.handle);
        continue;
      }
      const auto code = adopted.status().code();
      if (code != core::StatusCode::kAborted && code != core::StatusCode::kNotFound) {
        NoteError(adopted.status(), "adopt", now);
        continue;
      }
      // Not ours to run. Remove it unless it is the live attempt of another
      // node (one that shares this engine).
      bool live_elsewhere = false;
      if (code == core::StatusCode::kAborted) {
        auto t = store_.TaskGet(a.task_id);
        if (!t.ok() && t.status().code() != core::StatusCode::kNotFound) continue;  // unsure
        live_elsewhere = t.ok() && t->attempt == a.attempt &&
                         (t->state == core::TaskState::kRunning ||
                          t->state == core::TaskState::kProvisioning);
      }
      if (!live_elsewhere) {
        Log(core::LogLevel::kInfo, "removing " + a.handle + ": its task " + a.task_id +
                                       " no longer runs attempt " + std::to_string(a.attempt));
        (void)executor->Cancel(a.handle);
      }
    }
  }
}

void Engine::AdoptAttempt(core::Executor* executor, core::Task task, const std::string& handle) {
  const std::string id = task.id;
  const int attempt = task.attempt;
  const Time now = clock_.Now();
  core::LaunchParams params{.task = task, .node = options_.node_id, .job_env = {}};
  if (options_.job_env) params.job_env = options_.job_env(task);
  {
    std::lock_guard lk(mu_);
    Attempt a;
    a.deadline = task.started_at.value_or(now) + std::chrono::seconds(task.timeout_s);
    a.executor = executor;
    a.handle = handle;
    a.task = std::move(task);
    running_[id] = std::move(a);
    ++stats_.adopted;
  }
  Log(core::LogLevel::kInfo, AttemptTag(id, attempt) + ": adopted " + handle);
  core::Status st = executor->Adopt(params, handle, [this, id, attempt](ExecResult r) {
    OnDone(id, attempt, std::move(r));
  });
  if (!st.ok()) {
    OnDone(id, attempt, {ExecResult::Kind::kFailed, -1, "", "lost its " + handle + ": " +
                                                                  st.message()});
  }
}

// --- Stop ------------------------------------------------------------------

void Engine::GiveBackAll() {
  std::vector<Attempt> left;
  {
    std::lock_guard lk(mu_);
    for (auto& [id, a] : running_) left.push_back(a);
    running_.clear();
  }
  for (auto& a : left) {
    if (a.handle && !a.executor->Durable()) (void)a.executor->Cancel(*a.handle);
    // A durable attempt (a container, an instance) keeps running; its lease
    // runs out and another node adopts it. An in-process one is given back.
    if (a.executor->Durable()) continue;
    const Time now = clock_.Now();
    auto st = store_.TaskRetry({.id = a.task.id,
                                .attempt = a.task.attempt,
                                .run_at = now,
                                .error = std::nullopt,
                                .free = true,
                                .node = options_.node_id,
                                .now = now,
                                .message = "lease given back at shutdown"});
    if (!st.ok() && st.status().code() != core::StatusCode::kAborted)
      NoteError(st.status(), "give back lease", now);
  }
}

void Engine::Stop() {
  {
    std::unique_lock lk(mu_);
    if (!started_ || stop_threads_) return;
    stopping_ = true;
    dispatch_cv_.notify_all();
    backlog_cv_.notify_all();
  }
  if (dispatcher_.joinable()) dispatcher_.join();
  for (std::thread& t : backlog_claimers_) t.join();
  store_.TaskSubscribeDue({});
  {
    // The nodes still claiming take this one's share of the claimers.
    std::lock_guard lk(mu_);
    announce_stop_ = true;
    maintenance_cv_.notify_all();
  }
  {
    std::unique_lock lk(mu_);
    clock_.WaitUntil(lk, idle_cv_, clock_.Now() + options_.shutdown_grace,
                     [&] { return running_.empty() && completions_.empty(); });
    // Launches in flight hold `this`; they end within the runner's own
    // timeouts, and their attempts are then adopted by the next node.
    idle_cv_.wait(lk, [&] { return launching_ == 0; });
  }
  GiveBackAll();
  {
    std::lock_guard lk(mu_);
    stop_threads_ = true;
    completion_cv_.notify_all();
    maintenance_cv_.notify_all();
  }
  if (maintenance_.joinable()) maintenance_.join();
  if (completer_.joinable()) completer_.join();
  if (announce_stop_) Heartbeat(clock_.Now(), /*stopping=*/true);  // it had no turn
  (void)store_.LeaderResign(options_.node_id);
}

std::vector<core::RunnerCounter> Engine::RunnerCounters() const {
  std::vector<core::RunnerCounter> out;
  for (const std::string& kind : runners_) {
    if (const core::Executor* e = executors_.Find(kind)) {
      for (core::RunnerCounter& c : e->Counters()) out.push_back(std::move(c));
    }
  }
  return out;
}

EngineStats Engine::Stats() const {
  std::lock_guard lk(mu_);
  EngineStats s = stats_;
  s.running = static_cast<int64_t>(running_.size());
  return s;
}

}  // namespace sked::sched
