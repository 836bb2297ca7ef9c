// File: ec2emu/awscli_test.cc
//
// AWS's own clients against the sked-ec2-emulator binary (specs/ec2-spot.md
// section 8(c)2): Debian's /usr/bin/aws (awscli 2.9, its own botocore copy)
// and botocore's waiters under Debian's /usr/bin/python3. This proves that the
// emulator's XML parses in AWS's parser, that its error shape and statuses
// give AWS's error codes and exit 254, and that its SigV4 check accepts AWS's
// signatures, static keys and instance-role keys with their session token.
//
// A missing /usr/bin/aws or python3-botocore is a failure, never a skip:
// scripts/install-deps.sh --test installs both.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>

#include "ec2emu/testing/test_support.h"

namespace sked::ec2emu {
namespace {

using testing::ChildProcess;
using testing::HttpCall;
using testing::JsonString;
using testing::ParseJson;
using testing::ProcessResult;
using testing::RunProcess;
using testing::WaitFor;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
namespace json = boost::json;

constexpr char kAws[] = "/usr/bin/aws";
constexpr char kPython[] = "/usr/bin/python3";
constexpr char kEmulator[] = SKED_EC2_EMULATOR_BIN;
constexpr char kWaiterScript[] = SKED_SOURCE_DIR "/tests/aws/botocore_waiters.py";
constexpr char kSpotOptions[] =
    R"({"MarketType":"spot","SpotOptions":{"SpotInstanceType":"one-time",)"
    R"("InstanceInterruptionBehavior":"terminate"}})";

// Every AWS_* variable that could send the CLI elsewhere or change its
// behaviour is dropped before the test sets its own.
const std::vector<std::string> kDroppedVariables = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_EC2", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_CA_BUNDLE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_EC2_METADATA_DISABLED", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PAGER",
    "HOME"};

class AwsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(kAws, X_OK), 0)
        << kAws << " is missing: install Debian's awscli (scripts/install-deps.sh --test)";
    ASSERT_EQ(access(kEmulator, X_OK), 0) << kEmulator;
    home_ = ::testing::TempDir() + "/awscli-home-" + std::to_string(getpid());
    std::filesystem::create_directories(home_);
  }

  void TearDown() override {
    if (emulator_.pid() > 0) {
      EXPECT_EQ(emulator_.Stop(), 0) << "the emulator did not exit cleanly on SIGTERM";
    }
    std::filesystem::remove_all(home_);
  }

  void StartEmulator(std::vector<std::string> extra = {}, std::string pending_seconds = "0.3") {
    std::vector<std::string> argv = {kEmulator, "--listen", "127.0.0.1:0", "--pending-seconds",
                                     pending_seconds, "--spot-warning-seconds", "2",
                                     "--terminate-grace-seconds", "1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ASSERT_TRUE(emulator_.Start(argv, home_ + "/emulator.log"));
    std::optional<std::string> line = emulator_.ReadLine(10s);
    ASSERT_TRUE(line.has_value()) << "no listening line from the emulator";
    ASSERT_THAT(*line, ::testing::MatchesRegex("listening on http://127\\.0\\.0\\.1:[0-9]+/"));
    url_ = line->substr(std::string("listening on ").size());
  }

  // The CLI's environment: static test keys unless `keys` is false, no
  // config files, no pager, IMDS off unless an endpoint is given.
  std::vector<std::string> AwsEnv(std::map<std::string, std::string> extra = {},
                                  bool keys = true) {
    std::map<std::string, std::string> add = {{"AWS_CONFIG_FILE", "/dev/null"},
                                              {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
                                              {"AWS_PAGER", ""},
                                              {"HOME", home_}};
    if (keys) {
      add["AWS_ACCESS_KEY_ID"] = "test";
      add["AWS_SECRET_ACCESS_KEY"] = "test";
    }
    if (extra.count("AWS_EC2_METADATA_SERVICE_ENDPOINT") == 0) {
      add["AWS_EC2_METADATA_DISABLED"] = "true";
    }
    for (auto& [k, v] : extra) add[k] = v;
    return testing::Environment(kDroppedVariables, add);
  }

  ProcessResult Aws(std::vector<std::string> args, std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {kAws, "--endpoint-url", url_, "--region", "us-east-1",
                                     "--output", "json"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, env.empty() ? AwsEnv() : env, 60s);
  }

  json::value AwsJson(std::vector<std::string> args) {
    ProcessResult r = Aws(std::move(args));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json::value v = ParseJson(r.out);
    EXPECT_TRUE(v.is_object()) << r.out;
    return v;
  }

  // POST /_emulator/faults.
  void Faults(const std::string& body) {
    testing::HttpResult r = HttpCall("POST", url_ + "_emulator/faults", body);
    ASSERT_EQ(r.status, 200) << r.body;
  }

  std::string StateOf(const std::string& id) {
    return JsonString(ParseJson(HttpCall("GET", url_ + "_emulator/instances/" + id).body),
                      {"state"});
  }

  // run-instances for one spot instance tagged sked:task-id=`task`.
  std::string RunSpot(const std::string& task, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"ec2", "run-instances", "--image-id",
                                     "ami-0123456789abcdef0", "--instance-type", "t3.micro",
                                     "--count", "1", "--instance-market-options", kSpotOptions,
                                     "--tag-specifications",
                                     "ResourceType=instance,Tags=[{Key=sked:task-id,Value=" +
                                         task + "}]"};
    args.insert(args.end(), extra.begin(), extra.end());
    json::value v = AwsJson(args);
    return JsonString(v.at("Instances").at(0), {"InstanceId"});
  }

  ChildProcess emulator_;
  std::string url_;
  std::string home_;
};

