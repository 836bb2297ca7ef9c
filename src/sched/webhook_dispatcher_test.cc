#include "sched/webhook_dispatcher.h"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <mutex>

#include "store/sqlite/sqlite_store.h"
#include "testing/fake_clock.h"
#include "testing/task_factory.h"
#include "testing/wait.h"

namespace sked::sched {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::WaitFor;

// A receiver that answers from a script (then OK) and records what it got.
class ScriptedNotifier final : public core::Notifier {
 public:
  void Script(std::deque<core::Status> answers) {
    std::lock_guard lk(mu_);
    answers_ = std::move(answers);
  }
  core::Status Notify(const std::string& url, const core::Task& task) override {
    std::lock_guard lk(mu_);
    calls_.push_back({url, task.id, task.state});
    if (answers_.empty()) return core::OkStatus();
    core::Status s = answers_.front();
    answers_.pop_front();
    return s;
  }
  struct Call {
    std::string url;
    std::string task_id;
    core::TaskState state;
  };
  std::vector<Call> calls() const {
    std::lock_guard lk(mu_);
    return calls_;
  }

 private:
  mutable std::mutex mu_;
  std::deque<core::Status> answers_;
  std::vector<Call> calls_;
};

struct Bundle {
  testing::FakeClock clock{testing::kTestEpoch};
  std::unique_ptr<core::Store> store;
  ScriptedNotifier notifier;
  std::unique_ptr<WebhookDispatcher> dispatcher;
  testing::TaskFactory factory{testing::kTestEpoch};

  // A task with a notify_url, run and finished in `state`: one queued delivery.
  std::string FinishedTask(core::TaskState state) {
    core::Task t = factory.Make([&](core::Task& x) {
      x.notify_url = "http://127.0.0.1:9/hook";
      x.run_at = clock.Now();
    });
    EXPECT_TRUE(store->TaskInsert(t).ok());
    auto claimed = store->TaskClaim({.node = "n",
                                     .now = clock.Now(),
                                     .lease = seconds(30),
                                     .limit = 1,
                                     .runners = {"builtin"},
                                     .provisioning_runners = {}});
    EXPECT_TRUE(claimed.ok() && claimed->size() == 1u);
    EXPECT_TRUE(
        store->TaskFinish({.id = t.id, .attempt = 1, .state = state, .now = clock.Now()}).ok());
    return t.id;
  }
  std::vector<std::string> History(const std::string& id) {
    std::vector<std::string> out;
    auto events = store->TaskEventList(id);
    EXPECT_TRUE(events.ok()) << events.status().ToString();
    if (events.ok()) {
      for (const auto& e : *events) out.push_back(e.message);
    }
    return out;
  }
};

std::unique_ptr<Bundle> MakeBundle(int max_attempts = 12) {
  auto b = std::make_unique<Bundle>();
  auto s = store::OpenSqliteStore({.path = ":memory:"});
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  b->store = std::move(*s);
  WebhookDispatcherOptions o;
  o.node_id = "node-a";
  o.max_attempts = max_attempts;
  o.poll = milliseconds(100);  // of fake time: it looks again when the test moves the clock
  o.backoff_base = seconds(1);
  b->dispatcher = std::make_unique<WebhookDispatcher>(o, *b->store, b->notifier, b->clock);
  return b;
}

TEST(WebhookDispatcherTest, DeliversTheFinishedTaskOnce) {
  auto b = MakeBundle();
  std::string id = b->FinishedTask(core::TaskState::kSucceeded);
  b->dispatcher->Start();
  b->dispatcher->Wake();
  ASSERT_TRUE(WaitFor([&] { return b->dispatcher->delivered() == 1; }));
  auto calls = b->notifier.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].url, "http://127.0.0.1:9/hook");
  EXPECT_EQ(calls[0].task_id, id);
  EXPECT_EQ(calls[0].state, core::TaskState::kSucceeded);
  // Nothing more, however long we wait.
  b->clock.Advance(std::chrono::hours(2));
  b->dispatcher->Wake();
  EXPECT_FALSE(WaitFor([&] { return b->notifier.calls().size() > 1; }, milliseconds(100)));
  EXPECT_EQ(b->History(id).back(), "webhook delivered (attempt 1)");
}

