// The executor conformance suite on the docker runner, against the real
// Docker engine (label `docker`) and the local test image.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "conformance/executor_conformance.h"
#include "exec/docker/docker_client.h"
#include "exec/docker/docker_executor.h"

namespace sked::testing {
namespace {

constexpr char kImage[] = "sked-test-busybox:latest";
// Per process: ctest runs each test in a process of its own, in parallel, and
// one test's cleanup must not remove another's containers.
const std::string& Installation() {
  static const std::string id = "executor-conformance-" + std::to_string(::getpid());
  return id;
}

// One client for the process: executors (and a "restarted" second one) share it.
exec::DockerClient& Client() {
  static std::unique_ptr<exec::DockerClient> client = [] {
    const std::string script = SKED_SOURCE_DIR "/tests/docker/build-test-image.sh";
    if (std::system(("bash '" + script + "' >/dev/null").c_str()) != 0) {
      ADD_FAILURE() << "could not build " << kImage << " (is a Docker engine running?)";
    }
    auto c = exec::DockerClient::Connect({});
    if (!c.ok()) {
      // Every test needs the engine: end the process with the reason rather
      // than run on without a client.
      std::fprintf(stderr, "no Docker engine: %s (scripts/test.sh starts dockerd)\n",
                   c.status().ToString().c_str());
      std::_Exit(1);
    }
    return std::move(*c);
  }();
  return *client;
}

core::Task Container(std::vector<std::string> cmd) {
  core::Task t;
  t.type = "container";
  t.runner = "docker";
  t.image = kImage;
  t.command = std::move(cmd);
  return t;
}

void RemoveLeftovers() {
  auto left = Client().ListContainers({{"sked.install", Installation()}}, /*all=*/true);
  if (!left.ok()) return;
  for (const auto& c : *left) (void)Client().RemoveContainer(c.name);
}

INSTANTIATE_TEST_SUITE_P(
    Docker, ExecutorConformanceTest,
    ::testing::Values(ExecutorConformanceParam{
        .name = "docker",
        .open =
            []() -> std::unique_ptr<core::Executor> {
              exec::DockerExecutorOptions o;
              o.installation = Installation();
              return std::make_unique<exec::DockerExecutor>(o, Client());
            },
        .succeeding = [] { return Container({"sh", "-c", "echo ok"}); },
        .failing = [] { return Container({"sh", "-c", "echo bad >&2; exit 5"}); },
        .long_running = [] { return Container({"sleep", "300"}); },
        .succeeding_output = "ok\n",
        .cleanup = RemoveLeftovers}),
    ExecutorConformanceParamName);

}  // namespace
}  // namespace sked::testing
