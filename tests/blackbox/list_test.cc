// GET /v1/tasks: order, every filter, keyset pagination and its bad parameters.
// Tasks here are mostly far in the future so their state stays put.
#include <gmock/gmock.h>

#include <algorithm>
#include <set>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

using ListTest = BlackboxTest;

// 2100-01-01T00:00:00Z plus `minutes`.
SysMs Future(int minutes) {
  return SysMs(std::chrono::sys_days(std::chrono::year(2100) / 1 / 1)) +
         std::chrono::minutes(minutes);
}

std::vector<std::string> Ids(const std::vector<json::object>& tasks) {
  std::vector<std::string> ids;
  for (const auto& t : tasks) ids.push_back(Str(t, "id"));
  return ids;
}

std::vector<std::string> Ids(const json::object& page) {
  std::vector<json::object> tasks;
  for (const auto& t : Arr(page, "tasks")) tasks.push_back(t.as_object());
  return Ids(tasks);
}

TEST_F(ListTest, EmptyServerListsNothing) {
  StartServer();
  json::object page = ListPage("");
  EXPECT_TRUE(Arr(page, "tasks").empty());
  EXPECT_TRUE(IsNull(page, "next_cursor")) << Dump(page);
}

TEST_F(ListTest, NewestRunAtFirstUnlessOrderAsc) {
  StartServer();
  // Created out of run_at order, so creation order cannot pass for run_at order.
  std::vector<std::string> by_minute(5);
  for (int m : {3, 0, 4, 1, 2}) {
    by_minute[m] = Str(CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(Future(m))}})), "id");
  }
  std::vector<std::string> desc(by_minute.rbegin(), by_minute.rend());
  EXPECT_EQ(Ids(ListPage("")), desc);
  EXPECT_EQ(Ids(ListPage("order=desc")), desc);
  EXPECT_EQ(Ids(ListPage("order=asc")), by_minute);
}

TEST_F(ListTest, FiltersByStateCommaList) {
  StartServer();
  std::string done1 = Str(CreateTask(TaskBody("noop")), "id");
  std::string done2 = Str(CreateTask(TaskBody("noop")), "id");
  std::string later1 = Str(CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(Future(1))}})), "id");
  std::string later2 = Str(CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(Future(2))}})), "id");
  std::string stopped = Str(CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(Future(3))}})), "id");
  ASSERT_EQ(api().Request("POST", "/v1/tasks/" + stopped + "/cancel").status, 200);
  WaitForState(done1, "succeeded");
  WaitForState(done2, "succeeded");

  auto set_of = [&](std::string_view q) {
    std::vector<std::string> ids = Ids(ListAll(q));
    return std::set<std::string>(ids.begin(), ids.end());
  };
  EXPECT_EQ(set_of("state=scheduled"), (std::set<std::string>{later1, later2}));
  EXPECT_EQ(set_of("state=succeeded"), (std::set<std::string>{done1, done2}));
  EXPECT_EQ(set_of("state=scheduled,cancelled"), (std::set<std::string>{later1, later2, stopped}));
  EXPECT_EQ(set_of("state=failed"), std::set<std::string>{});
  for (const auto& t : ListAll("state=scheduled,cancelled")) {
    EXPECT_THAT(Str(t, "state"), ::testing::AnyOf("scheduled", "cancelled"));
  }
}

TEST_F(ListTest, FiltersByTypeCommaList) {
  StartServer();
  std::map<std::string, std::string> id_of;
  int m = 0;
  for (const char* type : {"fizz", "buzz", "foo", "baz", "fizzbuzz"}) {
    id_of[type] = Str(CreateTask(TaskBody(type, {{"run_at", Rfc3339(Future(m++))}})), "id");
  }
  auto set_of = [&](std::string_view q) {
    std::vector<std::string> ids = Ids(ListAll(q));
    return std::set<std::string>(ids.begin(), ids.end());
  };
  EXPECT_EQ(set_of("type=fizz"), (std::set<std::string>{id_of["fizz"]}));
  EXPECT_EQ(set_of("type=fizz,foo"), (std::set<std::string>{id_of["fizz"], id_of["foo"]}));
  EXPECT_EQ(set_of("type=noop"), std::set<std::string>{});
  EXPECT_EQ(set_of("type=buzz&state=scheduled"), (std::set<std::string>{id_of["buzz"]}));
}

TEST_F(ListTest, SinceIsInclusiveAndUntilExclusiveOnRunAt) {
  StartServer();
  std::vector<std::string> ids;
  for (int m = 0; m < 5; ++m) {
    ids.push_back(Str(CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(Future(m))}})), "id"));
  }
  // RFC 3339 bounds (percent-encoded) and epoch-second bounds select the same window.
  std::string q =
      "since=" + UrlEncode(Rfc3339(Future(1))) + "&until=" + UrlEncode(Rfc3339(Future(3)));
  EXPECT_EQ(Ids(ListPage(q)), (std::vector<std::string>{ids[2], ids[1]}));
  auto epoch = [](SysMs t) { return std::to_string(t.time_since_epoch().count() / 1000); };
  std::string qe = "since=" + epoch(Future(1)) + "&until=" + epoch(Future(3)) + "&order=asc";
  EXPECT_EQ(Ids(ListPage(qe)), (std::vector<std::string>{ids[1], ids[2]}));
  EXPECT_EQ(Ids(ListPage("since=" + UrlEncode(Rfc3339(Future(4))))),
            (std::vector<std::string>{ids[4]}));
  EXPECT_EQ(Ids(ListPage("until=" + UrlEncode(Rfc3339(Future(1))))),
            (std::vector<std::string>{ids[0]}));
}

