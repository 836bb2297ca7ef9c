// File: sched/engine.h
//
// The node's scheduling engine: claims due tasks from the Store, runs them on the
// registered executors, renews their leases, records each outcome once (fenced by
// attempt), retries failures with backoff, enforces timeouts, and — while it holds
// the leader lease — rescues tasks whose node died. After the store has been
// unreachable, the leader waits one lease before rescuing, so that leases which
// ran out during a database outage are renewed by their living nodes instead of
// being taken back (which would run those tasks twice).
//
// On time: the dispatcher sleeps until the earliest run_at the store knows (or an
// idle poll interval, for tasks other nodes create) and is woken at once by
// Wake() when a task is created here, so a task starts within milliseconds of its
// run_at rather than on a polling tick.
//
// On throughput: an attempt its executor can run at once (a built-in no-op) is
// run inside its claim, which then records the outcome instead of "running"
// (core::TaskClaimParams::run_instantly); and while claims come back full,
// backlog claimers claim beside the dispatcher, as many as the node's share
// of EngineOptions::claimers among the nodes that claim.
//
// Thread safety: all public methods are safe to call from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/executor.h"
#include "core/logger.h"
#include "core/store.h"
#include "sched/executor_registry.h"
#include "sched/retry_policy.h"

namespace sked::sched {

inline constexpr int kDefaultConcurrency = 64;
inline constexpr core::Duration kDefaultLease = std::chrono::seconds(30);
inline constexpr core::Duration kDefaultIdlePoll = std::chrono::milliseconds(500);
inline constexpr core::Duration kDefaultRescueInterval = std::chrono::seconds(2);
inline constexpr core::Duration kDefaultShutdownGrace = std::chrono::seconds(30);
inline constexpr core::Duration kDefaultNodeRetention = std::chrono::hours(24);
// How often the leader removes the rows of long-silent nodes, at most (and at
// most a quarter of EngineOptions::node_retention).
inline constexpr core::Duration kNodePruneEvery = std::chrono::minutes(1);
// A claim's batch is also bounded by the free slots (kDefaultConcurrency), so
// this matters where a node runs many attempts at once: draining 100 000
// no-ops, 512 a claim gave 10-14 % more than 256 and 1 000 no more than 512
// (bench/README.md, ninth pass).
inline constexpr int kDefaultClaimBatch = 512;
inline constexpr int kDefaultClaimers = 2;
inline constexpr core::Duration kDefaultThrottlePoll = std::chrono::milliseconds(50);
// How often a backlog claimer counts again the nodes that share the claimers.
inline constexpr core::Duration kClaimersRecount = std::chrono::milliseconds(250);

struct EngineOptions {
  std::string node_id;
  std::string version;
  // Attempts running at once on this node. Default: kDefaultConcurrency.
  int concurrency = kDefaultConcurrency;
  // How long a claim holds without renewal; renewed every lease/3.
  // Default: kDefaultLease. A dead node's tasks run again after this long.
  core::Duration lease = kDefaultLease;
  // Longest sleep of the dispatcher with nothing due that it knows of; bounds
  // how late a task created on another node is seen. Default: kDefaultIdlePoll.
  core::Duration idle_poll = kDefaultIdlePoll;
  // How soon the dispatcher looks again when due tasks were left unclaimed
  // because their queue is at max_running or out of its rate.
  // Default: kDefaultThrottlePoll.
  core::Duration throttle_poll = kDefaultThrottlePoll;
  // An attempt that lives outside its node (it has a handle: a container)
  // is rescued only this long after its lease expired, so the node, restarted,
  // or another that can reach it adopts it instead of running it again.
  // Default (zero): 3 leases.
  core::Duration adopt_grace{};
  // How often the leader looks for expired leases. Default: kDefaultRescueInterval.
  core::Duration rescue_interval = kDefaultRescueInterval;
  // On Stop(), how long running attempts may finish before their leases are
  // given back. Default: kDefaultShutdownGrace.
  core::Duration shutdown_grace = kDefaultShutdownGrace;
  // The leader removes the rows of nodes whose last heartbeat is older than
  // this (Store::NodePrune): a node's id is new at each start, so /v1/nodes
  // would otherwise list every node that ever ran. Zero keeps them all.
  // Default: kDefaultNodeRetention.
  core::Duration node_retention = kDefaultNodeRetention;
  // Retry backoff (see retry_policy.h), multiplied by time_scale.
  core::Duration backoff_base = kDefaultBackoffBase;
  core::Duration backoff_max = kDefaultBackoffMax;
  double time_scale = 1.0;
  // Tasks claimed per store call. Default: kDefaultClaimBatch.
  int claim_batch = kDefaultClaimBatch;
  // Claims in flight at once while a backlog lasts, across the nodes that
  // claim from the store: the database's work, which claims added beyond it
  // slow down (they walk past each other's locked rows). Each node's
  // dispatcher claims, and up to claimers - 1 backlog threads join it while
  // its claims come back full: as many as leave each node its share,
  // claimers / (nodes that claim), at least the dispatcher. A node counts
  // while its heartbeat (NodeInfo::concurrency > 0) is at most one lease old;
  // the count is taken again every kClaimersRecount while a backlog lasts.
  // Default: kDefaultClaimers; 1: the dispatcher alone.
  int claimers = kDefaultClaimers;
  // Extra environment for each attempt (callback URL and token); may be empty.
  std::function<std::map<std::string, std::string>(const core::Task&)> job_env;
  // Called (on a claimer's or the completion thread) after the outcome of a
  // task with a notify_url was recorded, whose webhook the store then queued:
  // wakes the webhook dispatcher. Not for other tasks: a wake per claim (a
  // query for due webhooks, another thread and backend woken) cost two nodes
  // about 8 % of their no-op drain (bench/README.md, tenth pass). May be empty.
  std::function<void()> on_webhook_queued;
  // Where the engine reports what it does. Default: discard.
  core::Logger* logger = nullptr;
};

// Counters for /metrics; monotonic except `running`.
struct EngineStats {
  int64_t claimed = 0;
  int64_t succeeded = 0;
  int64_t failed = 0;
  int64_t retried = 0;
  int64_t rescued = 0;
  int64_t adopted = 0;
  int64_t timed_out = 0;
  int64_t leases_lost = 0;
  int64_t running = 0;
  bool leader = false;
  std::string last_error;  // the most recent background error, "" if none
};

class Engine {
 public:
  // `store`, `executors` and `clock` must outlive the engine.
  Engine(EngineOptions options, core::Store& store, const ExecutorRegistry& executors,
         const core::Clock& clock);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Starts the background threads. kFailedPrecondition if already started.
  core::Status Start();