const json::object& OnlyInstance(const json::value& describe) {
  static const json::object kEmpty;
  const json::array& reservations = describe.at("Reservations").as_array();
  EXPECT_EQ(reservations.size(), 1u);
  if (reservations.size() != 1) return kEmpty;
  const json::array& instances = reservations[0].at("Instances").as_array();
  EXPECT_EQ(instances.size(), 1u);
  return instances.size() == 1 ? instances[0].as_object() : kEmpty;
}

std::map<std::string, std::string> Tags(const json::object& instance) {
  std::map<std::string, std::string> out;
  if (!instance.contains("Tags")) return out;
  for (const json::value& t : instance.at("Tags").as_array()) {
    out[JsonString(t, {"Key"})] = JsonString(t, {"Value"});
  }
  return out;
}

TEST_F(AwsCliTest, RunDescribeSpotRequestsAndTerminate) {
  ASSERT_NO_FATAL_FAILURE(StartEmulator());
  json::value run = AwsJson(
      {"ec2", "run-instances", "--image-id", "ami-0123456789abcdef0", "--instance-type",
       "t3.micro", "--count", "1", "--instance-market-options", kSpotOptions,
       "--tag-specifications",
       "ResourceType=instance,Tags=[{Key=sked:task-id,Value=t-42},{Key=Name,Value=sked t-42}]",
       "--metadata-options", "HttpTokens=required,HttpPutResponseHopLimit=2"});
  const json::value& launched = run.at("Instances").at(0);
  const std::string id = JsonString(launched, {"InstanceId"});
  EXPECT_THAT(id, ::testing::MatchesRegex("i-[0-9a-f]{17}"));
  EXPECT_THAT(JsonString(run, {"ReservationId"}), ::testing::StartsWith("r-"));
  EXPECT_EQ(JsonString(launched, {"State", "Name"}), "pending");
  EXPECT_EQ(launched.at("State").at("Code").as_int64(), 0);
  EXPECT_EQ(JsonString(launched, {"InstanceLifecycle"}), "spot");
  EXPECT_EQ(JsonString(launched, {"InstanceType"}), "t3.micro");
  EXPECT_EQ(JsonString(launched, {"Placement", "AvailabilityZone"}), "us-east-1a");
  EXPECT_EQ(JsonString(launched, {"PrivateIpAddress"}), "127.0.0.1");
  EXPECT_EQ(JsonString(launched, {"MetadataOptions", "HttpTokens"}), "required");
  EXPECT_FALSE(JsonString(launched, {"ClientToken"}).empty());  // botocore fills one in.
  const std::string sir = JsonString(launched, {"SpotInstanceRequestId"});
  EXPECT_THAT(sir, ::testing::StartsWith("sir-"));
  EXPECT_EQ(Tags(launched.as_object()),
            (std::map<std::string, std::string>{{"sked:task-id", "t-42"}, {"Name", "sked t-42"}}));

  ASSERT_TRUE(WaitFor([&] { return StateOf(id) == "running"; }, 5s));
  json::value described =
      AwsJson({"ec2", "describe-instances", "--filters", "Name=tag:sked:task-id,Values=t-42",
               "Name=instance-state-name,Values=pending,running"});
  const json::object& inst = OnlyInstance(described);
  EXPECT_EQ(JsonString(inst, {"InstanceId"}), id);
  EXPECT_EQ(JsonString(inst, {"State", "Name"}), "running");
  EXPECT_EQ(inst.at("State").at("Code").as_int64(), 16);
  EXPECT_EQ(JsonString(inst, {"SpotInstanceRequestId"}), sir);
  EXPECT_FALSE(JsonString(inst, {"LaunchTime"}).empty());

  json::value nobody = AwsJson({"ec2", "describe-instances", "--filters",
                                "Name=tag:sked:task-id,Values=nobody"});
  EXPECT_TRUE(nobody.at("Reservations").as_array().empty());

  json::value spot = AwsJson({"ec2", "describe-spot-instance-requests"});
  const json::array& requests = spot.at("SpotInstanceRequests").as_array();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(JsonString(requests[0], {"SpotInstanceRequestId"}), sir);
  EXPECT_EQ(JsonString(requests[0], {"InstanceId"}), id);
  EXPECT_EQ(JsonString(requests[0], {"State"}), "active");
  EXPECT_EQ(JsonString(requests[0], {"Status", "Code"}), "fulfilled");
  EXPECT_EQ(JsonString(requests[0], {"Type"}), "one-time");
  EXPECT_EQ(JsonString(requests[0], {"InstanceInterruptionBehavior"}), "terminate");

  json::value terminated = AwsJson({"ec2", "terminate-instances", "--instance-ids", id});
  const json::value& change = terminated.at("TerminatingInstances").at(0);
  EXPECT_EQ(JsonString(change, {"InstanceId"}), id);
  EXPECT_EQ(JsonString(change, {"PreviousState", "Name"}), "running");
  EXPECT_EQ(JsonString(change, {"CurrentState", "Name"}), "shutting-down");
  EXPECT_EQ(change.at("CurrentState").at("Code").as_int64(), 32);

  ASSERT_TRUE(WaitFor([&] { return StateOf(id) == "terminated"; }, 5s));
  json::value after = AwsJson({"ec2", "describe-instances", "--filters",
                               "Name=instance-state-name,Values=terminated"});
  const json::object& gone = OnlyInstance(after);
  EXPECT_EQ(JsonString(gone, {"InstanceId"}), id);
  EXPECT_EQ(JsonString(gone, {"StateReason", "Code"}), "Client.UserInitiatedShutdown");
  json::value closed = AwsJson({"ec2", "describe-spot-instance-requests",
                                "--spot-instance-request-ids", sir});
  EXPECT_EQ(JsonString(closed.at("SpotInstanceRequests").at(0), {"Status", "Code"}),
            "instance-terminated-by-user");
}

