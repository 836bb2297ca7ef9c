// File: sched/webhook_dispatcher.h
//
// Delivers the webhooks the store queued (a task with a notify_url reached a
// final state): claims due deliveries under a lease, hands each to the
// Notifier on a small pool of workers, and records the outcome, fenced by
// attempt. A failed delivery is tried again with exponential backoff (scaled
// by time_scale) until max_attempts, then given up; every try is a line in
// the task's history. Every node runs one; the lease keeps two nodes from
// delivering the same attempt, and a node that dies mid-delivery leaves it to
// another once the lease runs out (so a receiver may, rarely, see a delivery
// twice: webhooks are at-least-once, like Stripe's and GitHub's).
//
// Thread safety: Start/Stop/Wake from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/logger.h"
#include "core/notifier.h"
#include "core/store.h"

namespace sked::sched {

inline constexpr int kDefaultWebhookWorkers = 4;
inline constexpr int kDefaultWebhookMaxAttempts = 12;
inline constexpr core::Duration kDefaultWebhookPoll = std::chrono::milliseconds(200);
inline constexpr core::Duration kDefaultWebhookLease = std::chrono::seconds(60);
inline constexpr core::Duration kDefaultWebhookBackoffBase = std::chrono::seconds(1);
inline constexpr core::Duration kDefaultWebhookBackoffMax = std::chrono::hours(1);

struct WebhookDispatcherOptions {
  std::string node_id;
  // Deliveries in flight at once on this node. Default: kDefaultWebhookWorkers.
  int workers = kDefaultWebhookWorkers;
  // Tries per delivery before it is given up. Default: kDefaultWebhookMaxAttempts
  // (about 1 h 8 min of retries with the default backoff).
  int max_attempts = kDefaultWebhookMaxAttempts;
  // Longest sleep between looks for due deliveries. Default: kDefaultWebhookPoll.
  core::Duration poll = kDefaultWebhookPoll;
  // How long a claimed delivery is this node's; longer than the Notifier's
  // timeout. Default: kDefaultWebhookLease.
  core::Duration lease = kDefaultWebhookLease;
  // Retry n waits base * 2^(n-1), capped at max, times time_scale.
  core::Duration backoff_base = kDefaultWebhookBackoffBase;
  core::Duration backoff_max = kDefaultWebhookBackoffMax;
  double time_scale = 1.0;
  core::Logger* logger = nullptr;
};

class WebhookDispatcher {
 public:
  // `store`, `notifier` and `clock` must outlive the dispatcher.
  WebhookDispatcher(WebhookDispatcherOptions options, core::Store& store, core::Notifier& notifier,
                    const core::Clock& clock);
  ~WebhookDispatcher();
  WebhookDispatcher(const WebhookDispatcher&) = delete;
  WebhookDispatcher& operator=(const WebhookDispatcher&) = delete;

  void Start();
  // Finishes the deliveries in flight (their Notifier calls time out by
  // themselves), claims no more. Idempotent.
  void Stop();
  // Deliveries may be due (a task just finished): look now.
  void Wake();

  // Deliveries this node recorded as delivered / failed for good.
  int64_t delivered() const;
  int64_t given_up() const;

 private:
  void ClaimLoop();
  void WorkLoop();
  void Deliver(const core::WebhookDelivery& d);
  void Log(core::LogLevel level, const std::string& message);

  const WebhookDispatcherOptions options_;
  core::Store& store_;
  core::Notifier& notifier_;
  const core::Clock& clock_;

  mutable std::mutex mu_;
  std::condition_variable claim_cv_;
  std::condition_variable work_cv_;
  bool started_ = false;
  bool stopping_ = false;
  bool wake_ = false;
  int busy_ = 0;  // deliveries queued or in flight
  std::deque<core::WebhookDelivery> queue_;
  int64_t delivered_ = 0;
  int64_t given_up_ = 0;
  std::mt19937_64 rng_;
  std::thread claimer_;
  std::vector<std::thread> workers_;
};

}  // namespace sked::sched
