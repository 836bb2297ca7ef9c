#include "sched/schedule_calendar.h"

namespace sked::sched {

core::StatusOr<std::optional<core::Time>> ScheduleCalendar::Next(const core::Schedule& s,
                                                                 core::Time after) {
  const cron::CronSpec* spec = nullptr;
  const cron::TimeZone* zone = nullptr;
  {
    std::lock_guard lk(mu_);
    auto si = specs_.find(s.cron);
    if (si == specs_.end()) {
      ASSIGN_OR_RETURN(cron::CronSpec parsed, cron::CronSpec::Parse(s.cron));
      si = specs_.emplace(s.cron, std::move(parsed)).first;
    }
    auto zi = zones_.find(s.timezone);
    if (zi == zones_.end()) {
      ASSIGN_OR_RETURN(cron::TimeZone loaded, cron::TimeZone::Load(s.timezone));
      zi = zones_.emplace(s.timezone, std::move(loaded)).first;
    }
    // Map nodes are stable and never erased, so the pointers outlive the lock.
    spec = &si->second;
    zone = &zi->second;
  }
  return spec->Next(after, *zone);
}

}  // namespace sked::sched
