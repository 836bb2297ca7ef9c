// File: sched/schedule_runner.h
//
// Turns schedules' due occurrences into tasks. Every node runs one: it sleeps
// until the earliest next_run_at (less the lookahead), then fires each due
// schedule with Store::ScheduleFire, a compare-and-set on next_run_at, so an
// occurrence is created once however many nodes race for it.
//
// On time: a schedule that allows overlap fires up to `lookahead` early. Its
// occurrence is an ordinary task with run_at = the cron time, and the engine
// starts it then, within milliseconds. Schedules that skip or cancel on
// overlap fire at their time, since whether an earlier run is still live is
// only known then.
//
// Missed occurrences (no node was up) follow the schedule's catch_up; an
// occurrence is missed when it is more than `misfire_grace` late.
//
// Thread safety: Start/Stop/Wake from any thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/logger.h"
#include "core/schedule.h"
#include "core/store.h"
#include "sched/schedule_calendar.h"

namespace sked::sched {

inline constexpr core::Duration kDefaultScheduleLookahead = std::chrono::seconds(5);
inline constexpr core::Duration kDefaultMisfireGrace = std::chrono::seconds(60);
inline constexpr core::Duration kDefaultSchedulePoll = std::chrono::milliseconds(250);
inline constexpr int kMaxOccurrencesPerFiring = 1000;

// Which occurrences one firing creates, and where the schedule goes next.
struct FirePlan {
  std::vector<core::Time> occurrences;  // oldest first
  std::optional<core::Time> next_run_at;
};

// The plan for `s` at `now`: every occurrence from s.next_run_at up to `now`
// (up to now + lookahead when it allows overlap), at most
// kMaxOccurrencesPerFiring; then catch_up keeps, of those at or before now:
// kAll every one, kLatest the last, kNone the last if it is at most
// misfire_grace late; later ones are always kept. With kSkip only the first
// kept one stays (the others would overlap it), with kCancelPrevious only the
// last. REQUIRES: s.next_run_at is set.
core::StatusOr<FirePlan> PlanFiring(const core::Schedule& s, core::Time now,
                                    core::Duration lookahead, core::Duration misfire_grace,
                                    ScheduleCalendar& calendar);

struct ScheduleRunnerOptions {
  core::Duration lookahead = kDefaultScheduleLookahead;
  core::Duration misfire_grace = kDefaultMisfireGrace;
  // Longest sleep with nothing due that this node knows of; bounds how late
  // a schedule created on another node is seen. Default: kDefaultSchedulePoll.
  core::Duration poll = kDefaultSchedulePoll;
  // After each firing: the tasks created and those cancelled (as they were),
  // e.g. to wake the engine and stop local attempts. May be empty.
  std::function<void(const core::ScheduleFireResult&)> on_fired;
  core::Logger* logger = nullptr;
};

class ScheduleRunner {
 public:
  ScheduleRunner(ScheduleRunnerOptions options, core::Store& store, ScheduleCalendar& calendar,
                 const core::Clock& clock);
  ~ScheduleRunner();
  ScheduleRunner(const ScheduleRunner&) = delete;
  ScheduleRunner& operator=(const ScheduleRunner&) = delete;

  void Start();
  void Stop();  // idempotent
  void Wake();  // a schedule was created or resumed here

  // Fires every schedule due at the clock's now; returns how many fired.
  // What the loop does each round; public for tests.
  int FireDue();

 private:
  void Loop();
  void Log(core::LogLevel level, const std::string& message);
  core::Task MakeOccurrence(const core::Schedule& s, core::Time at, core::Time now);

  const ScheduleRunnerOptions options_;
  core::Store& store_;
  ScheduleCalendar& calendar_;
  const core::Clock& clock_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool stopping_ = false;
  bool wake_ = false;
  std::mt19937_64 rng_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace sked::sched
