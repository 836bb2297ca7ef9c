// API tokens: every /v1 route but the callback needs `Authorization: Bearer`;
// health, readiness and metrics need nothing; the callback has its own token.
#include <gmock/gmock.h>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

class AuthTest : public BlackboxTest {
 protected:
  void SetUp() override {
    StartServer({.time_scale = 0.05, .api_tokens = {"token-alpha", "token-beta"}});
    api().set_bearer("token-alpha");
    task_id_ = Str(CreateTask(TaskBody("fizz", {{"run_at", "2100-01-01T00:00:00Z"}})), "id");
  }

  struct Route {
    std::string method, target;
    std::optional<std::string> body;
  };
  std::vector<Route> V1Routes() const {
    std::string t = "/v1/tasks/" + task_id_;
    return {
        {"GET", "/v1/tasks", std::nullopt},
        {"POST", "/v1/tasks", R"({"type": "noop"})"},
        {"POST", "/v1/tasks:batch", R"({"tasks": [{"type": "noop"}]})"},
        {"GET", t, std::nullopt},
        {"GET", t + "/events", std::nullopt},
        {"POST", t + "/cancel", std::nullopt},
        {"DELETE", t, std::nullopt},
    };
  }

  // Sends `route` with `auth` as the only Authorization header (nullopt: none).
  HttpResponse Send(const Route& route, std::optional<std::string> auth) {
    std::vector<std::string> h = {"Content-Type: application/json"};
    h.push_back(auth ? "Authorization: " + *auth : "Authorization:");
    return NewClient().Request(route.method, route.target, route.body, h);
  }

  std::string task_id_;
};

TEST_F(AuthTest, V1RoutesWithoutAWorkingTokenAre401AndDoNothing) {
  const std::vector<std::optional<std::string>> bad = {
      std::nullopt,          "Bearer wrong-token", "Bearer",
      "Bearer token-alphaX", "Basic token-alpha",  "token-alpha"};
  for (const auto& route : V1Routes()) {
    for (const auto& auth : bad) {
      SCOPED_TRACE(route.method + " " + route.target + " with " + auth.value_or("(no header)"));
      HttpResponse r = Send(route, auth);
      ExpectError(r, 401, "unauthenticated");
      EXPECT_THAT(r.Header("WWW-Authenticate").value_or(""), ::testing::StartsWith("Bearer"));
    }
  }
  // Nothing was created, cancelled or deleted.
  json::object t = GetTask(task_id_);
  EXPECT_EQ(Str(t, "state"), "scheduled");
  EXPECT_EQ(CountTasks(), 1u);
}

TEST_F(AuthTest, EachConfiguredTokenIsAccepted) {
  for (const char* token : {"token-alpha", "token-beta"}) {
    SCOPED_TRACE(token);
    HttpResponse list = Send({"GET", "/v1/tasks", std::nullopt}, std::string("Bearer ") + token);
    EXPECT_EQ(list.status, 200) << Describe(list);
    HttpResponse create =
        Send({"POST", "/v1/tasks", R"({"type": "fizz", "run_at": "2100-01-01T00:00:00Z"})"},
             std::string("Bearer ") + token);
    EXPECT_EQ(create.status, 201) << Describe(create);
  }
  HttpResponse del = Send({"DELETE", "/v1/tasks/" + task_id_, std::nullopt}, "Bearer token-beta");
  EXPECT_EQ(del.status, 204) << Describe(del);
}

TEST_F(AuthTest, HealthReadinessAndMetricsNeedNoToken) {
  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    SCOPED_TRACE(path);
    HttpResponse r = Send({"GET", path, std::nullopt}, std::nullopt);
    EXPECT_EQ(r.status, 200) << Describe(r);
  }
}

TEST_F(AuthTest, CallbackIsAuthenticatedByItsOwnTokenNotAnApiToken) {
  std::string id = Str(CreateTask(TaskBody("fizzbuzz")), "id");
  json::object running = WaitForState(id, "running");
  int64_t attempt = Int(running, "attempt");
  json::object body{{"attempt", attempt}, {"status", "succeeded"}, {"exit_code", 0}};
  // An API token is not a callback token.
  ExpectError(PostCallback(id, body, std::string("token-alpha")), 401, "unauthenticated");
  // The attempt's callback token works with no API token at all.
  HttpResponse ok = PostCallback(id, body, TokenFor(id, attempt));
  EXPECT_EQ(ok.status, 200) << Describe(ok);
  EXPECT_EQ(Str(GetTask(id), "state"), "succeeded");
}

}  // namespace
}  // namespace sked::blackbox
