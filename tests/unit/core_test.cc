// Unit tests of src/core: time parsing and formatting, the transition table,
// task names, UUIDv7 ids, and Status/StatusOr with their macros. They live here
// rather than beside the code because src/core is frozen for this change.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "core/task.h"
#include "core/time.h"

namespace sked::core {
namespace {

// --- Time ----------------------------------------------------------------------

TEST(Time, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(FormatRfc3339(TimeFromSeconds(0)), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(TimeFromSeconds(1800000000)), "2027-01-15T08:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(TimeFromMicros(1'800'000'000'123'999)), "2027-01-15T08:00:00.123Z");
  EXPECT_EQ(FormatRfc3339(TimeFromSeconds(253402300799LL)), "9999-12-31T23:59:59.000Z");
  EXPECT_EQ(FormatRfc3339(TimeFromSeconds(951782400)), "2000-02-29T00:00:00.000Z");
}

TEST(Time, RoundTripsAtMillisecondPrecision) {
  for (int64_t ms :
       {int64_t{0}, int64_t{1}, int64_t{999}, int64_t{86'399'999}, int64_t{1'800'000'000'123},
        int64_t{4'102'444'800'000}, int64_t{253'402'300'799'999}}) {
    Time t = TimeFromMicros(ms * 1000);
    std::string s = FormatRfc3339(t);
    SCOPED_TRACE(s);
    auto back = ParseRfc3339(s);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, t);
  }
}

TEST(Time, ParsesOffsetsAndVariants) {
  const Time base = *ParseRfc3339("2026-11-23T19:00:00Z");
  EXPECT_EQ(FormatRfc3339(base), "2026-11-23T19:00:00.000Z");
  EXPECT_EQ(ParseRfc3339("2026-11-23T20:30:00+01:30"), base);
  EXPECT_EQ(ParseRfc3339("2026-11-23T14:00:00-05:00"), base);
  EXPECT_EQ(ParseRfc3339("2026-11-23T19:00:00+00:00"), base);
  EXPECT_EQ(ParseRfc3339("2026-11-23T19:00:00-00:00"), base);
  EXPECT_EQ(ParseRfc3339("2026-11-23t19:00:00z"), base);
  EXPECT_EQ(ParseRfc3339("2026-11-23 19:00:00Z"), base);
  EXPECT_EQ(ParseRfc3339("2026-11-24T18:59:00+23:59"), base);
  EXPECT_EQ(ParseRfc3339("2026-11-23T19:00:00.5Z"), base + std::chrono::milliseconds(500));
  EXPECT_EQ(ParseRfc3339("2026-11-23T19:00:00.123456Z"), base + Duration(123456));
  // Digits beyond microseconds are dropped, not rounded.
  EXPECT_EQ(ParseRfc3339("2026-11-23T19:00:00.123456789Z"), base + Duration(123456));
  // A leap second is clamped to :59.
  EXPECT_EQ(ParseRfc3339("2016-12-31T23:59:60Z"), ParseRfc3339("2016-12-31T23:59:59Z"));
  EXPECT_EQ(ParseRfc3339("2024-02-29T00:00:00Z"), TimeFromSeconds(1709164800));
  EXPECT_EQ(ParseRfc3339("1970-01-01T00:00:00Z"), TimeFromSeconds(0));
  EXPECT_EQ(ParseRfc3339("9999-12-31T23:59:59Z"), TimeFromSeconds(253402300799LL));
}

TEST(Time, Rejects) {
  for (const char* s : {
           "",
           "2026",
           "2026-11-23",
           "2026-11-23T19:00:00",  // no offset
           "2026-11-23T19:00Z",    // no seconds
           "2026-11-23X19:00:00Z",
           "2026-11-23T19:00:00ZZ",  // trailing text
           "2026-11-23T19:00:00Z ",
           " 2026-11-23T19:00:00Z",
           "2026-11-23T19:00:00+0100",  // offset without colon
           "2026-11-23T19:00:00+01",
           "2026-11-23T19:00:00+24:00",
           "2026-11-23T19:00:00+01:60",
           "2026-11-23T19:00:00.Z",            // empty fraction
           "2026-11-23T19:00:00.1234567890Z",  // more than 9 digits
           "2026-11-23T24:00:00Z",
           "2026-11-23T19:60:00Z",
           "2026-11-23T19:00:61Z",
           "2026-02-30T00:00:00Z",
           "2025-02-29T00:00:00Z",  // not a leap year
           "2026-13-01T00:00:00Z",
           "2026-00-01T00:00:00Z",
           "2026-11-00T00:00:00Z",
           "1969-12-31T23:59:59Z",  // before 1970
           "26-11-23T19:00:00Z",
           "2026-1-23T19:00:00Z",
           "+2026-11-23T19:00:00Z",
           "2026-11-23T19:00:00.12a3Z",
           "1800000000",
       }) {
    SCOPED_TRACE(s);
    EXPECT_FALSE(ParseRfc3339(s).has_value());
  }
}

TEST(Time, Conversions) {
  EXPECT_EQ(ToMicros(TimeFromSeconds(2)), 2'000'000);
  EXPECT_EQ(ToMicros(TimeFromMicros(-5)), -5);
  EXPECT_EQ(TimeFromSeconds(1), TimeFromMicros(1'000'000));
}

// --- Task states and the transition table -------------------------------------

using S = TaskState;
constexpr S kAll[] = {S::kScheduled, S::kProvisioning, S::kRunning,
                      S::kSucceeded, S::kFailed,       S::kCancelled};

TEST(TaskState, NamesRoundTripAndAreStable) {
  const std::map<S, std::string> names = {
      {S::kScheduled, "scheduled"}, {S::kProvisioning, "provisioning"},
      {S::kRunning, "running"},     {S::kSucceeded, "succeeded"},
      {S::kFailed, "failed"},       {S::kCancelled, "cancelled"}};
  for (S s : kAll) {
    EXPECT_EQ(TaskStateName(s), names.at(s));
    EXPECT_EQ(ParseTaskState(TaskStateName(s)), s);
  }
  EXPECT_FALSE(ParseTaskState("Running"));
  EXPECT_FALSE(ParseTaskState(""));
  EXPECT_FALSE(ParseTaskState("canceled"));
}

TEST(TaskState, Terminal) {
  for (S s : kAll) {
    bool want = s == S::kSucceeded || s == S::kFailed || s == S::kCancelled;
    EXPECT_EQ(IsTerminal(s), want) << TaskStateName(s);
  }
}

TEST(IsValidTransition, EveryPair) {
  // Rows: from; columns: to, in kAll's order (sch, prov, run, succ, fail, canc).
  const std::map<S, std::vector<bool>> table = {
      {S::kScheduled, {false, true, true, true, true, true}},
      {S::kProvisioning, {true, false, true, true, true, true}},
      {S::kRunning, {true, false, false, true, true, true}},
      {S::kSucceeded, {false, false, false, false, false, false}},
      {S::kFailed, {false, false, false, false, false, false}},
      {S::kCancelled, {false, false, false, false, false, false}},
  };
  for (S from : kAll) {
    for (size_t j = 0; j < std::size(kAll); ++j) {
      S to = kAll[j];
      EXPECT_EQ(IsValidTransition(from, to), table.at(from)[j])
          << TaskStateName(from) << " -> " << TaskStateName(to);
    }
  }
}

TEST(IsValidTransition, TerminalStatesAreFinalAndNoSelfLoops) {
  for (S from : kAll) {
    EXPECT_FALSE(IsValidTransition(from, from)) << TaskStateName(from);
    if (IsTerminal(from)) {
      for (S to : kAll) {
        EXPECT_FALSE(IsValidTransition(from, to));
      }
    }
  }
}

TEST(TaskTypes, BuiltinsAndContainer) {
  for (const char* t : {"fizz", "buzz", "fizzbuzz", "foo", "bar", "baz", "noop"})
    EXPECT_TRUE(IsBuiltinType(t)) << t;
  for (const char* t : {"container", "Fizz", "", "shell"}) EXPECT_FALSE(IsBuiltinType(t)) << t;
  EXPECT_EQ(kContainerType, "container");
}

TEST(Task, ChargedAttempts) {
  Task t;
  t.attempt = 5;
  t.free_attempts = 2;
  EXPECT_EQ(t.ChargedAttempts(), 3);
  Task d;
  EXPECT_EQ(d.queue, "default");
  EXPECT_EQ(d.max_attempts, 3);
  EXPECT_EQ(d.timeout_s, 3600);
  EXPECT_EQ(d.state, S::kScheduled);
}

// --- UUIDv7 --------------------------------------------------------------------

TEST(UuidV7, Format) {
  const Time t = TimeFromMicros(1'800'000'000'123'456);
  std::string id = NewUuidV7(t, 0xFFFF'FFFF'FFFF'FFFFULL, 0xFFFF'FFFF'FFFF'FFFFULL);
  ASSERT_EQ(id.size(), 36u);
  EXPECT_TRUE(IsUuid(id));
  EXPECT_EQ(id[14], '7');                                          // version
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos);  // RFC 9562 variant
  // The first 48 bits are the Unix time in milliseconds.
  char ms_hex[13];
  std::snprintf(ms_hex, sizeof ms_hex, "%012llx", 1'800'000'000'123ULL);
  EXPECT_EQ(id.substr(0, 8) + id.substr(9, 4), ms_hex);
  EXPECT_EQ(NewUuidV7(t, 0, 0), id.substr(0, 15) + "000-8000-000000000000");
  EXPECT_EQ(NewUuidV7(t, 0xABC, 0x123456789ULL), id.substr(0, 15) + "abc-8000-000123456789");
}

TEST(UuidV7, OrderedByTime) {
  std::string prev;
  for (int64_t ms = 1'700'000'000'000; ms < 1'700'000'000'000 + 5000; ms += 7) {
    std::string id = NewUuidV7(TimeFromMicros(ms * 1000), 0xFFF, ~0ULL);
    std::string next = NewUuidV7(TimeFromMicros((ms + 1) * 1000), 0, 0);
    EXPECT_LT(id, next);  // a later millisecond sorts after any random bits
    if (!prev.empty()) {
      EXPECT_LT(prev, id);
    }
    prev = id;
  }
}

TEST(UuidV7, DistinctRandomBitsGiveDistinctIds) {
  std::set<std::string> ids;
  const Time t = TimeFromSeconds(1800000000);
  for (uint64_t i = 0; i < 100; ++i) ids.insert(NewUuidV7(t, i, i * 7919));
  EXPECT_EQ(ids.size(), 100u);
}

TEST(IsUuid, Rejects) {
  EXPECT_TRUE(IsUuid("0193a6f0-1234-7abc-8def-0123456789ab"));
  for (const char* s :
       {"", "0193a6f0-1234-7abc-8def-0123456789a", "0193a6f0-1234-7abc-8def-0123456789abc",
        "0193A6F0-1234-7ABC-8DEF-0123456789AB", "0193a6f0_1234-7abc-8def-0123456789ab",
        "0193a6f01234-7abc-8def-0123456789ab-", "0193a6f0-1234-7abc-8def-0123456789ag"}) {
    EXPECT_FALSE(IsUuid(s)) << s;
  }
}

// --- Status, StatusOr and the macros ---------------------------------------------

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_EQ(s, OkStatus());
}

TEST(Status, ConstructorsSetTheirCode) {
  struct Row {
    Status s;
    StatusCode code;
    const char* name;
  };
  const std::vector<Row> rows = {
      {InvalidArgumentError("m"), StatusCode::kInvalidArgument, "INVALID_ARGUMENT"},
      {NotFoundError("m"), StatusCode::kNotFound, "NOT_FOUND"},
      {AlreadyExistsError("m"), StatusCode::kAlreadyExists, "ALREADY_EXISTS"},
      {FailedPreconditionError("m"), StatusCode::kFailedPrecondition, "FAILED_PRECONDITION"},
      {AbortedError("m"), StatusCode::kAborted, "ABORTED"},
      {UnavailableError("m"), StatusCode::kUnavailable, "UNAVAILABLE"},
      {InternalError("m"), StatusCode::kInternal, "INTERNAL"},
      {UnauthenticatedError("m"), StatusCode::kUnauthenticated, "UNAUTHENTICATED"},
      {PermissionDeniedError("m"), StatusCode::kPermissionDenied, "PERMISSION_DENIED"},
      {DeadlineExceededError("m"), StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED"},
      {ResourceExhaustedError("m"), StatusCode::kResourceExhausted, "RESOURCE_EXHAUSTED"},
      {CancelledError("m"), StatusCode::kCancelled, "CANCELLED"},
  };
  for (const auto& r : rows) {
    EXPECT_FALSE(r.s.ok());
    EXPECT_EQ(r.s.code(), r.code);
    EXPECT_EQ(r.s.message(), "m");
    EXPECT_EQ(StatusCodeName(r.code), r.name);
    EXPECT_EQ(r.s.ToString(), std::string(r.name) + ": m");
  }
  EXPECT_EQ(StatusCodeName(StatusCode::kOk), "OK");
}

TEST(Status, Equality) {
  EXPECT_EQ(NotFoundError("a"), NotFoundError("a"));
  EXPECT_NE(NotFoundError("a"), NotFoundError("b"));
  EXPECT_NE(NotFoundError("a"), AbortedError("a"));
}

TEST(StatusOr, HoldsValueOrStatus) {
  StatusOr<int> v = 7;
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 7);
  EXPECT_EQ(v.value(), 7);
  EXPECT_TRUE(v.status().ok());
  *v = 8;
  EXPECT_EQ(v.value(), 8);

  StatusOr<int> e = NotFoundError("gone");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status(), NotFoundError("gone"));

