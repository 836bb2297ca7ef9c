// File: tests/testing/flaky_store.h
//
// A core::Store decorator for outage tests: it forwards every call to a real
// store until SetDown(true), then answers kUnavailable (as a backend does when
// its database cannot be reached) without touching the store, until
// SetDown(false). Not a mock: the data lives in the wrapped real store.
//
// Thread safety: as the wrapped store; SetDown may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/store.h"

namespace sked::testing {

class FlakyStore final : public core::Store {
 public:
  explicit FlakyStore(std::unique_ptr<core::Store> inner) : inner_(std::move(inner)) {}

  void SetDown(bool down) { down_.store(down); }
  core::Store& inner() { return *inner_; }
  // TaskClaim calls so far, up or down: how often a dispatcher looked.
  int ClaimCalls() const { return claim_calls_.load(); }
  // Each TaskClaim takes at least `d` (a slow database), so that claims made
  // at once overlap; MaxClaimsInFlight says how many did.
  void SetClaimDelay(std::chrono::milliseconds d) { claim_delay_ms_.store(d.count()); }
  int MaxClaimsInFlight() const { return max_in_flight_.load(); }
  // After the next `after` claims, the `n` that follow wait (up to 5 s) until
  // `n` are in flight at once, so that claims the engine makes together
  // overlap however slowly its threads get to run: MaxClaimsInFlight() < n
  // then says the engine never made n at once, not that the machine was busy.
  // (An engine's first claim of a backlog is its dispatcher's alone.)
  void SetClaimGate(int n, int after) {
    gate_size_.store(n);
    gate_skip_.store(after);
    gate_left_.store(n);
  }
  // While held, a call that fails waits for ReleaseFailures() before it
  // answers: its error reaches the caller late, as from a database that takes
  // long to time out. FailuresWaiting() says how many calls wait.
  void HoldFailures() { hold_failures_.store(true); }
  void ReleaseFailures() { hold_failures_.store(false); }
  int FailuresWaiting() const { return failures_waiting_.load(); }