TEST(WebhookDispatcherTest, RetriesWithBackoffUntilTheReceiverTakesIt) {
  auto b = MakeBundle();
  b->notifier.Script({core::UnavailableError("HTTP 503"), core::UnavailableError("HTTP 502")});
  std::string id = b->FinishedTask(core::TaskState::kFailed);
  b->dispatcher->Start();
  b->dispatcher->Wake();
  ASSERT_TRUE(WaitFor([&] { return b->notifier.calls().size() == 1; }));
  // Retry 1 waits between 0.5 s and 1 s (equal jitter on 1 s): not before.
  b->clock.Advance(milliseconds(499));
  b->dispatcher->Wake();
  EXPECT_FALSE(WaitFor([&] { return b->notifier.calls().size() > 1; }, milliseconds(100)));
  b->clock.Advance(milliseconds(501));
  ASSERT_TRUE(WaitFor([&] { return b->notifier.calls().size() == 2; }));
  // Retry 2 waits 1 to 2 s.
  b->clock.Advance(seconds(2));
  ASSERT_TRUE(WaitFor([&] { return b->dispatcher->delivered() == 1; }));
  EXPECT_EQ(b->notifier.calls().size(), 3u);
  std::vector<std::string> h = b->History(id);
  ASSERT_GE(h.size(), 3u);
  EXPECT_EQ(h[h.size() - 3], "webhook attempt 1 failed: HTTP 503; will retry");
  EXPECT_EQ(h[h.size() - 2], "webhook attempt 2 failed: HTTP 502; will retry");
  EXPECT_EQ(h[h.size() - 1], "webhook delivered (attempt 3)");
}

TEST(WebhookDispatcherTest, GivesUpAfterMaxAttempts) {
  auto b = MakeBundle(/*max_attempts=*/2);
  b->notifier.Script({core::UnavailableError("HTTP 500"), core::UnavailableError("HTTP 500"),
                      core::UnavailableError("HTTP 500")});
  std::string id = b->FinishedTask(core::TaskState::kSucceeded);
  b->dispatcher->Start();
  b->dispatcher->Wake();
  ASSERT_TRUE(WaitFor([&] { return b->notifier.calls().size() == 1; }));
  b->clock.Advance(seconds(1));
  ASSERT_TRUE(WaitFor([&] { return b->dispatcher->given_up() == 1; }));
  b->clock.Advance(std::chrono::hours(10));
  b->dispatcher->Wake();
  EXPECT_FALSE(WaitFor([&] { return b->notifier.calls().size() > 2; }, milliseconds(100)));
  EXPECT_EQ(b->History(id).back(), "webhook attempt 2 failed: HTTP 500; giving up");
}

TEST(WebhookDispatcherTest, AStoreOutageLeavesTheDeliveryToTheLease) {
  auto b = MakeBundle();
  std::string id = b->FinishedTask(core::TaskState::kSucceeded);
  // Claimed by a node that then died: after its lease another node delivers.
  auto dead = b->store->WebhookClaim(
      {.node = "dead", .now = b->clock.Now(), .lease = seconds(60), .limit = 10});
  ASSERT_TRUE(dead.ok() && dead->size() == 1u);
  b->dispatcher->Start();
  b->dispatcher->Wake();
  EXPECT_FALSE(WaitFor([&] { return !b->notifier.calls().empty(); }, milliseconds(100)));
  b->clock.Advance(seconds(61));
  ASSERT_TRUE(WaitFor([&] { return b->dispatcher->delivered() == 1; }));
  EXPECT_EQ(b->History(id).back(), "webhook delivered (attempt 2)");
}

}  // namespace
}  // namespace sked::sched
