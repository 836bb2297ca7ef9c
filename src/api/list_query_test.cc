#include "api/list_query.h"

#include <gtest/gtest.h>

#include <boost/url/url_view.hpp>
#include <string>
#include <vector>

#include "api/internal/codec_test_util.h"

namespace sked::api {
namespace {

using testing::IsInvalid;
using testing::IsOk;

using S = core::TaskState;

// Parses as the server does: the query of a request target, '+' decoded as space.
core::StatusOr<core::TaskListParams> Query(std::string_view query) {
  std::string target = "/v1/tasks?" + std::string(query);
  boost::urls::url_view url(target);
  return ParseListQuery(url.params());
}

core::StatusOr<core::TaskListParams> Legacy(std::string_view query) {
  std::string target = "/task?" + std::string(query);
  boost::urls::url_view url(target);
  return ParseLegacyTaskQuery(url.params());
}

TEST(ParseListQuery, Defaults) {
  for (const char* q :
       {"", "&", "state=&type=&since=&until=&label=&queue=&order=&limit=&cursor="}) {
    SCOPED_TRACE(q);
    auto r = Query(q);
    ASSERT_TRUE(IsOk(r));
    EXPECT_TRUE(r->states.empty());
    EXPECT_TRUE(r->types.empty());
    EXPECT_FALSE(r->since);
    EXPECT_FALSE(r->until);
    EXPECT_TRUE(r->labels.empty());
    EXPECT_FALSE(r->queue);
    EXPECT_FALSE(r->schedule_id);
    EXPECT_FALSE(r->ascending);
    EXPECT_EQ(r->limit, 100);
    EXPECT_FALSE(r->after);
  }
}

TEST(ParseListQuery, StateAndTypeLists) {
  auto r = Query("state=running,failed&state=running&state=succeeded,&type=fizz,container");
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->states, (std::vector<S>{S::kRunning, S::kFailed, S::kSucceeded}));
  EXPECT_EQ(r->types, (std::vector<std::string>{"fizz", "container"}));
  r = Query(
      "state=scheduled,provisioning,running,succeeded,failed,cancelled"
      "&type=fizz,buzz,fizzbuzz,foo,bar,baz,noop,container");
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->states.size(), 6u);
  EXPECT_EQ(r->types.size(), 8u);
  // Percent-encoded commas are commas too.
  r = Query("state=running%2Cfailed");
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->states.size(), 2u);
}

TEST(ParseListQuery, Times) {
  auto r = Query("since=1800000000&until=2026-11-23T19:00:00.5Z");
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->since, core::TimeFromSeconds(1800000000));
  EXPECT_EQ(r->until, core::ParseRfc3339("2026-11-23T19:00:00.500Z"));
  // An offset's '+' arrives as a space when not percent-encoded; both work.
  for (const char* q : {"since=2026-11-23T20:00:00%2B01:00", "since=2026-11-23T20:00:00+01:00",
                        "since=2026-11-23T18:00:00-01:00"}) {
    SCOPED_TRACE(q);
    r = Query(q);
    ASSERT_TRUE(IsOk(r));
    EXPECT_EQ(r->since, core::ParseRfc3339("2026-11-23T19:00:00Z"));
  }
  r = Query("since=0&until=253402300799");
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->since, core::TimeFromSeconds(0));
}

TEST(ParseListQuery, LabelsQueueScheduleOrderLimitCursor) {
  core::TaskListCursor c{core::TimeFromMicros(1'800'000'000'123'456),
                         "0193a6f0-1234-7abc-8def-0123456789ab"};
  auto r = Query(
      "label=team:data&label=app.kubernetes.io/name:a:b&label=empty:&queue=batch"
      "&schedule_id=0193a6f0-0000-7000-8000-000000000000&order=asc&limit=1000&cursor=" +
      EncodeCursor(c));
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->labels, (std::vector<std::pair<std::string, std::string>>{
                           {"team", "data"}, {"app.kubernetes.io/name", "a:b"}, {"empty", ""}}));
  EXPECT_EQ(r->queue, "batch");
  EXPECT_EQ(r->schedule_id, "0193a6f0-0000-7000-8000-000000000000");
  EXPECT_TRUE(r->ascending);
  EXPECT_EQ(r->limit, 1000);
  ASSERT_TRUE(r->after);
  EXPECT_EQ(r->after->run_at, c.run_at);
  EXPECT_EQ(r->after->id, c.id);
  r = Query("order=desc&limit=1");
  ASSERT_TRUE(IsOk(r));
  EXPECT_FALSE(r->ascending);
  EXPECT_EQ(r->limit, 1);
}

