// The docker runner end to end: the real sked binary, the real Docker engine
// (label `docker`; scripts/test.sh starts dockerd), and a local image built
// from Debian's busybox-static (tests/docker/build-test-image.sh). Containers
// use host networking, so a job calls back on 127.0.0.1.
#include <gmock/gmock.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

constexpr char kImage[] = "sked-test-busybox:latest";

class DockerTest : public BlackboxTest {
 protected:
  static void SetUpTestSuite() {
    const std::string script = SKED_SOURCE_DIR "/tests/docker/build-test-image.sh";
    ASSERT_EQ(std::system(("bash '" + script + "' >/dev/null").c_str()), 0)
        << "could not build " << kImage << " (is a Docker engine running?)";
  }

  ServerProcess& Start(ServerOptions o = {}) {
    o.docker = true;
    ServerProcess& s = StartServer(std::move(o));
    EXPECT_FALSE(s.WaitForLog("docker runner off", milliseconds(300))) << s.LogTail();
    return s;
  }

  // The containers of task `id`, running or not.
  static std::vector<std::string> ContainersOf(const std::string& id) {
    CommandResult r = RunCommand({"/usr/bin/docker", "ps", "-aq", "--filter",
                                  "label=sked.task-id=" + id});
    std::vector<std::string> out;
    std::string line;
    for (char c : r.output) {
      if (c == '\n') {
        if (!line.empty()) out.push_back(line);
        line.clear();
      } else {
        line.push_back(c);
      }
    }
    if (!line.empty()) out.push_back(line);
    return out;
  }

  json::object Container(json::array command, json::object extra = {}) {
    json::object body = {{"type", "container"}, {"image", kImage}, {"command", command}};
    for (auto& kv : extra) body[kv.key()] = kv.value();
    return body;
  }
};

TEST_F(DockerTest, AContainerRunsAtItsTimeAndSeesItsEnvExactly) {
  Start();
  const std::vector<std::pair<std::string, std::string>> env = {
      {"QUOTES", R"(it's "quoted" \ back\slash)"},
      {"SUBST", "$(id) `id` ${HOME} $HOME"},
      {"NEWLINES", "line one\nline two\n"},
      {"UNICODE", "naïve café — 日本 🚀"},
      {"EQUALS", "a=b=c"},
      {"EMPTY", ""},
      {"SEMI", "x; rm -rf / #"},
  };
  json::object env_json;
  std::string script;
  for (const auto& [k, v] : env) {
    env_json[k] = v;
    // printf is the shell's own; "$VAR" is expanded once, never evaluated.
    script += "printf '%s\\n|END|\\n' \"$" + k + "\"; ";
  }
  script += "echo \"task=$SKED_TASK_ID attempt=$SKED_ATTEMPT\"";
  const SysMs run_at = NowMs() + milliseconds(1500);
  json::object created = CreateTask(Container({"sh", "-c", script},
                                              {{"env", env_json}, {"run_at", Rfc3339(run_at)}}));
  const std::string id = Str(created, "id");
  EXPECT_EQ(Str(created, "runner"), "docker");
  json::object done = WaitForState(id, "succeeded", seconds(60));
  EXPECT_GE(TimeField(done, "started_at"), run_at);
  std::string want;
  for (const auto& [k, v] : env) want += v + "\n|END|\n";
  want += "task=" + id + " attempt=1\n";
  EXPECT_EQ(Str(Obj(done, "result"), "output"), want);
  EXPECT_EQ(Int(Obj(done, "result"), "exit_code"), 0);
  EXPECT_TRUE(WaitUntil([&] { return ContainersOf(id).empty(); })) << "a container was left";
}

TEST_F(DockerTest, ANonZeroExitFailsWithItsCodeAndLogTail) {
  Start();
  std::string id = Str(CreateTask(Container({"sh", "-c", "echo starting; echo broken >&2; exit 3"},
                                            {{"max_attempts", 1}})),
                       "id");
  json::object t = WaitForState(id, "failed", seconds(60));
  EXPECT_EQ(Int(Obj(t, "result"), "exit_code"), 3);
  EXPECT_THAT(Str(Obj(t, "result"), "output"), ::testing::HasSubstr("broken"));
  EXPECT_THAT(Str(t, "error"), ::testing::HasSubstr("exit code 3"));
  EXPECT_TRUE(WaitUntil([&] { return ContainersOf(id).empty(); }));
}

TEST_F(DockerTest, TheJobsCallbackDecidesTheOutcome) {
  Start();
  const std::string call =
      "wget -q -O- --header \"Authorization: Bearer $SKED_CALLBACK_TOKEN\" "
      "--header 'Content-Type: application/json' "
      "--post-data \"{\\\"attempt\\\": $SKED_ATTEMPT, \\\"status\\\": \\\"%s\\\", "
      "\\\"message\\\": \\\"from the job\\\"}\" \"$SKED_CALLBACK_URL\"; sleep 30";
  char ok[1024], bad[1024];
  std::snprintf(ok, sizeof ok, call.c_str(), "succeeded");
  std::snprintf(bad, sizeof bad, call.c_str(), "failed");
  std::string good_id = Str(CreateTask(Container({"sh", "-c", ok})), "id");
  std::string bad_id = Str(CreateTask(Container({"sh", "-c", bad}, {{"max_attempts", 3}})), "id");
  WaitForState(good_id, "succeeded", seconds(60));
  json::object failed = WaitForState(bad_id, "failed", seconds(60));
  EXPECT_EQ(Int(failed, "attempt"), 1) << "a job's own `failed` is final";
  // The job was still sleeping: its container was stopped and removed.
  EXPECT_TRUE(WaitUntil([&] { return ContainersOf(good_id).empty(); }));
  EXPECT_TRUE(WaitUntil([&] { return ContainersOf(bad_id).empty(); }));
}

