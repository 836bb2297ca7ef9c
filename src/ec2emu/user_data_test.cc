// File: ec2emu/user_data_test.cc
//
// An instance's user data really runs: as a process group in the instance's
// own directory, reading its instance id from its own IMDSv2 with curl;
// `shutdown -h now` from it terminates the instance
// (Client.InstanceInitiatedShutdown); an interruption first shows in
// spot/instance-action, then terminates it (Server.SpotInstanceTermination);
// terminating it kills the whole process group (SIGTERM, SIGKILL after the
// grace) and removes the instance's labelled Docker containers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "aws/ec2_client.h"
#include "ec2emu/emulator.h"
#include "ec2emu/testing/test_support.h"

namespace sked::ec2emu {
namespace {

using testing::HttpCall;
using testing::JsonString;
using testing::ParseJson;
using testing::WaitFor;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr auto kGrace = 1s;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool Exists(const std::string& path) { return std::filesystem::exists(path); }

// True while `pid` exists and is not a zombie.
bool ProcessAlive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

using Bundle = testing::EmulatorBundle;

Bundle SetupEmulator(EmulatorOptions o = {}) {
  o.pending_delay = 100ms;
  o.terminate_grace = kGrace;
  o.instance_env.emplace_back("SKED_TEST_VAR", "hello");
  return testing::StartEmulatorForTest(std::move(o));
}

// Launches a spot instance with `script` as user data; returns its id.
std::string Launch(Bundle& b, const std::string& script) {
  auto r = b.client->RunSpotInstance(aws::RunSpotParams{
      .image_id = "ami-0123456789abcdef0",
      .instance_type = "t3.micro",
      .user_data = script,
      .tags = {{"sked:task-id", "ud"}},
  });
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->instance_id : "";
}

boost::json::value InstanceJson(const Bundle& b, const std::string& id) {
  return ParseJson(HttpCall("GET", b.url + "_emulator/instances/" + id).body);
}

std::string State(const Bundle& b, const std::string& id) {
  return JsonString(InstanceJson(b, id), {"state"});
}

std::string Dir(const Bundle& b, const std::string& id) {
  return b.emulator->work_dir() + "/" + id;
}

TEST(UserDataTest, RunsInItsDirAndReadsItsInstanceIdThroughImdsV2) {
  Bundle b = SetupEmulator();
  const std::string id = Launch(b, R"SH(#!/bin/sh
set -e
echo "user data starting in $(pwd)"
TOKEN=$(curl -fsS -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" "${AWS_EC2_METADATA_SERVICE_ENDPOINT}latest/api/token")
curl -fsS -H "X-aws-ec2-metadata-token: $TOKEN" "${AWS_EC2_METADATA_SERVICE_ENDPOINT}latest/meta-data/instance-id" > instance-id.txt
curl -fsS -H "X-aws-ec2-metadata-token: $TOKEN" "${AWS_EC2_METADATA_SERVICE_ENDPOINT}latest/user-data" > user-data.txt
echo "$SKED_EC2_EMULATOR $SKED_TEST_VAR ${AWS_EC2_METADATA_DISABLED:-unset}" > env.txt
command -v shutdown > shutdown-path.txt
touch done
)SH");
  const std::string dir = Dir(b, id);
  ASSERT_TRUE(WaitFor([&] { return Exists(dir + "/done"); }, 10s))
      << "console.log:\n" << ReadFile(dir + "/console.log");
  EXPECT_EQ(ReadFile(dir + "/instance-id.txt"), id);
  EXPECT_THAT(ReadFile(dir + "/user-data.txt"), ::testing::StartsWith("#!/bin/sh\nset -e\n"));
  EXPECT_EQ(ReadFile(dir + "/env.txt"), "1 hello unset\n");
  EXPECT_EQ(ReadFile(dir + "/shutdown-path.txt"), dir + "/.emulator/bin/shutdown\n");
  EXPECT_THAT(ReadFile(dir + "/console.log"), HasSubstr("user data starting in " + dir));
  EXPECT_EQ(JsonString(InstanceJson(b, id), {"console_log"}), dir + "/console.log");
  // Finishing the script does not stop the instance, as on EC2.
  EXPECT_EQ(State(b, id), "running");
}

TEST(UserDataTest, WithoutShebangItRunsUnderSh) {
  Bundle b = SetupEmulator();
  const std::string id = Launch(b, "echo plain > plain.txt\n");
  ASSERT_TRUE(WaitFor([&] { return ReadFile(Dir(b, id) + "/plain.txt") == "plain\n"; }, 10s))
      << ReadFile(Dir(b, id) + "/console.log");
}

TEST(UserDataTest, ShutdownFromTheScriptIsInstanceInitiated) {
  Bundle b = SetupEmulator();
  const std::string id = Launch(b, R"SH(#!/bin/sh
echo "shutting down"
shutdown -h now
touch after-shutdown
sleep 30
)SH");
  ASSERT_TRUE(WaitFor([&] { return State(b, id) == "terminated"; }, 10s))
      << State(b, id) << "\n" << ReadFile(Dir(b, id) + "/console.log");
  auto d = b.client->DescribeInstances({id});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)[0].state_reason_code, "Client.InstanceInitiatedShutdown");
  EXPECT_EQ((*d)[0].state_reason_message,
            "Client.InstanceInitiatedShutdown: Instance initiated shutdown");
  EXPECT_THAT(ReadFile(Dir(b, id) + "/console.log"), HasSubstr("shutting down"));
  EXPECT_EQ(JsonString(InstanceJson(b, id), {"spot_request_status"}), "instance-terminated-by-user");
}

TEST(UserDataTest, InterruptServesTheNoticeThenTerminates) {
  Bundle b = SetupEmulator();
  // Polls spot/instance-action as an AWS bootstrap does (every 5 s on EC2,
  // faster here), and records the notice when it appears.
  const std::string id = Launch(b, R"SH(#!/bin/sh
E="$AWS_EC2_METADATA_SERVICE_ENDPOINT"
TOKEN=$(curl -fsS -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "${E}latest/api/token")
curl -s -o /dev/null -w "%{http_code}" -H "X-aws-ec2-metadata-token: $TOKEN" "${E}latest/meta-data/spot/instance-action" > before.txt
touch polling
while true; do
  if curl -fsS -H "X-aws-ec2-metadata-token: $TOKEN" "${E}latest/meta-data/spot/instance-action" > notice.tmp 2>/dev/null; then
    curl -fsS -H "X-aws-ec2-metadata-token: $TOKEN" "${E}latest/meta-data/events/recommendations/rebalance" > rebalance.json
    mv notice.tmp notice.json
    break
  fi
  sleep 0.1
done
sleep 60
)SH");
  const std::string dir = Dir(b, id);
  ASSERT_TRUE(WaitFor([&] { return Exists(dir + "/polling"); }, 10s))
      << ReadFile(dir + "/console.log");
  EXPECT_EQ(ReadFile(dir + "/before.txt"), "404");

  auto start = std::chrono::steady_clock::now();
  auto interrupted = ParseJson(HttpCall("POST", b.url + "_emulator/instances/" + id + "/interrupt",
                                        R"({"warning_seconds": 1.5})")
                                   .body);
  EXPECT_EQ(JsonString(interrupted, {"state"}), "running");
  EXPECT_EQ(JsonString(interrupted, {"spot_request_status"}), "instance-terminated-no-capacity");
  EXPECT_EQ(JsonString(interrupted, {"spot_request_state"}), "closed");

  ASSERT_TRUE(WaitFor([&] { return Exists(dir + "/notice.json"); }, 5s))
      << ReadFile(dir + "/console.log");
  boost::json::value notice = ParseJson(ReadFile(dir + "/notice.json"));
  EXPECT_EQ(JsonString(notice, {"action"}), "terminate");
  EXPECT_THAT(JsonString(notice, {"time"}),
              ::testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"));
  EXPECT_THAT(ReadFile(dir + "/rebalance.json"), HasSubstr("noticeTime"));
  // Still running during the warning.
  EXPECT_EQ(State(b, id), "running");

  ASSERT_TRUE(WaitFor([&] { return State(b, id) == "terminated"; }, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1400ms);
  auto d = b.client->DescribeInstances({id});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)[0].state_reason_code, "Server.SpotInstanceTermination");
}

TEST(UserDataTest, TerminateKillsTheWholeProcessGroup) {
  Bundle b = SetupEmulator();
  // A background child, and one that ignores SIGTERM and so needs SIGKILL.
  const std::string id = Launch(b, R"SH(#!/bin/sh
sleep 300 &
echo $! > bg.pid
sh -c 'trap "" TERM; while true; do sleep 0.05; done' &
echo $! > stubborn.pid
echo $$ > main.pid
wait
)SH");
  const std::string dir = Dir(b, id);
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(dir + "/main.pid").empty(); }, 10s))
      << ReadFile(dir + "/console.log");
  pid_t main_pid = std::stoi(ReadFile(dir + "/main.pid"));
  pid_t bg = std::stoi(ReadFile(dir + "/bg.pid"));
  pid_t stubborn = std::stoi(ReadFile(dir + "/stubborn.pid"));
  EXPECT_EQ(getpgid(bg), main_pid);  // One group, led by the script.
  EXPECT_EQ(getpgid(stubborn), main_pid);
  EXPECT_NE(getpgid(0), main_pid);   // Not ours.

  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(b.client->TerminateInstances({id}).ok());
  EXPECT_EQ(State(b, id), "shutting-down");
  ASSERT_TRUE(WaitFor([&] { return !ProcessAlive(bg) && !ProcessAlive(main_pid); }, 5s));
  // The stubborn one survives SIGTERM until the grace is over.
  EXPECT_TRUE(ProcessAlive(stubborn));
  EXPECT_EQ(State(b, id), "shutting-down");
  ASSERT_TRUE(WaitFor([&] { return State(b, id) == "terminated"; }, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, kGrace);
  EXPECT_FALSE(ProcessAlive(stubborn));
}