  core::StatusOr<core::TaskInsertResult> TaskInsert(const core::Task& t) override {
    if (Down()) return Unavailable();
    return inner_->TaskInsert(t);
  }
  core::StatusOr<std::vector<core::TaskInsertResult>> TaskInsertMany(
      const std::vector<core::Task>& t) override {
    if (Down()) return Unavailable();
    return inner_->TaskInsertMany(t);
  }
  core::StatusOr<core::Task> TaskGet(const std::string& id) override {
    if (Down()) return Unavailable();
    return inner_->TaskGet(id);
  }
  core::StatusOr<core::TaskPage> TaskList(const core::TaskListParams& p) override {
    if (Down()) return Unavailable();
    return inner_->TaskList(p);
  }
  bool TaskGetAsync(const std::string& id,
                    std::function<void(core::StatusOr<core::Task>)> done) override {
    if (Down()) return false;  // the caller's TaskGet then answers kUnavailable
    return inner_->TaskGetAsync(id, std::move(done));
  }
  core::StatusOr<std::vector<core::Task>> TaskClaim(const core::TaskClaimParams& p) override {
    ++claim_calls_;
    if (Down()) return Unavailable();
    const int now_in_flight = ++in_flight_;
    for (int seen = max_in_flight_.load();
         now_in_flight > seen && !max_in_flight_.compare_exchange_weak(seen, now_in_flight);) {
    }
    if (gate_skip_.fetch_sub(1) <= 0 && gate_left_.fetch_sub(1) > 0) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (in_flight_.load() < gate_size_.load() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    if (int64_t ms = claim_delay_ms_.load(); ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    auto r = inner_->TaskClaim(p);
    --in_flight_;
    return r;
  }
  core::StatusOr<std::optional<core::Time>> TaskNextRunAt(
      const std::vector<std::string>& runners) override {
    if (Down()) return Unavailable();
    return inner_->TaskNextRunAt(runners);
  }
  core::StatusOr<std::vector<core::TaskLeaseRef>> TaskLeaseRenew(
      const core::TaskLeaseRenewParams& p) override {
    if (Down()) return Unavailable();
    return inner_->TaskLeaseRenew(p);
  }
  core::Status TaskSetHandle(const core::TaskSetHandleParams& p) override {
    return Down() ? Unavailable() : inner_->TaskSetHandle(p);
  }
  core::Status TaskMarkRunning(const core::TaskMarkRunningParams& p) override {
    return Down() ? Unavailable() : inner_->TaskMarkRunning(p);
  }
  core::Status TaskFinish(const core::TaskFinishParams& p) override {
    return Down() ? Unavailable() : inner_->TaskFinish(p);
  }
  core::StatusOr<core::Task> TaskRetry(const core::TaskRetryParams& p) override {
    if (Down()) return Unavailable();
    return inner_->TaskRetry(p);
  }
  core::StatusOr<core::Task> TaskCancel(const core::TaskCancelParams& p) override {
    if (Down()) return Unavailable();
    return inner_->TaskCancel(p);
  }
  core::StatusOr<core::Task> TaskDelete(const core::TaskCancelParams& p) override {
    if (Down()) return Unavailable();
    return inner_->TaskDelete(p);
  }
  core::StatusOr<core::Task> TaskAdopt(const core::TaskAdoptParams& p) override {
    if (Down()) return Unavailable();
    return inner_->TaskAdopt(p);
  }
  core::StatusOr<std::vector<core::Task>> TaskRescue(const core::TaskRescueParams& p) override {
    if (Down()) return Unavailable();
    return inner_->TaskRescue(p);
  }
  core::StatusOr<std::vector<core::TaskEvent>> TaskEventList(const std::string& id) override {
    if (Down()) return Unavailable();
    return inner_->TaskEventList(id);
  }
  core::StatusOr<std::map<core::TaskState, int64_t>> TaskCountByState() override {
    if (Down()) return Unavailable();
    return inner_->TaskCountByState();
  }
  core::Status NodeHeartbeat(const core::NodeInfo& n) override {
    return Down() ? Unavailable() : inner_->NodeHeartbeat(n);
  }
  core::StatusOr<int64_t> NodePrune(core::Time silent_since) override {
    if (Down()) return Unavailable();
    return inner_->NodePrune(silent_since);
  }
  core::StatusOr<std::vector<core::NodeInfo>> NodeList() override {
    if (Down()) return Unavailable();
    return inner_->NodeList();
  }
  core::StatusOr<bool> LeaderElect(const std::string& node, core::Time now,
                                   core::Duration ttl) override {
    if (Down()) return Unavailable();
    return inner_->LeaderElect(node, now, ttl);
  }
  core::Status LeaderResign(const std::string& node) override {
    return Down() ? Unavailable() : inner_->LeaderResign(node);
  }
  void TaskSubscribeDue(std::function<void(core::Time)> fn) override {
    inner_->TaskSubscribeDue(std::move(fn));
  }
  core::StatusOr<core::Schedule> ScheduleInsert(const core::Schedule& s) override {
    if (Down()) return Unavailable();
    return inner_->ScheduleInsert(s);
  }
  core::StatusOr<core::Schedule> ScheduleGet(const std::string& id) override {
    if (Down()) return Unavailable();
    return inner_->ScheduleGet(id);
  }
  core::StatusOr<core::SchedulePage> ScheduleList(const core::ScheduleListParams& p) override {
    if (Down()) return Unavailable();
    return inner_->ScheduleList(p);
  }
  core::Status ScheduleDelete(const std::string& id) override {
    return Down() ? Unavailable() : inner_->ScheduleDelete(id);
  }
  core::StatusOr<core::Schedule> ScheduleSetPaused(const std::string& id, bool paused,
                                                   std::optional<core::Time> next,
                                                   core::Time now) override {
    if (Down()) return Unavailable();
    return inner_->ScheduleSetPaused(id, paused, next, now);
  }
  core::StatusOr<std::vector<core::Schedule>> ScheduleListDue(core::Time before,
                                                              int limit) override {
    if (Down()) return Unavailable();
    return inner_->ScheduleListDue(before, limit);
  }
  core::StatusOr<std::optional<core::Time>> ScheduleNextRunAt() override {
    if (Down()) return Unavailable();
    return inner_->ScheduleNextRunAt();
  }
  core::StatusOr<core::ScheduleFireResult> ScheduleFire(
      const core::ScheduleFireParams& p) override {
    if (Down()) return Unavailable();
    return inner_->ScheduleFire(p);
  }
  core::StatusOr<std::vector<core::WebhookDelivery>> WebhookClaim(
      const core::WebhookClaimParams& p) override {
    if (Down()) return Unavailable();
    return inner_->WebhookClaim(p);
  }
  core::Status WebhookFinish(const core::WebhookFinishParams& p) override {
    return Down() ? Unavailable() : inner_->WebhookFinish(p);
  }
  core::StatusOr<core::QueueLimits> QueuePut(const core::QueueLimits& q) override {
    if (Down()) return Unavailable();
    return inner_->QueuePut(q);
  }
  core::StatusOr<std::vector<core::QueueInfo>> QueueList() override {
    if (Down()) return Unavailable();
    return inner_->QueueList();
  }
  core::StatusOr<std::string> SettingInit(const std::string& key,
                                          const std::string& value) override {
    if (Down()) return Unavailable();
    return inner_->SettingInit(key, value);
  }
  core::Status Ping() override { return Down() ? Unavailable() : inner_->Ping(); }

 private:
  bool Down() const { return down_.load(); }
  core::Status Unavailable() const {
    if (hold_failures_.load()) {
      ++failures_waiting_;
      while (hold_failures_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      --failures_waiting_;
    }
    return core::UnavailableError("flaky store: the database is down");
  }

  std::unique_ptr<core::Store> inner_;
  std::atomic<int> claim_calls_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
  std::atomic<int64_t> claim_delay_ms_{0};
  std::atomic<int> gate_size_{0};
  std::atomic<int> gate_skip_{0};
  std::atomic<int> gate_left_{0};
  std::atomic<bool> down_{false};
  std::atomic<bool> hold_failures_{false};
  mutable std::atomic<int> failures_waiting_{0};
};

}  // namespace sked::testing
