// File: cron/cron.h
//
// CronSpec: a parsed cron expression and the search for its next firing time
// in a given time zone. sked uses it to turn a recurring schedule into the
// run-at of the next task.
//
// Syntax. Five fields "minute hour day-of-month month day-of-week", or six with
// a leading seconds field. Each field is a comma list of `*`, `n`, `a-b`,
// `*/s`, `a-b/s` or `a/s` (a through the field's maximum, every s). Months
// take JAN-DEC and weekdays SUN-SAT, case-insensitively; day-of-week takes 0-7
// with both 0 and 7 meaning Sunday. Aliases: @yearly (@annually), @monthly,
// @weekly, @daily (@midnight), @hourly.
//
// Day matching follows Vixie cron: when both day-of-month and day-of-week are
// restricted, a day matches if EITHER does ("0 0 1 * MON" runs on the 1st and
// on every Monday); otherwise both must. As in Vixie cron and cronie, a field
// counts as unrestricted when it starts with `*`, so "*/2" in day-of-month
// leaves the AND rule in force.
//
// Daylight saving time. Fields match the zone's wall-clock time.
//  - A wall-clock time skipped by a spring-forward gap fires once, shifted
//    forward by the length of the gap: "30 2 * * *" in Europe/Berlin runs at
//    03:30 CEST on 2026-03-29. This is what glibc's mktime (hence systemd) and
//    Quartz do; the run is neither lost nor moved to a different day.
//  - A wall-clock time repeated after a fall-back fires once, at its first
//    (daylight time) occurrence, when the hour field names fixed hours.
//    Interval-like specs, whose hour field is `*`, a step such as `*/2`, or
//    covers all 24 hours, fire in both occurrences, so "*/15 * * * *" keeps its
//    15-minute rhythm through the repeated hour.
//
// Thread safety: a CronSpec is immutable after Parse(); one object may be used
// from any number of threads without synchronization.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/time.h"
#include "cron/time_zone.h"

namespace sked::cron {

class CronSpec {
 public:
  // Parses `expr`. Returns kInvalidArgument with a message starting "cron: "
  // that names the problem, e.g. "cron: minute field: 60 is out of range
  // 0-59", "cron: want 5 or 6 fields, got 4", or "cron: never fires: ..." for
  // a spec no date can satisfy, such as "0 0 30 2 *".
  static core::StatusOr<CronSpec> Parse(std::string_view expr);

  // The first firing instant strictly after `after`, in whole seconds, with
  // fields matched in `tz`'s wall-clock time under the DST rules above.
  // Returns nullopt only when no firing exists before the year 10000.
  std::optional<core::Time> Next(core::Time after, const TimeZone& tz) const;

  // Whether the fields match the wall-clock time `local`. DST rules play no
  // part here; Next() applies them.
  bool Matches(LocalSeconds local) const;

  // The expression, normalized: fields separated by single spaces and names in
  // upper case ("0 9 * * MON-FRI"), or an alias in lower case ("@daily").
  std::string ToString() const { return text_; }

  // Whether the expression had a seconds field.
  bool has_seconds() const { return has_seconds_; }

 private:
  CronSpec() = default;

  bool DayMatches(int64_t days_since_epoch) const;
  // The first matching wall-clock second in [from, limit), both in seconds of
  // the wall-clock's own epoch; nullopt if there is none.
  std::optional<int64_t> NextLocalMatch(int64_t from, int64_t limit) const;
  std::optional<int> NextTimeOfDay(int hour, int minute, int second) const;

  uint64_t seconds_ = 0;        // Bits 0-59.
  uint64_t minutes_ = 0;        // Bits 0-59.
  uint32_t hours_ = 0;          // Bits 0-23.
  uint32_t days_of_month_ = 0;  // Bits 1-31.
  uint32_t months_ = 0;         // Bits 1-12.
  uint32_t days_of_week_ = 0;   // Bits 0-6, Sunday = 0.
  bool dom_star_ = false;       // Day-of-month field starts with '*'.
  bool dow_star_ = false;       // Day-of-week field starts with '*'.
  bool hour_interval_ = false;  // Fires in both copies of a repeated hour.
  bool has_seconds_ = false;
  std::string text_;
};

}  // namespace sked::cron
