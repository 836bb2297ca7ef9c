// Restart safety: a crash (SIGKILL) or a graceful stop (SIGTERM) loses no task,
// runs none before its run_at, and a restarted server on the same database
// finishes everything. Runs at --time-scale 0.1 (fizz 300 ms, fizzbuzz 1.5 s)
// so tasks are caught mid-run.
#include <gmock/gmock.h>

#include <csignal>
#include <map>
#include <set>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

std::string ExpectedOutput(const json::object& t) {
  std::string type = Str(t, "type"), id = Str(t, "id");
  if (type == "fizz") return "Fizz " + id;
  if (type == "buzz") return "Buzz " + id;
  if (type == "fizzbuzz") return "Fizz Buzz " + id;
  return "";
}

class RestartTest : public BlackboxTest {
 protected:
  // Every task in `created` ended succeeded with its output, kept its run_at,
  // and neither started_at nor any "running" event is before run_at.
  void ExpectAllSucceededOnTime(const std::vector<json::object>& created) {
    for (const auto& c : created) {
      std::string id = Str(c, "id");
      SCOPED_TRACE(id);
      json::object t = GetTask(id);
      EXPECT_EQ(Str(t, "state"), "succeeded") << Dump(t);
      if (Str(t, "state") != "succeeded") continue;
      EXPECT_EQ(Str(Obj(t, "result"), "output"), ExpectedOutput(c));
      SysMs run_at = TimeField(t, "run_at");
      EXPECT_EQ(run_at, TimeField(c, "run_at")) << "run_at changed";
      EXPECT_GE(TimeField(t, "started_at"), run_at);
      for (const auto& e : Events(id)) {
        if (Str(e, "state") == "running") {
          EXPECT_GE(TimeField(e, "at"), run_at) << Dump(e);
        }
      }
    }
  }
};

TEST_F(RestartTest, KillNineMidRunLosesNothingAndRunsNothingEarly) {
  // --lease-s 5 (instead of 30) bounds how long the dead node's claims block
  // their tasks after the restart, so the test stays short.
  StartServer({.time_scale = 0.1,
               .concurrency = 8,
               .node_id = "bb-restart-node",
               .extra_args = {"--lease-s", "5"}});
  SysMs now = NowMs();
  json::array bodies;
  for (int i = 0; i < 10; ++i) bodies.push_back(TaskBody("fizz"));  // due now
  for (int i = 0; i < 10; ++i) {                                    // due in 1-2 s
    bodies.push_back(TaskBody(i % 2 ? "fizz" : "buzz",
                              {{"run_at", Rfc3339(now + milliseconds(1000 + 100 * i))}}));
  }
  for (int i = 0; i < 10; ++i) bodies.push_back(TaskBody("fizzbuzz"));  // long, due now
  std::vector<json::object> created = CreateBatch(bodies);
  ASSERT_EQ(created.size(), 30u);

  // Crash while some run.
  ASSERT_TRUE(WaitUntil([&] { return Arr(ListPage("state=running"), "tasks").size() >= 3; }))
      << "never saw 3 tasks running";
  ExitStatus st = server().Kill();
  EXPECT_FALSE(st.exited);

  server().Start();
  // A dead node's leases have to run out before its tasks run again, so this
  // bound is wide.
  ASSERT_TRUE(WaitUntil(
      [&] {
        json::object p = ListPage("limit=1000");
        const json::array& tasks = Arr(p, "tasks");
        if (tasks.size() != 30) return false;
        for (const auto& t : tasks) {
          if (Str(t.as_object(), "state") != "succeeded") return false;
        }
        return true;
      },
      seconds(90), milliseconds(100)))
      << "not all 30 succeeded after the restart: " << Dump(ListPage("limit=1000"));
  EXPECT_EQ(CountTasks(), 30u) << "a task was lost";
  ExpectAllSucceededOnTime(created);
}

