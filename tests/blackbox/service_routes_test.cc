// Routes around the task API: health, readiness, metrics, the OpenAPI copy, the
// dashboard, and what an unknown route or a wrong method answers.
#include <gmock/gmock.h>

#include <regex>
#include <set>
#include <sstream>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

using ::testing::HasSubstr;
using ServiceRoutesTest = BlackboxTest;

std::set<std::string> AllowTokens(const std::string& allow) {
  std::set<std::string> out;
  std::stringstream ss(allow);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    size_t b = tok.find_first_not_of(" \t"), e = tok.find_last_not_of(" \t");
    if (b != std::string::npos) out.insert(tok.substr(b, e - b + 1));
  }
  return out;
}

TEST_F(ServiceRoutesTest, HealthzAndReadyzAre200) {
  StartServer();
  EXPECT_EQ(api().Get("/healthz").status, 200);
  EXPECT_EQ(api().Get("/readyz").status, 200);
}

// A probe may arrive the moment the port opens, before the server is fully
// wired: it may be refused or answered 503, but it must never crash the server.
TEST_F(ServiceRoutesTest, HealthzPolledFromTheFirstMomentNeverCrashesTheServer) {
  ServerProcess& s = StartServer();
  for (int i = 0; i < 20; ++i) {
    SCOPED_TRACE("start " + std::to_string(i));
    ASSERT_EQ(s.Stop().ToString(), "exit code 0");
    s.Start(seconds(20), milliseconds(0));
  }
}

TEST_F(ServiceRoutesTest, MetricsArePrometheusTextWithSkedMetrics) {
  StartServer();
  CreateTask(TaskBody("noop"));  // so there is something to count
  HttpResponse r = api().Get("/metrics");
  ASSERT_EQ(r.status, 200) << Describe(r);
  auto ct = r.Header("Content-Type");
  ASSERT_TRUE(ct.has_value());
  EXPECT_THAT(*ct, ::testing::StartsWith("text/plain"));
  // A sample line: name{labels} value.
  static const std::regex kSample(R"((^|\n)sked_[A-Za-z0-9_:]*(\{[^}]*\})? [-+0-9.eEnaNIf]+)");
  EXPECT_TRUE(std::regex_search(r.body, kSample)) << "no sked_ sample in:\n" << r.body;
}

TEST_F(ServiceRoutesTest, OpenapiYamlDescribesTheTaskApi) {
  StartServer();
  HttpResponse r = api().Get("/openapi.yaml");
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_THAT(r.body, HasSubstr("openapi:"));
  EXPECT_THAT(r.body, HasSubstr("/v1/tasks"));
}

TEST_F(ServiceRoutesTest, RootServesTheDashboard) {
  StartServer();
  HttpResponse r = api().Get("/");
  ASSERT_EQ(r.status, 200) << Describe(r);
  auto ct = r.Header("Content-Type");
  ASSERT_TRUE(ct.has_value());
  EXPECT_THAT(*ct, ::testing::StartsWith("text/html"));
}

TEST_F(ServiceRoutesTest, UnknownRouteIs404NotFound) {
  StartServer();
  std::string id = Str(CreateTask(TaskBody("noop")), "id");
  for (const std::string& target :
       std::vector<std::string>{"/v1/nope", "/nope", "/v1/tasks/" + id + "/nope", "/v2/tasks"}) {
    SCOPED_TRACE(target);
    ExpectError(api().Get(target), 404, "not_found");
  }
}

struct MethodCase {
  std::string method;
  std::string target;  // "{id}" is replaced by a real task id
  std::vector<std::string> allowed;
};

TEST_F(ServiceRoutesTest, WrongMethodIs405WithAllowHeader) {
  StartServer();
  std::string id = Str(CreateTask(TaskBody("fizz", {{"run_at", "2100-01-01T00:00:00Z"}})), "id");
  std::vector<MethodCase> cases = {
      {"PUT", "/v1/tasks", {"GET", "POST"}},
      {"DELETE", "/v1/tasks", {"GET", "POST"}},
      {"PATCH", "/v1/tasks/{id}", {"GET", "DELETE"}},
      {"POST", "/v1/tasks/{id}", {"GET", "DELETE"}},
      {"GET", "/v1/tasks/{id}/cancel", {"POST"}},
      {"DELETE", "/v1/tasks/{id}/events", {"GET"}},
      {"GET", "/v1/tasks/{id}/callback", {"POST"}},
      {"GET", "/v1/tasks:batch", {"POST"}},
      {"POST", "/healthz", {"GET"}},
  };
  for (auto c : cases) {
    if (auto p = c.target.find("{id}"); p != std::string::npos) c.target.replace(p, 4, id);
    SCOPED_TRACE(c.method + " " + c.target);
    HttpResponse r = api().Request(
        c.method, c.target, c.method == "GET" ? std::nullopt : std::optional<std::string>("{}"),
        {"Content-Type: application/json"});
    ExpectError(r, 405, "method_not_allowed");
    auto allow = r.Header("Allow");
    ASSERT_TRUE(allow.has_value()) << "405 without Allow: " << Describe(r);
    std::set<std::string> tokens = AllowTokens(*allow);
    for (const auto& m : c.allowed) EXPECT_TRUE(tokens.contains(m)) << "Allow: " << *allow;
    EXPECT_FALSE(tokens.contains(c.method)) << "Allow: " << *allow;
  }
  // Nothing above changed the task.
  EXPECT_EQ(Str(GetTask(id), "state"), "scheduled");
}

// --concurrency 0: the node answers the API but never runs a task; a worker
// node on the same database runs them.
TEST_F(ServiceRoutesTest, ConcurrencyZeroServesTheApiButRunsNoTask) {
  ServerProcess& api_node = StartServer({.concurrency = 0});
  EXPECT_TRUE(api_node.WaitForLog("API only"));
  std::string id = Str(CreateTask(TaskBody("noop")), "id");
  std::this_thread::sleep_for(milliseconds(600));  // several idle polls of a worker
  EXPECT_EQ(Str(GetTask(id), "state"), "scheduled");

  ServerProcess worker({.node_id = "worker", .db_url = "sqlite:" + api_node.db_path()});
  worker.Start();
  WaitForState(id, "succeeded");
  EXPECT_EQ(Str(Events(id).back(), "node"), "worker");
}

}  // namespace
}  // namespace sked::blackbox
