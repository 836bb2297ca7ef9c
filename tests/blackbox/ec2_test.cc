// The ec2-spot runner end to end: the real sked binary, the project's EC2
// emulator (sked-ec2-emulator, which runs each instance's user data as a local
// process with its own IMDSv2 endpoint) and the real Docker engine, so the
// bootstrap really starts the job's container, sends heartbeats, watches the
// spot notice and calls back. Every test ends by checking, through the
// emulator's control API, that no instance is left running.
//
// Label `docker` (scripts/test.sh starts dockerd); the image is built from
// Debian's busybox-static (tests/docker/build-test-image.sh).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "blackbox_test_base.h"

namespace sked::blackbox {
namespace {

using ::testing::HasSubstr;

constexpr char kImage[] = "sked-test-busybox:latest";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// sked-ec2-emulator as a child process on a free loopback port.
class Emulator {
 public:
  explicit Emulator(const std::string& dir) : dir_(dir) {
    log_ = dir_ + "/emulator.log";
    std::vector<std::string> args = {SKED_EC2_EMULATOR,
                                     "--listen", "127.0.0.1:0",
                                     "--pending-seconds", "0.2",
                                     "--spot-warning-seconds", "3",
                                     "--terminate-grace-seconds", "2",
                                     "--work-dir", dir_ + "/instances"};
    pid_ = fork();
    if (pid_ == 0) {
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    const std::string marker = "listening on http://127.0.0.1:";
    WaitUntil(
        [&] {
          std::string log = ReadAll(log_);
          size_t at = log.find(marker);
          if (at == std::string::npos) return false;
          port_ = std::atoi(log.c_str() + at + marker.size());
          return port_ > 0;
        },
        seconds(15));
    if (port_ <= 0) throw std::runtime_error("the emulator did not start:\n" + ReadAll(log_));
    http_ = std::make_unique<HttpClient>([this] { return url(); });
  }
  ~Emulator() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      for (int i = 0; i < 100 && waitpid(pid_, &status, WNOHANG) == 0; ++i) usleep(100000);
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  HttpClient& http() { return *http_; }
  std::string Log() const { return ReadAll(log_); }

  // Every instance the emulator knows, terminated ones included.
  std::vector<json::object> Instances() {
    HttpResponse r = http_->Get("/_emulator/instances");
    if (r.status != 200) throw std::runtime_error("GET /_emulator/instances: " + r.body);
    const json::value answer = json::parse(r.body);
    std::vector<json::object> out;
    for (const auto& v : answer.at("instances").as_array()) out.push_back(v.as_object());
    return out;
  }
  std::vector<json::object> InstancesOf(const std::string& task_id) {
    std::vector<json::object> out;
    for (auto& i : Instances()) {
      const auto& tags = i.at("tags").as_object();
      if (auto* t = tags.if_contains("sked:task-id"); t && t->as_string() == task_id)
        out.push_back(i);
    }
    return out;
  }
  // Instances not yet terminated (pending, running, shutting-down).
  size_t Live() {
    size_t n = 0;
    for (auto& i : Instances())
      if (Str(i, "state") != "terminated") ++n;
    return n;
  }
  void Control(const std::string& target, const json::object& body = {}) {
    HttpResponse r = http_->PostJson(target, body);
    if (r.status / 100 != 2) throw std::runtime_error("POST " + target + ": " + r.body);
  }

 private:
  std::string dir_, log_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::unique_ptr<HttpClient> http_;
};

class Ec2Test : public BlackboxTest {
 protected:
  static void SetUpTestSuite() {
    const std::string script = SKED_SOURCE_DIR "/tests/docker/build-test-image.sh";
    ASSERT_EQ(std::system(("bash '" + script + "' >/dev/null").c_str()), 0)
        << "could not build " << kImage << " (is a Docker engine running?)";
  }

  void SetUp() override {
    char tmpl[] = "/tmp/sked-ec2-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    emulator_ = std::make_unique<Emulator>(dir_);
  }

