// File: core/executor.h
//
// The runner contract. An Executor starts one attempt of a task somewhere (in
// process, a Docker container, an EC2 spot instance) and reports its end. It is
// restart-safe: Launch returns an opaque external handle that the scheduler saves,
// so a node that restarts (or another node) can Adopt the attempt instead of
// starting it again.
//
// Thread safety: implementations are safe for concurrent use.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/task.h"

namespace sked::core {

// How an attempt ended, as data: the scheduler's retry policy reads `kind`,
// never message text.
struct ExecResult {
  enum class Kind {
    kSucceeded,
    kFailed,           // retried while attempts remain
    kFailedPermanent,  // never retried (bad image, bad arguments)
    kInterrupted,      // the host went away; re-run without using an attempt
  };
  Kind kind = Kind::kSucceeded;
  int exit_code = 0;
  std::string output;
  std::string error;
};

// What an attempt needs besides the task itself.
struct LaunchParams {
  Task task;  // with the current attempt number
  std::string node;
  // Extra environment for the job (SKED_TASK_ID, SKED_CALLBACK_URL, ...).
  std::map<std::string, std::string> job_env;
};

// Called exactly once per launched or adopted attempt, from any thread, unless
// Cancel() was called first (then it may or may not be called).
using DoneCallback = std::function<void(ExecResult)>;

// An attempt a runner can see outside this process (a container by its
// labels), so a node that restarts can adopt it or clean it up.
struct ExternalAttempt {
  std::string task_id;
  int attempt = 0;
  std::string handle;
};

// One number a runner reports for /metrics: a counter (monotonic) or a gauge.
// `name` is the metric's name without the "sked_" prefix
// ("ec2_instances_launched_total").
struct RunnerCounter {
  std::string name;
  std::string help;
  int64_t value = 0;
  bool gauge = false;
};

class Executor {
 public:
  virtual ~Executor() = default;

  // The runner name tasks select it by ("builtin", "docker", "ec2-spot").
  virtual std::string_view Kind() const = 0;

  // True when this runner's claims go to `provisioning` first. Such a runner
  // acquires a machine in Launch, which may take seconds, so the engine calls
  // its Launch on a thread of its own rather than on the dispatcher's.
  virtual bool Provisions() const { return false; }

  // True when every node sees the same external attempts (instances in one
  // cloud account), so only the elected node needs to list and reconcile
  // them; false when each node has its own (a local Docker engine).
  virtual bool Shared() const { return false; }

  // True when attempts outlive this process (containers, instances), so the
  // scheduler saves each handle and can Adopt it later. In-process runners
  // return false and their attempts are simply run again.
  virtual bool Durable() const { return true; }

  // Starts the attempt. Returns its handle once the attempt exists externally;
  // `done` fires when it ends. kInvalidArgument for a task this runner cannot
  // run (permanent), kUnavailable when the backend is unreachable (retry).
  virtual StatusOr<std::string> Launch(const LaunchParams& params, DoneCallback done) = 0;

  // What the task's history and API show for a launched attempt: the cloud
  // instance it runs on, and a line for its events ("spot instance i-0abc,
  // t3.micro in subnet-1"). Default: nothing.
  struct Placement {
    std::optional<std::string> instance_id;
    std::string message;
  };
  virtual Placement Placed(const std::string& handle) { return {}; }

  // Runs the attempt here and now when it ends the moment it starts and
  // touches nothing outside this process (a built-in no-op), and returns its
  // result; nullopt (the default) for every other attempt, which the engine
  // then Launches. The engine calls it while the store's claim of the task is
  // still open, so that the claim and the outcome are written together; it
  // must not block.
  virtual std::optional<ExecResult> RunInstantly(const LaunchParams& params) { return std::nullopt; }

  // Re-attaches to an attempt started earlier under `handle`, possibly by a
  // node that died. kNotFound when it no longer exists (the caller re-runs it).
  virtual Status Adopt(const LaunchParams& params, const std::string& handle,
                       DoneCallback done) = 0;

  // Stops the attempt and frees what it holds. OK if it already ended or is
  // unknown.
  virtual Status Cancel(const std::string& handle) = 0;

  // What this runner counts, for /metrics. Default: nothing.
  virtual std::vector<RunnerCounter> Counters() const { return {}; }

  // Every attempt this runner started (on any node) that still exists
  // outside a process. Default: none (in-process runners).
  virtual StatusOr<std::vector<ExternalAttempt>> ListExternal() {
    return std::vector<ExternalAttempt>();
  }
};

}  // namespace sked::core