  // Graceful stop: no new claims; running attempts get options.shutdown_grace to
  // finish, then they are stopped and their leases given back (the task is
  // scheduled again without using up an attempt). Idempotent.
  void Stop();

  // A task became due (or may have): re-check the store now.
  void Wake();

  // A task due at `run_at` was created (here or, through the store's
  // notification, on another node). Wakes the dispatcher unless it sleeps
  // until `run_at` or earlier: then it looks at the store by then anyway,
  // and either claims the task or learns its run_at. So creating tasks for
  // later costs the store no claim.
  void WakeFor(core::Time run_at);

  // Stops this node's attempt of task `id`, if it runs one, and forgets it: its
  // outcome will not be recorded. Used after cancel, delete or a final callback.
  void AbortLocal(const std::string& id);

  EngineStats Stats() const;

  // The counters of this node's runners (core::Executor::Counters).
  std::vector<core::RunnerCounter> RunnerCounters() const;

 private:
  struct Attempt {
    core::Task task;
    core::Executor* executor = nullptr;
    std::optional<std::string> handle;
    core::Time deadline{};
    bool finishing = false;  // an outcome is queued; later ones are ignored
    bool timed_out = false;  // EnforceTimeouts ended it; a handle that comes later is stopped
  };
  struct Completion {
    std::string id;
    int attempt = 0;
    core::ExecResult result;
    int store_tries = 0;
  };

  void DispatchLoop();
  // Backlog claimer `index` (1 .. claimers - 1; EngineOptions::claimers):
  // claims while backlog_ holds and the node's share of claimers exceeds
  // `index`.
  void BacklogLoop(int index);
  // The node's share of options_.claimers (at least 1): counts the nodes
  // that claim (NodeList) when the last count is kClaimersRecount old. Call
  // without mu_.
  int SharedClaimers();
  // This node's row in the store: its concurrency, or 0 once it claims no more.
  void Heartbeat(core::Time now, bool stopping);
  // The leader's removal of long-silent nodes (EngineOptions::node_retention).
  void PruneNodes(core::Time now);
  // Slots neither running nor reserved by a claim in flight. REQUIRES: mu_.
  int FreeSlots() const;
  // One store claim of up to `limit` tasks: records those run at once and
  // launches the others. Returns how many it claimed. With `next_run_at`,
  // the store may answer TaskNextRunAt there too (TaskClaimParams). Called
  // without mu_, with `limit` slots reserved.
  core::StatusOr<int> ClaimAndLaunch(core::Time now, int limit,
                                     std::optional<std::optional<core::Time>>* next_run_at = nullptr);
  void MaintenanceLoop();
  void CompletionLoop();

