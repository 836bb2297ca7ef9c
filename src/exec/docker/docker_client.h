// File: exec/docker/docker_client.h
//
// DockerClient: a small client for the Docker Engine API, spoken as HTTP/1.1
// over the engine's unix socket. It covers what the Docker executor needs:
// images (exists, pull), the container lifecycle (create, start, wait, kill,
// remove), logs, inspect and list. It never runs the `docker` CLI and never
// passes anything through a shell: a container's command and environment go to
// the engine as JSON strings, verbatim.
//
// Errors map to codes by what the caller should do about a retry:
//   - the engine cannot be reached, or answers 5xx      -> kUnavailable
//   - a request outlives its timeout                     -> kDeadlineExceeded
//   - 404 (no such container or image)                   -> kNotFound
//   - 400 (the engine rejected the request)              -> kInvalidArgument
//   - 409 and other 4xx (wrong state, name in use, ...)  -> kFailedPrecondition
//                                                           (kAlreadyExists for a
//                                                           container name in use)
//   - a malformed answer from the engine                 -> kInternal
// Messages carry the engine's own `message` text. Container ids and names must
// match [A-Za-z0-9_.-]+ (kInvalidArgument otherwise), and a response body over
// 64 MiB (e.g. untailed logs) returns kResourceExhausted.
//
// Thread safety: DockerClient is safe for concurrent use without external
// synchronization; each call uses its own connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sked::exec {

inline constexpr char kDefaultDockerHost[] = "unix:///var/run/docker.sock";
inline constexpr std::chrono::seconds kDefaultDockerRequestTimeout{30};
inline constexpr std::chrono::seconds kDefaultDockerPullTimeout{600};

struct DockerClientOptions {
  // Where the engine listens; only "unix://<absolute path>" is supported.
  // Default: kDefaultDockerHost.
  std::string host = kDefaultDockerHost;
  // Upper bound for each ordinary request. During a pull it bounds how long the
  // engine may stay silent. Default: kDefaultDockerRequestTimeout (30 s).
  std::chrono::seconds request_timeout = kDefaultDockerRequestTimeout;
  // Upper bound for a whole PullImage call. Default: kDefaultDockerPullTimeout.
  std::chrono::seconds pull_timeout = kDefaultDockerPullTimeout;
};

struct ContainerSpec {
  // Container name; empty lets the engine pick one.
  std::string name;
  // Image reference, e.g. "busybox:1.36" or "registry:5000/team/app@sha256:...".
  std::string image;
  // argv of the container's command; empty runs the image's default CMD.
  std::vector<std::string> cmd;
  // Environment. Values are passed verbatim (quotes, newlines, "$(...)", '=',
  // unicode are all fine). Keys must be non-empty without '='; neither keys nor
  // values may hold NUL bytes or invalid UTF-8.
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> labels;
  // "" for the engine's default network, or e.g. "host" or "none".
  std::string network_mode;
  // Memory limit in bytes; 0 means no limit.
  int64_t memory_bytes = 0;
  // CPU limit in billionths of a CPU (1'000'000'000 = one CPU); 0 means no limit.
  int64_t nano_cpus = 0;
};

struct ContainerInfo {
  std::string id;
  // Without the engine's leading '/'.
  std::string name;
  std::map<std::string, std::string> labels;
  bool running = false;
  // Set when the container has exited (status "exited").
  std::optional<int> exit_code;
  // The engine's State.Status: "created", "running", "paused", "restarting",
  // "removing", "exited" or "dead".
  std::string status;
};

class DockerClient {
 public:
  // Connects to the engine at options.host: checks GET /_ping and picks the API
  // version (v1.41, or the nearest version the engine supports).
  // Returns kInvalidArgument if host is not "unix://<absolute path>",
  // kUnavailable if no engine answers there, kFailedPrecondition if the engine
  // is too old (API < 1.30). The caller owns the returned client.
  static core::StatusOr<std::unique_ptr<DockerClient>> Connect(DockerClientOptions options);

  DockerClient(const DockerClient&) = delete;
  DockerClient& operator=(const DockerClient&) = delete;
  ~DockerClient();

  // OK if the engine answers GET /_ping.
  core::Status Ping();

  // The API version in use, e.g. "1.41".
  const std::string& api_version() const { return api_version_; }

  // True if the image is present locally, false if the engine does not have it.
  core::StatusOr<bool> ImageExists(const std::string& image);

  // Pulls `image` ("name", "name:tag", "host:port/name:tag", "name@sha256:...";
  // no tag means "latest"). On failure the message reads
  // "pull <image>: <engine's message>". A failure reported in the engine's
  // progress stream returns kFailedPrecondition; status codes map as above
  // (an unreachable registry is a 5xx, so kUnavailable). The call gives up with
  // kDeadlineExceeded after options.pull_timeout, or when the engine stays
  // silent for options.request_timeout.
  core::Status PullImage(const std::string& image);

  // Creates (does not start) a container; returns its id. kNotFound if the
  // image is not present locally (no implicit pull), kAlreadyExists if the name
  // is in use, kInvalidArgument for a spec the engine or this client rejects.
  core::StatusOr<std::string> CreateContainer(const ContainerSpec& spec);

  // Starts a created container. OK also if it is already running.
  core::Status StartContainer(const std::string& id);

  // Blocks until the container is not running and returns its exit code.
  // A timeout of zero waits without limit; otherwise kDeadlineExceeded after
  // `timeout`. kNotFound if there is no such container.
  // REQUIRES: StartContainer has been called; a created, never-started container
  // counts as "not running" and returns at once.
  core::StatusOr<int> WaitContainer(const std::string& id, std::chrono::milliseconds timeout);

  // Sends SIGKILL. OK also when the container is not running or does not exist.
  core::Status KillContainer(const std::string& id);

  // Removes the container (forced, with its anonymous volumes). OK also when it
  // does not exist.
  core::Status RemoveContainer(const std::string& id);

  // The last `tail_lines` lines of the container's stdout and stderr,
  // interleaved as written (a negative tail_lines returns everything).
  // kNotFound if there is no such container.
  core::StatusOr<std::string> Logs(const std::string& id, int tail_lines);

  // kNotFound if there is no such container.
  core::StatusOr<ContainerInfo> Inspect(const std::string& id);

  // Containers carrying every label in `label_filter` (an empty value matches
  // any value of that key). `all` includes stopped containers.
  core::StatusOr<std::vector<ContainerInfo>> ListContainers(
      const std::map<std::string, std::string>& label_filter, bool all);

 private:
  struct Request;
  struct Response;

  DockerClient(DockerClientOptions options, std::string socket_path);

  // Performs one HTTP exchange on a fresh connection. Transport failures become
  // kUnavailable / kDeadlineExceeded prefixed by `what`; any HTTP status is OK.
  core::StatusOr<Response> Do(const Request& request, const std::string& what) const;

  const DockerClientOptions options_;
  const std::string socket_path_;
  std::string api_version_;  // Set once by Connect, read-only afterwards.
};

}  // namespace sked::exec
