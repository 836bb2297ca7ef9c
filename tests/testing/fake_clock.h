// File: tests/testing/fake_clock.h
//
// A Clock that moves only when a test calls Advance()/Set(). Waiters block until
// the fake time reaches their deadline or their stop predicate holds.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>

#include "core/clock.h"

namespace sked::testing {

class FakeClock final : public core::Clock {
 public:
  explicit FakeClock(core::Time start = core::TimeFromSeconds(1'800'000'000)) : now_us_(core::ToMicros(start)) {}

  core::Time Now() const override { return core::TimeFromMicros(now_us_.load()); }

  void Set(core::Time t) { now_us_.store(core::ToMicros(t)); }
  void Advance(core::Duration d) { now_us_.fetch_add(d.count()); }

  // Waits in short real-time slices and re-reads the fake time, so Advance()
  // needs no access to the waiter's condition variable.
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 core::Time deadline, const std::function<bool()>& stop) const override {
    while (!stop()) {
      if (Now() >= deadline) return stop();
      cv.wait_for(lock, std::chrono::milliseconds(1));
    }
    return true;
  }

 private:
  std::atomic<int64_t> now_us_;
};

}  // namespace sked::testing