TEST_F(RestartTest, SigtermLetsRunningTasksFinishExitsZeroAndRestartCompletesTheRest) {
  StartServer({.time_scale = 0.1, .concurrency = 4, .node_id = "bb-graceful-node"});
  SysMs now = NowMs();
  json::array bodies;
  for (int i = 0; i < 3; ++i) bodies.push_back(TaskBody("fizzbuzz"));
  for (int i = 0; i < 5; ++i) {
    bodies.push_back(TaskBody("fizz", {{"run_at", Rfc3339(now + milliseconds(2500 + 100 * i))}}));
  }
  std::vector<json::object> created = CreateBatch(bodies);

  std::vector<json::object> running;
  ASSERT_TRUE(WaitUntil([&] {
    running.clear();
    json::object page = ListPage("state=running");
    for (const auto& t : Arr(page, "tasks")) running.push_back(t.as_object());
    return !running.empty();
  }));
  ExitStatus st = server().Stop(seconds(40));
  EXPECT_TRUE(st.exited && st.code == 0) << st.ToString();

  // Tasks running at SIGTERM were let finish within the grace period: done in
  // their first attempt, before the process exited.
  server().Start();
  for (const auto& r : running) {
    json::object t = GetTask(Str(r, "id"));
    EXPECT_EQ(Str(t, "state"), "succeeded") << "was running at SIGTERM: " << Dump(t);
    EXPECT_EQ(Int(t, "attempt"), 1) << Dump(t);
  }
  for (const auto& c : created) WaitForState(Str(c, "id"), "succeeded", seconds(30));
  ExpectAllSucceededOnTime(created);
  EXPECT_EQ(CountTasks(), created.size());
}

// A task still running when the grace period ends has its lease given back: the
// restarted server runs it again at once (not after a lease expiry), and that
// run does not use up an attempt.
TEST_F(RestartTest, SigtermPastTheGracePeriodGivesTheLeaseBack) {
  StartServer({.time_scale = 0.5, .shutdown_grace_s = 1});  // fizzbuzz runs 7.5 s
  std::string id = Str(CreateTask(TaskBody("fizzbuzz", {{"max_attempts", 1}})), "id");
  WaitForState(id, "running");
  auto t0 = std::chrono::steady_clock::now();
  ExitStatus st = server().Stop(seconds(20));
  EXPECT_TRUE(st.exited && st.code == 0) << st.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(7)) << "the grace period was not kept";

  server().options().time_scale = 0.05;  // the rerun takes 750 ms
  server().Start();
  json::object done = WaitForState(id, "succeeded", seconds(15));
  EXPECT_EQ(Int(done, "attempt"), 2);
  EXPECT_EQ(Str(Obj(done, "result"), "output"), "Fizz Buzz " + id);
}

TEST_F(RestartTest, RestartKeepsEveryTaskAsItWas) {
  StartServer();
  std::vector<json::object> before = CreateBatch(
      {TaskBody("fizz", {{"run_at", "2100-01-01T00:00:00Z"}, {"labels", {{"team", "data"}}}}),
       TaskBody("buzz", {{"run_at", 4102444800LL}, {"idempotency_key", "keep-1"}}),
       TaskBody("noop")});
  WaitForState(Str(before[2], "id"), "succeeded");
  before[2] = GetTask(Str(before[2], "id"));
  ExitStatus st = server().Stop();
  EXPECT_TRUE(st.exited && st.code == 0) << st.ToString();
  server().Start();
  for (const auto& b : before) EXPECT_EQ(GetTask(Str(b, "id")), b);
  // The idempotency key survives too.
  HttpResponse again = api().PostJson(
      "/v1/tasks", TaskBody("buzz", {{"run_at", 4102444800LL}, {"idempotency_key", "keep-1"}}));
  EXPECT_EQ(again.status, 200) << Describe(again);
  EXPECT_EQ(CountTasks(), 3u);
}

