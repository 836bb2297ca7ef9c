// File: exec/builtin/builtin_executor.h
//
// The in-process runner for the built-in task types (fizz, buzz, fizzbuzz, foo,
// bar, baz, noop). Waits are timers on one thread, scaled by `time_scale`, so
// thousands of waiting tasks cost no threads; `bar` makes its HTTP request on a
// small worker pool. Each output line is written to the node's log and returned
// as the result's output.
//
// Attempts live in this process only (Durable() is false): after a crash they
// are run again, never adopted.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/executor.h"
#include "core/logger.h"

namespace sked::exec {

inline constexpr char kDefaultBarUrl[] = "https://www.whattimeisitrightnow.com/";
inline constexpr int kDefaultBarWorkers = 4;
inline constexpr std::chrono::seconds kDefaultBarTimeout{10};

struct BuiltinOptions {
  // Multiplies every built-in wait (fizz 3 s, buzz 5 s, ...). Default 1.
  double time_scale = 1.0;
  // What `bar` fetches. Default: kDefaultBarUrl.
  std::string bar_url = kDefaultBarUrl;
  // Threads doing `bar` requests. Default: kDefaultBarWorkers.
  int bar_workers = kDefaultBarWorkers;
  std::chrono::seconds bar_timeout = kDefaultBarTimeout;
  core::Logger* logger = nullptr;
};

// The line a built-in type prints for `task_id`, given a draw for baz.
// REQUIRES: type is a built-in type other than bar.
std::string BuiltinOutput(const std::string& type, const std::string& task_id, int baz_draw);

// The unscaled wait of a built-in type.
core::Duration BuiltinWait(const std::string& type);

class BuiltinExecutor final : public core::Executor {
 public:
  BuiltinExecutor(BuiltinOptions options, const core::Clock& clock);
  ~BuiltinExecutor() override;

  std::string_view Kind() const override { return "builtin"; }
  bool Durable() const override { return false; }

  // The types without a wait (noop, baz; all but bar at time_scale 0).
  std::optional<core::ExecResult> RunInstantly(const core::LaunchParams& params) override;
  core::StatusOr<std::string> Launch(const core::LaunchParams& params,
                                     core::DoneCallback done) override;
  // Always kNotFound: an in-process attempt does not survive its process.
  core::Status Adopt(const core::LaunchParams& params, const std::string& handle,
                     core::DoneCallback done) override;
  core::Status Cancel(const std::string& handle) override;

 private:
  struct Pending {
    core::DoneCallback done;
    core::ExecResult result;
    std::string task_id;
    int attempt = 0;
  };

  // The result of an attempt of a type other than bar (baz draws its number).
  // REQUIRES: mu_ held (rng_).
  core::ExecResult SucceededLocked(const core::Task& task);
  // BuiltinWait(type) times options_.time_scale.
  core::Duration ScaledWait(const std::string& type) const;
  // The node's log line of a succeeded attempt's output.
  void LogOutput(const std::string& task_id, int attempt, const core::ExecResult& result) const;
  void TimerLoop();
  void BarLoop();
  void Finish(Pending p);

  const BuiltinOptions options_;
  const core::Clock& clock_;

  std::mutex mu_;
  std::condition_variable timer_cv_;
  std::condition_variable bar_cv_;
  bool stop_ = false;
  uint64_t next_handle_ = 0;
  std::multimap<core::Time, std::string> timers_;  // due time -> handle
  std::map<std::string, Pending> pending_;          // handle -> what to report
  std::deque<std::string> bar_queue_;               // handles waiting for a bar worker
  std::mt19937 rng_;

  std::thread timer_thread_;
  std::vector<std::thread> bar_threads_;
};

}  // namespace sked::exec
