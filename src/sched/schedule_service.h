// File: sched/schedule_service.h
//
// Schedules, as the API sees them: create (assigning id and the first
// next_run_at), read, list, delete, pause and resume. Turning due occurrences
// into tasks is the ScheduleRunner's.
//
// Pausing clears next_run_at: what falls in a pause never runs (occurrences
// the runner made ahead of their time are cancelled). Resuming starts again
// from the next occurrence after now. Deleting a schedule keeps the tasks it
// made, but cancels those still ahead of their time.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <functional>
#include <mutex>
#include <random>
#include <string>

#include "core/clock.h"
#include "core/schedule.h"
#include "core/status.h"
#include "core/store.h"
#include "sched/schedule_calendar.h"

namespace sked::sched {

class ScheduleService {
 public:
  // `on_change` (may be empty) is called after a create or resume, so the
  // runner looks again at once. Everything must outlive the service.
  ScheduleService(core::Store& store, ScheduleCalendar& calendar, const core::Clock& clock,
                  std::function<void()> on_change = {});

  // Assigns id, created_at, updated_at and next_run_at (none while paused).
  core::StatusOr<core::Schedule> Create(core::Schedule schedule);
  core::StatusOr<core::Schedule> Get(const std::string& id);
  core::StatusOr<core::SchedulePage> List(const core::ScheduleListParams& params);
  core::Status Delete(const std::string& id);
  // Idempotent: pausing a paused schedule or resuming a running one changes
  // nothing.
  core::StatusOr<core::Schedule> Pause(const std::string& id);
  core::StatusOr<core::Schedule> Resume(const std::string& id);

 private:
  // Cancels the schedule's occurrences not yet due (run_at >= now).
  core::Status CancelAhead(const std::string& id, const std::string& why);

  core::Store& store_;
  ScheduleCalendar& calendar_;
  const core::Clock& clock_;
  std::function<void()> on_change_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

}  // namespace sked::sched
