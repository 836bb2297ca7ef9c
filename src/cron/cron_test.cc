// File: cron/cron_test.cc
//
// Tests for CronSpec: every field form and error, the Vixie day rule, aliases,
// seconds, Next() across month and year ends and leap days, and DST in zones
// with one-hour, half-hour and no shifts, today and beyond the TZif tables.
//
// Thread safety: tests share no state.
#include "cron/cron.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "cron/time_zone.h"

namespace sked::cron {
namespace {

using ::testing::ElementsAre;

core::Time T(std::string_view rfc3339) {
  const auto t = core::ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t.value_or(core::Time{});
}

CronSpec MustParse(std::string_view expr) {
  auto spec = CronSpec::Parse(expr);
  EXPECT_TRUE(spec.ok()) << expr << ": " << spec.status().ToString();
  return spec.ok() ? *spec : *CronSpec::Parse("* * * * *");
}

TimeZone Zone(std::string_view name) {
  auto tz = TimeZone::Load(name);
  EXPECT_TRUE(tz.ok()) << name << ": " << tz.status().ToString();
  return tz.ok() ? *tz : TimeZone::Utc();
}

// The next `n` firings after `after`, as UTC RFC 3339 strings.
std::vector<std::string> Fires(std::string_view expr, std::string_view after, int n,
                               const TimeZone& tz = TimeZone::Utc()) {
  const CronSpec spec = MustParse(expr);
  std::vector<std::string> out;
  core::Time t = T(after);
  for (int i = 0; i < n; ++i) {
    const auto next = spec.Next(t, tz);
    if (!next) {
      out.push_back("none");
      break;
    }
    out.push_back(core::FormatRfc3339(*next));
    t = *next;
  }
  return out;
}

std::string Z(std::string_view s) { return std::string(s) + ".000Z"; }

// ---- Parsing ------------------------------------------------------------

TEST(CronParse, FieldForms) {
  EXPECT_THAT(
      Fires("*/15 * * * *", "2026-05-05T10:07:00Z", 3),
      ElementsAre(Z("2026-05-05T10:15:00"), Z("2026-05-05T10:30:00"), Z("2026-05-05T10:45:00")));
  EXPECT_THAT(Fires("5-10/2 * * * *", "2026-05-05T10:00:00Z", 4),
              ElementsAre(Z("2026-05-05T10:05:00"), Z("2026-05-05T10:07:00"),
                          Z("2026-05-05T10:09:00"), Z("2026-05-05T11:05:00")));
  EXPECT_THAT(
      Fires("50/5 * * * *", "2026-05-05T10:00:00Z", 3),
      ElementsAre(Z("2026-05-05T10:50:00"), Z("2026-05-05T10:55:00"), Z("2026-05-05T11:50:00")));
  EXPECT_THAT(Fires("1,2,30 4 * * *", "2026-05-05T10:00:00Z", 4),
              ElementsAre(Z("2026-05-06T04:01:00"), Z("2026-05-06T04:02:00"),
                          Z("2026-05-06T04:30:00"), Z("2026-05-07T04:01:00")));
  EXPECT_THAT(
      Fires("0 9-17/4,23 * * *", "2026-05-05T00:00:00Z", 5),
      ElementsAre(Z("2026-05-05T09:00:00"), Z("2026-05-05T13:00:00"), Z("2026-05-05T17:00:00"),
                  Z("2026-05-05T23:00:00"), Z("2026-05-06T09:00:00")));
  EXPECT_THAT(Fires("0 0 1 jan,Jul *", "2026-05-05T00:00:00Z", 2),
              ElementsAre(Z("2026-07-01T00:00:00"), Z("2027-01-01T00:00:00")));
  EXPECT_THAT(Fires("0 0 1 FEB-APR/2 *", "2026-05-05T00:00:00Z", 2),
              ElementsAre(Z("2027-02-01T00:00:00"), Z("2027-04-01T00:00:00")));
  // 2026-05-08 is a Friday.
  EXPECT_THAT(Fires("0 9 * * mon-FRI", "2026-05-08T10:00:00Z", 2),
              ElementsAre(Z("2026-05-11T09:00:00"), Z("2026-05-12T09:00:00")));
  EXPECT_THAT(Fires("0 0 * * 7", "2026-05-05T00:00:00Z", 2),
              ElementsAre(Z("2026-05-10T00:00:00"), Z("2026-05-17T00:00:00")));
  EXPECT_THAT(Fires("0 0 * * 0", "2026-05-05T00:00:00Z", 1), ElementsAre(Z("2026-05-10T00:00:00")));
  for (const char* weekend : {"0 0 * * 5-7", "0 0 * * FRI-SUN", "0 0 * * 5,6,0"}) {
    EXPECT_THAT(Fires(weekend, "2026-05-05T00:00:00Z", 4),
                ElementsAre(Z("2026-05-08T00:00:00"), Z("2026-05-09T00:00:00"),
                            Z("2026-05-10T00:00:00"), Z("2026-05-15T00:00:00")))
        << weekend;
  }
  EXPECT_THAT(
      Fires("0 0 * * */3", "2026-05-05T00:00:00Z", 3),  // Sun, Wed, Sat.
      ElementsAre(Z("2026-05-06T00:00:00"), Z("2026-05-09T00:00:00"), Z("2026-05-10T00:00:00")));
}

TEST(CronParse, MatchesLocalTimes) {
  const CronSpec spec = MustParse("30 2 * * MON");
  const auto local = [](int y, unsigned m, unsigned d, int hh, int mm) {
    const std::chrono::sys_days day = std::chrono::year(y) / m / d;
    return LocalSeconds(std::chrono::seconds(day.time_since_epoch()) + std::chrono::hours(hh) +
                        std::chrono::minutes(mm));
  };
  EXPECT_TRUE(spec.Matches(local(2026, 5, 4, 2, 30)));
  EXPECT_FALSE(spec.Matches(local(2026, 5, 5, 2, 30)));
  EXPECT_FALSE(spec.Matches(local(2026, 5, 4, 2, 31)));
  EXPECT_FALSE(spec.Matches(local(2026, 5, 4, 2, 30) + std::chrono::seconds(1)));
}

TEST(CronParse, Errors) {
  struct Case {
    const char* expr;
    const char* message;
  };
  const Case cases[] = {
      {"", "cron: want 5 or 6 fields, got 0"},
      {"* * * *", "cron: want 5 or 6 fields, got 4"},
      {"* * * * * * *", "cron: want 5 or 6 fields, got 7"},
      {"60 * * * *", "cron: minute field: 60 is out of range 0-59"},
      {"* 24 * * *", "cron: hour field: 24 is out of range 0-23"},
      {"* * 0 * *", "cron: day-of-month field: 0 is out of range 1-31"},
      {"* * 32 * *", "cron: day-of-month field: 32 is out of range 1-31"},
      {"* * * 13 *", "cron: month field: 13 is out of range 1-12"},
      {"* * * 0 *", "cron: month field: 0 is out of range 1-12"},
      {"* * * * 8", "cron: day-of-week field: 8 is out of range 0-7"},
      {"60 * * * * *", "cron: second field: 60 is out of range 0-59"},
      {"99999999999 * * * *", "cron: minute field: 99999999999 is out of range 0-59"},
      {"*/0 * * * *", "cron: minute field: step 0 is out of range 1-60"},
      {"*/61 * * * *", "cron: minute field: step 61 is out of range 1-60"},
      {"* * * * */8", "cron: day-of-week field: step 8 is out of range 1-7"},
      {"*/x * * * *", "cron: minute field: bad step 'x'"},
      {"*/ * * * *", "cron: minute field: bad step ''"},
      {"/5 * * * *", "cron: minute field: bad element '/5'"},
      {"5-3 * * * *", "cron: minute field: range 5-3 is backwards"},
      {"* * * DEC-JAN *", "cron: month field: range DEC-JAN is backwards"},
      {"1,,2 * * * *", "cron: minute field: empty list element"},
      {"1, * * * *", "cron: minute field: empty list element"},
      {"x * * * *", "cron: minute field: bad value 'x'"},
      {"1-x * * * *", "cron: minute field: bad value 'x'"},
      {"1-2-3 * * * *", "cron: minute field: bad value '2-3'"},
      {"-1 * * * *", "cron: minute field: bad value ''"},
      {"* * JAN * *", "cron: day-of-month field: bad value 'JAN'"},
      {"* * * FOO *", "cron: month field: bad value 'FOO'"},
      {"* * * * MONDAY", "cron: day-of-week field: bad value 'MONDAY'"},
      {"@reboot",
       "cron: @reboot is not supported: sked schedules by time, not by process "
       "start"},
      {"@every 5m", "cron: unknown alias '@every'"},
      {"@daily 5", "cron: alias @daily takes no other fields"},
      {"0 0 30 2 *", "cron: never fires: no listed month has any of the listed days of month"},
      {"0 0 31 4,6,9,11 *",
       "cron: never fires: no listed month has any of the listed days of month"},
      {"0 0 30-31 FEB *", "cron: never fires: no listed month has any of the listed days of month"},
  };
  for (const Case& c : cases) {
    auto spec = CronSpec::Parse(c.expr);
    ASSERT_FALSE(spec.ok()) << c.expr;
    EXPECT_EQ(spec.status().code(), core::StatusCode::kInvalidArgument) << c.expr;
    EXPECT_EQ(spec.status().message(), c.message) << c.expr;
  }
}

TEST(CronParse, RareButPossibleDaysAreAccepted) {
  // Feb 29 exists in leap years; with a weekday too, the OR rule makes it
  // fire on every Monday in February as well.
  EXPECT_TRUE(CronSpec::Parse("0 0 29 2 *").ok());
  EXPECT_THAT(Fires("0 0 30 2 MON", "2026-01-01T00:00:00Z", 2),
              ElementsAre(Z("2026-02-02T00:00:00"), Z("2026-02-09T00:00:00")));
  EXPECT_TRUE(CronSpec::Parse("0 0 31 1-2 *").ok());
}

TEST(CronParse, ToStringNormalizes) {
  EXPECT_EQ(MustParse("  0   9 * *\tmon-fri ").ToString(), "0 9 * * MON-FRI");
  EXPECT_EQ(MustParse("*/5 * * jan *").ToString(), "*/5 * * JAN *");
  EXPECT_EQ(MustParse("0 30 2 * * *").ToString(), "0 30 2 * * *");
  EXPECT_EQ(MustParse("@DAILY").ToString(), "@daily");
  EXPECT_EQ(MustParse(MustParse("1,2 3 * * SUN").ToString()).ToString(), "1,2 3 * * SUN");
}

// ---- Vixie day-of-month / day-of-week rule --------------------------------

TEST(CronDays, BothRestrictedMeansEither) {
  // January 2026: Fridays are the 2nd, 9th, 16th; the 13th is a Tuesday.
  EXPECT_THAT(Fires("0 0 13 * FRI", "2026-01-01T00:00:00Z", 4),
              ElementsAre(Z("2026-01-02T00:00:00"), Z("2026-01-09T00:00:00"),
                          Z("2026-01-13T00:00:00"), Z("2026-01-16T00:00:00")));
}

TEST(CronDays, OneStarMeansBoth) {
  EXPECT_THAT(Fires("0 0 13 * *", "2026-01-01T00:00:00Z", 2),
              ElementsAre(Z("2026-01-13T00:00:00"), Z("2026-02-13T00:00:00")));
  EXPECT_THAT(Fires("0 0 * * FRI", "2026-01-01T00:00:00Z", 2),
              ElementsAre(Z("2026-01-02T00:00:00"), Z("2026-01-09T00:00:00")));
  // As in Vixie cron, "*/2" starts with '*' and so keeps the AND rule: odd
  // days that are also Fridays.
  EXPECT_THAT(
      Fires("0 0 */2 * FRI", "2026-01-01T00:00:00Z", 3),
      ElementsAre(Z("2026-01-09T00:00:00"), Z("2026-01-23T00:00:00"), Z("2026-02-13T00:00:00")));
  // A '*' step in the weekday field ({Sun, Fri}) keeps the AND rule too.
  EXPECT_THAT(Fires("0 0 13 * */5", "2026-01-01T00:00:00Z", 2),
              ElementsAre(Z("2026-02-13T00:00:00"), Z("2026-03-13T00:00:00")));
}

// ---- Aliases and seconds ----------------------------------------------------

TEST(CronAliases, Expand) {
  const char* after = "2026-05-05T10:20:30Z";
  EXPECT_THAT(Fires("@yearly", after, 1), ElementsAre(Z("2027-01-01T00:00:00")));
  EXPECT_THAT(Fires("@annually", after, 1), ElementsAre(Z("2027-01-01T00:00:00")));
  EXPECT_THAT(Fires("@monthly", after, 1), ElementsAre(Z("2026-06-01T00:00:00")));
  EXPECT_THAT(Fires("@weekly", after, 1), ElementsAre(Z("2026-05-10T00:00:00")));
  EXPECT_THAT(Fires("@daily", after, 1), ElementsAre(Z("2026-05-06T00:00:00")));
  EXPECT_THAT(Fires("@midnight", after, 1), ElementsAre(Z("2026-05-06T00:00:00")));
  EXPECT_THAT(Fires("@hourly", after, 2),
              ElementsAre(Z("2026-05-05T11:00:00"), Z("2026-05-05T12:00:00")));
  EXPECT_FALSE(MustParse("@hourly").has_seconds());
}

TEST(CronSeconds, SixFields) {
  EXPECT_TRUE(MustParse("30 * * * * *").has_seconds());
  EXPECT_FALSE(MustParse("30 * * * *").has_seconds());
  EXPECT_THAT(Fires("30 * * * * *", "2026-05-05T10:00:30Z", 2),
              ElementsAre(Z("2026-05-05T10:01:30"), Z("2026-05-05T10:02:30")));
  EXPECT_THAT(Fires("*/20 59 23 31 12 *", "2026-12-31T23:59:40Z", 2),
              ElementsAre(Z("2027-12-31T23:59:00"), Z("2027-12-31T23:59:20")));
  EXPECT_THAT(Fires("0,30 0 12 * * *", "2026-05-05T12:00:00Z", 2),
              ElementsAre(Z("2026-05-05T12:00:30"), Z("2026-05-06T12:00:00")));
}

// ---- Next in UTC ------------------------------------------------------------

TEST(CronNext, StrictlyAfterAndWholeSeconds) {
  const CronSpec spec = MustParse("*/15 * * * *");
  const TimeZone utc = TimeZone::Utc();
  EXPECT_EQ(spec.Next(T("2026-05-05T10:15:00Z"), utc), T("2026-05-05T10:30:00Z"));
  EXPECT_EQ(spec.Next(T("2026-05-05T10:14:59.999Z"), utc), T("2026-05-05T10:15:00Z"));
  EXPECT_EQ(spec.Next(T("2026-05-05T10:15:00.001Z"), utc), T("2026-05-05T10:30:00Z"));
}

TEST(CronNext, MonthAndYearEnds) {
  EXPECT_THAT(Fires("0 0 1 * *", "2026-12-15T00:00:00Z", 2),
              ElementsAre(Z("2027-01-01T00:00:00"), Z("2027-02-01T00:00:00")));
  EXPECT_THAT(Fires("59 23 31 12 *", "2026-12-31T23:59:00Z", 1),
              ElementsAre(Z("2027-12-31T23:59:00")));
  EXPECT_THAT(
      Fires("0 0 31 * *", "2026-01-31T00:00:00Z", 3),
      ElementsAre(Z("2026-03-31T00:00:00"), Z("2026-05-31T00:00:00"), Z("2026-07-31T00:00:00")));
  EXPECT_THAT(Fires("* * * * *", "2026-12-31T23:59:00Z", 1), ElementsAre(Z("2027-01-01T00:00:00")));
}

TEST(CronNext, LeapDays) {
  EXPECT_THAT(
      Fires("0 0 29 2 *", "2026-01-01T00:00:00Z", 3),
      ElementsAre(Z("2028-02-29T00:00:00"), Z("2032-02-29T00:00:00"), Z("2036-02-29T00:00:00")));
  // 2100 is not a leap year.
  EXPECT_THAT(Fires("0 0 29 2 *", "2096-03-01T00:00:00Z", 1),
              ElementsAre(Z("2104-02-29T00:00:00")));
  // Feb 29 that is also a Sunday, under the AND rule ('*'-step weekday).
  EXPECT_THAT(Fires("0 0 29 2 */7", "2026-01-01T00:00:00Z", 1),
              ElementsAre(Z("2032-02-29T00:00:00")));
}

TEST(CronNext, EndsAtYear9999) {
  EXPECT_THAT(Fires("0 0 29 2 *", "9996-03-01T00:00:00Z", 1), ElementsAre("none"));
  EXPECT_THAT(Fires("@yearly", "9999-01-01T00:00:00Z", 1), ElementsAre("none"));
}

TEST(CronNext, FastForIntervals) {
  const CronSpec spec = MustParse("*/5 * * * *");
  // 10,000 five-minute steps from these starts cross Berlin's and Lord Howe's
  // spring changes, from the TZif tables (2026) and from the footers (2100).
  for (const auto& [zone, from] : {std::pair{"UTC", "2026-03-20T00:00:00Z"},
                                   std::pair{"Europe/Berlin", "2026-03-20T00:00:00Z"},
                                   std::pair{"Australia/Lord_Howe", "2026-03-20T00:00:00Z"},
                                   std::pair{"Europe/Berlin", "2100-03-20T00:00:00Z"},
                                   std::pair{"Australia/Lord_Howe", "2100-03-20T00:00:00Z"}}) {
    const TimeZone tz = Zone(zone);
    core::Time t = T(from);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 10'000; ++i) {
      const auto next = spec.Next(t, tz);
      ASSERT_TRUE(next.has_value());
      // Five-minute steps stay five minutes apart even through DST changes,
      // since both offsets are multiples of five minutes.
      ASSERT_EQ(*next - t, std::chrono::minutes(5)) << zone << " from " << from << " at " << i;
      t = *next;
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_LT(elapsed, std::chrono::milliseconds(500)) << zone << " from " << from;
  }
}

// ---- Next with DST ----------------------------------------------------------

// Europe/Berlin 2026: 02:00 CET -> 03:00 CEST on Mar 29 (01:00Z), and
// 03:00 CEST -> 02:00 CET on Oct 25 (01:00Z).
TEST(CronDst, BerlinSpringForward) {
  const TimeZone berlin = Zone("Europe/Berlin");
  // 02:30 does not exist on Mar 29; it runs once, at 03:30 CEST.
  EXPECT_THAT(
      Fires("30 2 * * *", "2026-03-27T12:00:00Z", 3, berlin),
      ElementsAre(Z("2026-03-28T01:30:00"), Z("2026-03-29T01:30:00"), Z("2026-03-30T00:30:00")));
  EXPECT_THAT(Fires("0 2 * * *", "2026-03-28T12:00:00Z", 2, berlin),
              ElementsAre(Z("2026-03-29T01:00:00"), Z("2026-03-30T00:00:00")));
  // Asked from inside the shifted window, the shifted run is still ahead.
  EXPECT_THAT(Fires("30 2 * * *", "2026-03-29T01:10:00Z", 1, berlin),
              ElementsAre(Z("2026-03-29T01:30:00")));
  // Interval specs neither repeat nor stall.
  EXPECT_THAT(Fires("*/15 * * * *", "2026-03-29T00:30:00Z", 4, berlin),
              ElementsAre(Z("2026-03-29T00:45:00"), Z("2026-03-29T01:00:00"),
                          Z("2026-03-29T01:15:00"), Z("2026-03-29T01:30:00")));
  EXPECT_THAT(
      Fires("0 * * * *", "2026-03-28T23:30:00Z", 3, berlin),
      ElementsAre(Z("2026-03-29T00:00:00"), Z("2026-03-29T01:00:00"), Z("2026-03-29T02:00:00")));
  // 02:30 and 03:30 land on the same instant and fire once.
  EXPECT_THAT(
      Fires("30 2,3 * * *", "2026-03-28T12:00:00Z", 3, berlin),
      ElementsAre(Z("2026-03-29T01:30:00"), Z("2026-03-30T00:30:00"), Z("2026-03-30T01:30:00")));
}

TEST(CronDst, BerlinFallBack) {
  const TimeZone berlin = Zone("Europe/Berlin");
  // 02:30 happens twice on Oct 25; a fixed-time job runs at the first (CEST).
  EXPECT_THAT(
      Fires("30 2 * * *", "2026-10-23T12:00:00Z", 3, berlin),
      ElementsAre(Z("2026-10-24T00:30:00"), Z("2026-10-25T00:30:00"), Z("2026-10-26T01:30:00")));
  EXPECT_THAT(Fires("30 2 * * *", "2026-10-25T00:45:00Z", 1, berlin),
              ElementsAre(Z("2026-10-26T01:30:00")));
  EXPECT_THAT(Fires("0 2 * * *", "2026-10-24T12:00:00Z", 2, berlin),
              ElementsAre(Z("2026-10-25T00:00:00"), Z("2026-10-26T01:00:00")));
  EXPECT_THAT(Fires("0 30 2 * * *", "2026-10-24T12:00:00Z", 2, berlin),
              ElementsAre(Z("2026-10-25T00:30:00"), Z("2026-10-26T01:30:00")));
  EXPECT_THAT(Fires("* 2 * * *", "2026-10-25T00:58:00Z", 2, berlin),
              ElementsAre(Z("2026-10-25T00:59:00"), Z("2026-10-26T01:00:00")));
  // Interval-like hour fields run in both copies of the hour.
  for (const char* expr : {"*/30 * * * *", "0,30 * * * *", "0,30 0-23 * * *"}) {
    EXPECT_THAT(
        Fires(expr, "2026-10-24T23:45:00Z", 5, berlin),
        ElementsAre(Z("2026-10-25T00:00:00"), Z("2026-10-25T00:30:00"), Z("2026-10-25T01:00:00"),
                    Z("2026-10-25T01:30:00"), Z("2026-10-25T02:00:00")))
        << expr;
  }
  EXPECT_THAT(
      Fires("0 */2 * * *", "2026-10-24T23:00:00Z", 3, berlin),
      ElementsAre(Z("2026-10-25T00:00:00"), Z("2026-10-25T01:00:00"), Z("2026-10-25T03:00:00")));
}

TEST(CronDst, NewYork) {
  const TimeZone ny = Zone("America/New_York");
  // Mar 8 2026: 02:00 EST -> 03:00 EDT (07:00Z).
  EXPECT_THAT(
      Fires("30 2 * * *", "2026-03-07T12:00:00Z", 3, ny),
      ElementsAre(Z("2026-03-08T07:30:00"), Z("2026-03-09T06:30:00"), Z("2026-03-10T06:30:00")));
  // A weekday job keeps 09:00 local across the change.
  EXPECT_THAT(Fires("0 9 * * MON-FRI", "2026-03-06T00:00:00Z", 2, ny),
              ElementsAre(Z("2026-03-06T14:00:00"), Z("2026-03-09T13:00:00")));
  // Nov 1 2026: 02:00 EDT -> 01:00 EST (06:00Z); 01:30 runs once, in EDT.
  EXPECT_THAT(Fires("30 1 * * *", "2026-10-31T12:00:00Z", 2, ny),
              ElementsAre(Z("2026-11-01T05:30:00"), Z("2026-11-02T06:30:00")));
  EXPECT_THAT(
      Fires("@hourly", "2026-11-01T04:30:00Z", 3, ny),
      ElementsAre(Z("2026-11-01T05:00:00"), Z("2026-11-01T06:00:00"), Z("2026-11-01T07:00:00")));
}

TEST(CronDst, LordHoweHalfHourShift) {
  const TimeZone lh = Zone("Australia/Lord_Howe");
  // Oct 4 2026: 02:00 +10:30 -> 02:30 +11 (Oct 3 15:30Z); 02:15 runs at 02:45.
  EXPECT_THAT(
      Fires("15 2 * * *", "2026-10-02T12:00:00Z", 3, lh),
      ElementsAre(Z("2026-10-02T15:45:00"), Z("2026-10-03T15:45:00"), Z("2026-10-04T15:15:00")));
  // Apr 5 2026: 02:00 +11 -> 01:30 +10:30 (Apr 4 15:00Z); 01:45 repeats.
  EXPECT_THAT(
      Fires("45 1 * * *", "2026-04-03T12:00:00Z", 3, lh),
      ElementsAre(Z("2026-04-03T14:45:00"), Z("2026-04-04T14:45:00"), Z("2026-04-05T15:15:00")));
  EXPECT_THAT(
      Fires("*/15 * * * *", "2026-04-04T14:20:00Z", 5, lh),
      ElementsAre(Z("2026-04-04T14:30:00"), Z("2026-04-04T14:45:00"), Z("2026-04-04T15:00:00"),
                  Z("2026-04-04T15:15:00"), Z("2026-04-04T15:30:00")));
}

TEST(CronDst, NonHourOffsets) {
  EXPECT_THAT(Fires("0 9 * * *", "2026-06-01T00:00:00Z", 2, Zone("Asia/Kolkata")),
              ElementsAre(Z("2026-06-01T03:30:00"), Z("2026-06-02T03:30:00")));
  EXPECT_THAT(Fires("0 9 * * *", "2026-06-01T00:00:00Z", 1, Zone("Asia/Kathmandu")),
              ElementsAre(Z("2026-06-01T03:15:00")));
  // Local midnight on New Year, which is still Dec 31 in UTC.
  EXPECT_THAT(Fires("@yearly", "2026-06-01T00:00:00Z", 1, Zone("Asia/Kathmandu")),
              ElementsAre(Z("2026-12-31T18:15:00")));
}

TEST(CronDst, FarFutureUsesFooterRules) {
  const TimeZone berlin = Zone("Europe/Berlin");
  // 2100: spring forward Mar 28, fall back Oct 31, both at 01:00Z.
  EXPECT_THAT(Fires("30 2 * * *", "2100-03-27T12:00:00Z", 2, berlin),
              ElementsAre(Z("2100-03-28T01:30:00"), Z("2100-03-29T00:30:00")));
  EXPECT_THAT(Fires("30 2 * * *", "2100-10-30T12:00:00Z", 2, berlin),
              ElementsAre(Z("2100-10-31T00:30:00"), Z("2100-11-01T01:30:00")));
  EXPECT_THAT(Fires("0 12 1 7 *", "2100-01-01T00:00:00Z", 1, berlin),
              ElementsAre(Z("2100-07-01T10:00:00")));
  EXPECT_THAT(Fires("30 2 * * *", "2100-03-13T12:00:00Z", 2, Zone("America/New_York")),
              ElementsAre(Z("2100-03-14T07:30:00"), Z("2100-03-15T06:30:00")));
  EXPECT_THAT(Fires("0 0 29 2 *", "2100-01-01T00:00:00Z", 1, berlin),
              ElementsAre(Z("2104-02-28T23:00:00")));
}

// An independent oracle: walk wall-clock minutes, map each match to instants
// with FromLocal and the documented DST rules, and compare with chained Next.
TEST(CronDst, AgreesWithWallClockOracle) {
  struct Window {
    const char* zone;
    const char* from;  // UTC; the window spans four days.
  };
  const Window windows[] = {
      {"Europe/Berlin", "2026-03-27T00:00:00Z"},
      {"Europe/Berlin", "2026-10-23T00:00:00Z"},
      {"Europe/Berlin", "2100-10-29T00:00:00Z"},
      {"America/New_York", "2026-03-06T00:00:00Z"},
      {"America/New_York", "2026-10-30T00:00:00Z"},
      {"Australia/Lord_Howe", "2026-04-02T00:00:00Z"},
      {"Australia/Lord_Howe", "2026-10-01T00:00:00Z"},
  };
  const char* specs[] = {"30 2 * * *", "*/15 * * * *",   "0 * * * *",  "0 */2 * * *", "45 1 * * *",
                         "15 2 * * *", "0,30 1-3 * * *", "10 * * * *", "59 1 * * *"};
  for (const Window& w : windows) {
    const TimeZone tz = Zone(w.zone);
    const core::Time from = T(w.from);
    const core::Time to = from + std::chrono::hours(96);
    for (const char* expr : specs) {
      const CronSpec spec = MustParse(expr);
      const std::string_view hour_field = [&] {
        std::string_view e(expr);
        e.remove_prefix(e.find(' ') + 1);
        return e.substr(0, e.find(' '));
      }();
      const bool interval = hour_field.front() == '*';
      std::vector<core::Time> want;
      const LocalSeconds first = tz.ToLocal(from) - std::chrono::hours(2);
      for (LocalSeconds l = first; l < tz.ToLocal(to) + std::chrono::hours(2);
           l += std::chrono::minutes(1)) {
        if (!spec.Matches(l)) continue;
        const std::vector<core::Time> at = tz.FromLocal(l);
        if (at.empty()) {
          // Gap: shift forward by the gap, i.e. read it with the old offset.
          const core::Time as_utc(l.time_since_epoch());
          const auto before = std::min(tz.OffsetAt(as_utc - std::chrono::hours(24)),
                                       tz.OffsetAt(as_utc + std::chrono::hours(24)));
          want.push_back(as_utc - before);
        } else {
          want.push_back(at[0]);
          if (at.size() == 2 && interval) want.push_back(at[1]);
        }
      }
      std::sort(want.begin(), want.end());
      want.erase(std::unique(want.begin(), want.end()), want.end());
      std::erase_if(want, [&](core::Time t) { return t <= from || t > to; });

      std::vector<core::Time> got;
      for (auto t = spec.Next(from, tz); t && *t <= to && got.size() < 1000;
           t = spec.Next(*t, tz)) {
        ASSERT_TRUE(got.empty() || *t > got.back()) << expr << " in " << w.zone;
        got.push_back(*t);
      }
      EXPECT_EQ(got, want) << expr << " in " << w.zone << " from " << w.from;

      // Asked from any instant, not just from the previous firing, Next()
      // returns the first wanted firing after it.
      for (core::Time a = from; !want.empty() && a < want.back(); a += std::chrono::seconds(61)) {
        const auto first = std::upper_bound(want.begin(), want.end(), a);
        ASSERT_EQ(spec.Next(a, tz), *first)
            << expr << " in " << w.zone << " after " << core::FormatRfc3339(a);
      }
    }
  }
}

}  // namespace
}  // namespace sked::cron
