#include "conformance/executor_conformance.h"

#include <gmock/gmock.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "core/ids.h"
#include "core/time.h"

namespace sked::testing {

using core::ExecResult;
using std::chrono::milliseconds;
using std::chrono::seconds;

void ExecutorConformanceTest::SetUp() {
  executor_ = GetParam().open();
  ASSERT_NE(executor_, nullptr);
}

void ExecutorConformanceTest::TearDown() {
  executor_.reset();
  if (GetParam().cleanup) GetParam().cleanup();
}

core::Task ExecutorConformanceTest::Prepare(core::Task t) {
  static std::mt19937_64 rng(std::random_device{}());
  const core::Time now =
      core::Time(std::chrono::duration_cast<core::Duration>(
          std::chrono::system_clock::now().time_since_epoch()));
  t.id = core::NewUuidV7(now, rng(), rng());
  t.attempt = 1;
  t.state = core::TaskState::kRunning;
  t.runner = std::string(executor().Kind());
  t.created_at = now;
  t.run_at = now;
  return t;
}

std::string ExecutorConformanceParamName(
    const ::testing::TestParamInfo<ExecutorConformanceParam>& info) {
  return info.param.name;
}

namespace {

// Collects done calls; counts them to catch a second one.
class DoneRecorder {
 public:
  core::DoneCallback Callback() {
    return [this](ExecResult r) {
      std::lock_guard lk(mu_);
      results_.push_back(std::move(r));
      cv_.notify_all();
    };
  }
  bool WaitFor(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return results_.size() >= n; });
  }
  std::vector<ExecResult> results() {
    std::lock_guard lk(mu_);
    return results_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ExecResult> results_;
};

core::LaunchParams Params(const core::Task& t) {
  return {.task = t, .node = "conformance-node", .job_env = {{"SKED_TASK_ID", t.id}}};
}

constexpr auto kDone = seconds(60);

}  // namespace

TEST_P(ExecutorConformanceTest, KindIsTheRunnerName) {
  EXPECT_FALSE(executor().Kind().empty());
}

TEST_P(ExecutorConformanceTest, ASucceedingAttemptCallsDoneOnceWithSuccess) {
  DoneRecorder rec;
  core::Task t = Prepare(GetParam().succeeding());
  auto handle = executor().Launch(Params(t), rec.Callback());
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  EXPECT_FALSE(handle->empty());
  ASSERT_TRUE(rec.WaitFor(1, kDone));
  std::this_thread::sleep_for(milliseconds(200));  // a second call would come now
  auto results = rec.results();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].kind, ExecResult::Kind::kSucceeded) << results[0].error;
  EXPECT_EQ(results[0].exit_code, 0);
  if (!GetParam().succeeding_output.empty()) {
    EXPECT_EQ(results[0].output, GetParam().succeeding_output);
  }
}

TEST_P(ExecutorConformanceTest, AFailingAttemptCallsDoneOnceWithAFailure) {
  DoneRecorder rec;
  core::Task t = Prepare(GetParam().failing());
  auto handle = executor().Launch(Params(t), rec.Callback());
  if (!handle.ok()) {
    // Refusing at launch is a failure too, but then it must be permanent.
    EXPECT_TRUE(handle.status().code() == core::StatusCode::kInvalidArgument ||
                handle.status().code() == core::StatusCode::kFailedPrecondition)
        << handle.status().ToString();
    return;
  }
  ASSERT_TRUE(rec.WaitFor(1, kDone));
  std::this_thread::sleep_for(milliseconds(200));
  auto results = rec.results();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_NE(results[0].kind, ExecResult::Kind::kSucceeded);
  EXPECT_FALSE(results[0].error.empty()) << "a failure says why";
}