TEST_F(AwsCliTest, InterruptionShowsInDescribeCalls) {
  ASSERT_NO_FATAL_FAILURE(StartEmulator());
  const std::string id = RunSpot("int");
  ASSERT_TRUE(WaitFor([&] { return StateOf(id) == "running"; }, 5s));
  ASSERT_EQ(HttpCall("POST", url_ + "_emulator/instances/" + id + "/interrupt",
                     R"({"warning_seconds": 1})")
                .status,
            200);
  json::value spot = AwsJson({"ec2", "describe-spot-instance-requests", "--filters",
                              "Name=instance-id,Values=" + id});
  EXPECT_EQ(JsonString(spot.at("SpotInstanceRequests").at(0), {"Status", "Code"}),
            "instance-terminated-no-capacity");
  EXPECT_EQ(JsonString(spot.at("SpotInstanceRequests").at(0), {"State"}), "closed");
  ASSERT_TRUE(WaitFor([&] { return StateOf(id) == "terminated"; }, 5s));
  json::value d = AwsJson({"ec2", "describe-instances", "--instance-ids", id});
  EXPECT_EQ(JsonString(OnlyInstance(d), {"StateReason", "Code"}),
            "Server.SpotInstanceTermination");
}

TEST_F(AwsCliTest, InjectedErrorsExit254WithTheirCodes) {
  ASSERT_NO_FATAL_FAILURE(StartEmulator({"--capacity-error", "t3.nano"}));
  std::vector<std::string> once = AwsEnv({{"AWS_MAX_ATTEMPTS", "1"}});
  std::vector<std::string> run = {"ec2", "run-instances", "--image-id", "ami-0123456789abcdef0",
                                  "--instance-type", "t3.nano", "--count", "1",
                                  "--instance-market-options", kSpotOptions};

  ProcessResult capacity = Aws(run, once);
  EXPECT_EQ(capacity.exit_code, 254) << capacity.out;
  EXPECT_THAT(capacity.err, HasSubstr("An error occurred (InsufficientInstanceCapacity) when "
                                      "calling the RunInstances operation"));
  EXPECT_THAT(capacity.err,
              HasSubstr("There is no Spot capacity available that matches your request."));

  Faults(R"({"capacity_error_code": "SpotMaxPriceTooLow"})");
  ProcessResult price = Aws(run, once);
  EXPECT_EQ(price.exit_code, 254);
  EXPECT_THAT(price.err, HasSubstr("(SpotMaxPriceTooLow)"));

  Faults(R"({"capacity_error_code": "MaxSpotInstanceCountExceeded"})");
  ProcessResult quota = Aws(run, once);
  EXPECT_EQ(quota.exit_code, 254);
  EXPECT_THAT(quota.err, HasSubstr("(MaxSpotInstanceCountExceeded)"));

  Faults(R"({"throttle_next": 1})");
  ProcessResult throttled = Aws({"ec2", "describe-instances"}, once);
  EXPECT_EQ(throttled.exit_code, 254);
  EXPECT_THAT(throttled.err, HasSubstr("An error occurred (RequestLimitExceeded) when calling "
                                       "the DescribeInstances operation"));
  // With the CLI's own retries (standard mode, 3 attempts) two throttles pass.
  Faults(R"({"throttle_next": 2})");
  ProcessResult retried = Aws({"ec2", "describe-instances"});
  EXPECT_EQ(retried.exit_code, 0) << retried.err;

  ProcessResult unknown =
      Aws({"ec2", "describe-instances", "--instance-ids", "i-0123456789abcdef0"}, once);
  EXPECT_EQ(unknown.exit_code, 254);
  EXPECT_THAT(unknown.err, HasSubstr("(InvalidInstanceID.NotFound)"));
  EXPECT_THAT(unknown.err, HasSubstr("The instance ID 'i-0123456789abcdef0' does not exist"));
  ProcessResult unknown_terminate =
      Aws({"ec2", "terminate-instances", "--instance-ids", "i-0123456789abcdef0"}, once);
  EXPECT_EQ(unknown_terminate.exit_code, 254);
  EXPECT_THAT(unknown_terminate.err, HasSubstr("(InvalidInstanceID.NotFound)"));

  // Eventual consistency: a fresh instance is unknown to its first lookup.
  Faults(R"({"not_found_describes": 1})");
  const std::string id = RunSpot("nf");
  ProcessResult first = Aws({"ec2", "describe-instances", "--instance-ids", id}, once);
  EXPECT_EQ(first.exit_code, 254);
  EXPECT_THAT(first.err, HasSubstr("(InvalidInstanceID.NotFound)"));
  ProcessResult second = Aws({"ec2", "describe-instances", "--instance-ids", id}, once);
  EXPECT_EQ(second.exit_code, 0) << second.err;

  ProcessResult wrong_key = Aws({"ec2", "describe-instances"},
                                AwsEnv({{"AWS_SECRET_ACCESS_KEY", "not-test"},
                                        {"AWS_MAX_ATTEMPTS", "1"}}));
  EXPECT_EQ(wrong_key.exit_code, 254);
  EXPECT_THAT(wrong_key.err, HasSubstr("(AuthFailure)"));

  ASSERT_EQ(HttpCall("DELETE", url_ + "_emulator/faults").status, 200);
  ProcessResult cleared = Aws(run, once);
  EXPECT_EQ(cleared.exit_code, 0) << cleared.err;
}

