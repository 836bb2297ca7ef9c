// Several real `sked serve` processes on one real PostgreSQL: each task runs
// exactly once across the nodes, never before its run_at; a node killed with
// SIGKILL mid-run loses nothing and only the tasks it was running run again;
// a 5 s database outage loses nothing and runs nothing twice.
//
// The proof of "ran once" is the nodes' own logs: a built-in task prints its
// output line ("Fizz <id>") to the log of the node that ran it, so a task run
// twice prints twice. The tasks' event histories (one "running" event per
// claim, naming the node) tell which node ran which attempt.
//
// Needs SKED_TEST_PG_DSN (scripts/test.sh starts a throwaway cluster); the
// outage test starts a cluster of its own with scripts/pg-throwaway.sh, since
// it stops it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "blackbox_test_base.h"
#include "http_client.h"
#include "server_process.h"
#include "store/postgres/testing/pg_test_env.h"

namespace sked::cluster {
namespace {

using namespace sked::blackbox;  // NOLINT: the black-box helpers are this suite's vocabulary
namespace pgtest = sked::store::postgres_testing;

// One run of a task's code, as a node's log shows it.
struct LoggedRun {
  std::string node;
  int attempt = 0;
  std::string output;
};

// Every "task <id> attempt <n> output: <text>" line of `log`, by task id.
void ParseOutputLines(const std::string& log, const std::string& node,
                      std::map<std::string, std::vector<LoggedRun>>& runs) {
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    size_t t = line.find("] task ");
    size_t a = line.find(" attempt ", t == std::string::npos ? 0 : t);
    size_t o = line.find(" output: ", a == std::string::npos ? 0 : a);
    if (t == std::string::npos || a == std::string::npos || o == std::string::npos) continue;
    std::string id = line.substr(t + 7, a - (t + 7));
    int attempt = std::atoi(line.substr(a + 9, o - (a + 9)).c_str());
    runs[id].push_back({node, attempt, line.substr(o + 9)});
  }
}

std::string ExpectedOutput(const std::string& type, const std::string& id) {
  if (type == "fizz") return "Fizz " + id;
  if (type == "buzz") return "Buzz " + id;
  if (type == "foo") return "Foo " + id;
  return "";
}

// A claim of the task, from its history.
struct Claim {
  std::string node;
  int attempt = 0;
  SysMs at;
};

class ClusterTest : public pgtest::FreshSchemaTest {
 protected:

  void TearDown() override {
    const bool failed = HasFailure();
    for (auto& n : nodes_) {
      if (failed) {
        n->set_keep_dir(true);
        std::fprintf(stderr, "---- %s (kept in %s), log tail:\n%s\n",
                     n->options().node_id->c_str(), n->dir().c_str(), n->LogTail(40).c_str());
      }
    }
    nodes_.clear();  // SIGKILLs what still runs
    pgtest::FreshSchemaTest::TearDown();
    if (!own_cluster_dir_.empty()) PgThrowaway("stop", own_cluster_dir_);
  }

  // Starts a PostgreSQL cluster for this test alone (it will be stopped and
  // started again) and points the nodes at it.
  void UseOwnCluster() {
    char tmpl[] = "/tmp/sked-cluster-pg.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    own_cluster_dir_ = tmpl;
    CommandResult r = RunCommand(
        {"/bin/bash", SKED_SOURCE_DIR "/scripts/pg-throwaway.sh", "start", own_cluster_dir_},
        seconds(120));
    ASSERT_TRUE(r.status.exited && r.status.code == 0) << r.output;
    // Only the DSN goes to stdout, but RunCommand interleaves stderr: the DSN
    // is the last line.
    std::string out = r.output;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    dsn_ = out.substr(out.rfind('\n') + 1);
    ASSERT_EQ(dsn_.rfind("postgresql://", 0), 0u) << r.output;
  }

  void PgThrowaway(const std::string& verb, const std::string& dir) {
    CommandResult r = RunCommand(
        {"/bin/bash", SKED_SOURCE_DIR "/scripts/pg-throwaway.sh", verb, dir}, seconds(120));
    EXPECT_TRUE(r.status.exited && r.status.code == 0) << verb << ": " << r.output;
  }

