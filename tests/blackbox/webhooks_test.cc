// Webhooks: a task with a notify_url is POSTed to it once it reaches a final
// state, signed with X-Sked-Signature; a receiver that fails is tried again,
// and every try is in the task's history.
#include <gmock/gmock.h>

#include <string>
#include <vector>

#include "blackbox_test_base.h"
#include "stub_http_server.h"

namespace sked::blackbox {
namespace {

constexpr char kWebhookSecret[] = "blackbox-webhook-secret";

class WebhooksTest : public BlackboxTest {
 protected:
  ServerProcess& Start() {
    return StartServer({.extra_args = {"--webhook-secret", kWebhookSecret}});
  }
  std::vector<std::string> Messages(const std::string& id) {
    std::vector<std::string> out;
    for (const auto& e : Events(id)) out.push_back(Str(e, "message"));
    return out;
  }
};

TEST_F(WebhooksTest, AFinishedTaskIsPostedOnceSignedWithItsJson) {
  Start();
  StubHttpServer receiver(200);
  std::string id =
      Str(CreateTask(TaskBody("fizz", {{"notify_url", receiver.url() + "hooks/sked"}})), "id");
  json::object done = WaitForState(id, "succeeded");
  ASSERT_TRUE(WaitUntil([&] { return !receiver.full_requests().empty(); }))
      << "no webhook arrived";
  auto requests = receiver.full_requests();
  const StubHttpServer::Request& r = requests[0];
  EXPECT_EQ(r.line, "POST /hooks/sked HTTP/1.1");
  EXPECT_THAT(r.Header("content-type"), ::testing::StartsWith("application/json"));
  EXPECT_EQ(r.Header("x-sked-task-id"), id);
  EXPECT_EQ(r.Header("x-sked-signature"), "sha256=" + HmacSha256Hex(kWebhookSecret, r.body));
  json::object body = json::parse(r.body).as_object();
  EXPECT_EQ(Str(body, "id"), id);
  EXPECT_EQ(Str(body, "state"), "succeeded");
  EXPECT_EQ(Str(Obj(body, "result"), "output"), "Fizz " + id);
  EXPECT_EQ(body, done) << "the webhook carries the task as GET shows it";

  ASSERT_TRUE(WaitUntil([&] {
    auto m = Messages(id);
    return !m.empty() && m.back() == "webhook delivered (attempt 1)";
  })) << Dump(json::value_from(Messages(id)));
  // Once: no second POST comes.
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_EQ(receiver.full_requests().size(), 1u);
}

TEST_F(WebhooksTest, AFailingReceiverIsTriedAgainUntilItTakesIt) {
  Start();  // --time-scale 0.01: retries after 5-10 ms, then 10-20 ms
  StubHttpServer receiver(200);
  receiver.ScriptStatuses({500, 503});
  std::string id = Str(CreateTask(TaskBody("noop", {{"notify_url", receiver.url()}})), "id");
  WaitForState(id, "succeeded");
  ASSERT_TRUE(WaitUntil([&] { return receiver.full_requests().size() >= 3; }, seconds(20)));
  ASSERT_TRUE(WaitUntil([&] {
    auto m = Messages(id);
    return !m.empty() && m.back() == "webhook delivered (attempt 3)";
  })) << Dump(json::value_from(Messages(id)));
  EXPECT_THAT(Messages(id), ::testing::IsSupersetOf({
                                "webhook attempt 1 failed: HTTP 500; will retry",
                                "webhook attempt 2 failed: HTTP 503; will retry",
                            }));
  // Every try carried the same signed body.
  auto requests = receiver.full_requests();
  for (const auto& r : requests) {
    EXPECT_EQ(r.Header("x-sked-signature"), "sha256=" + HmacSha256Hex(kWebhookSecret, r.body));
    EXPECT_EQ(r.body, requests[0].body);
  }
}

TEST_F(WebhooksTest, ACancelledTaskIsNotifiedToo) {
  Start();
  StubHttpServer receiver(204);
  std::string cancelled = Str(CreateTask(TaskBody(
                                  "noop", {{"notify_url", receiver.url() + "c"},
                                           {"run_at", "2100-01-01T00:00:00Z"}})),
                              "id");
  ASSERT_EQ(api().PostJson("/v1/tasks/" + cancelled + "/cancel", json::object{}).status, 200);
  ASSERT_TRUE(WaitUntil([&] { return receiver.full_requests().size() == 1; }));
  json::object body = json::parse(receiver.full_requests()[0].body).as_object();
  EXPECT_EQ(Str(body, "id"), cancelled);
  EXPECT_EQ(Str(body, "state"), "cancelled");
  EXPECT_EQ(receiver.full_requests()[0].line, "POST /c HTTP/1.1");
}

TEST_F(WebhooksTest, ATaskWithoutNotifyUrlSendsNothing) {
  Start();
  StubHttpServer receiver(200);
  std::string id = Str(CreateTask(TaskBody("noop")), "id");
  WaitForState(id, "succeeded");
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_TRUE(receiver.full_requests().empty());
  for (const auto& m : Messages(id)) EXPECT_EQ(m.find("webhook"), std::string::npos) << m;
}

}  // namespace
}  // namespace sked::blackbox
