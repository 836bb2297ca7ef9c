// File: tests/testing/wait.h
//
// Waits on a condition with a timeout: how tests observe background threads
// without sleeping for a fixed time.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace sked::testing {

// Polls `pred` every millisecond until it holds (true) or `timeout` passes (false).
inline bool WaitFor(const std::function<bool()>& pred,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pred();
}

}  // namespace sked::testing
