// File: cron/time_zone.cc
//
// The TZif reader and POSIX TZ rule evaluation behind TimeZone.
//
// Thread safety: TimeZone methods are const and keep no caches, so concurrent
// readers need no synchronization.
#include "cron/time_zone.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

namespace sked::cron {
namespace {

using std::chrono::days;
using std::chrono::seconds;

constexpr int64_t kSecondsPerDay = 86400;
// Real zone files are a few KiB; anything this large is not one.
constexpr size_t kMaxTzifBytes = 1 << 20;
// Keeps year arithmetic inside std::chrono::year's range (about +-32767), far
// beyond any date a scheduler asks about.
constexpr int64_t kClampSeconds = int64_t{900'000'000'000};

core::Status UnknownZone(std::string_view name) {
  return core::InvalidArgumentError("timezone: unknown time zone '" + std::string(name) + "'");
}

core::Status Malformed(std::string_view name, std::string_view why) {
  return core::InvalidArgumentError("timezone: '" + std::string(name) +
                                    "': malformed TZif data: " + std::string(why));
}

// Only plain relative paths inside the zoneinfo directory are zone names; this
// also keeps "..", absolute paths and odd bytes away from the file system.
bool IsValidZoneName(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.back() == '/') return false;
  for (char c : name) {
    const bool ok =
        std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '+' || c == '-' || c == '/';
    if (!ok) return false;
  }
  return name.find("//") == std::string_view::npos;
}

int64_t ToUnixSeconds(core::Time t) {
  return std::chrono::floor<seconds>(t).time_since_epoch().count();
}

core::Time FromUnixSeconds(int64_t s) { return core::TimeFromSeconds(s); }

int YearOf(int64_t t) {
  t = std::clamp(t, -kClampSeconds, kClampSeconds);
  const auto d = std::chrono::floor<days>(std::chrono::sys_seconds(seconds(t)));
  return static_cast<int>(std::chrono::year_month_day(d).year());
}

int64_t DaysFromCivil(int y, unsigned m, unsigned d) {
  return std::chrono::sys_days(std::chrono::year(y) / std::chrono::month(m) / std::chrono::day(d))
      .time_since_epoch()
      .count();
}

bool IsLeap(int y) { return std::chrono::year(y).is_leap(); }

// Big-endian cursor over the TZif bytes; every read is bounds-checked.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool Skip(size_t n) {
    if (data_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  bool ReadInt(size_t width, int64_t* out) {
    if (data_.size() - pos_ < width) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < width; ++i) {
      v = (v << 8) | static_cast<unsigned char>(data_[pos_ + i]);
    }
    pos_ += width;
    // Sign-extend: TZif stores two's-complement integers.
    if (width < 8 && (v >> (width * 8 - 1)) != 0) v |= ~uint64_t{0} << (width * 8);
    *out = static_cast<int64_t>(v);
    return true;
  }
  std::string_view Rest() const { return data_.substr(pos_); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

struct Header {
  char version = 0;
  int64_t isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0;
};

bool ReadHeader(Reader& r, Header* h) {
  const std::string_view rest = r.Rest();
  if (rest.size() < 44 || rest.substr(0, 4) != "TZif") return false;
  h->version = rest[4];
  r.Skip(20);
  int64_t* counts[] = {&h->isutcnt, &h->isstdcnt, &h->leapcnt,
                       &h->timecnt, &h->typecnt,  &h->charcnt};
  for (int64_t* c : counts) {
    if (!r.ReadInt(4, c) || *c < 0) return false;
  }
  return true;
}

// Parsing helpers for POSIX TZ strings; each advances `s` past what it read.
bool ParseName(std::string_view& s) {
  size_t n = 0;
  if (!s.empty() && s[0] == '<') {
    n = s.find('>');
    if (n == std::string_view::npos || n < 2) return false;
    s.remove_prefix(n + 1);
    return true;
  }
  while (n < s.size() && std::isalpha(static_cast<unsigned char>(s[n]))) ++n;
  if (n < 3) return false;
  s.remove_prefix(n);
  return true;
}

bool ParseInt(std::string_view& s, int max, int* out) {
  size_t n = 0;
  int v = 0;
  while (n < s.size() && std::isdigit(static_cast<unsigned char>(s[n]))) {
    v = v * 10 + (s[n] - '0');
    if (v > max) return false;
    ++n;
  }
  if (n == 0) return false;
  s.remove_prefix(n);
  *out = v;
  return true;
}

// [+-]hh[:mm[:ss]]. TZif v3 allows hours up to 167 and a sign in rule times,
// which is how rules like "M3.5.0/-1" or "J365/25" express themselves.
bool ParseHms(std::string_view& s, int max_hours, int32_t* out) {
  int sign = 1;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    if (s[0] == '-') sign = -1;
    s.remove_prefix(1);
  }
  int h = 0, m = 0, sec = 0;
  if (!ParseInt(s, max_hours, &h)) return false;
  if (!s.empty() && s[0] == ':') {
    s.remove_prefix(1);
    if (!ParseInt(s, 59, &m)) return false;
    if (!s.empty() && s[0] == ':') {
      s.remove_prefix(1);
      if (!ParseInt(s, 59, &sec)) return false;
    }
  }
  *out = sign * (h * 3600 + m * 60 + sec);
  return true;
}

}  // namespace

std::optional<TimeZone::PosixRule> TimeZone::ParsePosixRule(std::string_view s) {
  PosixRule rule;
  int32_t off = 0;
  if (!ParseName(s) || !ParseHms(s, 24, &off)) return std::nullopt;
  rule.std_offset = -off;  // POSIX counts hours west of Greenwich.
  if (s.empty()) return rule;
  if (!ParseName(s)) return std::nullopt;
  rule.has_dst = true;
  rule.dst_offset = rule.std_offset + 3600;
  if (!s.empty() && s[0] != ',') {
    if (!ParseHms(s, 24, &off)) return std::nullopt;
    rule.dst_offset = -off;
  }
  if (s.empty()) s = ",M3.2.0,M11.1.0";  // The US rule, as glibc assumes.
  auto parse_date = [&s](PosixRule::Date* d, int32_t* time) {
    if (s.empty() || s[0] != ',') return false;
    s.remove_prefix(1);
    if (!s.empty() && s[0] == 'J') {
      s.remove_prefix(1);
      d->kind = PosixRule::Date::Kind::kJulian1;
      if (!ParseInt(s, 365, &d->day) || d->day < 1) return false;
    } else if (!s.empty() && s[0] == 'M') {
      s.remove_prefix(1);
      d->kind = PosixRule::Date::Kind::kMonthWeekDay;
      if (!ParseInt(s, 12, &d->month) || d->month < 1) return false;
      if (s.empty() || s[0] != '.') return false;
      s.remove_prefix(1);
      if (!ParseInt(s, 5, &d->week) || d->week < 1) return false;
      if (s.empty() || s[0] != '.') return false;
      s.remove_prefix(1);
      if (!ParseInt(s, 6, &d->day)) return false;
    } else {
      d->kind = PosixRule::Date::Kind::kJulian0;
      if (!ParseInt(s, 365, &d->day)) return false;
    }
    *time = 7200;
    if (!s.empty() && s[0] == '/') {
      s.remove_prefix(1);
      if (!ParseHms(s, 167, time)) return false;
    }
    return true;
  };
  if (!parse_date(&rule.start, &rule.start_time) || !parse_date(&rule.end, &rule.end_time) ||
      !s.empty()) {
    return std::nullopt;
  }
  return rule;
}

int64_t TimeZone::RuleDay(const PosixRule::Date& d, int y) {
  using Kind = PosixRule::Date::Kind;
  const int64_t jan1 = DaysFromCivil(y, 1, 1);
  switch (d.kind) {
    case Kind::kJulian1:
      // Jn never counts Feb 29, so from March on a leap year is one day later.
      return jan1 + d.day - 1 + (IsLeap(y) && d.day >= 60 ? 1 : 0);
    case Kind::kJulian0:
      return jan1 + d.day;
    case Kind::kMonthWeekDay: {
      const int64_t first = DaysFromCivil(y, d.month, 1);
      const int first_wd =
          static_cast<int>(std::chrono::weekday(std::chrono::sys_days(days(first))).c_encoding());
      int64_t day = first + (d.day - first_wd + 7) % 7 + (d.week - 1) * 7;
      const int64_t next_month =
          d.month == 12 ? DaysFromCivil(y + 1, 1, 1) : DaysFromCivil(y, d.month + 1, 1);
      while (day >= next_month) day -= 7;  // Week 5 means "the last".
      return day;
    }
  }
  return jan1;
}

std::vector<TimeZone::Change> TimeZone::RuleChanges(int first_year, int last_year) const {
  std::vector<Change> out;
  if (!rule_ || !rule_->has_dst) return out;
  const PosixRule& r = *rule_;
  for (int y = first_year; y <= last_year; ++y) {
    // DST starts at a time given in standard time and ends at one given in
    // daylight time.
    out.push_back({RuleDay(r.end, y) * kSecondsPerDay + r.end_time - r.dst_offset, r.std_offset});
    out.push_back(
        {RuleDay(r.start, y) * kSecondsPerDay + r.start_time - r.std_offset, r.dst_offset});
  }
  // When one year's end meets the next year's start (rules for permanent DST
  // such as "EST5EDT,0/0,J365/25"), the start is listed last so it wins.
  std::stable_sort(out.begin(), out.end(), [&r](const Change& a, const Change& b) {
    if (a.at != b.at) return a.at < b.at;
    return a.offset == r.std_offset && b.offset != r.std_offset;
  });
  return out;
}

bool TimeZone::UsesRule(int64_t t) const { return rule_.has_value() && t >= rule_start_; }

int32_t TimeZone::OffsetAtSeconds(int64_t t) const {
  if (UsesRule(t)) {
    if (!rule_->has_dst) return rule_->std_offset;
    const int y = YearOf(t);
    const std::vector<Change> cs = RuleChanges(y - 2, y + 1);
    int32_t off = rule_->std_offset;
    for (const Change& c : cs) {
      if (c.at > t) break;
      off = c.offset;
    }
    return off;
  }
  auto it = std::upper_bound(changes_.begin(), changes_.end(), t,
                             [](int64_t v, const Change& c) { return v < c.at; });
  return it == changes_.begin() ? initial_offset_ : std::prev(it)->offset;
}

std::optional<TimeZone::Transition> TimeZone::NextChange(int64_t t) const {
  auto it = std::upper_bound(changes_.begin(), changes_.end(), t,
                             [](int64_t v, const Change& c) { return v < c.at; });
  if (it != changes_.end()) {
    const int32_t before = it == changes_.begin() ? initial_offset_ : std::prev(it)->offset;
    return Transition{FromUnixSeconds(it->at), seconds(before), seconds(it->offset)};
  }
  if (!rule_ || !rule_->has_dst) return std::nullopt;
  const int64_t from = std::clamp(std::max(t, rule_start_), -kClampSeconds, kClampSeconds);
  // A DST rule changes the offset every year, so a few years always suffice.
  for (int y = YearOf(from) - 1, tries = 0; tries < 4; y += 2, ++tries) {
    for (const Change& c : RuleChanges(y, y + 1)) {
      if (c.at <= t || c.at <= rule_start_) continue;
      const int32_t before = OffsetAtSeconds(c.at - 1);
      const int32_t after = OffsetAtSeconds(c.at);
      if (before != after) {
        return Transition{FromUnixSeconds(c.at), seconds(before), seconds(after)};
      }
    }
  }
  return std::nullopt;
}

std::optional<TimeZone::Transition> TimeZone::PrevChange(int64_t t) const {
  if (rule_ && rule_->has_dst && t > rule_start_) {
    const int64_t clamped = std::clamp(t, -kClampSeconds, kClampSeconds);
    // A DST rule changes the offset every year, so a few years always suffice;
    // a degenerate rule whose changes never move the clock ends the search.
    const int stop = YearOf(std::max(rule_start_, -kClampSeconds)) - 2;
    for (int y = YearOf(clamped), tries = 0; y >= stop && tries < 4; y -= 2, ++tries) {
      const std::vector<Change> cs = RuleChanges(y - 1, y);
      for (auto it = cs.rbegin(); it != cs.rend(); ++it) {
        if (it->at > t || it->at <= rule_start_) continue;
        const int32_t before = OffsetAtSeconds(it->at - 1);
        const int32_t after = OffsetAtSeconds(it->at);
        if (before != after) {
          return Transition{FromUnixSeconds(it->at), seconds(before), seconds(after)};
        }
      }
    }
  }
  auto it = std::upper_bound(changes_.begin(), changes_.end(), t,
                             [](int64_t v, const Change& c) { return v < c.at; });
  if (it == changes_.begin()) return std::nullopt;
  --it;
  const int32_t before = it == changes_.begin() ? initial_offset_ : std::prev(it)->offset;
  return Transition{FromUnixSeconds(it->at), seconds(before), seconds(it->offset)};
}

core::StatusOr<TimeZone> TimeZone::FromTzif(std::string name, std::string_view tzif) {
  Reader r(tzif);
  Header h;
  if (!ReadHeader(r, &h)) return Malformed(name, "bad header");
  int time_width = 4, leap_width = 8;
  if (h.version >= '2') {
    // Skip the 32-bit data; the second header describes the 64-bit data.
    const int64_t v1_size =
        h.timecnt * 5 + h.typecnt * 6 + h.charcnt + h.leapcnt * 8 + h.isstdcnt + h.isutcnt;
    if (!r.Skip(static_cast<size_t>(v1_size)) || !ReadHeader(r, &h)) {
      return Malformed(name, "truncated version 1 data");
    }
    time_width = 8;
    leap_width = 12;
  }
  if (h.typecnt < 1 || h.typecnt > 256 || h.timecnt > 100'000 || h.charcnt > 100'000 ||
      h.leapcnt > 100'000) {
    return Malformed(name, "implausible counts");
  }
  std::vector<int64_t> times(h.timecnt);
  std::vector<int64_t> idx(h.timecnt);
  std::vector<int32_t> type_offsets(h.typecnt);
  for (int64_t& t : times) {
    if (!r.ReadInt(time_width, &t)) return Malformed(name, "truncated");
  }
  for (int64_t& i : idx) {
    if (!r.ReadInt(1, &i)) return Malformed(name, "truncated");
    i &= 0xff;
    if (i >= h.typecnt) return Malformed(name, "type index out of range");
  }
  for (int32_t& off : type_offsets) {
    int64_t utoff = 0, ignored = 0;
    if (!r.ReadInt(4, &utoff) || !r.ReadInt(1, &ignored) || !r.ReadInt(1, &ignored)) {
      return Malformed(name, "truncated");
    }
    // RFC 8536 bounds UT offsets to (-25h, 26h).
    if (utoff <= -25 * 3600 || utoff >= 26 * 3600) {
      return Malformed(name, "UT offset out of range");
    }
    off = static_cast<int32_t>(utoff);
  }
  if (!r.Skip(static_cast<size_t>(h.charcnt + h.leapcnt * leap_width + h.isstdcnt + h.isutcnt))) {
    return Malformed(name, "truncated");
  }
  for (size_t i = 1; i < times.size(); ++i) {
    if (times[i] <= times[i - 1]) {
      return Malformed(name, "transitions out of order");
    }
  }

  TimeZone tz;
  tz.name_ = std::move(name);
  tz.initial_offset_ = type_offsets[0];  // RFC 8536: type 0 precedes all.
  int32_t current = tz.initial_offset_;
  for (size_t i = 0; i < times.size(); ++i) {
    const int32_t off = type_offsets[idx[i]];
    if (off != current) tz.changes_.push_back({times[i], off});
    current = off;
  }
  if (time_width == 8) {
    // The footer is "\n<POSIX TZ string>\n"; an empty string means none.
    std::string_view rest = r.Rest();
    if (rest.empty() || rest[0] != '\n') {
      return Malformed(tz.name_, "missing footer");
    }
    rest.remove_prefix(1);
    const size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) return Malformed(tz.name_, "bad footer");
    const std::string_view footer = rest.substr(0, nl);
    if (!footer.empty()) {
      tz.rule_ = ParsePosixRule(footer);
      if (!tz.rule_) {
        return Malformed(tz.name_, "bad POSIX TZ string '" + std::string(footer) + "'");
      }
      if (!times.empty()) tz.rule_start_ = times.back();
    }
  }
  return tz;
}

