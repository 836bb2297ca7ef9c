#include "sched/schedule_runner.h"

#include <algorithm>
#include <utility>

#include "core/ids.h"

namespace sked::sched {

core::StatusOr<FirePlan> PlanFiring(const core::Schedule& s, core::Time now,
                                    core::Duration lookahead, core::Duration misfire_grace,
                                    ScheduleCalendar& calendar) {
  FirePlan plan;
  const core::Time horizon = s.overlap == core::OverlapPolicy::kAllow ? now + lookahead : now;
  std::optional<core::Time> t = s.next_run_at;
  std::vector<core::Time> past, later;
  int n = 0;
  while (t && *t <= horizon && n < kMaxOccurrencesPerFiring) {
    (*t <= now ? past : later).push_back(*t);
    ++n;
    ASSIGN_OR_RETURN(t, calendar.Next(s, *t));
  }
  plan.next_run_at = t;
  std::vector<core::Time> kept;
  switch (s.catch_up) {
    case core::CatchUpPolicy::kAll:
      kept = past;
      break;
    case core::CatchUpPolicy::kLatest:
      if (!past.empty()) kept.push_back(past.back());
      break;
    case core::CatchUpPolicy::kNone:
      if (!past.empty() && now - past.back() <= misfire_grace) kept.push_back(past.back());
      break;
  }
  kept.insert(kept.end(), later.begin(), later.end());
  if (kept.size() > 1 && s.overlap == core::OverlapPolicy::kSkip) kept.resize(1);
  if (kept.size() > 1 && s.overlap == core::OverlapPolicy::kCancelPrevious) {
    kept.erase(kept.begin(), kept.end() - 1);
  }
  plan.occurrences = std::move(kept);
  return plan;
}

ScheduleRunner::ScheduleRunner(ScheduleRunnerOptions options, core::Store& store,
                               ScheduleCalendar& calendar, const core::Clock& clock)
    : options_(std::move(options)),
      store_(store),
      calendar_(calendar),
      clock_(clock),
      rng_(std::random_device{}()) {}

ScheduleRunner::~ScheduleRunner() { Stop(); }

void ScheduleRunner::Start() {
  std::lock_guard lk(mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void ScheduleRunner::Stop() {
  {
    std::lock_guard lk(mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ScheduleRunner::Wake() {
  std::lock_guard lk(mu_);
  wake_ = true;
  cv_.notify_one();
}

void ScheduleRunner::Log(core::LogLevel level, const std::string& message) {
  if (options_.logger) options_.logger->Log(level, message);
}

core::Task ScheduleRunner::MakeOccurrence(const core::Schedule& s, core::Time at,
                                          core::Time now) {
  core::Task t = s.task;
  {
    std::lock_guard lk(mu_);
    const uint64_t hi = rng_(), lo = rng_();
    t.id = core::NewUuidV7(now, hi, lo);
  }
  t.run_at = at;
  t.created_at = now;
  t.state = core::TaskState::kScheduled;
  t.idempotency_key.reset();
  t.schedule_id = s.id;
  t.occurrence = at;
  if (!t.notify_url) t.notify_url = s.notify_url;
  return t;
}

int ScheduleRunner::FireDue() {
  const core::Time now = clock_.Now();
  auto due = store_.ScheduleListDue(now + options_.lookahead, 100);
  if (!due.ok()) {
    Log(core::LogLevel::kWarn, "list due schedules: " + due.status().ToString());
    return 0;
  }
  int fired = 0;
  for (const core::Schedule& s : *due) {
    if (!s.next_run_at) continue;
    auto plan = PlanFiring(s, now, options_.lookahead, options_.misfire_grace, calendar_);
    if (!plan.ok()) {
      Log(core::LogLevel::kError, "schedule " + s.id + ": " + plan.status().ToString());
      continue;
    }
    if (plan->occurrences.empty() && plan->next_run_at == s.next_run_at) continue;  // not yet
    core::ScheduleFireParams p{.id = s.id,
                               .expected_next_run_at = s.next_run_at,
                               .next_run_at = plan->next_run_at,
                               .occurrences = {},
                               .overlap = s.overlap,
                               .now = now};
    for (core::Time at : plan->occurrences) p.occurrences.push_back(MakeOccurrence(s, at, now));
    auto result = store_.ScheduleFire(p);
    if (!result.ok()) {
      // Another node fired it first, or it was paused or deleted meanwhile.
      const auto code = result.status().code();
      if (code != core::StatusCode::kAborted && code != core::StatusCode::kNotFound &&
          code != core::StatusCode::kAlreadyExists) {
        Log(core::LogLevel::kWarn, "fire schedule " + s.id + ": " + result.status().ToString());
      }
      continue;
    }
    ++fired;
    if (result->skipped > 0) {
      Log(core::LogLevel::kInfo, "schedule " + s.id + ": skipped " +
                                     std::to_string(result->skipped) +
                                     " occurrence(s): an earlier one is still running");
    }
    if (options_.on_fired) options_.on_fired(*result);
  }
  return fired;
}

void ScheduleRunner::Loop() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    wake_ = false;
    lk.unlock();
    FireDue();
    const core::Time now = clock_.Now();
    core::Time deadline = now + options_.poll;
    auto next = store_.ScheduleNextRunAt();
    if (next.ok() && next->has_value()) {
      // Allow-overlap schedules fire `lookahead` early, so wake then; one
      // still waiting inside the lookahead skips or cancels on overlap and
      // fires at its time. One already due did not fire (a race or an error):
      // the poll retries it.
      const core::Time t = **next;
      if (t > now + options_.lookahead) {
        deadline = std::min(deadline, t - options_.lookahead);
      } else if (t > now) {
        deadline = std::min(deadline, t);
      }
    }
    lk.lock();
    if (wake_) continue;
    clock_.WaitUntil(lk, cv_, std::max(deadline, now + std::chrono::milliseconds(1)),
                     [&] { return stopping_ || wake_; });
  }
}

}  // namespace sked::sched