TEST_F(AwsCliTest, RoleCredentialsFromTheInstancesImds) {
  ASSERT_NO_FATAL_FAILURE(StartEmulator());
  const std::string id = RunSpot("role", {"--iam-instance-profile", "Name=sked-runner"});
  std::string imds = JsonString(ParseJson(HttpCall("GET", url_ + "_emulator/instances/" + id).body),
                                {"imds_endpoint"});
  ASSERT_THAT(imds, ::testing::MatchesRegex("http://127\\.0\\.0\\.1:[0-9]+/"));
  // The key the role was given, read as a client on the instance would.
  testing::HttpResult token = HttpCall("PUT", imds + "latest/api/token", "",
                                       {"X-aws-ec2-metadata-token-ttl-seconds: 60"});
  ASSERT_EQ(token.status, 200);
  json::value role = ParseJson(
      HttpCall("GET", imds + "latest/meta-data/iam/security-credentials/sked-runner", "",
               {"X-aws-ec2-metadata-token: " + token.body})
          .body);
  const std::string minted = JsonString(role, {"AccessKeyId"});
  ASSERT_THAT(minted, ::testing::StartsWith("ASIA"));

  // No static keys anywhere: the CLI must find the role through IMDS.
  ProcessResult r = Aws({"--debug", "ec2", "describe-instances", "--instance-ids", id},
                        AwsEnv({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds}}, /*keys=*/false));
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(r.err.size() > 4000 ? r.err.size() - 4000 : 0);
  EXPECT_EQ(JsonString(OnlyInstance(ParseJson(r.out)), {"InstanceId"}), id);
  EXPECT_THAT(r.err, HasSubstr("Found credentials from IAM Role: sked-runner"));
  EXPECT_THAT(r.err, HasSubstr("Credential=" + minted + "/"));
  EXPECT_THAT(r.err, HasSubstr("x-amz-security-token"));  // Signed, as SignedHeaders shows.

  // Without IMDS and without keys the CLI has nothing to sign with.
  ProcessResult none = Aws({"ec2", "describe-instances"}, AwsEnv({}, /*keys=*/false));
  EXPECT_EQ(none.exit_code, 253) << none.err;
}

