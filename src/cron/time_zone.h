// File: cron/time_zone.h
//
// TimeZone: an IANA time zone read from a compiled TZif file (RFC 8536), so that
// cron schedules can be matched in a zone's local civil time. libstdc++ 12 has
// no std::chrono::tzdb, hence this small reader of its own. It understands TZif
// versions 1 to 3 (using the 64-bit data of v2+) and the POSIX TZ footer that
// describes every instant after the file's last explicit transition, so
// schedules in 2100 follow the same DST rules as today. Leap-second records are
// ignored: sked's time, like POSIX time, has no leap seconds.
//
// Thread safety: a TimeZone is immutable after construction; one object may be
// shared and read by any number of threads without synchronization.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/time.h"

namespace sked::cron {

// Where Load() looks for TZif files. Default: the tzdata package's location.
inline constexpr std::string_view kDefaultZoneinfoDir = "/usr/share/zoneinfo";

// Wall-clock time in some zone, in whole seconds, not tied to an instant.
using LocalSeconds = std::chrono::local_time<std::chrono::seconds>;

class TimeZone {
 public:
  // A change of UTC offset. Changes of abbreviation or isdst alone, which do
  // not move the wall clock, are not reported.
  struct Transition {
    core::Time at;                       // First instant with offset_after.
    std::chrono::seconds offset_before;  // East of UTC is positive.
    std::chrono::seconds offset_after;
  };

  // Loads `name` from `zoneinfo_dir`. "UTC", "Etc/UTC" and "Z" always work,
  // even without tzdata installed. Returns kInvalidArgument ("timezone: unknown
  // time zone 'X'") for a name that is not a plain relative path of
  // [A-Za-z0-9_+-/] characters or that has no readable file, and
  // kInvalidArgument ("timezone: 'X': malformed TZif data: ...") for a file
  // that is not valid TZif.
  static core::StatusOr<TimeZone> Load(std::string_view name,
                                       std::string_view zoneinfo_dir = kDefaultZoneinfoDir);

  // Parses TZif bytes already in memory (embedded zone data, tests).
  // Returns kInvalidArgument when `tzif` is not valid TZif.
  static core::StatusOr<TimeZone> FromTzif(std::string name, std::string_view tzif);

  // The zone UTC, which needs no file.
  static TimeZone Utc();

  // The name given to Load() or FromTzif().
  const std::string& name() const { return name_; }

  // The UTC offset in effect at `utc` (east of UTC is positive).
  std::chrono::seconds OffsetAt(core::Time utc) const;

  // The wall-clock time at `utc`, sub-second part dropped (floored).
  LocalSeconds ToLocal(core::Time utc) const;

  // Every instant whose wall-clock time is `local`, earliest first: none when
  // `local` falls in a gap (clocks jumped over it), two when it is repeated
  // after clocks went back, one otherwise.
  std::vector<core::Time> FromLocal(LocalSeconds local) const;

  // The first offset change strictly after `after`; nullopt if there is none
  // (a zone without DST after its last transition).
  std::optional<Transition> NextTransition(core::Time after) const;

  // The last offset change at or before `at`; nullopt if there is none.
  std::optional<Transition> PrevTransition(core::Time at) const;

 private:
  // A POSIX TZ rule (the TZif footer), e.g. "CET-1CEST,M3.5.0,M10.5.0/3".
  struct PosixRule {
    struct Date {
      enum class Kind { kJulian1, kJulian0, kMonthWeekDay };
      Kind kind = Kind::kMonthWeekDay;
      int day = 0;    // kJulian1: 1-365; kJulian0: 0-365; kMonthWeekDay: 0-6.
      int month = 0;  // kMonthWeekDay only: 1-12.
      int week = 0;   // kMonthWeekDay only: 1-5, 5 meaning the last.
    };
    int32_t std_offset = 0;  // Seconds east of UTC.
    bool has_dst = false;
    int32_t dst_offset = 0;
    Date start{}, end{};
    int32_t start_time = 7200, end_time = 7200;  // Local seconds after midnight.
  };

  struct Change {
    int64_t at;      // Unix seconds.
    int32_t offset;  // Offset from `at` on.
  };

  TimeZone() = default;

  // nullopt when `tz` is not a valid POSIX TZ string.
  static std::optional<PosixRule> ParsePosixRule(std::string_view tz);
  // Days since the epoch of rule date `d` in `year`.
  static int64_t RuleDay(const PosixRule::Date& d, int year);

  int32_t OffsetAtSeconds(int64_t t) const;
  std::optional<Transition> NextChange(int64_t t) const;
  std::optional<Transition> PrevChange(int64_t t) const;
  // The rule's offset changes in the given years, sorted by instant.
  std::vector<Change> RuleChanges(int first_year, int last_year) const;
  bool UsesRule(int64_t t) const;

  std::string name_;
  int32_t initial_offset_ = 0;      // Before the first explicit change.
  std::vector<Change> changes_;     // Explicit, each altering the offset.
  std::optional<PosixRule> rule_;   // For instants after the last explicit one.
  int64_t rule_start_ = INT64_MIN;  // The last explicit transition, if any.
};

}  // namespace sked::cron