  StatusOr<std::string> s = std::string("abc");
  EXPECT_EQ(s->size(), 3u);
}

TEST(StatusOr, MoveOnlyValues) {
  StatusOr<std::unique_ptr<int>> p = std::make_unique<int>(5);
  ASSERT_TRUE(p.ok());
  std::unique_ptr<int> taken = std::move(p).value();
  EXPECT_EQ(*taken, 5);
}

Status FailIf(bool fail) { return fail ? AbortedError("lost") : OkStatus(); }

Status UsesReturnIfError(bool fail, int& reached) {
  RETURN_IF_ERROR(FailIf(fail));
  ++reached;
  return OkStatus();
}

StatusOr<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd");
  return x / 2;
}

StatusOr<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));  // two on adjacent lines need distinct temporaries
  return q;
}

Status MoveOnly(std::unique_ptr<int>& out) {
  ASSIGN_OR_RETURN(out, StatusOr<std::unique_ptr<int>>(std::make_unique<int>(9)));
  return OkStatus();
}

TEST(Macros, ReturnIfError) {
  int reached = 0;
  EXPECT_TRUE(UsesReturnIfError(false, reached).ok());
  EXPECT_EQ(reached, 1);
  EXPECT_EQ(UsesReturnIfError(true, reached), AbortedError("lost"));
  EXPECT_EQ(reached, 1);
}

TEST(Macros, AssignOrReturn) {
  EXPECT_EQ(Quarter(8).value(), 2);
  EXPECT_EQ(Quarter(6).status(), InvalidArgumentError("odd"));
  EXPECT_EQ(Quarter(5).status(), InvalidArgumentError("odd"));
  std::unique_ptr<int> out;
  ASSERT_TRUE(MoveOnly(out).ok());
  EXPECT_EQ(*out, 9);
}

}  // namespace
}  // namespace sked::core
