#include "core/clock.h"

namespace sked::core {

Time SystemClock::Now() const {
  return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
}

bool SystemClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                            Time deadline, const std::function<bool()>& stop) const {
  // Wait on the steady clock, so a wall-clock step does not stall the wait;
  // re-check the wall clock after each wake-up.
  while (!stop()) {
    auto left = deadline - Now();
    if (left <= Duration::zero()) return stop();
    cv.wait_for(lock, left);
  }
  return true;
}

const SystemClock& SystemClock::Get() {
  static const SystemClock clock;
  return clock;
}

}  // namespace sked::core
