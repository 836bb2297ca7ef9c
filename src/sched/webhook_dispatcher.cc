#include "sched/webhook_dispatcher.h"

#include <algorithm>
#include <utility>

#include "sched/retry_policy.h"

namespace sked::sched {

WebhookDispatcher::WebhookDispatcher(WebhookDispatcherOptions options, core::Store& store,
                                     core::Notifier& notifier, const core::Clock& clock)
    : options_(std::move(options)),
      store_(store),
      notifier_(notifier),
      clock_(clock),
      rng_(std::random_device{}()) {}

WebhookDispatcher::~WebhookDispatcher() { Stop(); }

void WebhookDispatcher::Start() {
  std::lock_guard lk(mu_);
  if (started_) return;
  started_ = true;
  claimer_ = std::thread([this] { ClaimLoop(); });
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { WorkLoop(); });
  }
}

void WebhookDispatcher::Stop() {
  {
    std::lock_guard lk(mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
  }
  claim_cv_.notify_all();
  work_cv_.notify_all();
  claimer_.join();
  for (auto& w : workers_) w.join();
}

void WebhookDispatcher::Wake() {
  std::lock_guard lk(mu_);
  wake_ = true;
  claim_cv_.notify_one();
}

int64_t WebhookDispatcher::delivered() const {
  std::lock_guard lk(mu_);
  return delivered_;
}

int64_t WebhookDispatcher::given_up() const {
  std::lock_guard lk(mu_);
  return given_up_;
}

void WebhookDispatcher::Log(core::LogLevel level, const std::string& message) {
  if (options_.logger) options_.logger->Log(level, message);
}

void WebhookDispatcher::ClaimLoop() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    wake_ = false;
    const int free = std::max(1, options_.workers) - busy_;
    const core::Time now = clock_.Now();
    if (free > 0) {
      lk.unlock();
      auto due = store_.WebhookClaim(
          {.node = options_.node_id, .now = now, .lease = options_.lease, .limit = free});
      if (!due.ok()) Log(core::LogLevel::kWarn, "claim webhooks: " + due.status().ToString());
      lk.lock();
      if (due.ok() && !due->empty()) {
        for (auto& d : *due) queue_.push_back(std::move(d));
        busy_ += static_cast<int>(due->size());
        work_cv_.notify_all();
        if (static_cast<int>(due->size()) == free) continue;  // more may be due
      }
    }
    if (wake_) continue;
    clock_.WaitUntil(lk, claim_cv_, now + options_.poll, [&] { return stopping_ || wake_; });
  }
}

void WebhookDispatcher::WorkLoop() {
  std::unique_lock lk(mu_);
  while (true) {
    work_cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing claimed is left
    core::WebhookDelivery d = std::move(queue_.front());
    queue_.pop_front();
    lk.unlock();
    Deliver(d);
    lk.lock();
    --busy_;
    wake_ = true;
    claim_cv_.notify_one();
  }
}

void WebhookDispatcher::Deliver(const core::WebhookDelivery& d) {
  const std::string tag = "webhook " + std::to_string(d.id) + " (task " + d.task_id +
                          ", attempt " + std::to_string(d.attempt) + ")";
  core::Status sent;
  auto task = store_.TaskGet(d.task_id);
  if (task.ok()) {
    sent = notifier_.Notify(d.url, *task);
  } else if (task.status().code() == core::StatusCode::kNotFound) {
    sent = core::NotFoundError("the task was deleted");
  } else {
    sent = task.status();  // the store is down: try again later
  }
  core::WebhookFinishParams p{.id = d.id,
                              .attempt = d.attempt,
                              .delivered = sent.ok(),
                              .retry_at = std::nullopt,
                              .error = sent.ok() ? "" : sent.message(),
                              .node = options_.node_id,
                              .now = clock_.Now()};
  const bool retry = !sent.ok() && sent.code() != core::StatusCode::kNotFound &&
                     d.attempt < options_.max_attempts;
  if (retry) {
    double unit;
    {
      std::lock_guard lk(mu_);
      unit = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    }
    p.retry_at = p.now + RetryBackoff(d.attempt, options_.backoff_base, options_.backoff_max,
                                      options_.time_scale, unit);
  }
  core::Status st = store_.WebhookFinish(p);
  if (!st.ok()) {
    // Unrecorded: the lease runs out and the delivery is tried again.
    Log(core::LogLevel::kWarn, tag + ": outcome not recorded: " + st.ToString());
    return;
  }
  std::lock_guard lk(mu_);
  if (sent.ok()) {
    ++delivered_;
  } else if (!retry) {
    ++given_up_;
  }
  if (!sent.ok()) {
    Log(core::LogLevel::kWarn,
        tag + " failed: " + sent.message() + (retry ? "; will retry" : "; giving up"));
  }
}

}  // namespace sked::sched
