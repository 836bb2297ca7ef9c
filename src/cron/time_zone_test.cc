// File: cron/time_zone_test.cc
//
// Tests for TimeZone against the system tzdata (expected values from zdump and
// Python's zoneinfo) and against synthetic TZif files that pin down each part
// of the format and of POSIX TZ rules.
//
// Thread safety: tests share no state.
#include "cron/time_zone.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace sked::cron {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

core::Time T(std::string_view rfc3339) {
  const auto t = core::ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t.value_or(core::Time{});
}

std::string Str(core::Time t) { return core::FormatRfc3339(t); }

LocalSeconds Local(int y, unsigned m, unsigned d, int hh, int mm, int ss = 0) {
  const std::chrono::sys_days day = std::chrono::year(y) / m / d;
  return LocalSeconds(seconds(day.time_since_epoch()) + std::chrono::hours(hh) +
                      std::chrono::minutes(mm) + seconds(ss));
}

TimeZone MustLoad(std::string_view name) {
  auto tz = TimeZone::Load(name);
  EXPECT_TRUE(tz.ok()) << name << ": " << tz.status().ToString();
  return tz.ok() ? *tz : TimeZone::Utc();
}

// Builds a TZif file. Version '\0' writes v1 data only; '2' and '3' write an
// empty v1 block (as zic -b slim does), 64-bit data and the footer.
struct TzifSpec {
  char version = '2';
  std::vector<std::pair<int64_t, uint8_t>> transitions;  // (at, type index)
  std::vector<int32_t> type_offsets = {0};
  std::string footer;
};

void PutInt(std::string& out, int64_t v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
  }
}

void PutHeader(std::string& out, char version, int64_t timecnt, int64_t typecnt) {
  out += "TZif";
  out.push_back(version);
  out.append(15, '\0');
  for (int64_t c : {int64_t{0}, int64_t{0}, int64_t{0}, timecnt, typecnt, int64_t{4}}) {
    PutInt(out, c, 4);
  }
}

void PutData(std::string& out, const TzifSpec& s, int width) {
  for (const auto& [at, type] : s.transitions) PutInt(out, at, width);
  for (const auto& [at, type] : s.transitions) out.push_back(static_cast<char>(type));
  for (int32_t off : s.type_offsets) {
    PutInt(out, off, 4);
    out.push_back('\0');  // isdst
    out.push_back('\0');  // abbreviation index
  }
  out.append("ZZZ\0", 4);
}

std::string MakeTzif(const TzifSpec& s) {
  std::string out;
  const auto types = static_cast<int64_t>(s.type_offsets.size());
  if (s.version == '\0') {
    PutHeader(out, '\0', static_cast<int64_t>(s.transitions.size()), types);
    PutData(out, s, 4);
    return out;
  }
  PutHeader(out, s.version, 0, 1);
  PutData(out, TzifSpec{.type_offsets = {0}}, 4);
  PutHeader(out, s.version, static_cast<int64_t>(s.transitions.size()), types);
  PutData(out, s, 8);
  out += "\n" + s.footer + "\n";
  return out;
}

TimeZone FromFooter(std::string footer) {
  auto tz = TimeZone::FromTzif("test", MakeTzif({.version = '3', .footer = footer}));
  EXPECT_TRUE(tz.ok()) << footer << ": " << tz.status().ToString();
  return tz.ok() ? *tz : TimeZone::Utc();
}

// "at before->after" for compact comparisons.
std::string Describe(const std::optional<TimeZone::Transition>& t) {
  if (!t) return "none";
  return Str(t->at) + " " + std::to_string(t->offset_before.count()) + "->" +
         std::to_string(t->offset_after.count());
}

std::vector<std::string> TransitionsIn(const TimeZone& tz, int year) {
  std::vector<std::string> out;
  const core::Time end = T(std::to_string(year + 1) + "-01-01T00:00:00Z");
  for (auto t = tz.NextTransition(T(std::to_string(year) + "-01-01T00:00:00Z")); t && t->at < end;
       t = tz.NextTransition(t->at)) {
    out.push_back(Describe(t));
  }
  return out;
}

