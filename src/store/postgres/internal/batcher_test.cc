#include "store/postgres/internal/batcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sked::store::postgres_internal {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

// A batch function that records each batch's keys, answers "v:<key>", and
// holds every batch until the test opens the gate.
class GatedBatches {
 public:
  std::vector<std::string> Answer(const std::vector<std::string>& keys) {
    std::unique_lock<std::mutex> lock(mu_);
    batches_.push_back(keys);
    ++running_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    --running_;
    std::vector<std::string> out;
    for (const std::string& k : keys) out.push_back("v:" + k);
    return out;
  }

  void WaitRunning(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return running_ == n; });
  }

  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

  std::vector<std::vector<std::string>> batches() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int running_ = 0;
  std::vector<std::vector<std::string>> batches_;
};

// Polls until `n` reads wait in the batcher (threads cannot announce that
// they have blocked inside Read).
void WaitForWaiting(Batcher<std::string>& b, size_t n) {
  while (b.Waiting() != n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

TEST(BatcherTest, AReadAloneRunsAtOnceByItself) {
  std::vector<std::vector<std::string>> seen;
  Batcher<std::string> b(
      [&](const std::vector<std::string>& keys) {
        seen.push_back(keys);
        return std::vector<std::string>{"v:" + keys.front()};
      },
      /*max_in_flight=*/1, /*max_batch=*/64);

  EXPECT_EQ(b.Call("a"), "v:a");
  EXPECT_EQ(b.Call("b"), "v:b");
  EXPECT_THAT(seen, ElementsAre(ElementsAre("a"), ElementsAre("b")));
  EXPECT_EQ(b.BatchesAndReads(), std::make_pair(size_t{2}, size_t{2}));
}

// Reads k0 alone, then k1..k8 while k0's batch is held (max_in_flight 1),
// and releases them all. Checks each read got its own answer; returns the
// batches the function saw, in order.
std::vector<std::vector<std::string>> ReadNineBehindAHeldOne(size_t max_batch) {
  GatedBatches gate;
  Batcher<std::string> b([&](const auto& keys) { return gate.Answer(keys); },
                             /*max_in_flight=*/1, max_batch);
  std::vector<std::string> got(9);
  std::vector<std::thread> threads;
  threads.emplace_back([&] { got[0] = b.Call("k0"); });
  gate.WaitRunning(1);
  for (int i = 1; i < 9; ++i) {
    threads.emplace_back([&, i] { got[i] = b.Call("k" + std::to_string(i)); });
  }
  WaitForWaiting(b, 8);
  gate.Open();
  for (auto& t : threads) t.join();

  for (int i = 0; i < 9; ++i) EXPECT_EQ(got[i], "v:k" + std::to_string(i));
  EXPECT_EQ(b.BatchesAndReads(), std::make_pair(gate.batches().size(), size_t{9}));
  return gate.batches();
}

TEST(BatcherTest, ReadsThatArriveDuringABatchShareTheNextOne) {
  auto batches = ReadNineBehindAHeldOne(/*max_batch=*/64);
  ASSERT_EQ(batches.size(), 2u);
  // The first batch had started before the others arrived: it holds k0 alone.
  EXPECT_THAT(batches[0], ElementsAre("k0"));
  EXPECT_THAT(batches[1], UnorderedElementsAre("k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"));
}

TEST(BatcherTest, ABatchHoldsAtMostMaxBatchReads) {
  std::vector<size_t> sizes;
  for (const auto& batch : ReadNineBehindAHeldOne(/*max_batch=*/3)) sizes.push_back(batch.size());
  EXPECT_THAT(sizes, ElementsAre(1, 3, 3, 2));
}

TEST(BatcherTest, UpToMaxInFlightBatchesRunAtOnce) {
  GatedBatches gate;
  Batcher<std::string> b([&](const auto& keys) { return gate.Answer(keys); },
                             /*max_in_flight=*/2, /*max_batch=*/64);

  std::string a, c, d;
  std::thread ta([&] { a = b.Call("a"); });
  gate.WaitRunning(1);
  std::thread tc([&] { c = b.Call("c"); });
  gate.WaitRunning(2);  // a second batch started while the first still runs
  std::thread td([&] { d = b.Call("d"); });
  WaitForWaiting(b, 1);  // a third waits: two are in flight
  gate.Open();
  ta.join();
  tc.join();
  td.join();

  EXPECT_EQ(a, "v:a");
  EXPECT_EQ(c, "v:c");
  EXPECT_EQ(d, "v:d");
  EXPECT_THAT(gate.batches(), ElementsAre(ElementsAre("a"), ElementsAre("c"), ElementsAre("d")));
}

TEST(BatcherTest, EveryReadOfAFailedBatchGetsItsError) {
  Batcher<std::string> b(
      [](const std::vector<std::string>&) -> std::vector<std::string> {
        throw std::runtime_error("no database");
      },
      /*max_in_flight=*/1, /*max_batch=*/64);
  EXPECT_THROW(b.Call("a"), std::runtime_error);
  EXPECT_THROW(b.Call("b"), std::runtime_error);
}

// Many threads, small batches: every read gets its own answer, none is lost
// or left asleep (that would hang the test), and the work was shared.
TEST(BatcherTest, ManyThreadsEachGetTheirOwnAnswer) {
  constexpr int kThreads = 8;
  constexpr int kReads = 2000;
  Batcher<std::string> b(
      [](const std::vector<std::string>& keys) {
        std::vector<std::string> out;
        for (const std::string& k : keys) out.push_back("v:" + k);
        std::this_thread::yield();
        return out;
      },
      /*max_in_flight=*/2, /*max_batch=*/4);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kReads; ++i) {
        const std::string key = std::to_string(t) + "/" + std::to_string(i);
        if (b.Call(key) != "v:" + key) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(b.BatchesAndReads().second, size_t{kThreads * kReads});
  EXPECT_EQ(b.Waiting(), 0u);
}

}  // namespace
}  // namespace sked::store::postgres_internal
