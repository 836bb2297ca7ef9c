#include "exec/docker/docker_executor.h"

#include <utility>

namespace sked::exec {

using core::ExecResult;

std::optional<PullPolicy> ParsePullPolicy(std::string_view s) {
  if (s == "missing") return PullPolicy::kMissing;
  if (s == "always") return PullPolicy::kAlways;
  if (s == "never") return PullPolicy::kNever;
  return std::nullopt;
}

std::string DockerContainerName(const std::string& task_id, int attempt) {
  return "sked-" + task_id + "-" + std::to_string(attempt);
}

DockerExecutor::DockerExecutor(DockerExecutorOptions options, DockerClient& client)
    : options_(std::move(options)), client_(client) {}

DockerExecutor::~DockerExecutor() {
  std::unique_lock lk(mu_);
  closing_ = true;
  // Attempt threads are detached; wait for them to notice (a wait call
  // returns within its timeout slice). Their containers keep running, for a
  // node to adopt.
  cv_.wait(lk, [&] { return threads_ == 0; });
}

void DockerExecutor::Log(core::LogLevel level, const std::string& message) {
  if (options_.logger) options_.logger->Log(level, message);
}

core::StatusOr<std::string> DockerExecutor::Launch(const core::LaunchParams& params,
                                                   core::DoneCallback done) {
  const core::Task& t = params.task;
  if (t.image.empty()) return core::InvalidArgumentError("docker: the task has no image");
  const std::string name = DockerContainerName(t.id, t.attempt);
  {
    std::lock_guard lk(mu_);
    if (closing_) return core::UnavailableError("docker: runner is stopping");
    if (runs_.count(name))
      return core::FailedPreconditionError("docker: " + name + " runs already");
    runs_[name] = Run{std::move(done), false};
    ++threads_;
  }
  std::thread([this, params, name] { Attempt(params, name, /*adopt=*/false); }).detach();
  return name;
}

core::Status DockerExecutor::Adopt(const core::LaunchParams& params, const std::string& handle,
                                   core::DoneCallback done) {
  ASSIGN_OR_RETURN(ContainerInfo info, client_.Inspect(handle));  // kNotFound: gone
  // A node may die between creating the container and starting it: then the
  // job has not begun, and adopting it means starting it.
  if (info.status == "created") RETURN_IF_ERROR(client_.StartContainer(handle));
  {
    std::lock_guard lk(mu_);
    if (closing_) return core::UnavailableError("docker: runner is stopping");
    runs_[handle] = Run{std::move(done), false};
    ++threads_;
  }
  std::thread([this, params, handle] { Attempt(params, handle, /*adopt=*/true); }).detach();
  return core::OkStatus();
}

core::Status DockerExecutor::Cancel(const std::string& handle) {
  {
    std::lock_guard lk(mu_);
    auto it = runs_.find(handle);
    if (it != runs_.end()) it->second.cancelled = true;
  }
  // Whatever the attempt thread is doing, the container goes; the thread
  // sees it gone (or cancelled) and ends without calling back.
  RETURN_IF_ERROR(client_.KillContainer(handle));
  return client_.RemoveContainer(handle);
}

core::StatusOr<std::vector<core::ExternalAttempt>> DockerExecutor::ListExternal() {
  ASSIGN_OR_RETURN(std::vector<ContainerInfo> found,
                   client_.ListContainers(
                       {{"sked.managed", "true"}, {"sked.install", options_.installation}},
                       /*all=*/true));
  std::vector<core::ExternalAttempt> out;
  for (const ContainerInfo& c : found) {
    auto id = c.labels.find("sked.task-id");
    auto attempt = c.labels.find("sked.attempt");
    if (id == c.labels.end() || attempt == c.labels.end()) continue;
    int n = 0;
    try {
      n = std::stoi(attempt->second);
    } catch (...) {
      continue;
    }
    out.push_back({id->second, n, c.name});
  }
  return out;
}

bool DockerExecutor::Cancelled(const std::string& name) {
  std::lock_guard lk(mu_);
  auto it = runs_.find(name);
  return closing_ || it == runs_.end() || it->second.cancelled;
}

void DockerExecutor::Attempt(core::LaunchParams params, std::string name, bool adopt) {
  ExecResult result = Execute(params, name, adopt);
  core::DoneCallback done;
  bool cancelled = false, closing = false;
  {
    std::lock_guard lk(mu_);
    closing = closing_;
    auto it = runs_.find(name);
    if (it != runs_.end()) {
      cancelled = it->second.cancelled;
      done = std::move(it->second.done);
      runs_.erase(it);
    }
  }
  if (cancelled) {
    (void)client_.RemoveContainer(name);  // a cancel may have raced the create
  } else if (!closing && done) {
    done(std::move(result));
  }
  std::lock_guard lk(mu_);
  --threads_;
  cv_.notify_all();
}

ExecResult DockerExecutor::Execute(const core::LaunchParams& params, const std::string& name,
                                   bool adopt) {
  const core::Task& t = params.task;
  auto failed = [](ExecResult::Kind kind, std::string error) {
    return ExecResult{kind, -1, "", std::move(error)};
  };
  if (!adopt) {
    // The image: a missing one is pulled (or, with `never`, an error).
    bool pull = options_.pull == PullPolicy::kAlways;
    if (options_.pull == PullPolicy::kMissing) {
      auto exists = client_.ImageExists(t.image);
      if (!exists.ok()) return failed(ExecResult::Kind::kFailed, exists.status().message());
      pull = !*exists;
    }
    if (pull) {
      core::Status pulled = client_.PullImage(t.image);
      if (!pulled.ok()) {
        // No such image, or no registry: the task cannot run anywhere.
        return failed(ExecResult::Kind::kFailedPermanent,
                      "image " + t.image + " could not be pulled: " + pulled.message());
      }
    } else if (options_.pull == PullPolicy::kNever) {
      auto exists = client_.ImageExists(t.image);
      if (exists.ok() && !*exists) {
        return failed(ExecResult::Kind::kFailedPermanent,
                      "image " + t.image + " is not on this node (--docker-pull never)");
      }
    }
    if (Cancelled(name)) return failed(ExecResult::Kind::kFailed, "cancelled");
    ContainerSpec spec;
    spec.name = name;
    spec.image = t.image;
    spec.cmd = t.command;
    spec.env = t.env;
    for (const auto& [k, v] : params.job_env) spec.env[k] = v;
    spec.labels = {{"sked.task-id", t.id},
                   {"sked.attempt", std::to_string(t.attempt)},
                   {"sked.node", params.node},
                   {"sked.managed", "true"},
                   {"sked.install", options_.installation}};
    spec.network_mode = options_.network_mode;
    spec.memory_bytes = options_.memory_bytes;
    spec.nano_cpus = static_cast<int64_t>(options_.cpus * 1e9);
    auto created = client_.CreateContainer(spec);
    if (!created.ok()) {
      const auto code = created.status().code();
      const bool permanent =
          code == core::StatusCode::kNotFound || code == core::StatusCode::kInvalidArgument;
      return failed(permanent ? ExecResult::Kind::kFailedPermanent : ExecResult::Kind::kFailed,
                    "create container: " + created.status().message());
    }
    if (Cancelled(name)) return failed(ExecResult::Kind::kFailed, "cancelled");
    core::Status started = client_.StartContainer(name);
    if (!started.ok()) {
      (void)client_.RemoveContainer(name);
      return failed(ExecResult::Kind::kFailed, "start container: " + started.message());
    }
    Log(core::LogLevel::kInfo, "task " + t.id + " attempt " + std::to_string(t.attempt) +
                                   ": container " + name + " started (" + t.image + ")");
  }
  // Wait in slices, so a cancel or the runner's shutdown is noticed.
  int exit_code = 0;
  while (true) {
    auto waited = client_.WaitContainer(name, std::chrono::seconds(1));
    if (waited.ok()) {
      exit_code = *waited;
      break;
    }
    if (Cancelled(name)) return failed(ExecResult::Kind::kFailed, "cancelled");
    const auto code = waited.status().code();
    if (code == core::StatusCode::kDeadlineExceeded) continue;
    if (code == core::StatusCode::kNotFound) {
      return failed(ExecResult::Kind::kFailed, "container " + name + " vanished");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // engine hiccup
  }
  std::string output;
  if (auto logs = client_.Logs(name, options_.log_tail_lines); logs.ok()) output = *logs;
  (void)client_.RemoveContainer(name);
  if (exit_code == 0) return ExecResult{ExecResult::Kind::kSucceeded, 0, output, ""};
  return ExecResult{ExecResult::Kind::kFailed, exit_code, output,
                    "exit code " + std::to_string(exit_code)};
}

}  // namespace sked::exec