  // Starts `count` nodes node-0.. on the database, one after another.
  void StartNodes(int count, ServerOptions base) {
    for (int i = 0; i < count; ++i) {
      ServerOptions o = base;
      o.node_id = "node-" + std::to_string(i);
      o.db_url = dsn_;
      o.extra_args.insert(o.extra_args.end(), {"--db-schema", schema_});
      auto p = std::make_unique<ServerProcess>(o);
      p->Start(seconds(60));
      ServerProcess* raw = p.get();
      clients_.push_back(std::make_unique<HttpClient>([raw] { return raw->base_url(); }));
      nodes_.push_back(std::move(p));
    }
  }

  ServerProcess& node(int i) { return *nodes_.at(i); }
  HttpClient& http(int i) { return *clients_.at(i); }

  // `count` tasks cycling through `types`, run_at evenly spread over
  // [from, to), created in batches of 500 sent round-robin to the nodes.
  std::vector<json::object> CreateSpread(int count, const std::vector<std::string>& types,
                                         SysMs from, SysMs to) {
    std::vector<json::object> created;
    constexpr int kBatch = 500;
    for (int start = 0, b = 0; start < count; start += kBatch, ++b) {
      json::array bodies;
      for (int i = start; i < std::min(count, start + kBatch); ++i) {
        SysMs run_at = from + (to - from) * i / count;
        bodies.push_back(TaskBody(types[i % types.size()], {{"run_at", Rfc3339(run_at)}}));
      }
      HttpResponse r = http(b % nodes_.size()).PostJson("/v1/tasks:batch", {{"tasks", bodies}});
      if (r.status != 201) throw std::runtime_error("batch create: " + Describe(r));
      json::object page = r.Object();
      for (const auto& t : Arr(page, "tasks")) created.push_back(t.as_object());
    }
    return created;
  }

  // Polls node `via` until no task is scheduled, provisioning or running.
  bool WaitAllFinished(int via, milliseconds timeout) {
    return WaitUntil(
        [&] {
          HttpResponse r = http(via).Get("/v1/tasks?state=scheduled,provisioning,running&limit=1");
          return r.status == 200 && Arr(r.Object(), "tasks").empty();
        },
        timeout, milliseconds(100));
  }

  // Every live task, through node `via`, by id.
  std::map<std::string, json::object> AllTasks(int via) {
    std::map<std::string, json::object> all;
    std::string cursor;
    for (int page = 0; page < 100; ++page) {
      std::string target = "/v1/tasks?limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor);
      HttpResponse r = http(via).Get(target);
      if (r.status != 200) throw std::runtime_error("list: " + Describe(r));
      json::object o = r.Object();
      for (const auto& t : Arr(o, "tasks")) all[Str(t.as_object(), "id")] = t.as_object();
      if (IsNull(o, "next_cursor")) return all;
      cursor = Str(o, "next_cursor");
    }
    throw std::runtime_error("list: more than 100 pages");
  }

  // The task's claims: its "running" events, oldest first.
  std::vector<Claim> Claims(int via, const std::string& id) {
    HttpResponse r = http(via).Get("/v1/tasks/" + id + "/events");
    if (r.status != 200) throw std::runtime_error("events: " + Describe(r));
    std::vector<Claim> claims;
    json::object body = r.Object();
    for (const auto& e : Arr(body, "events")) {
      const json::object& ev = e.as_object();
      if (Str(ev, "state") != "running") continue;
      claims.push_back({IsNull(ev, "node") ? "" : Str(ev, "node"),
                        static_cast<int>(Int(ev, "attempt")), TimeField(ev, "at")});
    }
    return claims;
  }

  // Output lines of every node's logs (all of its starts), by task id.
  std::map<std::string, std::vector<LoggedRun>> LoggedRuns() {
    std::map<std::string, std::vector<LoggedRun>> runs;
    for (auto& n : nodes_) ParseOutputLines(n->ReadLog(), *n->options().node_id, runs);
    return runs;
  }

  size_t OutputLinesIn(int i) {
    std::map<std::string, std::vector<LoggedRun>> runs;
    ParseOutputLines(node(i).ReadLog(), "", runs);
    size_t n = 0;
    for (const auto& [id, r] : runs) n += r.size();
    return n;
  }

