#include "api/task_json.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <set>
#include <string>

namespace sked::api {
namespace {

core::Time At(std::string_view s) { return core::ParseRfc3339(s).value(); }

core::Task ScheduledFizz() {
  core::Task t;
  t.id = "0193a6f0-1234-7abc-8def-0123456789ab";
  t.type = "fizz";
  t.runner = "builtin";
  t.run_at = At("2026-11-23T19:00:00.123Z");
  t.created_at = At("2026-11-23T18:59:00Z");
  return t;
}

TEST(TaskToJson, BuiltinScheduledHasEveryFieldWithNulls) {
  core::Task t = ScheduledFizz();
  // Internal fields must never show.
  t.lease_owner = "node-1";
  t.lease_expires_at = At("2026-11-23T19:01:00Z");
  t.handle = "token-1";
  t.free_attempts = 1;
  EXPECT_EQ(boost::json::value(TaskToJson(t)), boost::json::parse(R"({
      "id": "0193a6f0-1234-7abc-8def-0123456789ab", "type": "fizz",
      "run_at": "2026-11-23T19:00:00.123Z", "state": "scheduled", "runner": "builtin",
      "image": null, "command": null, "env": null,
      "attempt": 0, "max_attempts": 3, "timeout_s": 3600,
      "idempotency_key": null, "labels": {},
      "created_at": "2026-11-23T18:59:00.000Z", "started_at": null, "finished_at": null,
      "instance_id": null, "result": null, "error": null,
      "queue": "default", "notify_url": null, "schedule_id": null, "occurrence": null})"));
}

TEST(TaskToJson, KeySetIsExactlyTheSpecPlusExtras) {
  std::set<std::string> keys;
  for (const auto& kv : TaskToJson(ScheduledFizz())) keys.emplace(kv.key());
  EXPECT_EQ(
      keys,
      (std::set<std::string>{
          "id",      "type",       "run_at",     "state",        "runner",      "image",
          "command", "env",        "attempt",    "max_attempts", "timeout_s",   "idempotency_key",
          "labels",  "created_at", "started_at", "finished_at",  "instance_id", "result",
          "error",   "queue",      "notify_url", "schedule_id",  "occurrence"}));
}

TEST(TaskToJson, FinishedContainerTask) {
  core::Task t = ScheduledFizz();
  t.type = "container";
  t.runner = "ec2-spot";
  t.image = "busybox:1.36";
  t.command = {"sh", "-c", "echo hi"};
  t.env = {{"KEY", "VALUE"}};
  t.state = core::TaskState::kFailed;
  t.attempt = 2;
  t.max_attempts = 2;
  t.timeout_s = 60;
  t.idempotency_key = "k";
  t.labels = {{"team", "data"}};
  t.queue = "batch";
  t.notify_url = "https://example.com/hook";
  t.schedule_id = "sched-1";
  t.occurrence = At("2026-11-23T19:00:00Z");
  t.started_at = At("2026-11-23T19:00:01Z");
  t.finished_at = At("2026-11-23T19:00:02.5Z");
  t.instance_id = "i-0abc";
  t.result = core::TaskResult{.exit_code = 1, .output = "boom"};
  t.error = "exit code 1";
  EXPECT_EQ(boost::json::value(TaskToJson(t)), boost::json::parse(R"({
      "id": "0193a6f0-1234-7abc-8def-0123456789ab", "type": "container",
      "run_at": "2026-11-23T19:00:00.123Z", "state": "failed", "runner": "ec2-spot",
      "image": "busybox:1.36", "command": ["sh", "-c", "echo hi"], "env": {"KEY": "VALUE"},
      "attempt": 2, "max_attempts": 2, "timeout_s": 60,
      "idempotency_key": "k", "labels": {"team": "data"},
      "created_at": "2026-11-23T18:59:00.000Z", "started_at": "2026-11-23T19:00:01.000Z",
      "finished_at": "2026-11-23T19:00:02.500Z", "instance_id": "i-0abc",
      "result": {"exit_code": 1, "output": "boom"}, "error": "exit code 1",
      "queue": "batch", "notify_url": "https://example.com/hook", "schedule_id": "sched-1",
      "occurrence": "2026-11-23T19:00:00.000Z"})"));
}

TEST(TaskToJson, ContainerWithoutCommandOrEnvHasEmptyOnes) {
  core::Task t = ScheduledFizz();
  t.type = "container";
  t.image = "busybox";
  auto o = TaskToJson(t);
  EXPECT_EQ(o.at("command"), boost::json::array{});
  EXPECT_EQ(o.at("env"), boost::json::object{});
}

TEST(TaskToJson, EveryStateName) {
  core::Task t = ScheduledFizz();
  for (auto [s, name] : {std::pair{core::TaskState::kScheduled, "scheduled"},
                         std::pair{core::TaskState::kProvisioning, "provisioning"},
                         std::pair{core::TaskState::kRunning, "running"},
                         std::pair{core::TaskState::kSucceeded, "succeeded"},
                         std::pair{core::TaskState::kFailed, "failed"},
                         std::pair{core::TaskState::kCancelled, "cancelled"}}) {
    t.state = s;
    EXPECT_EQ(TaskToJson(t).at("state"), name);
  }
}

TEST(TaskToJson, StringsAreEscaped) {
  core::Task t = ScheduledFizz();
  t.result = core::TaskResult{.exit_code = 0, .output = "line1\n\"q\"\t\u00e9"};
  auto text = boost::json::serialize(TaskToJson(t));
  EXPECT_EQ(boost::json::parse(text).at("result").at("output"), "line1\n\"q\"\t\u00e9");
}

TEST(EventToJson, Fields) {
  core::TaskEvent e{.at = At("2026-11-23T19:00:00Z"),
                    .state = core::TaskState::kRunning,
                    .attempt = 1,
                    .node = "node-1",
                    .instance_id = std::nullopt,
                    .message = "claimed"};
  EXPECT_EQ(boost::json::value(EventToJson(e)), boost::json::parse(R"({
      "at": "2026-11-23T19:00:00.000Z", "state": "running", "attempt": 1,
      "node": "node-1", "instance_id": null, "message": "claimed"})"));
  e.node.reset();
  e.instance_id = "i-1";
  EXPECT_EQ(EventToJson(e).at("node"), nullptr);
  EXPECT_EQ(EventToJson(e).at("instance_id"), "i-1");
}

TEST(NodeToJson, Fields) {
  core::NodeInfo n{.id = "node-1",
                   .version = "0.1.0",
                   .started_at = At("2026-11-23T19:00:00Z"),
                   .last_heartbeat = At("2026-11-23T19:00:05.250Z"),
                   .concurrency = 64};
  EXPECT_EQ(boost::json::value(NodeToJson(n)), boost::json::parse(R"({
      "id": "node-1", "version": "0.1.0", "started_at": "2026-11-23T19:00:00.000Z",
      "last_heartbeat": "2026-11-23T19:00:05.250Z", "concurrency": 64})"));
}

}  // namespace
}  // namespace sked::api