TEST_F(AwsCliTest, BotocoreWaitersRunningAndTerminated) {
  ASSERT_EQ(RunProcess({kPython, "-c", "import botocore.session"}, AwsEnv(), 30s).exit_code, 0)
      << kPython << " has no botocore: install Debian's python3-botocore "
                    "(scripts/install-deps.sh --test)";
  // Slow enough that instance_running has to poll at least once.
  ASSERT_NO_FATAL_FAILURE(StartEmulator({}, "1.5"));
  ProcessResult r = RunProcess({kPython, kWaiterScript, url_}, AwsEnv(), 90s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json::value v = ParseJson(r.out);
  ASSERT_TRUE(v.is_object()) << r.out;
  EXPECT_EQ(JsonString(v, {"launched_state"}), "pending");
  EXPECT_EQ(JsonString(v, {"running_state"}), "running");
  EXPECT_EQ(JsonString(v, {"terminating_state"}), "shutting-down");
  EXPECT_EQ(JsonString(v, {"terminated_state"}), "terminated");
  EXPECT_EQ(JsonString(v, {"state_reason_code"}), "Client.UserInitiatedShutdown");
  EXPECT_EQ(JsonString(v, {"lifecycle"}), "spot");
  EXPECT_THAT(JsonString(v, {"spot_instance_request_id"}), ::testing::StartsWith("sir-"));
  EXPECT_GE(v.at("waited_running_s").to_number<double>(), 0.5);
}

}  // namespace
}  // namespace sked::ec2emu