  // Checks what holds for every task in every scenario: it is there, it
  // succeeded with its own output, and no claim (hence no start) came before
  // its run_at. Returns each task's claims.
  std::map<std::string, std::vector<Claim>> ExpectAllSucceededNeverEarly(
      const std::vector<json::object>& created, int via) {
    std::map<std::string, json::object> all = AllTasks(via);
    EXPECT_EQ(all.size(), created.size()) << "a task was lost or one appeared";
    std::map<std::string, std::vector<Claim>> claims;
    int not_succeeded = 0, early = 0;
    for (const auto& c : created) {
      const std::string id = Str(c, "id");
      auto it = all.find(id);
      if (it == all.end()) {
        ADD_FAILURE() << "task " << id << " is missing";
        continue;
      }
      const json::object& t = it->second;
      if (Str(t, "state") != "succeeded" ||
          Str(Obj(t, "result"), "output") != ExpectedOutput(Str(c, "type"), id)) {
        if (++not_succeeded <= 5) ADD_FAILURE() << "not succeeded as expected: " << Dump(t);
        continue;
      }
      const SysMs run_at = TimeField(c, "run_at");
      EXPECT_EQ(TimeField(t, "run_at"), run_at);
      if (TimeField(t, "started_at") < run_at) ++early;
      claims[id] = Claims(via, id);
      EXPECT_FALSE(claims[id].empty()) << id;
      for (const auto& cl : claims[id]) {
        if (cl.at < run_at) ++early;
      }
    }
    EXPECT_EQ(not_succeeded, 0);
    EXPECT_EQ(early, 0) << "tasks started before their run_at";
    return claims;
  }

