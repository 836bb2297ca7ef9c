// File: cron/cron.cc
//
// Cron expression parsing and next-firing search; see cron.h for the rules.
//
// Thread safety: CronSpec methods are const and keep no caches.
#include "cron/cron.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <chrono>
#include <vector>

namespace sked::cron {
namespace {

constexpr int64_t kSecondsPerDay = 86400;

// Next() gives up past the end of the year 9999, where core::ParseRfc3339 stops
// too; before that, any spec that passed Parse() fires at least every 28 years
// or so (a given Feb 29 weekday), so the search always ends well earlier.
constexpr int64_t kLocalMax = int64_t{2932897} * kSecondsPerDay;  // 10000-01-01.
constexpr int64_t kLocalMin = int64_t{-719162} * kSecondsPerDay;  // 0001-01-01.

constexpr std::array<std::string_view, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kDayNames = {"SUN", "MON", "TUE", "WED",
                                                       "THU", "FRI", "SAT"};

struct FieldDef {
  std::string_view name;
  int min;
  int max;        // The largest value written; 7 for day-of-week.
  int star_max;   // Where `*` and `a/s` end; 6 for day-of-week.
  int name_base;  // Value of names[0].
  const std::string_view* names;
  size_t name_count;
};

constexpr FieldDef kSecondDef{"second", 0, 59, 59, 0, nullptr, 0};
constexpr FieldDef kMinuteDef{"minute", 0, 59, 59, 0, nullptr, 0};
constexpr FieldDef kHourDef{"hour", 0, 23, 23, 0, nullptr, 0};
constexpr FieldDef kDomDef{"day-of-month", 1, 31, 31, 0, nullptr, 0};
constexpr FieldDef kMonthDef{"month", 1, 12, 12, 1, kMonthNames.data(), 12};
constexpr FieldDef kDowDef{"day-of-week", 0, 7, 6, 0, kDayNames.data(), 7};

core::Status FieldError(const FieldDef& f, const std::string& what) {
  return core::InvalidArgumentError("cron: " + std::string(f.name) + " field: " + what);
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

// A number or a name; `is_sunday_name` reports "SUN", which may close a
// day-of-week range as 7 ("FRI-SUN").
core::StatusOr<int> ParseValue(std::string_view s, const FieldDef& f,
                               bool* is_sunday_name = nullptr) {
  if (AllDigits(s)) {
    if (s.size() > 6) {
      return FieldError(f, std::string(s) + " is out of range " + std::to_string(f.min) + "-" +
                               std::to_string(f.max));
    }
    int v = 0;
    for (char c : s) v = v * 10 + (c - '0');
    if (v < f.min || v > f.max) {
      return FieldError(f, std::to_string(v) + " is out of range " + std::to_string(f.min) + "-" +
                               std::to_string(f.max));
    }
    return v;
  }
  const std::string upper = Upper(s);
  for (size_t i = 0; i < f.name_count; ++i) {
    if (upper == f.names[i]) {
      if (is_sunday_name != nullptr) *is_sunday_name = (&f == &kDowDef && i == 0);
      return f.name_base + static_cast<int>(i);
    }
  }
  return FieldError(f, "bad value '" + std::string(s) + "'");
}

// Returns the set of values as a bit mask (bit v set for value v).
core::StatusOr<uint64_t> ParseField(std::string_view text, const FieldDef& f) {
  uint64_t mask = 0;
  size_t pos = 0;
  while (true) {
    const size_t comma = text.find(',', pos);
    const std::string_view elem =
        text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    if (elem.empty()) return FieldError(f, "empty list element");

    std::string_view base = elem;
    int step = 1;
    bool has_step = false;
    if (const size_t slash = elem.find('/'); slash != std::string_view::npos) {
      base = elem.substr(0, slash);
      const std::string_view step_text = elem.substr(slash + 1);
      const int span = f.star_max - f.min + 1;
      if (!AllDigits(step_text)) {
        return FieldError(f, "bad step '" + std::string(step_text) + "'");
      }
      step = step_text.size() > 6 ? span + 1 : std::stoi(std::string(step_text));
      if (step < 1 || step > span) {
        return FieldError(
            f, "step " + std::string(step_text) + " is out of range 1-" + std::to_string(span));
      }
      has_step = true;
    }
    if (base.empty()) {
      return FieldError(f, "bad element '" + std::string(elem) + "'");
    }
    int lo = 0, hi = 0;
    if (base == "*") {
      lo = f.min;
      hi = f.star_max;
    } else if (const size_t dash = base.find('-'); dash != std::string_view::npos) {
      bool end_is_sunday = false;
      ASSIGN_OR_RETURN(lo, ParseValue(base.substr(0, dash), f));
      ASSIGN_OR_RETURN(hi, ParseValue(base.substr(dash + 1), f, &end_is_sunday));
      if (end_is_sunday) hi = 7;
      if (lo > hi) {
        return FieldError(f, "range " + std::string(base) + " is backwards");
      }
    } else {
      ASSIGN_OR_RETURN(lo, ParseValue(base, f));
      hi = has_step ? std::max(lo, f.star_max) : lo;
    }
    for (int v = lo; v <= hi; v += step) mask |= uint64_t{1} << v;

    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return mask;
}

// The lowest set bit of `mask` at or above `from` and below `n`, or -1.
int NextBit(uint64_t mask, int from, int n) {
  if (from >= n) return -1;
  const uint64_t rest = mask >> from;
  if (rest == 0) return -1;
  const int bit = from + std::countr_zero(rest);
  return bit < n ? bit : -1;
}

std::chrono::year_month_day CivilFromDays(int64_t d) {
  return std::chrono::year_month_day(std::chrono::sys_days(std::chrono::days(d)));
}

int64_t DaysFromCivil(int y, unsigned m, unsigned d) {
  return std::chrono::sys_days(std::chrono::year(y) / std::chrono::month(m) / std::chrono::day(d))
      .time_since_epoch()
      .count();
}

int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

struct Alias {
  std::string_view name;
  std::string_view fields;
};
constexpr std::array<Alias, 7> kAliases = {{
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
}};

std::vector<std::string_view> SplitFields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

core::StatusOr<CronSpec> CronSpec::Parse(std::string_view expr) {
  std::vector<std::string_view> fields = SplitFields(expr);
  std::string normalized;
  if (!fields.empty() && fields[0].front() == '@') {
    const std::string alias = [&] {
      std::string a(fields[0]);
      for (char& c : a) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return a;
    }();
    if (alias == "@reboot") {
      return core::InvalidArgumentError(
          "cron: @reboot is not supported: sked schedules by time, not by "
          "process start");
    }
    const auto it = std::find_if(kAliases.begin(), kAliases.end(),
                                 [&](const Alias& a) { return a.name == alias; });
    if (it == kAliases.end()) {
      return core::InvalidArgumentError("cron: unknown alias '" + std::string(fields[0]) + "'");
    }
    if (fields.size() != 1) {
      return core::InvalidArgumentError("cron: alias " + alias + " takes no other fields");
    }
    normalized = alias;
    fields = SplitFields(it->fields);
  }
  if (fields.size() != 5 && fields.size() != 6) {
    return core::InvalidArgumentError("cron: want 5 or 6 fields, got " +
                                      std::to_string(fields.size()));
  }

  CronSpec spec;
  spec.has_seconds_ = fields.size() == 6;
  const size_t o = spec.has_seconds_ ? 1 : 0;
  if (spec.has_seconds_) {
    ASSIGN_OR_RETURN(spec.seconds_, ParseField(fields[0], kSecondDef));
  } else {
    spec.seconds_ = 1;  // Second 0.
  }
  ASSIGN_OR_RETURN(spec.minutes_, ParseField(fields[o], kMinuteDef));
  ASSIGN_OR_RETURN(const uint64_t hours, ParseField(fields[o + 1], kHourDef));
  ASSIGN_OR_RETURN(const uint64_t dom, ParseField(fields[o + 2], kDomDef));
  ASSIGN_OR_RETURN(const uint64_t months, ParseField(fields[o + 3], kMonthDef));
  ASSIGN_OR_RETURN(uint64_t dow, ParseField(fields[o + 4], kDowDef));
  if (dow & (uint64_t{1} << 7)) dow = (dow & 0x7f) | 1;  // 7 is Sunday too.
  spec.hours_ = static_cast<uint32_t>(hours);
  spec.days_of_month_ = static_cast<uint32_t>(dom);
  spec.months_ = static_cast<uint32_t>(months);
  spec.days_of_week_ = static_cast<uint32_t>(dow);
  spec.dom_star_ = fields[o + 2].front() == '*';
  spec.dow_star_ = fields[o + 4].front() == '*';
  const std::string_view hour_text = fields[o + 1];
  spec.hour_interval_ = hour_text.front() == '*' || hour_text.find('/') != std::string_view::npos ||
                        spec.hours_ == (uint32_t{1} << 24) - 1;

  // Every weekday occurs in every month, and over the 400-year Gregorian cycle
  // every date falls on every weekday. So only the AND rule with a restricted
  // day-of-month can be unsatisfiable: when no listed month has a listed day.
  if (!spec.dom_star_ && spec.dow_star_) {
    static constexpr int kMaxDays[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool possible = false;
    for (int m = 1; m <= 12 && !possible; ++m) {
      if (!(spec.months_ & (1u << m))) continue;
      possible = NextBit(spec.days_of_month_, 1, kMaxDays[m] + 1) >= 0;
    }
    if (!possible) {
      return core::InvalidArgumentError(
          "cron: never fires: no listed month has any of the listed days of "
          "month");
    }
  }

  if (normalized.empty()) {
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i > 0) normalized += ' ';
      normalized += Upper(fields[i]);
    }
  }
  spec.text_ = std::move(normalized);
  return spec;
}

bool CronSpec::DayMatches(int64_t days_since_epoch) const {
  const auto ymd = CivilFromDays(days_since_epoch);
  const unsigned wd =
      std::chrono::weekday(std::chrono::sys_days(std::chrono::days(days_since_epoch))).c_encoding();
  const bool dom_ok = days_of_month_ & (1u << static_cast<unsigned>(ymd.day()));
  const bool dow_ok = days_of_week_ & (1u << wd);
  if (dom_star_ || dow_star_) return dom_ok && dow_ok;
  return dom_ok || dow_ok;
}

bool CronSpec::Matches(LocalSeconds local) const {
  const int64_t l = local.time_since_epoch().count();
  const int64_t day = FloorDiv(l, kSecondsPerDay);
  const int64_t sod = l - day * kSecondsPerDay;
  const auto ymd = CivilFromDays(day);
  return (months_ & (1u << static_cast<unsigned>(ymd.month()))) && DayMatches(day) &&
         (hours_ & (1u << (sod / 3600))) && (minutes_ & (uint64_t{1} << (sod % 3600 / 60))) &&
         (seconds_ & (uint64_t{1} << (sod % 60)));
}

std::optional<int> CronSpec::NextTimeOfDay(int hour, int minute, int second) const {
  while (hour < 24) {
    const int h = NextBit(hours_, hour, 24);
    if (h < 0) return std::nullopt;
    if (h != hour) {
      hour = h;
      minute = 0;
      second = 0;
    }
    const int m = NextBit(minutes_, minute, 60);
    if (m < 0) {
      ++hour;
      minute = second = 0;
      continue;
    }
    if (m != minute) {
      minute = m;
      second = 0;
    }
    const int s = NextBit(seconds_, second, 60);
    if (s < 0) {
      second = 0;
      if (++minute == 60) {
        minute = 0;
        ++hour;
      }
      continue;
    }
    return hour * 3600 + minute * 60 + s;
  }
  return std::nullopt;
}

std::optional<int64_t> CronSpec::NextLocalMatch(int64_t from, int64_t limit) const {
  limit = std::min(limit, kLocalMax);
  from = std::max(from, kLocalMin);
  int64_t day = FloorDiv(from, kSecondsPerDay);
  int64_t sod = from - day * kSecondsPerDay;
  // Whole months and days that cannot match are skipped at once, so the loop
  // runs at most a few dozen times per year searched.
  while (day * kSecondsPerDay < limit) {
    const auto ymd = CivilFromDays(day);
    const unsigned month = static_cast<unsigned>(ymd.month());
    if (!(months_ & (1u << month))) {
      const int next = NextBit(months_, static_cast<int>(month) + 1, 13);
      const int year = static_cast<int>(ymd.year());
      day = next > 0 ? DaysFromCivil(year, next, 1)
                     : DaysFromCivil(year + 1, std::countr_zero(months_), 1);
      sod = 0;
      continue;
    }
    if (DayMatches(day)) {
      if (const auto t =
              NextTimeOfDay(static_cast<int>(sod / 3600), static_cast<int>(sod % 3600 / 60),
                            static_cast<int>(sod % 60))) {
        const int64_t local = day * kSecondsPerDay + *t;
        if (local >= limit) return std::nullopt;
        return local;
      }
    }
    ++day;
    sod = 0;
  }
  return std::nullopt;
}

std::optional<core::Time> CronSpec::Next(core::Time after, const TimeZone& tz) const {
  using std::chrono::seconds;
  const auto to_secs = [](core::Time t) {
    return std::chrono::floor<seconds>(t).time_since_epoch().count();
  };
  // Whole seconds strictly after `after`, even when it has a fraction.
  int64_t t = std::max(to_secs(after) + 1, kLocalMin + kSecondsPerDay);
  // Walk the zone's spans of constant offset; within one, wall-clock time is
  // just UTC shifted, so a plain calendar search finds the first match.
  while (t < kLocalMax) {
    const core::Time at = core::TimeFromSeconds(t);
    const int64_t offset = tz.OffsetAt(at).count();
    const auto next_change = tz.NextTransition(at);
    const int64_t span_end = next_change ? to_secs(next_change->at) : kLocalMax + kSecondsPerDay;
    int64_t search_from = t;
    std::optional<int64_t> best;
    if (const auto prev = tz.PrevTransition(at)) {
      const int64_t start = to_secs(prev->at);
      const int64_t before = prev->offset_before.count();
      const int64_t after_off = prev->offset_after.count();
      if (after_off < before && !hour_interval_) {
        // Clocks went back: the first `before - after_off` seconds of this
        // span repeat wall-clock times that already had their chance.
        search_from = std::max(t, start + (before - after_off));
      } else if (after_off > before && t < start + (after_off - before)) {
        // Clocks jumped forward over [start+before, start+after_off) local.
        // Those times fire at their old-offset instant, i.e. shifted forward
        // by the gap length, which lands within the span's first seconds.
        if (const auto l = NextLocalMatch(std::max(start, t) + before, start + after_off)) {
          best = *l - before;
        }
      }
    }
    if (search_from < span_end) {
      if (const auto l = NextLocalMatch(search_from + offset, span_end + offset)) {
        const int64_t u = *l - offset;
        if (!best || u < *best) best = u;
      }
    }
    if (best) return core::TimeFromSeconds(*best);
    if (!next_change) return std::nullopt;
    t = span_end;
  }
  return std::nullopt;
}

}  // namespace sked::cron