TEST(ParseListQuery, Rejects) {
  struct Case {
    std::string query, message;
  };
  const std::string kNot = "not a time";
  const std::string kRange = "out of range (epoch seconds 0 to 253402300799, years 1970 to 9999)";
  const std::vector<Case> cases = {
      {"foo=1", "foo: unknown parameter"},
      {"status=running", "status: unknown parameter"},  // the alias is the briefs' route only
      {"kind=fizz", "kind: unknown parameter"},
      {"a%20b=1", R"(unknown parameter "a b")"},
      {"state=bogus", R"(state: unknown state "bogus")"},
      {"state=Running", R"(state: unknown state "Running")"},
      {"state=running,done", R"(state: unknown state "done")"},
      {"type=shell", R"(type: unknown type "shell")"},
      {"type=Fizz", R"(type: unknown type "Fizz")"},
      {"since=yesterday", "since: " + kNot},
      {"since=2026-11-23", "since: " + kNot},
      {"since=-5", "since: " + kNot},
      {"until=2026-11-23T19:00:00", "until: " + kNot},
      {"until=253402300800", "until: " + kRange},
      {"until=99999999999999999999999", "until: " + kRange},
      {"since=1970-01-01T00:30:00%2B01:00", "since: " + kRange},
      {"label=team", "label: must be key:value"},
      {"label=:x", "label: key must be 1 to 63 characters of [A-Za-z0-9_.-/]"},
      {"label=a%20b:x", "label: key must be 1 to 63 characters of [A-Za-z0-9_.-/]"},
      {"label=team:" + std::string(256, 'v'), "label: value longer than 255 characters"},
      {"queue=a%20b", "queue: must be 1 to 64 characters of [A-Za-z0-9_.-]"},
      {"queue=" + std::string(65, 'q'), "queue: must be 1 to 64 characters of [A-Za-z0-9_.-]"},
      {"schedule_id=" + std::string(256, 's'), "schedule_id: longer than 255 characters"},
      {"order=up", "order: must be asc or desc"},
      {"order=ASC", "order: must be asc or desc"},
      {"limit=0", "limit: must be an integer from 1 to 1000"},
      {"limit=1001", "limit: must be an integer from 1 to 1000"},
      {"limit=-1", "limit: must be an integer from 1 to 1000"},
      {"limit=ten", "limit: must be an integer from 1 to 1000"},
      {"limit=1.0", "limit: must be an integer from 1 to 1000"},
      {"limit=99999999999999999999", "limit: must be an integer from 1 to 1000"},
      {"cursor=!!", "cursor: malformed"},
      {"limit=1&limit=2", "limit: given more than once"},
      {"order=asc&order=asc", "order: given more than once"},
      {"since=0&since=1", "since: given more than once"},
      {"cursor=MTox&cursor=MTox", "cursor: given more than once"},
      {"queue=a&queue=b", "queue: given more than once"},
      {"schedule_id=a&schedule_id=b", "schedule_id: given more than once"},
      {"queue=%FF", "queue: not valid UTF-8"},
      {"%FF=1", "query: a parameter name is not valid UTF-8"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.query);
    EXPECT_TRUE(IsInvalid(Query(c.query), c.message));
  }
}

TEST(ParseLegacyTaskQuery, AliasesAndLooseWords) {
  auto r = Legacy("status=Completed&state=RUNNING&kind=FizzBuzz&type=Fizz%20Buzz,foo,BAR");
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->states, (std::vector<S>{S::kSucceeded, S::kRunning}));
  EXPECT_EQ(r->types, (std::vector<std::string>{"fizzbuzz", "foo", "bar"}));

  struct Case {
    const char* word;
    S state;
  };
  for (const Case& c :
       {Case{"scheduled", S::kScheduled}, Case{"Pending", S::kScheduled},
        Case{"queued", S::kScheduled}, Case{"PROVISIONING", S::kProvisioning},
        Case{"Running", S::kRunning}, Case{"done", S::kSucceeded}, Case{"SUCCEEDED", S::kSucceeded},
        Case{"success", S::kSucceeded}, Case{"Failed", S::kFailed}, Case{"error", S::kFailed},
        Case{"canceled", S::kCancelled}, Case{"Cancelled", S::kCancelled}}) {
    SCOPED_TRACE(c.word);
    r = Legacy(std::string("status=") + c.word);
    ASSERT_TRUE(IsOk(r));
    EXPECT_EQ(r->states, std::vector<S>{c.state});
  }
  for (const char* word : {"fizz", "Fizz", "FIZZ_BUZZ", "fizz-buzz", "Noop", "Container"}) {
    SCOPED_TRACE(word);
    EXPECT_TRUE(IsOk(Legacy(std::string("kind=") + word)));
  }
}

