// File: sched/retry_policy.h
//
// When a failed attempt runs again: exponential backoff with jitter, scaled by the
// server's time scale so tests need not wait real seconds.
//
// Thread safety: a pure function.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>

#include "core/time.h"

namespace sked::sched {

inline constexpr core::Duration kDefaultBackoffBase = std::chrono::seconds(1);
inline constexpr core::Duration kDefaultBackoffMax = std::chrono::minutes(10);

// Delay before the attempt after `charged_attempts` charged failures (>= 1):
// base * 2^(n-1), capped at `max`, times `time_scale`, then "equal jitter":
// half fixed, half drawn from `unit_random` in [0, 1).
inline core::Duration RetryBackoff(int charged_attempts, core::Duration base, core::Duration max,
                                   double time_scale, double unit_random) {
  int n = std::clamp(charged_attempts, 1, 40);
  double d = static_cast<double>(base.count()) * std::pow(2.0, n - 1);
  d = std::min(d, static_cast<double>(max.count())) * time_scale;
  double jittered = d / 2 + d / 2 * std::clamp(unit_random, 0.0, 1.0);
  return core::Duration(static_cast<int64_t>(jittered));
}

}  // namespace sked::sched