TEST(TimeZoneLoad, UtcNeedsNoFile) {
  for (std::string_view name : {"UTC", "Etc/UTC", "Z"}) {
    auto tz = TimeZone::Load(name, "/nonexistent/zoneinfo");
    ASSERT_TRUE(tz.ok()) << name;
    EXPECT_EQ(tz->name(), name);
    EXPECT_EQ(tz->OffsetAt(T("2026-07-01T00:00:00Z")), seconds(0));
    EXPECT_FALSE(tz->NextTransition(T("2026-07-01T00:00:00Z")).has_value());
    EXPECT_FALSE(tz->PrevTransition(T("2026-07-01T00:00:00Z")).has_value());
    EXPECT_EQ(tz->FromLocal(Local(2026, 3, 29, 2, 30)),
              std::vector<core::Time>{T("2026-03-29T02:30:00Z")});
  }
}

TEST(TimeZoneLoad, RejectsUnsafeOrUnknownNames) {
  for (std::string_view name : {"", "../etc/passwd", "Europe/../../etc/passwd", "/etc/localtime",
                                "Europe/Berlin;ls", "Europe Berlin", "Europe/", "Europe//Berlin",
                                "Nowhere/Atlantis", "Europe", "Europe/Berlin.bak"}) {
    auto tz = TimeZone::Load(name);
    ASSERT_FALSE(tz.ok()) << name;
    EXPECT_EQ(tz.status().code(), core::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(tz.status().message(), "timezone: unknown time zone '" + std::string(name) + "'");
  }
}

TEST(TimeZoneLoad, HonoursZoneinfoDir) {
  EXPECT_FALSE(TimeZone::Load("Europe/Berlin", "/nonexistent/zoneinfo").ok());
  EXPECT_TRUE(TimeZone::Load("Europe/Berlin", "/usr/share/zoneinfo/").ok());
}

TEST(TimeZoneOffsets, KnownValues) {
  struct Case {
    const char* zone;
    const char* at;
    int offset;
  };
  const Case cases[] = {
      {"Europe/Berlin", "2026-07-01T00:00:00Z", 7200},
      {"Europe/Berlin", "2026-01-01T00:00:00Z", 3600},
      {"America/New_York", "2026-07-01T00:00:00Z", -14400},
      {"America/New_York", "2026-01-01T00:00:00Z", -18000},
      {"Asia/Kolkata", "2026-07-01T00:00:00Z", 19800},
      {"Asia/Kolkata", "2100-01-01T00:00:00Z", 19800},
      {"Asia/Kathmandu", "2026-07-01T00:00:00Z", 20700},
      // POSIX signs are inverted: GMT+5 is five hours west.
      {"Etc/GMT+5", "2026-07-01T00:00:00Z", -18000},
      {"Australia/Lord_Howe", "2026-01-15T00:00:00Z", 39600},
      {"Australia/Lord_Howe", "2026-07-01T00:00:00Z", 37800},
      // Beyond the files' last transitions (2037): only the footer knows.
      {"Europe/Berlin", "2100-07-01T00:00:00Z", 7200},
      {"Europe/Berlin", "2100-01-01T00:00:00Z", 3600},
      {"America/New_York", "2100-07-01T00:00:00Z", -14400},
      {"America/New_York", "2100-12-01T00:00:00Z", -18000},
      {"Australia/Lord_Howe", "2100-01-01T00:00:00Z", 39600},
      {"Australia/Lord_Howe", "2100-07-01T00:00:00Z", 37800},
      {"Europe/Berlin", "2500-07-01T00:00:00Z", 7200},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(MustLoad(c.zone).OffsetAt(T(c.at)), seconds(c.offset)) << c.zone << " at " << c.at;
  }
  // 1850, before the first transition: Berlin's local mean time, +00:53:28.
  EXPECT_EQ(MustLoad("Europe/Berlin").OffsetAt(core::TimeFromSeconds(-3786825600)), seconds(3208));
}

TEST(TimeZoneOffsets, ExactlyAtTransitions) {
  const TimeZone berlin = MustLoad("Europe/Berlin");
  EXPECT_EQ(berlin.OffsetAt(T("2026-03-29T00:59:59.999Z")), seconds(3600));
  EXPECT_EQ(berlin.OffsetAt(T("2026-03-29T01:00:00Z")), seconds(7200));
  EXPECT_EQ(berlin.OffsetAt(T("2026-10-25T00:59:59Z")), seconds(7200));
  EXPECT_EQ(berlin.OffsetAt(T("2026-10-25T01:00:00Z")), seconds(3600));
  EXPECT_EQ(berlin.OffsetAt(T("2100-03-28T00:59:59Z")), seconds(3600));
  EXPECT_EQ(berlin.OffsetAt(T("2100-03-28T01:00:00Z")), seconds(7200));
}

TEST(TimeZoneTransitions, Year2026) {
  EXPECT_THAT(TransitionsIn(MustLoad("Europe/Berlin"), 2026),
              ::testing::ElementsAre("2026-03-29T01:00:00.000Z 3600->7200",
                                     "2026-10-25T01:00:00.000Z 7200->3600"));
  EXPECT_THAT(TransitionsIn(MustLoad("America/New_York"), 2026),
              ::testing::ElementsAre("2026-03-08T07:00:00.000Z -18000->-14400",
                                     "2026-11-01T06:00:00.000Z -14400->-18000"));
  EXPECT_THAT(TransitionsIn(MustLoad("Australia/Lord_Howe"), 2026),
              ::testing::ElementsAre("2026-04-04T15:00:00.000Z 39600->37800",
                                     "2026-10-03T15:30:00.000Z 37800->39600"));
  EXPECT_THAT(TransitionsIn(MustLoad("Asia/Kolkata"), 2026), ::testing::IsEmpty());
}

TEST(TimeZoneTransitions, FarFutureUsesFooter) {
  for (int year : {2100, 2500}) {
    const std::string y = std::to_string(year);
    EXPECT_THAT(TransitionsIn(MustLoad("Europe/Berlin"), year),
                ::testing::ElementsAre(y + "-03-28T01:00:00.000Z 3600->7200",
                                       y + "-10-31T01:00:00.000Z 7200->3600"));
    EXPECT_THAT(TransitionsIn(MustLoad("America/New_York"), year),
                ::testing::ElementsAre(y + "-03-14T07:00:00.000Z -18000->-14400",
                                       y + "-11-07T06:00:00.000Z -14400->-18000"));
    EXPECT_THAT(TransitionsIn(MustLoad("Australia/Lord_Howe"), year),
                ::testing::ElementsAre(y + "-04-03T15:00:00.000Z 39600->37800",
                                       y + "-10-02T15:30:00.000Z 37800->39600"));
  }
}

TEST(TimeZoneTransitions, PrevIncludesTheInstantItself) {
  const TimeZone berlin = MustLoad("Europe/Berlin");
  EXPECT_EQ(Describe(berlin.PrevTransition(T("2026-07-01T00:00:00Z"))),
            "2026-03-29T01:00:00.000Z 3600->7200");
  EXPECT_EQ(Describe(berlin.PrevTransition(T("2026-03-29T01:00:00Z"))),
            "2026-03-29T01:00:00.000Z 3600->7200");
  EXPECT_EQ(Describe(berlin.PrevTransition(T("2026-03-29T00:59:59Z"))),
            "2025-10-26T01:00:00.000Z 7200->3600");
  EXPECT_EQ(Describe(berlin.NextTransition(T("2026-03-29T01:00:00Z"))),
            "2026-10-25T01:00:00.000Z 7200->3600");
  EXPECT_EQ(Describe(berlin.PrevTransition(T("2100-12-01T00:00:00Z"))),
            "2100-10-31T01:00:00.000Z 7200->3600");
  // Across the boundary between the explicit table (to 2037) and the footer.
  EXPECT_EQ(Describe(berlin.PrevTransition(T("2038-02-01T00:00:00Z"))),
            "2037-10-25T01:00:00.000Z 7200->3600");
  EXPECT_EQ(Describe(berlin.NextTransition(T("2037-11-01T00:00:00Z"))),
            "2038-03-28T01:00:00.000Z 3600->7200");
}

TEST(TimeZoneLocal, GapsAndRepeats) {
  const TimeZone berlin = MustLoad("Europe/Berlin");
  EXPECT_THAT(berlin.FromLocal(Local(2026, 3, 29, 2, 30)), ::testing::IsEmpty());
  EXPECT_THAT(berlin.FromLocal(Local(2026, 3, 29, 2, 0)), ::testing::IsEmpty());
  EXPECT_EQ(berlin.FromLocal(Local(2026, 3, 29, 3, 0)),
            std::vector<core::Time>{T("2026-03-29T01:00:00Z")});
  EXPECT_EQ(berlin.FromLocal(Local(2026, 3, 29, 1, 59, 59)),
            std::vector<core::Time>{T("2026-03-29T00:59:59Z")});
  EXPECT_EQ(berlin.FromLocal(Local(2026, 10, 25, 2, 30)),
            (std::vector<core::Time>{T("2026-10-25T00:30:00Z"), T("2026-10-25T01:30:00Z")}));
  EXPECT_EQ(berlin.FromLocal(Local(2026, 10, 25, 3, 0)),
            std::vector<core::Time>{T("2026-10-25T02:00:00Z")});
  EXPECT_THAT(berlin.FromLocal(Local(2100, 3, 28, 2, 30)), ::testing::IsEmpty());
  EXPECT_EQ(berlin.FromLocal(Local(2100, 10, 31, 2, 30)).size(), 2u);

  const TimeZone ny = MustLoad("America/New_York");
  EXPECT_THAT(ny.FromLocal(Local(2026, 3, 8, 2, 30)), ::testing::IsEmpty());
  EXPECT_EQ(ny.FromLocal(Local(2026, 11, 1, 1, 30)),
            (std::vector<core::Time>{T("2026-11-01T05:30:00Z"), T("2026-11-01T06:30:00Z")}));

  const TimeZone lord_howe = MustLoad("Australia/Lord_Howe");
  EXPECT_THAT(lord_howe.FromLocal(Local(2026, 10, 4, 2, 15)), ::testing::IsEmpty());
  EXPECT_EQ(lord_howe.FromLocal(Local(2026, 10, 4, 2, 30)).size(), 1u);
  EXPECT_EQ(lord_howe.FromLocal(Local(2026, 4, 5, 1, 45)),
            (std::vector<core::Time>{T("2026-04-04T14:45:00Z"), T("2026-04-04T15:15:00Z")}));

  const TimeZone kathmandu = MustLoad("Asia/Kathmandu");
  EXPECT_EQ(kathmandu.FromLocal(Local(2026, 6, 1, 9, 0)),
            std::vector<core::Time>{T("2026-06-01T03:15:00Z")});
  EXPECT_EQ(kathmandu.ToLocal(T("2026-06-01T03:15:00.999Z")), Local(2026, 6, 1, 9, 0));
}

// Every instant maps to a wall-clock time that maps back to it, and the number
// of instants per wall-clock time agrees with the offset changes.
TEST(TimeZoneLocal, RoundTripsAcrossWholeYears) {
  for (const char* zone :
       {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"}) {
    const TimeZone tz = MustLoad(zone);
    for (const char* start : {"2026-01-01T00:00:00Z", "2100-01-01T00:00:00Z"}) {
      core::Time t = T(start);
      for (int i = 0; i < 366 * 48; ++i, t += std::chrono::minutes(30)) {
        const std::vector<core::Time> back = tz.FromLocal(tz.ToLocal(t));
        ASSERT_THAT(back, ::testing::Contains(t)) << zone << " " << Str(t);
        ASSERT_LE(back.size(), 2u);
      }
    }
  }
}

// zic compiled the Berlin, New York and Lord Howe tables up to 2037 from the
// same rules their footers state, so evaluating the footer alone must
// reproduce every transition in the table.
TEST(TimeZoneFooter, AgreesWithCompiledTables) {
  for (const char* zone : {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe"}) {
    std::ifstream in(std::string(kDefaultZoneinfoDir) + "/" + zone, std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    std::string data = buf.str();
    ASSERT_FALSE(data.empty()) << zone;
    data.pop_back();  // The trailing newline.
    const std::string footer = data.substr(data.rfind('\n') + 1);
    const TimeZone rule_only = FromFooter(footer);
    const TimeZone table = MustLoad(zone);
    for (int year = 2010; year <= 2037; ++year) {
      EXPECT_EQ(TransitionsIn(rule_only, year), TransitionsIn(table, year))
          << zone << " " << year << " footer " << footer;
    }
  }
}

TEST(TimeZoneFooter, JulianDayForms) {
  // Jn counts 1-365 and never Feb 29: J60 is March 1 even in leap years.
  const TimeZone j1 = FromFooter("AAA0BBB,J60,J300");
  EXPECT_EQ(TransitionsIn(j1, 2027).front(), "2027-03-01T02:00:00.000Z 0->3600");
  EXPECT_EQ(TransitionsIn(j1, 2028).front(), "2028-03-01T02:00:00.000Z 0->3600");
  // n counts 0-365 and includes Feb 29: day 59 is Feb 29 in a leap year.
  const TimeZone j0 = FromFooter("AAA0BBB,59,300");
  EXPECT_EQ(TransitionsIn(j0, 2027).front(), "2027-03-01T02:00:00.000Z 0->3600");
  EXPECT_EQ(TransitionsIn(j0, 2028).front(), "2028-02-29T02:00:00.000Z 0->3600");
}

TEST(TimeZoneFooter, NegativeAndOver24HourRuleTimes) {
  // America/Nuuk: DST starts at -1:00 local standard time, i.e. the previous
  // evening, and ends at 0:00 daylight time.
  const TimeZone nuuk = FromFooter("<-02>2<-01>,M3.5.0/-1,M10.5.0/0");
  EXPECT_THAT(TransitionsIn(nuuk, 2026),
              ::testing::ElementsAre("2026-03-29T01:00:00.000Z -7200->-3600",
                                     "2026-10-25T01:00:00.000Z -3600->-7200"));
  // Permanent DST written as a rule whose end meets next year's start.
  const TimeZone always_dst = FromFooter("EST5EDT,0/0,J365/25");
  EXPECT_THAT(TransitionsIn(always_dst, 2026), ::testing::IsEmpty());
  for (const char* at : {"2026-01-01T04:59:59Z", "2026-01-01T05:00:00Z", "2026-07-01T00:00:00Z",
                         "2026-12-31T23:59:59Z"}) {
    EXPECT_EQ(always_dst.OffsetAt(T(at)), seconds(-14400)) << at;
  }
  // Hours up to 167 (v3): here a week less an hour after the first Sunday of
  // April. 168 is beyond the limit and makes the file invalid.
  const TimeZone late = FromFooter("AAA0BBB,M4.1.0/167,M10.1.0");
  EXPECT_EQ(Describe(late.NextTransition(T("2026-01-01T00:00:00Z"))),
            "2026-04-11T23:00:00.000Z 0->3600");
  EXPECT_FALSE(
      TimeZone::FromTzif("x", MakeTzif({.version = '3', .footer = "AAA0BBB,M4.1.0/168,M10.1.0"}))
          .ok());
}

TEST(TimeZoneFooter, DefaultsAndExplicitOffsets) {
  // No rule: glibc's US default, M3.2.0,M11.1.0 at 02:00.
  EXPECT_EQ(TransitionsIn(FromFooter("EST5EDT"), 2026),
            TransitionsIn(MustLoad("America/New_York"), 2026));
  // An explicit daylight offset, here 30 minutes ahead like Lord Howe.
  const TimeZone half = FromFooter("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0");
  EXPECT_EQ(TransitionsIn(half, 2026), TransitionsIn(MustLoad("Australia/Lord_Howe"), 2026));
  // Without DST the footer just fixes the offset.
  const TimeZone fixed = FromFooter("<+0545>-5:45");
  EXPECT_EQ(fixed.OffsetAt(T("2300-01-01T00:00:00Z")), seconds(20700));
  EXPECT_FALSE(fixed.NextTransition(T("2026-01-01T00:00:00Z")).has_value());
}

TEST(TimeZoneTzif, VersionOneFile) {
  // One transition to +01:00 in 2000, no footer: the last type lasts forever.
  const std::string data =
      MakeTzif({.version = '\0', .transitions = {{946684800, 1}}, .type_offsets = {0, 3600}});
  auto tz = TimeZone::FromTzif("v1", data);
  ASSERT_TRUE(tz.ok()) << tz.status().ToString();
  EXPECT_EQ(tz->OffsetAt(T("1999-12-31T23:59:59Z")), seconds(0));
  EXPECT_EQ(tz->OffsetAt(T("2000-01-01T00:00:00Z")), seconds(3600));
  EXPECT_EQ(tz->OffsetAt(T("2100-01-01T00:00:00Z")), seconds(3600));
  EXPECT_EQ(Describe(tz->NextTransition(T("1990-01-01T00:00:00Z"))),
            "2000-01-01T00:00:00.000Z 0->3600");
  EXPECT_FALSE(tz->NextTransition(T("2000-01-01T00:00:00Z")).has_value());
}

TEST(TimeZoneTzif, FooterAppliesOnlyAfterLastTransition) {
  // The table says +01:00 from 2000; the footer (US rules at -05:00) takes over
  // after the last transition in 2010, which itself changes nothing.
  const std::string data = MakeTzif({.version = '2',
                                     .transitions = {{946684800, 1}, {1262304000, 1}},
                                     .type_offsets = {0, 3600},
                                     .footer = "EST5EDT,M3.2.0,M11.1.0"});
  auto tz = TimeZone::FromTzif("mixed", data);
  ASSERT_TRUE(tz.ok()) << tz.status().ToString();
  EXPECT_EQ(tz->OffsetAt(T("2005-07-01T00:00:00Z")), seconds(3600));
  EXPECT_EQ(tz->OffsetAt(T("2026-07-01T00:00:00Z")), seconds(-14400));
  EXPECT_EQ(tz->OffsetAt(T("2026-01-01T00:00:00Z")), seconds(-18000));
}

TEST(TimeZoneTzif, RejectsMalformedData) {
  const std::string good = MakeTzif({.footer = "CET-1CEST,M3.5.0,M10.5.0/3"});
  ASSERT_TRUE(TimeZone::FromTzif("ok", good).ok());
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"not tzif", "bad header"},
      {"TZif2", "bad header"},
      {good.substr(0, good.size() - 40), "truncated"},
      {MakeTzif({.footer = "CET-1CEST,M3.5"}), "bad POSIX TZ string"},
      {MakeTzif({.footer = "1CET"}), "bad POSIX TZ string"},
      {MakeTzif({.transitions = {{0, 5}}}), "type index out of range"},
      {MakeTzif({.transitions = {{100, 0}, {50, 0}}}), "out of order"},
      {MakeTzif({.type_offsets = {30 * 3600}}), "UT offset out of range"},
  };
  for (const auto& [data, why] : bad) {
    auto tz = TimeZone::FromTzif("bad", data);
    ASSERT_FALSE(tz.ok()) << why;
    EXPECT_EQ(tz.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_THAT(tz.status().message(), HasSubstr("malformed TZif data"));
    EXPECT_THAT(tz.status().message(), HasSubstr(why));
  }
}

}  // namespace
}  // namespace sked::cron