TEST_P(ExecutorConformanceTest, RunInstantlyTakesNoAttemptThatWaitsOrCanFail) {
  // What waits (a long task) or reaches outside (the failing one) is launched.
  EXPECT_FALSE(executor().RunInstantly(Params(Prepare(GetParam().long_running()))).has_value());
  EXPECT_FALSE(executor().RunInstantly(Params(Prepare(GetParam().failing()))).has_value());
  // A succeeding attempt the runner takes at once ends as its launch would.
  std::optional<ExecResult> r = executor().RunInstantly(Params(Prepare(GetParam().succeeding())));
  if (r.has_value()) {
    EXPECT_EQ(r->kind, ExecResult::Kind::kSucceeded) << r->error;
    EXPECT_EQ(r->exit_code, 0);
    if (!GetParam().succeeding_output.empty()) {
      EXPECT_EQ(r->output, GetParam().succeeding_output);
    }
  }
}

TEST_P(ExecutorConformanceTest, CancelStopsAnAttemptAndIsIdempotent) {
  DoneRecorder rec;
  core::Task t = Prepare(GetParam().long_running());
  auto handle = executor().Launch(Params(t), rec.Callback());
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_TRUE(rec.results().empty()) << "the long task ended by itself";
  ASSERT_TRUE(executor().Cancel(*handle).ok());
  EXPECT_TRUE(executor().Cancel(*handle).ok()) << "a second cancel is OK";
  EXPECT_TRUE(executor().Cancel("no-such-handle").ok()) << "an unknown handle is OK";
  // After a cancel done may come once (with anything) or never; never twice.
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_LE(rec.results().size(), 1u);
  if (executor().Durable()) {
    auto external = executor().ListExternal();
    ASSERT_TRUE(external.ok()) << external.status().ToString();
    for (const auto& a : *external) EXPECT_NE(a.task_id, t.id) << "cancelled but still there";
  }
}

TEST_P(ExecutorConformanceTest, AdoptOfAnUnknownHandleIsNotFound) {
  DoneRecorder rec;
  core::Task t = Prepare(GetParam().long_running());
  core::Status st = executor().Adopt(Params(t), "sked-no-such-attempt-1", rec.Callback());
  EXPECT_EQ(st.code(), core::StatusCode::kNotFound) << st.ToString();
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_TRUE(rec.results().empty());
}

TEST_P(ExecutorConformanceTest, ADurableRunnerListsItsLiveAttemptsAndCanAdoptThem) {
  if (!executor().Durable()) {
    auto external = executor().ListExternal();
    ASSERT_TRUE(external.ok());
    EXPECT_TRUE(external->empty()) << "an in-process runner has nothing outside";
    return;
  }
  DoneRecorder first;
  core::Task t = Prepare(GetParam().long_running());
  auto handle = executor().Launch(Params(t), first.Callback());
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  bool listed = false;
  for (int i = 0; i < 100 && !listed; ++i) {
    auto external = executor().ListExternal();
    ASSERT_TRUE(external.ok()) << external.status().ToString();
    for (const auto& a : *external) {
      if (a.task_id == t.id) {
        listed = true;
        EXPECT_EQ(a.attempt, 1);
        EXPECT_EQ(a.handle, *handle);
      }
    }
    if (!listed) std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_TRUE(listed) << "the launched attempt is not listed";
  // A second executor (a restarted node) adopts it and is told when it ends.
  std::unique_ptr<core::Executor> other = GetParam().open();
  DoneRecorder adopted;
  ASSERT_TRUE(other->Adopt(Params(t), *handle, adopted.Callback()).ok());
  ASSERT_TRUE(other->Cancel(*handle).ok());
  ASSERT_TRUE(executor().Cancel(*handle).ok());
}

TEST_P(ExecutorConformanceTest, ManyAttemptsAtOnceEachCallDoneOnce) {
  constexpr int kAttempts = 8;
  std::vector<std::unique_ptr<DoneRecorder>> recs;
  for (int i = 0; i < kAttempts; ++i) {
    recs.push_back(std::make_unique<DoneRecorder>());
    core::Task t = Prepare(GetParam().succeeding());
    auto handle = executor().Launch(Params(t), recs.back()->Callback());
    ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  }
  for (auto& r : recs) ASSERT_TRUE(r->WaitFor(1, kDone));
  std::this_thread::sleep_for(milliseconds(200));
  for (auto& r : recs) {
    ASSERT_EQ(r->results().size(), 1u);
    EXPECT_EQ(r->results()[0].kind, ExecResult::Kind::kSucceeded);
  }
}

}  // namespace sked::testing
