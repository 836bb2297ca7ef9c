// File: ec2emu/emulator_test.cc
//
// The emulator in-process on 127.0.0.1:0, over real sockets: our own
// aws::Ec2Client and CredentialsProvider against it, raw signed and unsigned
// requests, curl's independent SigV4 signer, IMDS token rules on an
// instance's own port, role credentials that the EC2 API accepts, and the
// control API's routes and faults.
#include "ec2emu/emulator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <set>

#include "aws/credentials.h"
#include "aws/ec2_client.h"
#include "ec2emu/testing/test_support.h"

namespace sked::ec2emu {
namespace {

using core::StatusCode;
using testing::HttpCall;
using testing::JsonString;
using testing::ParseJson;
using testing::SignedEc2Call;
using testing::WaitFor;
using testing::XmlText;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const aws::Credentials kTestKeys{"test", "test", ""};

using Bundle = testing::EmulatorBundle;

Bundle SetupEmulator(EmulatorOptions o = {}) {
  if (o.pending_delay == kDefaultPendingDelay) o.pending_delay = 100ms;
  if (o.terminate_grace == kDefaultTerminateGrace) o.terminate_grace = 1s;
  return testing::StartEmulatorForTest(std::move(o));
}

aws::RunSpotParams SpotParams(std::string task, std::string token = "") {
  return aws::RunSpotParams{
      .image_id = "ami-0123456789abcdef0",
      .instance_type = "t3.micro",
      .client_token = std::move(token),
      .tags = {{"sked:task-id", std::move(task)}},
  };
}

boost::json::value Control(const Bundle& b, const std::string& method, const std::string& path,
                           const std::string& body = "", long want_status = 200) {
  testing::HttpResult r = HttpCall(method, b.url + path, body);
  EXPECT_EQ(r.status, want_status) << method << " " << path << ": " << r.body << r.error;
  return ParseJson(r.body);
}

std::string StateOf(const Bundle& b, const std::string& id) {
  return JsonString(Control(b, "GET", "_emulator/instances/" + id), {"state"});
}

TEST(EmulatorTest, ClientLaunchesDescribesAndTerminates) {
  Bundle b = SetupEmulator();
  auto launched = b.client->RunSpotInstance(SpotParams("t-1", "tok-1"));
  ASSERT_TRUE(launched.ok()) << launched.status().ToString();
  const std::string id = launched->instance_id;
  EXPECT_THAT(id, ::testing::MatchesRegex("i-[0-9a-f]{17}"));
  EXPECT_EQ(launched->state_name, "pending");
  EXPECT_EQ(launched->lifecycle, "spot");
  EXPECT_THAT(launched->spot_instance_request_id, ::testing::StartsWith("sir-"));
  EXPECT_EQ(launched->client_token, "tok-1");
  EXPECT_EQ(launched->availability_zone, "us-east-1a");
  EXPECT_EQ(launched->private_ip, "127.0.0.1");

  // The same token again is the same instance, not a second launch.
  auto again = b.client->RunSpotInstance(SpotParams("t-1", "tok-1"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->instance_id, id);
  auto mismatch = b.client->RunSpotInstance(SpotParams("t-other", "tok-1"));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(aws::Ec2ErrorOf(mismatch.status())->code, "IdempotentParameterMismatch");

  ASSERT_TRUE(WaitFor([&] {
    auto d = b.client->DescribeInstances({id});
    return d.ok() && d->size() == 1 && (*d)[0].state_name == "running";
  }, 5s));
  auto by_tag = b.client->DescribeInstances(
      {}, {{"tag:sked:task-id", {"t-1"}}, {"instance-lifecycle", {"spot"}}});
  ASSERT_TRUE(by_tag.ok()) << by_tag.status().ToString();
  ASSERT_EQ(by_tag->size(), 1u);
  EXPECT_EQ((*by_tag)[0].instance_id, id);

  ASSERT_TRUE(b.client->TerminateInstances({id}).ok());
  ASSERT_TRUE(WaitFor([&] {
    auto d = b.client->DescribeInstances({id});
    return d.ok() && (*d)[0].state_name == "terminated";
  }, 5s));
  auto gone = b.client->DescribeInstances({id});
  EXPECT_EQ((*gone)[0].state_reason_code, "Client.UserInitiatedShutdown");
  EXPECT_TRUE(b.client->TerminateInstances({id}).ok());  // Repeatable while listed.

  core::Status unknown = b.client->TerminateInstances({id, "i-0123456789abcdef0"});
  EXPECT_EQ(unknown.code(), StatusCode::kNotFound) << unknown.ToString();
}

TEST(EmulatorTest, ClientPagesThroughManyInstances) {
  Bundle b = SetupEmulator();
  std::set<std::string> ids;
  for (int n = 0; n < 12; ++n) {
    auto r = b.client->RunSpotInstance(SpotParams("batch", "tok-" + std::to_string(n)));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ids.insert(r->instance_id);
  }
  auto all = b.client->DescribeInstances(
      aws::DescribeInstancesParams{.filters = {{"tag:sked:task-id", {"batch"}}}, .page_size = 5});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::set<std::string> got;
  for (const aws::Ec2Instance& i : *all) got.insert(i.instance_id);
  EXPECT_EQ(got, ids);
  EXPECT_EQ(all->size(), 12u);
}

TEST(EmulatorTest, SignatureChecks) {
  Bundle b = SetupEmulator();
  const std::string body = "Action=DescribeInstances&Version=2016-11-15";
  auto ok = SignedEc2Call(b.url, body, kTestKeys);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_THAT(ok.body, HasSubstr("<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/"
                                 "doc/2016-11-15/\"><requestId>"));

  auto wrong = SignedEc2Call(b.url, body, {"test", "not-the-secret", ""});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(XmlText(wrong.body, "Code"), "AuthFailure");
  EXPECT_FALSE(XmlText(wrong.body, "RequestID").empty());

  auto unknown_key = SignedEc2Call(b.url, body, {"AKIDUNKNOWN", "test", ""});
  EXPECT_EQ(unknown_key.status, 401);
  EXPECT_EQ(XmlText(unknown_key.body, "Code"), "AuthFailure");

  auto stale = SignedEc2Call(b.url, body, kTestKeys, "us-east-1",
                             std::chrono::floor<std::chrono::seconds>(
                                 std::chrono::system_clock::now() - 1h));
  EXPECT_EQ(stale.status, 401);

  auto unsigned_call = HttpCall("POST", b.url, body,
                                {"Content-Type: application/x-www-form-urlencoded"});
  EXPECT_EQ(unsigned_call.status, 401);
  EXPECT_EQ(XmlText(unsigned_call.body, "Code"), "MissingAuthenticationToken");

  // Through the client: AuthFailure is PermissionDenied, not retried.
  aws::Ec2Client bad(aws::Ec2ClientOptions{.endpoint = b.url,
                                           .credentials = {"test", "wrong", ""},
                                           .max_retries = 0});
  auto denied = bad.DescribeInstances({}, {});
  EXPECT_EQ(denied.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(aws::Ec2ErrorOf(denied.status())->code, "AuthFailure");
}

TEST(EmulatorTest, CurlSigV4IsAcceptedAndSpacesDecodeEitherWay) {
  Bundle b = SetupEmulator();
  auto r = b.client->RunSpotInstance(SpotParams("a b"));
  ASSERT_TRUE(r.ok());
  // curl is a third, independent signer (specs/ec2-spot.md section 2). Its
  // body writes the space as '+', ours as %20: both must match the tag.
  for (const char* value : {"a+b", "a%20b"}) {
    testing::ProcessResult p = testing::RunProcess(
        {"/usr/bin/curl", "-sS", "--aws-sigv4", "aws:amz:us-east-1:ec2", "--user", "test:test",
         "-H", "Content-Type: application/x-www-form-urlencoded; charset=utf-8", "--data-binary",
         std::string("Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Ask"
                     "ed%3Atask-id&Filter.1.Value.1=") +
             value,
         "-w", "\n%{http_code}", b.url},
        testing::Environment({}, {}), 20s);
    ASSERT_EQ(p.exit_code, 0) << p.err;
    EXPECT_THAT(p.out, ::testing::EndsWith("\n200")) << p.out;
    EXPECT_THAT(p.out, HasSubstr(r->instance_id)) << value;
  }
  auto wrong = testing::RunProcess(
      {"/usr/bin/curl", "-sS", "--aws-sigv4", "aws:amz:us-east-1:ec2", "--user", "test:nope",
       "--data-binary", "Action=DescribeInstances&Version=2016-11-15", "-w", "\n%{http_code}",
       b.url},
      testing::Environment({}, {}), 20s);
  EXPECT_THAT(wrong.out, ::testing::EndsWith("\n401"));
}

TEST(EmulatorTest, ActionAndVersionErrors) {
  Bundle b = SetupEmulator();
  auto bad_action = SignedEc2Call(b.url, "Action=RebootInstances&Version=2016-11-15", kTestKeys);
  EXPECT_EQ(bad_action.status, 400);
  EXPECT_EQ(XmlText(bad_action.body, "Code"), "InvalidAction");
  auto bad_version = SignedEc2Call(b.url, "Action=DescribeInstances&Version=2014-01-01",
                                   kTestKeys);
  EXPECT_EQ(bad_version.status, 400);
  EXPECT_EQ(XmlText(bad_version.body, "Code"), "NoSuchVersion");
  auto dry = SignedEc2Call(b.url, "Action=DescribeInstances&Version=2016-11-15&DryRun=true",
                           kTestKeys);
  EXPECT_EQ(dry.status, 412);
  EXPECT_EQ(XmlText(dry.body, "Code"), "DryRunOperation");
  auto spot = SignedEc2Call(b.url, "Action=DescribeSpotInstanceRequests&Version=2016-11-15",
                            kTestKeys);
  EXPECT_EQ(spot.status, 200);
  EXPECT_THAT(spot.body, HasSubstr("<spotInstanceRequestSet/>"));
}

TEST(EmulatorTest, FaultsThroughTheControlApi) {
  EmulatorOptions o;
  o.faults.capacity_error_types = {"t3.nano"};  // As --capacity-error does.
  Bundle b = SetupEmulator(o);
  aws::RunSpotParams nano = SpotParams("f");
  nano.instance_type = "t3.nano";
  auto capacity = b.client->RunSpotInstance(nano);
  EXPECT_EQ(capacity.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(aws::Ec2ErrorOf(capacity.status())->http_status, 500);
  EXPECT_EQ(aws::Ec2ErrorOf(capacity.status())->message,
            "There is no Spot capacity available that matches your request.");

  auto faults = Control(b, "POST", "_emulator/faults",
                        R"({"capacity_error_types": ["t3.micro"], "capacity_error_code":
                            "MaxSpotInstanceCountExceeded"})");
  EXPECT_EQ(JsonString(faults, {"capacity_error_code"}), "MaxSpotInstanceCountExceeded");
  EXPECT_EQ(b.client->RunSpotInstance(SpotParams("f")).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_TRUE(b.client->RunSpotInstance(nano).ok());  // The list was replaced.

  Control(b, "POST", "_emulator/faults", R"({"capacity_error_subnets": ["subnet-full"],
      "capacity_error_code": "SpotMaxPriceTooLow", "capacity_error_types": []})");
  aws::RunSpotParams in_subnet = SpotParams("f");
  in_subnet.subnet_id = "subnet-full";
  auto price = b.client->RunSpotInstance(in_subnet);
  EXPECT_EQ(aws::Ec2ErrorOf(price.status())->code, "SpotMaxPriceTooLow");
  EXPECT_EQ(aws::Ec2ErrorOf(price.status())->http_status, 400);

  Control(b, "POST", "_emulator/faults", R"({"throttle_next": 2})");
  auto throttled = b.client->DescribeInstances({}, {});
  EXPECT_EQ(throttled.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(aws::Ec2ErrorOf(throttled.status())->code, "RequestLimitExceeded");
  EXPECT_EQ(aws::Ec2ErrorOf(throttled.status())->http_status, 503);
  aws::Ec2Client patient(aws::Ec2ClientOptions{
      .endpoint = b.url, .credentials = kTestKeys, .max_retries = 3,
      .sleep = [](std::chrono::milliseconds) {}});
  EXPECT_TRUE(patient.DescribeInstances({}, {}).ok());  // Second throttle, then through.

  Control(b, "POST", "_emulator/faults", R"({"not_found_describes": 2})");
  auto fresh = b.client->RunSpotInstance(SpotParams("nf"));
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(b.client->DescribeInstances({fresh->instance_id}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(b.client->DescribeInstances({fresh->instance_id}).status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(b.client->DescribeInstances({fresh->instance_id}).ok());

  auto cleared = Control(b, "DELETE", "_emulator/faults");
  EXPECT_EQ(cleared.at("throttle_next").as_int64(), 0);
  EXPECT_TRUE(cleared.at("capacity_error_types").as_array().empty());
  EXPECT_TRUE(cleared.at("capacity_error_subnets").as_array().empty());
  EXPECT_TRUE(b.client->RunSpotInstance(in_subnet).ok());

  Control(b, "POST", "_emulator/faults", R"({"capacity_error_code": "Nope"})", 400);
  Control(b, "POST", "_emulator/faults", R"({"throttle_nxt": 1})", 400);
  Control(b, "POST", "_emulator/faults", "not json", 400);
}

TEST(EmulatorTest, ControlRoutes) {
  Bundle b = SetupEmulator();
  EXPECT_EQ(Control(b, "GET", "_emulator/health"), boost::json::value(boost::json::object{
                                                       {"ok", true}}));
  auto r = b.client->RunSpotInstance(SpotParams("c-1", "tok-c"));
  ASSERT_TRUE(r.ok());
  auto list = Control(b, "GET", "_emulator/instances");
  ASSERT_EQ(list.at("instances").as_array().size(), 1u);
  const boost::json::value& inst = list.at("instances").as_array()[0];
  EXPECT_EQ(JsonString(inst, {"instance_id"}), r->instance_id);
  EXPECT_EQ(JsonString(inst, {"instance_type"}), "t3.micro");
  EXPECT_EQ(JsonString(inst, {"image_id"}), "ami-0123456789abcdef0");
  EXPECT_EQ(JsonString(inst, {"client_token"}), "tok-c");
  EXPECT_EQ(JsonString(inst, {"spot_instance_request_id"}), r->spot_instance_request_id);
  EXPECT_EQ(JsonString(inst, {"tags", "sked:task-id"}), "c-1");
  EXPECT_FALSE(JsonString(inst, {"subnet_id"}).empty());
  EXPECT_FALSE(JsonString(inst, {"launch_time"}).empty());
  EXPECT_EQ(JsonString(inst, {"state_reason_code"}), "");
  EXPECT_THAT(JsonString(inst, {"imds_endpoint"}),
              ::testing::MatchesRegex("http://127\\.0\\.0\\.1:[0-9]+/"));
  EXPECT_THAT(JsonString(inst, {"console_log"}), ::testing::EndsWith("/console.log"));
  EXPECT_THAT(JsonString(inst, {"state"}), ::testing::AnyOf("pending", "running"));

  auto missing = Control(b, "POST", "_emulator/instances/i-0123456789abcdef0/kill", "", 404);
  EXPECT_FALSE(JsonString(missing, {"error"}).empty());
  Control(b, "POST", "_emulator/instances/" + r->instance_id + "/dance", "", 404);
  Control(b, "GET", "_emulator/nothing", "", 404);
  Control(b, "POST", "_emulator/instances/" + r->instance_id + "/interrupt", "{bad", 400);

  auto killed = Control(b, "POST", "_emulator/instances/" + r->instance_id + "/kill");
  EXPECT_EQ(JsonString(killed, {"state"}), "terminated");
  EXPECT_EQ(JsonString(killed, {"state_reason_code"}), "Server.InternalError");
  Control(b, "POST", "_emulator/instances/" + r->instance_id + "/interrupt", "", 409);
}

TEST(EmulatorTest, ImdsOnItsOwnPortWithRoleCredentialsTheApiAccepts) {
  Bundle b = SetupEmulator();
  aws::RunSpotParams p = SpotParams("imds");
  p.instance_profile_name = "arn:aws:iam::123456789012:instance-profile/team/sked-runner";
  auto r = b.client->RunSpotInstance(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::string imds =
      JsonString(Control(b, "GET", "_emulator/instances/" + r->instance_id), {"imds_endpoint"});
  ASSERT_FALSE(imds.empty());

  auto no_ttl = HttpCall("PUT", imds + "latest/api/token");
  EXPECT_EQ(no_ttl.status, 400);
  auto token = HttpCall("PUT", imds + "latest/api/token", "",
                        {"X-aws-ec2-metadata-token-ttl-seconds: 300"});
  ASSERT_EQ(token.status, 200) << token.error;
  EXPECT_EQ(token.headers["x-aws-ec2-metadata-token-ttl-seconds"], "300");
  EXPECT_EQ(HttpCall("GET", imds + "latest/meta-data/instance-id").status, 401);
  std::string auth = "X-aws-ec2-metadata-token: " + token.body;
  auto id = HttpCall("GET", imds + "latest/meta-data/instance-id", "", {auth});
  EXPECT_EQ(id.body, r->instance_id);
  auto role = HttpCall("GET", imds + "latest/meta-data/iam/security-credentials/", "", {auth});
  EXPECT_EQ(role.body, "sked-runner");

  // Our own credential chain, pointed at this IMDS, gets the role's keys, and
  // the EC2 API accepts them (with their session token).
  aws::CredentialsProvider provider(aws::CredentialsProviderOptions{
      .environment = std::map<std::string, std::string>{{"AWS_EC2_METADATA_SERVICE_ENDPOINT",
                                                         imds},
                                                        {"HOME", "/nonexistent"}},
      .credentials_file = "/dev/null",
      .config_file = "/dev/null",
  });
  auto creds = provider.Get();
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(provider.source(), "instance-metadata");
  EXPECT_THAT(creds->access_key_id, ::testing::StartsWith("ASIA"));
  EXPECT_FALSE(creds->session_token.empty());
  aws::Ec2Client as_role(aws::Ec2ClientOptions{.endpoint = b.url, .credentials = *creds,
                                               .max_retries = 0});
  auto seen = as_role.DescribeInstances({r->instance_id});
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  aws::Credentials without_token = *creds;
  without_token.session_token.clear();
  aws::Ec2Client tokenless(aws::Ec2ClientOptions{.endpoint = b.url, .credentials = without_token,
                                                 .max_retries = 0});
  EXPECT_EQ(tokenless.DescribeInstances({r->instance_id}).status().code(),
            StatusCode::kPermissionDenied);

  // The listener stops with the instance.
  ASSERT_TRUE(b.client->TerminateInstances({r->instance_id}).ok());
  ASSERT_TRUE(WaitFor([&] { return StateOf(b, r->instance_id) == "terminated"; }, 5s));
  EXPECT_TRUE(WaitFor([&] { return HttpCall("GET", imds + "latest/meta-data/").status == 0; },
                      5s));
}

TEST(EmulatorTest, StopTerminatesEverything) {
  Bundle b = SetupEmulator();
  auto r = b.client->RunSpotInstance(SpotParams("s"));
  ASSERT_TRUE(r.ok());
  std::string dir = b.emulator->work_dir();
  b.emulator->Stop();
  auto inst = b.emulator->TEST_model().Get(r->instance_id);
  ASSERT_TRUE(inst.ok());
  EXPECT_EQ(inst->state, InstanceState::kTerminated);
  EXPECT_EQ(HttpCall("GET", b.url + "_emulator/health").status, 0);  // Listener closed.
  EXPECT_FALSE(std::filesystem::exists(dir));  // The temporary work dir is gone.
  b.emulator->Stop();  // Idempotent.
}

TEST(EmulatorTest, BadOptionsRefused) {
  EmulatorOptions o;
  o.pending_delay = -1s;
  EXPECT_EQ(Emulator::Start(o).status().code(), StatusCode::kInvalidArgument);
  EmulatorOptions c;
  c.credentials = {{"", "x", ""}};
  EXPECT_EQ(Emulator::Start(c).status().code(), StatusCode::kInvalidArgument);
  EmulatorOptions e;
  e.instance_env = {{"A=B", "c"}};
  EXPECT_EQ(Emulator::Start(e).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sked::ec2emu
