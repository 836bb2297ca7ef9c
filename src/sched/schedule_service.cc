#include "sched/schedule_service.h"

#include <utility>

#include "core/ids.h"

namespace sked::sched {

ScheduleService::ScheduleService(core::Store& store, ScheduleCalendar& calendar,
                                 const core::Clock& clock, std::function<void()> on_change)
    : store_(store),
      calendar_(calendar),
      clock_(clock),
      on_change_(std::move(on_change)),
      rng_(std::random_device{}()) {}

core::StatusOr<core::Schedule> ScheduleService::Create(core::Schedule s) {
  const core::Time now = clock_.Now();
  {
    std::lock_guard lk(rng_mu_);
    const uint64_t hi = rng_(), lo = rng_();
    s.id = core::NewUuidV7(now, hi, lo);
  }
  s.created_at = now;
  s.updated_at = now;
  s.next_run_at.reset();
  if (!s.paused) {
    ASSIGN_OR_RETURN(s.next_run_at, calendar_.Next(s, now));
  }
  ASSIGN_OR_RETURN(core::Schedule stored, store_.ScheduleInsert(s));
  if (on_change_) on_change_();
  return stored;
}

core::StatusOr<core::Schedule> ScheduleService::Get(const std::string& id) {
  return store_.ScheduleGet(id);
}

core::StatusOr<core::SchedulePage> ScheduleService::List(const core::ScheduleListParams& params) {
  return store_.ScheduleList(params);
}

core::Status ScheduleService::Delete(const std::string& id) {
  RETURN_IF_ERROR(store_.ScheduleDelete(id));
  return CancelAhead(id, "cancelled: its schedule was deleted");
}

core::Status ScheduleService::CancelAhead(const std::string& id, const std::string& why) {
  const core::Time now = clock_.Now();
  core::TaskListParams params;
  params.schedule_id = id;
  params.states = {core::TaskState::kScheduled};
  params.since = now;  // run_at >= now: made early by the runner's lookahead
  params.limit = 1000;
  ASSIGN_OR_RETURN(core::TaskPage page, store_.TaskList(params));
  for (const core::Task& t : page.tasks) {
    auto st = store_.TaskCancel({.id = t.id, .now = now, .message = why});
    // Started or removed meanwhile: then it is no longer ahead of time.
    if (!st.ok() && st.status().code() != core::StatusCode::kFailedPrecondition &&
        st.status().code() != core::StatusCode::kNotFound) {
      return st.status();
    }
  }
  return core::OkStatus();
}

core::StatusOr<core::Schedule> ScheduleService::Pause(const std::string& id) {
  ASSIGN_OR_RETURN(core::Schedule s, store_.ScheduleGet(id));
  if (s.paused) return s;
  ASSIGN_OR_RETURN(core::Schedule paused,
                   store_.ScheduleSetPaused(id, true, std::nullopt, clock_.Now()));
  RETURN_IF_ERROR(CancelAhead(id, "cancelled: its schedule was paused"));
  return paused;
}

core::StatusOr<core::Schedule> ScheduleService::Resume(const std::string& id) {
  ASSIGN_OR_RETURN(core::Schedule s, store_.ScheduleGet(id));
  if (!s.paused) return s;
  const core::Time now = clock_.Now();
  ASSIGN_OR_RETURN(std::optional<core::Time> next, calendar_.Next(s, now));
  ASSIGN_OR_RETURN(core::Schedule resumed, store_.ScheduleSetPaused(id, false, next, now));
  if (on_change_) on_change_();
  return resumed;
}

}  // namespace sked::sched