  std::string own_cluster_dir_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
  std::vector<std::unique_ptr<HttpClient>> clients_;
};

const std::vector<std::string> kTypes = {"fizz", "buzz", "foo"};

// On PostgreSQL a GET of one task is answered on the HTTP I/O threads
// (Api::HandleAsync over the store's non-blocking read) rather than on a
// handler thread: it must answer exactly as the blocking path does, tokens,
// errors and metrics included, and see a change made through another node.
TEST_F(ClusterTest, GetOfOneTaskAnswersAsEveryOtherRouteDoesOnEitherNode) {
  StartNodes(2, {.time_scale = 0.05, .api_tokens = {"token-alpha"}});
  http(0).set_bearer("token-alpha");
  http(1).set_bearer("token-alpha");
  HttpResponse created =
      http(0).PostJson("/v1/tasks", TaskBody("fizz", {{"run_at", "2100-01-01T00:00:00Z"}}));
  ASSERT_EQ(created.status, 201) << Describe(created);
  const std::string id = Str(created.Object(), "id");

  for (const std::string& target : {"/v1/tasks/" + id, "/task/" + id}) {
    SCOPED_TRACE(target);
    HttpResponse r = http(1).Get(target);
    ASSERT_EQ(r.status, 200) << Describe(r);
    EXPECT_EQ(Str(r.Object(), "id"), id);
    EXPECT_EQ(Str(r.Object(), "state"), "scheduled");
  }
  auto expect_error = [](const HttpResponse& r, long status, const std::string& code) {
    ASSERT_EQ(r.status, status) << Describe(r);
    EXPECT_EQ(Str(r.Object().at("error").as_object(), "code"), code) << Describe(r);
  };
  expect_error(http(1).Get("/v1/tasks/00000000-0000-7000-8000-000000000000"), 404, "not_found");
  expect_error(http(1).Get("/v1/tasks/not-a-uuid"), 404, "not_found");
  HttpClient anonymous([this] { return node(1).base_url(); });
  for (const std::vector<std::string>& auth :
       {std::vector<std::string>{}, std::vector<std::string>{"Authorization: Bearer wrong"}}) {
    HttpResponse r = anonymous.Get("/v1/tasks/" + id, auth);
    expect_error(r, 401, "unauthenticated");
    EXPECT_THAT(r.Header("WWW-Authenticate").value_or(""), ::testing::StartsWith("Bearer"));
  }

  // Cancelled through node 1, read through node 0 at once.
  ASSERT_EQ(http(1).Request("POST", "/v1/tasks/" + id + "/cancel", std::nullopt, {}).status, 200);
  HttpResponse after = http(0).Get("/v1/tasks/" + id);
  ASSERT_EQ(after.status, 200) << Describe(after);
  EXPECT_EQ(Str(after.Object(), "state"), "cancelled");

  const std::string metrics = anonymous.Get("/metrics").body;
  for (const char* code : {"200", "401", "404"}) {
    EXPECT_THAT(metrics, ::testing::HasSubstr(std::string("sked_http_requests_total{route=\"/v1/"
                                                          "tasks/{id}\",code=\"") +
                                              code + "\"}"))
        << code;
  }
}

TEST_F(ClusterTest, ThreeNodesRunEachOf2000TasksExactlyOnceAndNeverEarly) {
  StartNodes(3, {.time_scale = 0.01});  // fizz 30 ms, buzz 50 ms, foo 30 ms
  const SysMs now = NowMs();
  std::vector<json::object> created =
      CreateSpread(2000, kTypes, now + milliseconds(1500), now + milliseconds(4500));
  ASSERT_EQ(created.size(), 2000u);
  ASSERT_TRUE(WaitAllFinished(0, seconds(90))) << "tasks still unfinished after 90 s";

  auto claims = ExpectAllSucceededNeverEarly(created, 0);
  auto runs = LoggedRuns();
  std::map<std::string, int> per_node;
  int not_once = 0;
  for (const auto& c : created) {
    const std::string id = Str(c, "id");
    const auto& r = runs[id];
    if (r.size() != 1) {
      if (++not_once <= 5) ADD_FAILURE() << id << " printed its output " << r.size() << " times";
      continue;
    }
    EXPECT_EQ(r[0].output, ExpectedOutput(Str(c, "type"), id));
    EXPECT_EQ(r[0].attempt, 1);
    ++per_node[r[0].node];
    // One claim, by the node whose log has the line.
    ASSERT_EQ(claims[id].size(), 1u) << id;
    EXPECT_EQ(claims[id][0].node, r[0].node) << id;
  }
  EXPECT_EQ(not_once, 0);
  for (const auto& [n, count] : per_node) std::printf("%s ran %d tasks\n", n.c_str(), count);

  // Every node is listed, with a recent heartbeat and the attempts it runs
  // at once (--concurrency's default).
  HttpResponse r = http(2).Get("/v1/nodes");
  ASSERT_EQ(r.status, 200) << Describe(r);
  std::set<std::string> ids;
  json::object body = r.Object();
  for (const auto& n : Arr(body, "nodes")) {
    const json::object& o = n.as_object();
    ids.insert(Str(o, "id"));
    EXPECT_FALSE(Str(o, "version").empty());
    EXPECT_GE(TimeField(o, "last_heartbeat"), now - seconds(1));
    EXPECT_LE(TimeField(o, "started_at"), TimeField(o, "last_heartbeat"));
    ASSERT_TRUE(o.contains("concurrency") && o.at("concurrency").is_int64()) << o;
    EXPECT_EQ(o.at("concurrency").as_int64(), 64);
  }
  EXPECT_THAT(ids, ::testing::ElementsAre("node-0", "node-1", "node-2"));
}

TEST_F(ClusterTest, KillNineOfANodeMidRunRerunsOnlyWhatItWasRunning) {
  // fizz 150 ms, buzz 250 ms, foo 150 ms; 3 x 24 slots cannot keep up with
  // 500 tasks/s, so every node is busy when node-1 dies. --lease-s 2 bounds
  // how long its claims hold after its death.
  constexpr int kConcurrency = 24;
  StartNodes(3, {.time_scale = 0.05, .concurrency = kConcurrency, .extra_args = {"--lease-s", "2"}});
  const SysMs now = NowMs();
  std::vector<json::object> created =
      CreateSpread(2000, kTypes, now + milliseconds(1500), now + milliseconds(5500));
  ASSERT_EQ(created.size(), 2000u);

  ASSERT_TRUE(WaitUntil([&] { return OutputLinesIn(1) >= 100; }, seconds(30)))
      << "node-1 never got going";
  const SysMs killed_at = NowMs();
  ExitStatus st = node(1).Kill();
  EXPECT_FALSE(st.exited) << st.ToString();
  node(1).Start(seconds(60));  // the same node id, as a supervisor would restart it

  ASSERT_TRUE(WaitAllFinished(0, seconds(120))) << "tasks still unfinished after 120 s";
  auto claims = ExpectAllSucceededNeverEarly(created, 0);
  auto runs = LoggedRuns();

  int rerun = 0, bad = 0;
  for (const auto& c : created) {
    const std::string id = Str(c, "id");
    const auto& cl = claims[id];
    const auto& r = runs[id];
    if (cl.size() == 1) {
      // Not touched by the kill: claimed once, printed once.
      if (r.size() != 1 && ++bad <= 5) ADD_FAILURE() << id << " printed " << r.size() << " times";
      continue;
    }
    ++rerun;
    // Run again only because node-1 died holding it: its first claim was
    // node-1's, before the kill; then exactly one more claim, which printed.
    EXPECT_EQ(cl.size(), 2u) << id;
    EXPECT_EQ(cl[0].node, "node-1") << id;
    EXPECT_LE(cl[0].at, killed_at) << id;
    int final_prints = 0;
    for (const auto& run : r) {
      if (run.attempt == cl.back().attempt) {
        ++final_prints;
        EXPECT_EQ(run.node, cl.back().node) << id;
      } else {
        // The killed attempt may have printed just before the kill.
        EXPECT_EQ(run.node, "node-1") << id;
        EXPECT_EQ(run.attempt, cl[0].attempt) << id;
      }
    }
    EXPECT_EQ(final_prints, 1) << id;
  }
  EXPECT_EQ(bad, 0);
  std::printf("re-run after the kill: %d tasks (node-1 runs at most %d at once)\n", rerun,
              kConcurrency);
  RecordProperty("rerun_tasks", rerun);
  EXPECT_GE(rerun, 1) << "node-1 was killed while running tasks, so some must run again";
  EXPECT_LE(rerun, kConcurrency) << "more tasks ran twice than node-1 could have been running";
}

TEST_F(ClusterTest, AFiveSecondDatabaseOutageLosesNothingAndRunsNothingTwice) {
  UseOwnCluster();
  if (HasFatalFailure()) return;
  // --lease-s 3: the outage outlasts every lease, so the nodes must renew
  // them after it rather than have them taken back.
  StartNodes(3, {.time_scale = 0.01, .extra_args = {"--lease-s", "3"}});
  const SysMs now = NowMs();
  std::vector<json::object> created =
      CreateSpread(1500, kTypes, now + milliseconds(1500), now + milliseconds(7500));
  ASSERT_EQ(created.size(), 1500u);

  ASSERT_TRUE(WaitUntil([&] { return OutputLinesIn(0) + OutputLinesIn(1) + OutputLinesIn(2) >= 200; },
                        seconds(30)));
  const auto down_at = std::chrono::steady_clock::now();
  PgThrowaway("pause", own_cluster_dir_);

  // While it is down the API answers 503 with the error body, and a create
  // stores nothing.
  HttpResponse get = http(0).Request("GET", "/v1/tasks?limit=1", std::nullopt, {}, seconds(20));
  EXPECT_EQ(get.status, 503) << Describe(get);
  if (get.status == 503) {
    EXPECT_EQ(Str(Obj(get.Object(), "error"), "code"), "unavailable");
  }
  HttpResponse post = http(1).Request("POST", "/v1/tasks", Dump(TaskBody("noop")),
                                      {"Content-Type: application/json"}, seconds(20));
  EXPECT_EQ(post.status, 503) << Describe(post);

  std::this_thread::sleep_until(down_at + seconds(5));  // the outage itself
  PgThrowaway("resume", own_cluster_dir_);

  ASSERT_TRUE(WaitAllFinished(2, seconds(120))) << "tasks still unfinished after 120 s";
  auto claims = ExpectAllSucceededNeverEarly(created, 2);
  auto runs = LoggedRuns();
  int not_once = 0, reclaimed = 0;
  for (const auto& c : created) {
    const std::string id = Str(c, "id");
    if (runs[id].size() != 1 && ++not_once <= 5) {
      ADD_FAILURE() << id << " printed its output " << runs[id].size() << " times";
    }
    if (claims[id].size() > 1) ++reclaimed;
  }
  EXPECT_EQ(not_once, 0) << "the outage lost or duplicated runs";
  // A claim whose commit reached the database just as it stopped, while its
  // answer did not reach the node, is claimed again once its lease runs out;
  // it never ran twice (checked above). Reported, and expected to be rare.
  std::printf("claimed more than once: %d tasks\n", reclaimed);
  RecordProperty("reclaimed_tasks", reclaimed);
  EXPECT_LE(reclaimed, 3);
  // 1500 created, none from the outage.
  EXPECT_EQ(AllTasks(2).size(), created.size());
}

}  // namespace
}  // namespace sked::cluster