TEST(UserDataTest, KillEndsTheGroupAtOnce) {
  Bundle b = SetupEmulator();
  const std::string id = Launch(b, "#!/bin/sh\necho $$ > main.pid\nexec sleep 300\n");
  const std::string dir = Dir(b, id);
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(dir + "/main.pid").empty(); }, 10s));
  pid_t pid = std::stoi(ReadFile(dir + "/main.pid"));
  auto killed = ParseJson(HttpCall("POST", b.url + "_emulator/instances/" + id + "/kill").body);
  EXPECT_EQ(JsonString(killed, {"state"}), "terminated");
  EXPECT_EQ(JsonString(killed, {"state_reason_code"}), "Server.InternalError");
  EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(pid); }, 2s));
}

TEST(UserDataTest, TerminationRemovesTheInstancesLabelledContainers) {
  // A stand-in `docker` that records its calls and lists two containers.
  const std::string tmp = ::testing::TempDir() + "/fake-docker-" + std::to_string(getpid());
  std::filesystem::create_directories(tmp);
  {
    std::ofstream docker(tmp + "/docker");
    docker << "#!/bin/sh\necho \"$@\" >> " << tmp << "/docker.log\n"
           << "if [ \"$1\" = ps ]; then echo c0ffee01; echo c0ffee02; fi\n";
  }
  chmod((tmp + "/docker").c_str(), 0755);
  EmulatorOptions o;
  o.base_environment = testing::Environment({"PATH"}, {{"PATH", tmp + ":" + getenv("PATH")}});
  Bundle b = SetupEmulator(o);
  const std::string id = Launch(b, "#!/bin/sh\nexec sleep 300\n");
  ASSERT_TRUE(WaitFor([&] { return State(b, id) == "running"; }, 5s));
  ASSERT_TRUE(b.client->TerminateInstances({id}).ok());
  ASSERT_TRUE(WaitFor([&] { return State(b, id) == "terminated"; }, 10s));
  std::string log = ReadFile(tmp + "/docker.log");
  EXPECT_THAT(log, HasSubstr("ps -aq --filter label=sked.ec2-instance=" + id + "\n"));
  EXPECT_THAT(log, HasSubstr("rm -f c0ffee01 c0ffee02\n"));
  std::filesystem::remove_all(tmp);
}

TEST(UserDataTest, NoRunUserDataKeepsRecordsOnly) {
  EmulatorOptions o;
  o.run_user_data = false;
  Bundle b = SetupEmulator(o);
  const std::string id = Launch(b, "#!/bin/sh\ntouch ran\n");
  ASSERT_TRUE(WaitFor([&] { return State(b, id) == "running"; }, 5s));
  std::this_thread::sleep_for(200ms);  // Long enough for a script to have started.
  EXPECT_FALSE(Exists(Dir(b, id) + "/ran"));
}

TEST(UserDataTest, StopEndsInstanceProcesses) {
  Bundle b = SetupEmulator();
  const std::string id = Launch(b, "#!/bin/sh\necho $$ > main.pid\nexec sleep 300\n");
  const std::string dir = Dir(b, id);
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(dir + "/main.pid").empty(); }, 10s));
  pid_t pid = std::stoi(ReadFile(dir + "/main.pid"));
  b.emulator->Stop();
  EXPECT_FALSE(ProcessAlive(pid));
  EXPECT_EQ(b.emulator->TEST_model().Get(id)->state, InstanceState::kTerminated);
}

}  // namespace
}  // namespace sked::ec2emu