TEST_F(DockerTest, TimeoutCancelAndDeleteLeaveNoContainer) {
  Start();
  std::string slow = Str(CreateTask(Container({"sleep", "300"}, {{"timeout_s", 2},
                                                                 {"max_attempts", 1}})),
                         "id");
  std::string cancelled = Str(CreateTask(Container({"sleep", "300"})), "id");
  std::string deleted = Str(CreateTask(Container({"sleep", "300"})), "id");
  WaitForState(cancelled, "running", seconds(30));
  WaitForState(deleted, "running", seconds(30));
  ASSERT_TRUE(WaitUntil([&] { return ContainersOf(cancelled).size() == 1; }));
  ASSERT_EQ(api().PostJson("/v1/tasks/" + cancelled + "/cancel", json::object{}).status, 200);
  ASSERT_EQ(api().Delete("/v1/tasks/" + deleted).status, 204);
  json::object timed_out = WaitForState(slow, "failed", seconds(30));
  EXPECT_THAT(Str(timed_out, "error"), ::testing::HasSubstr("timed out"));
  for (const auto& id : {slow, cancelled, deleted}) {
    EXPECT_TRUE(WaitUntil([&] { return ContainersOf(id).empty(); }, seconds(15)))
        << "container of " << id << " left behind";
  }
}

TEST_F(DockerTest, AnUnknownImageFailsWithAReadableError) {
  Start();
  std::string id = Str(CreateTask({{"type", "container"},
                                   {"image", "sked-test-no-such-image:v9"},
                                   {"max_attempts", 3}}),
                       "id");
  json::object t = WaitForState(id, "failed", seconds(90));
  EXPECT_THAT(Str(t, "error"), ::testing::HasSubstr("sked-test-no-such-image:v9"));
  EXPECT_EQ(Int(t, "attempt"), 1) << "an image that cannot be pulled is not retried";
}

TEST_F(DockerTest, TheOriginalBriefsScheduleRouteRunsAContainer) {
  Start();
  HttpResponse r = api().PostJson(
      "/schedule", {{"docker_image", kImage}, {"scheduled_for", Rfc3339(NowMs())},
                    {"env_vars", {{"GREETING", "hello"}}}});
  ASSERT_EQ(r.status, 200) << Describe(r);
  const std::string id = Str(r.Object(), "id");
  // busybox's default command is a shell with no input: it exits 0 at once.
  WaitForState(id, "succeeded", seconds(60));
  EXPECT_EQ(api().Get("/status/" + id).body, "DONE");
}

// A node killed while its container runs: the node that comes back (with
// another node id, as a restart gets by default) adopts the container once
// the dead node's lease has run out; the job runs once, in attempt 1.
TEST_F(DockerTest, AKilledNodesContainerIsAdoptedNotRunAgain) {
  Start({.node_id = "docker-node-a", .extra_args = {"--lease-s", "2"}});
  std::string id = Str(CreateTask(Container({"sh", "-c", "sleep 4; echo ran-once"})), "id");
  WaitForState(id, "running", seconds(30));
  ASSERT_TRUE(WaitUntil([&] { return ContainersOf(id).size() == 1; }));
  ExitStatus st = server().Kill();
  EXPECT_FALSE(st.exited);

  server().options().node_id = "docker-node-b";
  server().Start();
  json::object done = WaitForState(id, "succeeded", seconds(60));
  EXPECT_EQ(Int(done, "attempt"), 1) << "the job ran again: " << Dump(done);
  EXPECT_EQ(Str(Obj(done, "result"), "output"), "ran-once\n");
  bool adopted = false;
  for (const auto& e : Events(id)) adopted |= Str(e, "message") == "adopted by docker-node-b";
  EXPECT_TRUE(adopted) << Dump(json::value_from(Events(id)));
  EXPECT_TRUE(WaitUntil([&] { return ContainersOf(id).empty(); }));
}

// A container whose task was deleted while no node watched it is removed by
// the next node that sees it.
TEST_F(DockerTest, AContainerWhoseTaskIsGoneIsRemoved) {
  ServerProcess& node = Start({.node_id = "docker-node-c", .extra_args = {"--lease-s", "2"}});
  std::string id = Str(CreateTask(Container({"sleep", "300"})), "id");
  WaitForState(id, "running", seconds(30));
  ASSERT_TRUE(WaitUntil([&] { return ContainersOf(id).size() == 1; }));
  node.Kill();
  {
    // An API-only node without docker on the same database deletes the task.
    ServerProcess api_only({.concurrency = 0, .db_url = "sqlite:" + node.db_path()});
    api_only.Start();
    HttpClient http([&] { return api_only.base_url(); });
    ASSERT_EQ(http.Delete("/v1/tasks/" + id).status, 204);
    api_only.Stop();
  }
  EXPECT_EQ(ContainersOf(id).size(), 1u) << "nobody watched it meanwhile";
  node.Start();
  EXPECT_TRUE(WaitUntil([&] { return ContainersOf(id).empty(); }, seconds(20)))
      << "the orphan container was left running";
}

}  // namespace
}  // namespace sked::blackbox
