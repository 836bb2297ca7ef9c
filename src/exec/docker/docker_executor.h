// File: exec/docker/docker_executor.h
//
// The `docker` runner: each attempt of a container task is a container on the
// Docker engine next to the node, reached over its unix socket (DockerClient).
// Launch returns at once with the container's name as the handle
// ("sked-<task id>-<attempt>", known before the container exists); a thread of
// its own pulls the image if the pull policy says so, creates the container
// with the task's env (verbatim, never through a shell) plus the job's
// SKED_* variables and the labels sked.task-id / sked.attempt / sked.node /
// sked.managed / sked.install, starts it, waits for it, keeps the tail of its logs as the
// result's output and removes it. Exit code 0 is success; any other fails the
// attempt (retried while attempts remain). A job's own callback, a timeout, a
// cancel or a delete reach it through Cancel, which kills and removes the
// container.
//
// Containers outlive this process (Durable() is true): Adopt re-attaches to a
// running one by name, and FindManaged lists those this runner started.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/executor.h"
#include "core/logger.h"
#include "exec/docker/docker_client.h"

namespace sked::exec {

enum class PullPolicy { kMissing, kAlways, kNever };
std::optional<PullPolicy> ParsePullPolicy(std::string_view s);

inline constexpr int kDefaultDockerLogTailLines = 50;

struct DockerExecutorOptions {
  // Labels every container (sked.install) and scopes ListExternal to it, so
  // installations sharing one engine never touch each other's containers.
  std::string installation;
  // "host" by default: the job reaches the API on the loopback address.
  std::string network_mode = "host";
  int64_t memory_bytes = 0;  // 0: no limit
  double cpus = 0;           // 0: no limit
  PullPolicy pull = PullPolicy::kMissing;
  // Lines of the container's logs kept as the result's output.
  int log_tail_lines = kDefaultDockerLogTailLines;
  core::Logger* logger = nullptr;
};

// "sked-<task id>-<attempt>": an attempt's container name, and its handle.
std::string DockerContainerName(const std::string& task_id, int attempt);

class DockerExecutor final : public core::Executor {
 public:
  // `client` must outlive the executor.
  DockerExecutor(DockerExecutorOptions options, DockerClient& client);
  ~DockerExecutor() override;  // stops waiting; leaves the containers running

  std::string_view Kind() const override { return "docker"; }
  core::StatusOr<std::string> Launch(const core::LaunchParams& params,
                                     core::DoneCallback done) override;
  core::Status Adopt(const core::LaunchParams& params, const std::string& handle,
                     core::DoneCallback done) override;
  core::Status Cancel(const std::string& handle) override;
  // This installation's containers (sked.managed, sked.install), running or not.
  core::StatusOr<std::vector<core::ExternalAttempt>> ListExternal() override;

 private:
  struct Run {
    core::DoneCallback done;
    bool cancelled = false;
  };
  // The attempt's whole life on its own thread; `adopt`: the container exists.
  void Attempt(core::LaunchParams params, std::string name, bool adopt);
  core::ExecResult Execute(const core::LaunchParams& params, const std::string& name, bool adopt);
  bool Cancelled(const std::string& name);
  void Log(core::LogLevel level, const std::string& message);

  const DockerExecutorOptions options_;
  DockerClient& client_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Run> runs_;  // by container name; guarded by mu_
  int threads_ = 0;                  // attempt threads alive; guarded by mu_
  bool closing_ = false;             // guarded by mu_
};

}  // namespace sked::exec
