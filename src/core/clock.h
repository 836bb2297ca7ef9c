// File: core/clock.h
//
// The injectable clock. Nothing in sked reads system time except through a Clock,
// so tests can drive time with FakeClock (tests/testing/fake_clock.h) instead of
// sleeping.
//
// Thread safety: implementations are safe for concurrent use.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

#include "core/time.h"

namespace sked::core {

using SteadyTime = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;

  // Wall time, for timestamps and run_at comparisons.
  virtual Time Now() const = 0;

  // Blocks on `cv` (with `lock` held, as for std::condition_variable::wait)
  // until `stop()` is true or the clock reaches `deadline`. Returns stop().
  // Spurious wake-ups are absorbed; callers notify `cv` when `stop` may change.
  virtual bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         Time deadline, const std::function<bool()>& stop) const = 0;
};

// The production clock: std::chrono::system_clock.
class SystemClock final : public Clock {
 public:
  Time Now() const override;
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 Time deadline, const std::function<bool()>& stop) const override;

  // A process-wide instance; SystemClock has no state.
  static const SystemClock& Get();
};

}  // namespace sked::core