TEST(ParseLegacyTaskQuery, EmptyParametersAreIgnored) {
  auto r = Legacy("status=&state=&kind=&type=&since=&until=");
  ASSERT_TRUE(IsOk(r));
  EXPECT_TRUE(r->states.empty());
  EXPECT_TRUE(r->types.empty());
  EXPECT_FALSE(r->since);
  EXPECT_FALSE(r->until);
}

TEST(ParseLegacyTaskQuery, TimesAndV1Parameters) {
  auto r = Legacy("since=1800000000&until=2026-11-23T19:00:00Z&limit=5&order=ASC");
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->since, core::TimeFromSeconds(1800000000));
  EXPECT_EQ(r->limit, 5);
  EXPECT_TRUE(r->ascending);
}

TEST(ParseLegacyTaskQuery, Rejects) {
  EXPECT_TRUE(IsInvalid(Legacy("status=bogus"), R"(status: unknown state "bogus")"));
  EXPECT_TRUE(IsInvalid(Legacy("kind=Qux"), R"(kind: unknown type "Qux")"));
  EXPECT_TRUE(IsInvalid(Legacy("since=soon"), "since: not a time"));
  EXPECT_TRUE(IsInvalid(Legacy("foo=1"), "foo: unknown parameter"));
}

TEST(Cursor, RoundTripsAndIsUrlSafe) {
  for (int64_t us :
       {int64_t{0}, int64_t{1}, int64_t{1'800'000'000'123'456}, int64_t{253402300799999999}}) {
    for (const char* id : {"a", "ab", "abc", "0193a6f0-1234-7abc-8def-0123456789ab", "x_y-Z"}) {
      core::TaskListCursor c{core::TimeFromMicros(us), id};
      std::string text = EncodeCursor(c);
      SCOPED_TRACE(text);
      for (char ch : text) {
        EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_');
      }
      auto d = DecodeCursor(text);
      ASSERT_TRUE(IsOk(d));
      EXPECT_EQ(d->run_at, c.run_at);
      EXPECT_EQ(d->id, c.id);
    }
  }
}

// A valid cursor whose last character carries low bits no encoder sets.
std::string StrayBits() {
  std::string text = EncodeCursor({core::TimeFromMicros(1), "ab"});
  EXPECT_EQ(text.back(), 'g');
  text.back() = 'h';
  return text;
}

TEST(Cursor, RejectsMalformed) {
  auto encode_raw = [](std::string_view raw) {
    // Any raw text through the same alphabet, via a cursor-shaped detour.
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    size_t i = 0;
    for (; i + 2 < raw.size(); i += 3) {
      uint32_t n = (uint8_t(raw[i]) << 16) | (uint8_t(raw[i + 1]) << 8) | uint8_t(raw[i + 2]);
      for (int s : {18, 12, 6, 0}) out += kAlphabet[(n >> s) & 63];
    }
    if (i < raw.size()) {
      uint32_t n = uint8_t(raw[i]) << 16;
      if (i + 1 < raw.size()) n |= uint8_t(raw[i + 1]) << 8;
      out += kAlphabet[(n >> 18) & 63];
      out += kAlphabet[(n >> 12) & 63];
      if (i + 1 < raw.size()) out += kAlphabet[(n >> 6) & 63];
    }
    return out;
  };
  ASSERT_EQ(encode_raw("1:abc"), EncodeCursor({core::TimeFromMicros(1), "abc"}));
  for (const std::string& text :
       {std::string(""), std::string("A"), std::string("!!!!"), std::string("MTox="),
        std::string("MTox MTox"), std::string(300, 'A'), encode_raw("abc"), encode_raw("x:id"),
        encode_raw("1:"), encode_raw(":id"), encode_raw("-1:id"), encode_raw("1:a b"),
        encode_raw("1:a:b"), encode_raw("253402300800000000:id"),
        encode_raw("1:" + std::string(129, 'i')), StrayBits()}) {
    SCOPED_TRACE(text);
    EXPECT_TRUE(IsInvalid(DecodeCursor(text), "cursor: malformed"));
  }
}

}  // namespace
}  // namespace sked::api