TEST_F(RestartTest, SigintAlsoStopsGracefully) {
  StartServer();
  std::string id = Str(CreateTask(TaskBody("noop")), "id");
  WaitForState(id, "succeeded");
  ExitStatus st = server().Stop(seconds(40), SIGINT);  // as Ctrl-C would
  EXPECT_TRUE(st.exited && st.code == 0) << st.ToString();
}

TEST_F(RestartTest, NodesListsEveryNodeAndWhichAreAlive) {
  ServerOptions o;
  o.node_id = "node-before";
  o.extra_args = {"--lease-s", "1"};  // heartbeats every 1/3 s; alive within 3 s
  ServerProcess& s = StartServer(o);
  struct Node {
    bool alive = false;
    int64_t concurrency = -1;
  };
  auto nodes = [&] {
    HttpResponse r = api().Get("/v1/nodes");
    EXPECT_EQ(r.status, 200) << r.body;
    const json::value body = json::parse(r.body);
    std::map<std::string, Node> out;
    for (const auto& n : body.at("nodes").as_array()) {
      out[std::string(n.at("id").as_string())] = {n.at("alive").as_bool(),
                                                  n.at("concurrency").as_int64()};
    }
    return out;
  };
  ASSERT_TRUE(WaitUntil([&] { return nodes().count("node-before") == 1; }));
  EXPECT_TRUE(nodes()["node-before"].alive);
  EXPECT_EQ(nodes()["node-before"].concurrency, 64);  // --concurrency's default
  s.Kill();
  s.options().node_id = "node-after";
  s.Start();
  ASSERT_TRUE(WaitUntil([&] { return nodes().count("node-after") == 1; }));
  EXPECT_TRUE(nodes()["node-after"].alive);
  // The dead node stays listed, and stops counting as alive 3 leases after
  // its last heartbeat. Killed, it never said it stopped claiming.
  EXPECT_TRUE(WaitUntil([&] { return !nodes()["node-before"].alive; }, seconds(10)));
  EXPECT_EQ(nodes().size(), 2u);
  EXPECT_EQ(nodes()["node-before"].concurrency, 64);
  // A node that stops gracefully says it claims no more (the nodes still
  // claiming take its share of --claimers).
  ExitStatus st = s.Stop();
  EXPECT_TRUE(st.exited && st.code == 0) << st.ToString();
  s.options().node_id = "node-last";
  s.Start();
  ASSERT_TRUE(WaitUntil([&] { return nodes().count("node-last") == 1; }));
  EXPECT_EQ(nodes()["node-after"].concurrency, 0);
  EXPECT_EQ(nodes()["node-last"].concurrency, 64);
}

// Every start is a new node id (hostname-pid by default): the leader removes
// the nodes silent for longer than --node-retention-s, so the list does not
// grow with every restart.
TEST_F(RestartTest, NodesSilentForLongerThanTheRetentionLeaveTheList) {
  ServerOptions o;
  o.node_id = "node-old";
  o.extra_args = {"--lease-s", "1", "--node-retention-s", "3"};
  ServerProcess& s = StartServer(o);
  auto ids = [&] {
    HttpResponse r = api().Get("/v1/nodes");
    EXPECT_EQ(r.status, 200) << r.body;
    const json::value body = json::parse(r.body);
    std::set<std::string> out;
    for (const auto& n : body.at("nodes").as_array()) out.insert(std::string(n.at("id").as_string()));
    return out;
  };
  ASSERT_TRUE(WaitUntil([&] { return ids().count("node-old") == 1; }));
  s.Kill();
  s.options().node_id = "node-new";
  s.Start();
  ASSERT_TRUE(WaitUntil([&] { return ids().count("node-new") == 1; }));
  EXPECT_TRUE(WaitUntil([&] { return ids().count("node-old") == 0; }, seconds(15)));
  EXPECT_EQ(ids(), std::set<std::string>{"node-new"});
}

}  // namespace
}  // namespace sked::blackbox