TEST_F(ListTest, LabelFiltersMustAllMatch) {
  StartServer();
  std::string a =
      Str(CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(Future(0))},
                                       {"labels", {{"team", "data"}, {"env", "prod"}}}})),
          "id");
  std::string b =
      Str(CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(Future(1))},
                                       {"labels", {{"team", "data"}, {"env", "dev"}}}})),
          "id");
  Str(CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(Future(2))}, {"labels", {{"team", "web"}}}})),
      "id");
  Str(CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(Future(3))}})), "id");
  EXPECT_EQ(Ids(ListPage("label=team:data")), (std::vector<std::string>{b, a}));
  EXPECT_EQ(Ids(ListPage("label=team:data&label=env:prod")), (std::vector<std::string>{a}));
  EXPECT_EQ(Ids(ListPage("label=" + UrlEncode("team:data"))), (std::vector<std::string>{b, a}));
  EXPECT_TRUE(Ids(ListPage("label=team:nope")).empty());
}

// 25 tasks with run_at ties (three per second), so the cursor must break ties.
class ListPaginationTest : public BlackboxTest,
                           public ::testing::WithParamInterface<std::string> {};

TEST_P(ListPaginationTest, LimitAndNextCursorVisitEveryTaskOnce) {
  const std::string order = GetParam();
  StartServer();
  json::array bodies;
  for (int i = 0; i < 25; ++i) {
    SysMs at = Future(0) + seconds(i / 3);
    bodies.push_back(TaskBody("fizz", {{"run_at", Rfc3339(at)}}));
  }
  std::vector<std::string> created = Ids(CreateBatch(bodies));
  ASSERT_EQ(created.size(), 25u);

  std::vector<json::object> seen;
  std::vector<size_t> page_sizes;
  std::optional<std::string> cursor;
  for (int page = 0; page < 10; ++page) {
    std::string q = "limit=10&order=" + order;
    if (cursor) q += "&cursor=" + UrlEncode(*cursor);
    json::object p = ListPage(q);
    const json::array& tasks = Arr(p, "tasks");
    page_sizes.push_back(tasks.size());
    for (const auto& t : tasks) seen.push_back(t.as_object());
    ASSERT_TRUE(p.contains("next_cursor")) << Dump(p);
    if (p.at("next_cursor").is_null()) break;
    ASSERT_TRUE(p.at("next_cursor").is_string()) << Dump(p);
    cursor = std::string(p.at("next_cursor").as_string());
  }
  EXPECT_EQ(page_sizes, (std::vector<size_t>{10, 10, 5}));

  std::vector<std::string> ids = Ids(seen);
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size()) << "a task was listed twice";
  EXPECT_EQ(unique, std::set<std::string>(created.begin(), created.end())) << "a task was skipped";
  // The pages together are in run_at order.
  for (size_t i = 1; i < seen.size(); ++i) {
    SysMs a = TimeField(seen[i - 1], "run_at"), b = TimeField(seen[i], "run_at");
    if (order == "asc") {
      EXPECT_LE(a, b) << "at " << i;
    } else {
      EXPECT_GE(a, b) << "at " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Orders, ListPaginationTest, ::testing::Values("desc", "asc"));

TEST_F(ListTest, DefaultLimitIs100AndMaxIs1000) {
  StartServer();
  json::array bodies;
  for (int i = 0; i < 105; ++i)
    bodies.push_back(TaskBody("fizz", {{"run_at", Rfc3339(Future(i))}}));
  CreateBatch(bodies);
  json::object page = ListPage("");
  EXPECT_EQ(Arr(page, "tasks").size(), 100u);
  EXPECT_TRUE(page.at("next_cursor").is_string()) << "more follow, so next_cursor is a string";
  json::object all = ListPage("limit=1000");
  EXPECT_EQ(Arr(all, "tasks").size(), 105u);
  EXPECT_TRUE(IsNull(all, "next_cursor"));
  EXPECT_EQ(Arr(ListPage("limit=1"), "tasks").size(), 1u);
}

class BadListParamTest : public BlackboxTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(BadListParamTest, Is400InvalidArgument) {
  StartServer();
  CreateTask(TaskBody("fizz", {{"run_at", Rfc3339(Future(0))}}));
  ExpectError(api().Get("/v1/tasks?" + GetParam()), 400, "invalid_argument");
}

INSTANTIATE_TEST_SUITE_P(Params, BadListParamTest,
                         ::testing::Values("limit=0", "limit=1001", "limit=-1", "limit=abc",
                                           "state=bogus", "state=scheduled,bogus", "type=bogus",
                                           "type=fizz,container2", "order=sideways",
                                           "since=tomorrow",
                                           "until=" + UrlEncode("2026-02-30T00:00:00Z"), "since=-5",
                                           "cursor=" + UrlEncode("not a cursor!"), "cursor=AAAA",
                                           "label=nocolon"),
                         [](const auto& info) {
                           std::string name;
                           for (char c : info.param)
                             name.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
                           return name + "_" + std::to_string(info.index);
                         });

}  // namespace
}  // namespace sked::blackbox