TimeZone TimeZone::Utc() {
  TimeZone tz;
  tz.name_ = "UTC";
  return tz;
}

core::StatusOr<TimeZone> TimeZone::Load(std::string_view name, std::string_view zoneinfo_dir) {
  if (name == "UTC" || name == "Etc/UTC" || name == "Z") {
    TimeZone tz = Utc();
    tz.name_ = std::string(name);
    return tz;
  }
  if (!IsValidZoneName(name)) return UnknownZone(name);
  const std::filesystem::path path = std::filesystem::path(zoneinfo_dir) / std::string(name);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return UnknownZone(name);
  std::ifstream in(path, std::ios::binary);
  if (!in) return UnknownZone(name);
  std::string data;
  data.resize(kMaxTzifBytes + 1);
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > kMaxTzifBytes) return Malformed(name, "file too large");
  return FromTzif(std::string(name), data);
}

std::chrono::seconds TimeZone::OffsetAt(core::Time utc) const {
  return seconds(OffsetAtSeconds(ToUnixSeconds(utc)));
}

LocalSeconds TimeZone::ToLocal(core::Time utc) const {
  const int64_t t = ToUnixSeconds(utc);
  return LocalSeconds(seconds(t + OffsetAtSeconds(t)));
}

std::vector<core::Time> TimeZone::FromLocal(LocalSeconds local) const {
  const int64_t l = local.time_since_epoch().count();
  // Offsets stay within a day of UTC, so every offset that could map some
  // instant to `l` is in effect within two days of it.
  const int64_t lo = l - 2 * kSecondsPerDay, hi = l + 2 * kSecondsPerDay;
  std::set<int32_t> offsets = {OffsetAtSeconds(lo), OffsetAtSeconds(hi)};
  for (auto tr = NextChange(lo); tr && ToUnixSeconds(tr->at) <= hi;
       tr = NextChange(ToUnixSeconds(tr->at))) {
    offsets.insert(static_cast<int32_t>(tr->offset_before.count()));
    offsets.insert(static_cast<int32_t>(tr->offset_after.count()));
  }
  std::vector<core::Time> out;
  for (int32_t off : offsets) {
    const int64_t u = l - off;
    if (OffsetAtSeconds(u) == off) out.push_back(FromUnixSeconds(u));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::optional<TimeZone::Transition> TimeZone::NextTransition(core::Time after) const {
  return NextChange(ToUnixSeconds(after));
}

std::optional<TimeZone::Transition> TimeZone::PrevTransition(core::Time at) const {
  return PrevChange(ToUnixSeconds(at));
}

}  // namespace sked::cron
