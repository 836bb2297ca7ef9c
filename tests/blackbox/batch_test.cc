// POST /v1/tasks:batch: all or nothing, up to 1000, idempotency keys per slot.
#include <gmock/gmock.h>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

using BatchTest = BlackboxTest;

constexpr const char* kFarFuture = "2100-01-01T00:00:00.000Z";

TEST_F(BatchTest, CreatesEveryTaskInOrderAndTheyRun) {
  StartServer();
  const std::vector<std::string> types = {"fizz", "buzz", "foo", "noop", "baz"};
  json::array bodies;
  for (const auto& t : types) bodies.push_back(TaskBody(t));
  HttpResponse r = api().PostJson("/v1/tasks:batch", json::object{{"tasks", bodies}});
  ASSERT_EQ(r.status, 201) << Describe(r);
  json::object answer = r.Object();
  const json::array& created = Arr(answer, "tasks");
  ASSERT_EQ(created.size(), types.size());
  for (size_t i = 0; i < types.size(); ++i) {
    const json::object& t = created[i].as_object();
    EXPECT_EQ(Str(t, "type"), types[i]) << "slot " << i;
    EXPECT_TRUE(IsUuidV7(Str(t, "id")));
    EXPECT_EQ(Str(t, "state"), "scheduled");
  }
  EXPECT_EQ(CountTasks(), types.size());
  for (const auto& t : created) WaitForState(Str(t.as_object(), "id"), "succeeded");
}

struct BadBatch {
  std::string name;
  std::string body;
  std::optional<std::string> field;
};
// gtest prints the case by its name, not as bytes.
void PrintTo(const BadBatch& c, std::ostream* os) { *os << c.name; }

class BatchValidationTest : public BlackboxTest, public ::testing::WithParamInterface<BadBatch> {};

TEST_P(BatchValidationTest, Is400AndStoresNothing) {
  StartServer();
  ExpectError(api().PostRaw("/v1/tasks:batch", GetParam().body), 400, "invalid_argument",
              GetParam().field);
  EXPECT_EQ(CountTasks(), 0u) << "a rejected batch stored tasks";
}

std::string ManyNoops(int n) {
  json::array a;
  for (int i = 0; i < n; ++i) a.push_back(TaskBody("noop", {{"run_at", kFarFuture}}));
  return json::serialize(json::object{{"tasks", a}});
}

INSTANTIATE_TEST_SUITE_P(
    Bodies, BatchValidationTest,
    ::testing::Values(
        BadBatch{"OneUnknownType",
                 R"({"tasks": [{"type": "noop"}, {"type": "fizz"}, {"type": "nope"}]})",
                 "tasks[2].type"},
        BadBatch{"OneBadRunAt",
                 R"({"tasks": [{"type": "noop", "run_at": "tomorrow"}, {"type": "noop"}]})",
                 "tasks[0].run_at"},
        BadBatch{"OneUnknownField",
                 R"({"tasks": [{"type": "noop"}, {"type": "noop", "colour": 1}]})",
                 "tasks[1].colour"},
        BadBatch{"ElementNotObject", R"({"tasks": [{"type": "noop"}, 7]})", std::nullopt},
        BadBatch{"Empty", R"({"tasks": []})", std::nullopt},
        BadBatch{"Over1000", ManyNoops(1001), std::nullopt},
        BadBatch{"MissingTasks", R"({})", std::nullopt},
        BadBatch{"TasksNotArray", R"({"tasks": {"type": "noop"}})", std::nullopt},
        BadBatch{"UnknownTopLevelField", R"({"tasks": [{"type": "noop"}], "extra": true})",
                 std::nullopt},
        BadBatch{"Malformed", R"({"tasks": [)", std::nullopt}),
    [](const auto& info) { return info.param.name; });

TEST_F(BatchTest, ExactlyThousandIsAccepted) {
  StartServer();
  HttpResponse r = api().PostRaw("/v1/tasks:batch", ManyNoops(1000));
  ASSERT_EQ(r.status, 201) << Describe(r);
  EXPECT_EQ(Arr(r.Object(), "tasks").size(), 1000u);
  EXPECT_EQ(CountTasks(), 1000u);
}

TEST_F(BatchTest, ExistingIdempotencyKeyReturnsTheExistingTaskInItsSlot) {
  StartServer();
  json::object existing =
      CreateTask(TaskBody("fizz", {{"run_at", kFarFuture}, {"idempotency_key", "batch-k1"}}));
  std::vector<json::object> out =
      CreateBatch({TaskBody("fizz", {{"run_at", kFarFuture}, {"idempotency_key", "batch-k1"}}),
                   TaskBody("buzz", {{"run_at", kFarFuture}, {"idempotency_key", "batch-k2"}})});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], existing);
  EXPECT_NE(Str(out[1], "id"), Str(existing, "id"));
  EXPECT_EQ(Str(out[1], "type"), "buzz");
  EXPECT_EQ(CountTasks(), 2u);
}

}  // namespace
}  // namespace sked::blackbox