  void TearDown() override {
    if (emulator_) {
      // Whatever happened, no instance may be left running.
      EXPECT_TRUE(WaitUntil([&] { return emulator_->Live() == 0; }, seconds(20)))
          << "instances left running";
      // A terminated instance takes its containers with it, as a VM would.
      EXPECT_TRUE(WaitUntil([&] { return InstanceContainers().empty(); }, seconds(20)))
          << "containers of terminated instances left behind";
      if (HasFailure()) std::cerr << "emulator log tail:\n" << Tail(emulator_->Log()) << "\n";
    }
    BlackboxTest::TearDown();
    emulator_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Containers started by a bootstrap on an emulated instance, running or not.
  static std::string InstanceContainers() {
    CommandResult r = RunCommand({"/usr/bin/docker", "ps", "-aq", "--filter",
                                  "label=sked.ec2-instance"});
    return r.output;
  }

  static std::string Tail(const std::string& s, size_t n = 6000) {
    return s.size() <= n ? s : s.substr(s.size() - n);
  }

  ServerOptions Ec2Options(std::vector<std::string> types = {"t3.micro", "t3.small"}) {
    ServerOptions o;
    o.time_scale = 0.1;
    o.docker = false;  // only the ec2-spot runner: the container runs on an "instance"
    std::string joined;
    for (const auto& t : types) joined += (joined.empty() ? "" : ",") + t;
    o.extra_args = {"--ec2-endpoint", emulator_->url() + "/", "--ec2-ami", "ami-0123456789abcdef0",
                    "--ec2-instance-types", joined, "--ec2-subnets", "subnet-aaa",
                    "--ec2-heartbeat-s", "5", "--default-runner", "ec2-spot"};
    o.extra_env = {{"AWS_ACCESS_KEY_ID", "test"},
                   {"AWS_SECRET_ACCESS_KEY", "test"},
                   {"AWS_CONFIG_FILE", "/dev/null"},
                   {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
                   {"AWS_EC2_METADATA_DISABLED", "true"}};
    return o;
  }

  ServerProcess& Start(ServerOptions o) {
    ServerProcess& s = StartServer(std::move(o));
    EXPECT_TRUE(s.WaitForLog("ec2-spot runner: ami-", seconds(5))) << s.LogTail();
    return s;
  }

  json::object Job(const std::string& script, json::object extra = {}) {
    json::object body = {{"type", "container"},
                         {"runner", "ec2-spot"},
                         {"image", kImage},
                         {"command", json::array{"sh", "-c", script}}};
    for (auto& kv : extra) body[kv.key()] = kv.value();
    return body;
  }

  // Whether GET /metrics has the line "<name> <value>".
  bool MetricIs(const std::string& name, int value) {
    HttpResponse r = api().Get("/metrics");
    return r.status == 200 &&
           r.body.find("\n" + name + " " + std::to_string(value) + "\n") != std::string::npos;
  }

  bool EventSays(const std::string& id, const std::string& text) {
    for (const auto& e : Events(id))
      if (Str(e, "message").find(text) != std::string::npos) return true;
    return false;
  }
  std::string EventsText(const std::string& id) {
    std::string out;
    for (const auto& e : Events(id))
      out += Str(e, "state") + " #" + std::to_string(Int(e, "attempt")) + ": " +
             Str(e, "message") + "\n";
    return out;
  }

  // The one instance of `id` that is not terminated, once there is one.
  json::object LiveInstanceOf(const std::string& id) {
    json::object found;
    EXPECT_TRUE(WaitUntil(
        [&] {
          for (auto& i : emulator_->InstancesOf(id))
            if (Str(i, "state") == "running") {
              found = i;
              return true;
            }
          return false;
        },
        seconds(30)));
    return found;
  }

  std::string dir_;
  std::unique_ptr<Emulator> emulator_;
};

TEST_F(Ec2Test, AJobRunsOnAFreshSpotInstanceCallsBackAndTheInstanceIsTerminated) {
  Start(Ec2Options());
  json::object created = CreateTask(
      Job("echo \"hello from $SKED_TASK_ID attempt $SKED_ATTEMPT resumed=$SKED_RESUMED\"; "
          "printf '[%s]' \"$QUOTED\"",
          {{"env", json::object{{"QUOTED", "it's \"$(id)\" `id` \\ $HOME"}}}}));
  const std::string id = Str(created, "id");
  EXPECT_EQ(Str(created, "runner"), "ec2-spot");
  json::object done = WaitForState(id, "succeeded", seconds(60));
  EXPECT_THAT(Str(Obj(done, "result"), "output"),
              HasSubstr("hello from " + id + " attempt 1 resumed=0"));
  EXPECT_THAT(Str(Obj(done, "result"), "output"), HasSubstr("[it's \"$(id)\" `id` \\ $HOME]"))
      << "the env did not reach the container verbatim";
  EXPECT_EQ(Int(Obj(done, "result"), "exit_code"), 0);
  const std::string instance = Str(done, "instance_id");
  EXPECT_EQ(instance.rfind("i-", 0), 0u) << instance;

  std::vector<json::object> instances = emulator_->InstancesOf(id);
  ASSERT_EQ(instances.size(), 1u);
  EXPECT_EQ(Str(instances[0], "instance_id"), instance);
  EXPECT_EQ(Str(instances[0], "instance_type"), "t3.micro");
  const auto& tags = Obj(instances[0], "tags");
  EXPECT_EQ(Str(tags, "sked:attempt"), "1");
  EXPECT_EQ(Str(tags, "sked:managed"), "true");
  EXPECT_TRUE(WaitUntil([&] { return emulator_->Live() == 0; }, seconds(20)))
      << "the instance was not terminated";

  // provisioning until the first heartbeat, then running.
  std::vector<std::string> states;
  for (const auto& e : Events(id)) states.push_back(Str(e, "state"));
  EXPECT_THAT(states, ::testing::IsSupersetOf({"provisioning", "running", "succeeded"}))
      << EventsText(id);
  EXPECT_TRUE(EventSays(id, "launched spot instance " + instance)) << EventsText(id);
  EXPECT_TRUE(MetricIs("sked_ec2_instances_launched_total", 1));
  EXPECT_TRUE(WaitUntil([&] { return MetricIs("sked_ec2_instances_terminated_total", 1); }))
      << api().Get("/metrics").body;
  EXPECT_TRUE(MetricIs("sked_ec2_instances_watched", 0));
}

TEST_F(Ec2Test, ASpotInterruptionFinishesTheJobOnASecondInstanceWithoutUsingAnAttempt) {
  Start(Ec2Options());
  // Attempt 1 runs until told to stop; its successor sees SKED_RESUMED=1.
  const std::string id = Str(
      CreateTask(Job("trap 'echo checkpointed; exit 143' TERM; "
                     "if [ \"$SKED_RESUMED\" = 1 ]; then echo resumed on attempt $SKED_ATTEMPT; "
                     "exit 0; fi; while :; do sleep 0.2; done",
                     {{"max_attempts", 1}})),
      "id");
  WaitForState(id, "running", seconds(60));
  json::object first = LiveInstanceOf(id);
  const std::string first_id = Str(first, "instance_id");
  emulator_->Control("/_emulator/instances/" + first_id + "/interrupt",
                     {{"warning_seconds", 3}});

  json::object done = WaitForState(id, "succeeded", seconds(60));
  EXPECT_EQ(Int(done, "attempt"), 2);
  EXPECT_THAT(Str(Obj(done, "result"), "output"), HasSubstr("resumed on attempt 2"));
  EXPECT_NE(Str(done, "instance_id"), first_id);
  EXPECT_TRUE(EventSays(id, "interrupted")) << EventsText(id);
  EXPECT_TRUE(EventSays(id, "spot interruption notice")) << EventsText(id);

  std::vector<json::object> instances = emulator_->InstancesOf(id);
  ASSERT_EQ(instances.size(), 2u);
  EXPECT_TRUE(WaitUntil([&] { return emulator_->Live() == 0; }, seconds(20)));
  for (auto& i : emulator_->InstancesOf(id)) {
    if (Str(i, "instance_id") != first_id) continue;
    // Left to EC2's reclaim (not terminated by sked), after the bootstrap
    // gave the container its SIGTERM.
    EXPECT_EQ(Str(i, "state_reason_code"), "Server.SpotInstanceTermination");
    const std::string console = ReadAll(Str(i, "console_log"));
    EXPECT_THAT(console, HasSubstr("spot interruption notice")) << console;
    EXPECT_THAT(console, HasSubstr("container stopped")) << console;
  }
  EXPECT_TRUE(MetricIs("sked_ec2_instances_left_to_reclaim_total", 1))
      << api().Get("/metrics").body;
}

TEST_F(Ec2Test, AnInstanceThatVanishesWithoutNoticeIsReplaced) {
  Start(Ec2Options());
  const std::string id =
      Str(CreateTask(Job("if [ \"$SKED_RESUMED\" = 1 ]; then echo second try; exit 0; fi; "
                         "sleep 300",
                         {{"max_attempts", 1}})),
          "id");
  WaitForState(id, "running", seconds(60));
  const std::string first_id = Str(LiveInstanceOf(id), "instance_id");
  emulator_->Control("/_emulator/instances/" + first_id + "/kill");

  json::object done = WaitForState(id, "succeeded", seconds(60));
  EXPECT_EQ(Int(done, "attempt"), 2);
  EXPECT_THAT(Str(Obj(done, "result"), "output"), HasSubstr("second try"));
  EXPECT_TRUE(EventSays(id, "ended without notice")) << EventsText(id);
  EXPECT_TRUE(MetricIs("sked_ec2_instances_lost_total", 1)) << api().Get("/metrics").body;
}

TEST_F(Ec2Test, NoCapacityForTheFirstTypeLaunchesTheNext) {
  emulator_->Control("/_emulator/faults", {{"capacity_error_types", json::array{"t3.micro"}}});
  Start(Ec2Options({"t3.micro", "t3.small"}));
  const std::string id = Str(CreateTask(Job("echo ok")), "id");
  json::object done = WaitForState(id, "succeeded", seconds(60));
  EXPECT_EQ(Int(done, "attempt"), 1);
  std::vector<json::object> instances = emulator_->InstancesOf(id);
  ASSERT_EQ(instances.size(), 1u);
  EXPECT_EQ(Str(instances[0], "instance_type"), "t3.small");
  EXPECT_TRUE(EventSays(id, "no capacity in t3.micro in subnet-aaa (InsufficientInstanceCapacity)"))
      << EventsText(id);
  EXPECT_TRUE(MetricIs("sked_ec2_pools_without_capacity_total", 1)) << api().Get("/metrics").body;
}

TEST_F(Ec2Test, ThrottlingIsWaitedOutWithBackoff) {
  Start(Ec2Options());
  emulator_->Control("/_emulator/faults", {{"throttle_next", 3}});
  const std::string id = Str(CreateTask(Job("echo ok")), "id");
  json::object done = WaitForState(id, "succeeded", seconds(60));
  EXPECT_EQ(Int(done, "attempt"), 1) << "throttling must not cost an attempt";
  EXPECT_EQ(emulator_->InstancesOf(id).size(), 1u) << "a retried launch must not start two";
  EXPECT_THAT(emulator_->Log(), HasSubstr("RequestLimitExceeded"));
}

TEST_F(Ec2Test, CancelDeleteAndTimeoutTerminateTheInstance) {
  Start(Ec2Options());
  const std::string cancelled = Str(CreateTask(Job("sleep 300")), "id");
  const std::string deleted = Str(CreateTask(Job("sleep 300")), "id");
  const std::string slow = Str(CreateTask(Job("sleep 300", {{"timeout_s", 8}, {"max_attempts", 1}})), "id");
  WaitForState(cancelled, "running", seconds(60));
  WaitForState(deleted, "running", seconds(60));
  ASSERT_EQ(api().PostJson("/v1/tasks/" + cancelled + "/cancel", json::object{}).status, 200);
  ASSERT_EQ(api().Delete("/v1/tasks/" + deleted).status, 204);
  json::object timed_out = WaitForState(slow, "failed", seconds(60));
  EXPECT_THAT(Str(timed_out, "error"), HasSubstr("timed out"));
  for (const auto& id : {cancelled, deleted, slow}) {
    EXPECT_TRUE(WaitUntil(
        [&] {
          for (auto& i : emulator_->InstancesOf(id))
            if (Str(i, "state") != "terminated") return false;
          return true;
        },
        seconds(20)))
        << "the instance of " << id << " was left running";
  }
}

TEST_F(Ec2Test, ANodeKilledMidJobIsReplacedByOneThatAdoptsTheInstance) {
  ServerOptions o = Ec2Options();
  o.port = PickFreePort();  // the job's callback URL stays valid across the restart
  o.node_id = "node-a";
  o.extra_args.insert(o.extra_args.end(), {"--lease-s", "2"});
  ServerProcess& s = Start(o);
  // Long enough to outlive the first node; short enough for the test.
  const std::string id = Str(CreateTask(Job("sleep 8; echo finished once")), "id");
  WaitForState(id, "running", seconds(60));
  const std::string instance = Str(LiveInstanceOf(id), "instance_id");
  s.Kill();
  s.options().node_id = "node-b";
  s.Start();
  json::object done = WaitForState(id, "succeeded", seconds(60));
  EXPECT_EQ(Int(done, "attempt"), 1) << EventsText(id);
  EXPECT_EQ(Str(done, "instance_id"), instance);
  EXPECT_THAT(Str(Obj(done, "result"), "output"), HasSubstr("finished once"));
  EXPECT_EQ(emulator_->InstancesOf(id).size(), 1u) << "the job was started twice";
  EXPECT_TRUE(EventSays(id, "adopted by node-b")) << EventsText(id);
  EXPECT_TRUE(MetricIs("sked_ec2_instances_adopted_total", 1)) << api().Get("/metrics").body;
  EXPECT_TRUE(MetricIs("sked_ec2_instances_launched_total", 0)) << "node-b launched nothing";
}

TEST_F(Ec2Test, AnInstanceThatCannotReachTheSchedulerShutsItselfDown) {
  ServerOptions o = Ec2Options();
  o.extra_args.insert(o.extra_args.end(), {"--ec2-give-up-s", "20"});  // 2 s at this scale
  ServerProcess& s = Start(o);
  const std::string id = Str(CreateTask(Job("sleep 2; echo done")), "id");
  WaitForState(id, "running", seconds(60));
  const std::string instance = Str(LiveInstanceOf(id), "instance_id");
  s.Kill();  // and it never comes back: nobody will terminate the instance
  EXPECT_TRUE(WaitUntil(
      [&] {
        for (auto& i : emulator_->InstancesOf(id))
          if (Str(i, "instance_id") == instance)
            return Str(i, "state") == "terminated" &&
                   Str(i, "state_reason_code") == "Client.InstanceInitiatedShutdown";
        return false;
      },
      seconds(30)))
      << "the instance kept running without a scheduler";
}

TEST_F(Ec2Test, ATaggedInstanceWithNoLiveTaskIsTerminated) {
  ServerOptions o = Ec2Options();
  o.extra_args.insert(o.extra_args.end(), {"--lease-s", "3"});  // reconciles every second
  Start(o);
  // A first job shows this installation's tag value.
  const std::string id = Str(CreateTask(Job("echo ok")), "id");
  WaitForState(id, "succeeded", seconds(60));
  const std::string install =
      Str(Obj(emulator_->InstancesOf(id).at(0), "tags"), "sked:install");
  // An instance of this installation whose task does not exist, launched
  // behind sked's back with AWS's own CLI (a leftover of a lost database, say).
  CommandResult r = RunCommand(
      {"/usr/bin/aws", "--endpoint-url", emulator_->url(), "--region", "us-east-1", "ec2",
       "run-instances", "--image-id", "ami-0123456789abcdef0", "--instance-type", "t3.micro",
       "--count", "1", "--tag-specifications",
       "ResourceType=instance,Tags=[{Key=sked:managed,Value=true},{Key=sked:install,Value=" +
           install + "},{Key=sked:task-id,Value=no-such-task},{Key=sked:attempt,Value=1}]",
       "--query", "Instances[0].InstanceId", "--output", "text"},
      seconds(30),
      {{"AWS_ACCESS_KEY_ID", "test"}, {"AWS_SECRET_ACCESS_KEY", "test"},
       {"AWS_CONFIG_FILE", "/dev/null"}, {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
       {"AWS_EC2_METADATA_DISABLED", "true"}, {"AWS_PAGER", ""}});
  ASSERT_TRUE(r.status.exited && r.status.code == 0) << r.output;
  const std::string orphan = r.output.substr(0, r.output.find_first_of(" \n"));
  ASSERT_EQ(orphan.rfind("i-", 0), 0u) << r.output;
  EXPECT_TRUE(WaitUntil(
      [&] {
        for (auto& i : emulator_->Instances())
          if (Str(i, "instance_id") == orphan) return Str(i, "state") == "terminated";
        return false;
      },
      seconds(30)))
      << "the orphan instance was not terminated";
  EXPECT_TRUE(server().WaitForLog("its task no-such-task no longer runs", seconds(1)))
      << server().LogTail();
}

}  // namespace
}  // namespace sked::blackbox