  // The claim's run_instantly (core::TaskClaimParams): runs the attempt if
  // its executor can at once, and returns the outcome for the claim to
  // record. An outcome that is not final (a retry) goes into `ran` instead,
  // for LaunchAttempt. Called on the dispatcher's thread without mu_ held.
  std::optional<core::TaskFinishParams> RunInstantly(const core::Task& task,
                                                     std::map<std::string, core::ExecResult>& ran);
  // Launches one claimed attempt: at once, or on a thread of its own for a
  // runner that provisions; or, with `ran` (its RunInstantly result), records
  // that result as the attempt's end. Called without mu_ held.
  void LaunchAttempt(core::Task task, std::optional<core::ExecResult> ran = std::nullopt);
  // Calls the executor's Launch and saves the handle.
  void StartAttempt(core::Executor* executor, core::LaunchParams params);
  void OnDone(const std::string& id, int attempt, core::ExecResult result);
  // Writes one outcome to the store; returns false to try again later.
  bool RecordCompletion(const Completion& c);
  // The TaskFinish of a final outcome (success, permanent failure); nullopt
  // for one that is retried.
  std::optional<core::TaskFinishParams> FinalOutcome(const Completion& c, core::Time now) const;
  // Whether an outcome the store answered `st` to is settled: recorded, or
  // decided by someone else. false (unavailable): keep it and try again.
  // called_at: when the store was asked (see NoteError).
  bool Settled(const core::Status& st, const std::string& tag, core::Time called_at);
  // Writes the final outcomes of `batch` in one store call; true where one
  // is settled (recorded, or decided by someone else).
  std::vector<bool> RecordFinishes(std::deque<Completion>& batch);
  void RenewLeases();
  void EnforceTimeouts();
  void Rescue();
  // Adopts the external attempts (containers) of dead nodes and of this node
  // before a restart; removes those whose task is gone, finished or moved on.
  void AdoptOrphans();
  void AdoptAttempt(core::Executor* executor, core::Task task, const std::string& handle);
  void GiveBackAll();
  void Log(core::LogLevel level, const std::string& message);
  // called_at: when the failing call was made (the store's `now`), not when
  // its error came back: an outage lasts until the last failing call was
  // made, and an error that comes back late (a call slow to time out, a fake
  // clock that jumped meanwhile) must not move its end.
  void NoteError(const core::Status& s, const char* where, core::Time called_at);
  double UnitRandom();

  const EngineOptions options_;
  core::Store& store_;
  const ExecutorRegistry& executors_;
  const core::Clock& clock_;
  const std::vector<std::string> runners_;
  const std::vector<std::string> provisioning_runners_;

  mutable std::mutex mu_;
  std::condition_variable dispatch_cv_;
  std::condition_variable maintenance_cv_;
  std::condition_variable completion_cv_;
  std::condition_variable idle_cv_;
  bool started_ = false;
  bool stopping_ = false;      // no more claims
  bool stop_threads_ = false;  // maintenance and completion threads exit
  bool wake_ = false;
  // The dispatcher's last claim came back full: more are due now.
  bool backlog_ = false;
  int reserved_ = 0;  // slots that claims in flight may fill
  std::condition_variable backlog_cv_;
  // While the dispatcher sleeps: when it will next look at the store.
  std::optional<core::Time> asleep_until_;
  std::map<std::string, Attempt> running_;  // by task id
  int launching_ = 0;  // StartAttempt threads alive (provisioning runners)
  std::deque<Completion> completions_;
  EngineStats stats_;
  // When a store call last failed as unavailable; the leader rescues nothing
  // until one lease has passed since (see MaintenanceLoop).
  core::Time last_unavailable_{};
  std::mt19937_64 rng_;
  core::Time started_at_{};  // for the node's heartbeat
  // Stop() asks the maintenance thread to write the heartbeat that says the
  // node claims no more (the thread writes every heartbeat, so none of its
  // own can come after and undo it).
  bool announce_stop_ = false;

  std::mutex claimers_mu_;  // never taken with mu_ held
  int shared_claimers_ = 1;                       // guarded by claimers_mu_
  std::optional<core::Time> claimers_counted_at_;  // guarded by claimers_mu_

  std::thread dispatcher_;
  std::vector<std::thread> backlog_claimers_;
  std::thread maintenance_;
  std::thread completer_;
};

}  // namespace sked::sched
