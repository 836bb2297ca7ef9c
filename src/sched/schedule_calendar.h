// File: sched/schedule_calendar.h
//
// When a schedule fires: its cron expression read in its time zone
// (cron::CronSpec, cron::TimeZone). Parsed specs and loaded zones are cached,
// since every firing asks again.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "core/schedule.h"
#include "core/status.h"
#include "core/time.h"
#include "cron/cron.h"
#include "cron/time_zone.h"

namespace sked::sched {

class ScheduleCalendar {
 public:
  // The first occurrence strictly after `after`; nullopt when the cron never
  // fires again. kInvalidArgument for a cron or zone that does not load (the
  // API validated both, so only a zone file removed since can cause it).
  core::StatusOr<std::optional<core::Time>> Next(const core::Schedule& s, core::Time after);

 private:
  std::mutex mu_;
  std::map<std::string, cron::CronSpec> specs_;  // guarded by mu_
  std::map<std::string, cron::TimeZone> zones_;  // guarded by mu_
};

}  // namespace sked::sched
