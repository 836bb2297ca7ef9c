// File: aws/ec2_client_test.cc
//
// Ec2Client against three servers:
// - moto_server (an EC2 implementation we did not write; on the PATH from this
//   image's pyenv Python) and sked-ec2-emulator (ours, which also checks
//   signatures), each started by the suite on a free loopback port; the same
//   launch / describe / filter / paging / terminate / NotFound cases run
//   against both (Ec2ClientServerTest, one instantiation per server);
// - a loopback fake HTTP server with canned answers, for what neither shows:
//   throttling, capacity errors, retries and the exact request bytes.
// Wire names are checked against specs/ec2-spot.md sections 1, 3 and 4.
#include "aws/ec2_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ec2emu/process_runner.h"
#include "testing/loopback_http_server.h"

namespace sked::aws {
namespace {

using core::StatusCode;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr char kFormType[] = "application/x-www-form-urlencoded; charset=utf-8";
// One of moto's bundled AMIs (moto/ec2/resources/amis.json.gz).
constexpr char kMotoAmi[] = "ami-12c6146b";

Credentials TestCredentials() {
  return {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
}

// ---------------------------------------------------------------------------
// Helpers.

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() + 0 && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The form body as decoded name -> value (names are unique in our requests).
std::map<std::string, std::string> DecodeForm(std::string_view body) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t amp = body.find('&', pos);
    if (amp == std::string_view::npos) amp = body.size();
    std::string_view pair = body.substr(pos, amp - pos);
    size_t eq = pair.find('=');
    if (!pair.empty()) {
      EXPECT_EQ(out.count(PercentDecode(pair.substr(0, eq))), 0u) << pair;
      out[PercentDecode(pair.substr(0, eq))] =
          eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
    }
    pos = amp + 1;
  }
  return out;
}

bool CanConnect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// "20260102T030405Z" -> time.
std::chrono::sys_seconds ParseAmzDate(const std::string& s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  EXPECT_EQ(std::sscanf(s.c_str(), "%4d%2d%2dT%2d%2d%2dZ", &y, &mo, &d, &h, &mi, &sec), 6) << s;
  return std::chrono::sys_days{std::chrono::year{y} / mo / d} + std::chrono::hours(h) +
         std::chrono::minutes(mi) + std::chrono::seconds(sec);
}

// ---------------------------------------------------------------------------
// A loopback HTTP/1.1 server: canned answers in order, every request recorded.

using RecordedRequest = testing::LoopbackHttpServer::Request;

struct CannedResponse {
  int status;
  std::string body;
};

class FakeEc2Server {
 public:
  FakeEc2Server() : server_([this](const RecordedRequest& req) { return Answer(req); }) {}

  std::string url() const { return server_.base_url() + "/"; }
  int port() const { return server_.port(); }

  void Push(int status, std::string body) {
    std::lock_guard<std::mutex> lock(mu_);
    responses_.push_back({status, std::move(body)});
  }
  std::vector<RecordedRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  testing::LoopbackHttpServer::Response Answer(const RecordedRequest& req) {
    CannedResponse resp{500, "no canned response left"};
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(req);
      if (!responses_.empty()) {
        resp = responses_.front();
        responses_.pop_front();
      }
    }
    return {.status = resp.status,
            .body = std::move(resp.body),
            .headers = {{"Content-Type", "text/xml;charset=UTF-8"}}};
  }

  std::mutex mu_;
  std::deque<CannedResponse> responses_;
  std::vector<RecordedRequest> requests_;
  // Last: it calls Answer until destroyed, so it must go before the state above.
  testing::LoopbackHttpServer server_;
};

std::string ErrorXml(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>" + code +
         "</Code><Message>" + message + "</Message></Error></Errors><RequestID>req-" + code +
         "</RequestID></Response>";
}

std::string InstanceItemXml(const std::string& id) {
  return "<item><instanceId>" + id +
         "</instanceId><imageId>ami-1</imageId><instanceState><code>16</code><name>running</name>"
         "</instanceState><stateReason><code>Server.SpotInstanceTermination</code>"
         "<message>Server.SpotInstanceTermination: reclaimed</message></stateReason>"
         "<instanceType>t3.micro</instanceType><launchTime>2026-01-02T03:04:05.000Z</launchTime>"
         "<placement><availabilityZone>us-east-1a</availabilityZone><tenancy>default</tenancy>"
         "</placement><privateIpAddress>10.0.0.5</privateIpAddress><subnetId>subnet-1</subnetId>"
         "<groupSet/><instanceLifecycle>spot</instanceLifecycle>"
         "<spotInstanceRequestId>sir-1</spotInstanceRequestId><clientToken>tok</clientToken>"
         "<tagSet><item><key>sked:task-id</key><value>t-1</value></item></tagSet></item>";
}

std::string RunInstancesXml(const std::string& ns, const std::string& id) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<RunInstancesResponse xmlns=\"" + ns +
         "\">\n  <requestId>r-1</requestId>\n  <reservationId>r-123</reservationId>\n"
         "  <ownerId>123456789012</ownerId>\n  <groupSet/>\n  <instancesSet>\n    " +
         InstanceItemXml(id) + "\n  </instancesSet>\n</RunInstancesResponse>";
}

std::string DescribeXml(const std::string& ns, const std::vector<std::string>& ids,
                        const std::string& next_token = "") {
  std::string items;
  for (const std::string& id : ids) items += InstanceItemXml(id);
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeInstancesResponse xmlns=\"" + ns +
         "\"><requestId>r-2</requestId><reservationSet><item><reservationId>r-9</reservationId>"
         "<instancesSet>" +
         items + "</instancesSet></item></reservationSet>" +
         (next_token.empty() ? "" : "<nextToken>" + next_token + "</nextToken>") +
         "</DescribeInstancesResponse>";
}

constexpr char kNsNoSlash[] = "http://ec2.amazonaws.com/doc/2016-11-15";
constexpr char kNsSlash[] = "http://ec2.amazonaws.com/doc/2016-11-15/";

// The client under test against the fake, with an advancing signing clock and
// recorded (not slept) backoffs.
struct FakeBundle {
  std::unique_ptr<FakeEc2Server> server = std::make_unique<FakeEc2Server>();
  std::shared_ptr<std::vector<std::chrono::milliseconds>> sleeps =
      std::make_shared<std::vector<std::chrono::milliseconds>>();
  std::unique_ptr<Ec2Client> client;
};

FakeBundle SetupFake(int max_retries = 5) {
  FakeBundle b;
  auto tick = std::make_shared<int>(0);
  auto sleeps = b.sleeps;
  b.client = std::make_unique<Ec2Client>(Ec2ClientOptions{
      .endpoint = b.server->url(),
      .region = "us-east-1",
      .credentials = TestCredentials(),
      .timeout = 5s,
      .max_retries = max_retries,
      .backoff_base = 100ms,
      .backoff_max = 1000ms,
      .now = [tick] { return core::TimeFromSeconds(1767322800 + (*tick)++); },
      .sleep = [sleeps](std::chrono::milliseconds d) { sleeps->push_back(d); },
  });
  return b;
}

RunSpotParams BasicSpot() {
  return RunSpotParams{
      .image_id = "ami-0abc",
      .instance_type = "t3.micro",
      .subnet_id = "subnet-0aa",
      .security_group_ids = {"sg-01", "sg-02"},
      .instance_profile_name = "sked-runner",
      .user_data = "#!/bin/sh\necho hello world\n",
      .client_token = "sked-t-42-attempt-1",
      .tags = {{"sked:task-id", "t-42"}, {"Name", "sked job t-42"}},
      .max_price = std::nullopt,
  };
}

// Checks that `r`'s Authorization is what SigV4 gives for its own X-Amz-Date.
void ExpectValidSignature(const RecordedRequest& r, const std::string& url) {
  ASSERT_TRUE(r.headers.count("x-amz-date"));
  ASSERT_TRUE(r.headers.count("authorization"));
  HttpRequestToSign req{
      .method = "POST", .url = url, .headers = {{"Content-Type", kFormType}}, .body = r.body};
  auto headers = SignRequest(
      req, TestCredentials(),
      {.region = "us-east-1", .service = "ec2", .time = ParseAmzDate(r.headers.at("x-amz-date"))});
  ASSERT_TRUE(headers.ok()) << headers.status().ToString();
  std::string expected;
  for (const auto& [k, v] : *headers) {
    if (k == "Authorization") expected = v;
  }
  EXPECT_EQ(r.headers.at("authorization"), expected);
}

// ---------------------------------------------------------------------------
// Fake-server tests.

TEST(Ec2ClientFakeTest, RunSpotRequestCarriesEveryWireField) {
  FakeBundle b = SetupFake();
  b.server->Push(200, RunInstancesXml(kNsNoSlash, "i-0123"));
  auto inst = b.client->RunSpotInstance(BasicSpot());
  ASSERT_TRUE(inst.ok()) << inst.status().ToString();
  EXPECT_EQ(inst->instance_id, "i-0123");

  auto reqs = b.server->requests();
  ASSERT_EQ(reqs.size(), 1u);
  const RecordedRequest& r = reqs[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/");
  EXPECT_EQ(r.headers.at("content-type"), kFormType);
  EXPECT_EQ(r.headers.at("host"), "127.0.0.1:" + std::to_string(b.server->port()));
  EXPECT_EQ(r.headers.at("x-amz-date"), "20260102T030000Z");
  EXPECT_THAT(r.headers.at("authorization"),
              HasSubstr("Credential=AKIDEXAMPLE/20260102/us-east-1/ec2/aws4_request"));
  ExpectValidSignature(r, b.server->url());
  EXPECT_TRUE(r.body.starts_with("Action=RunInstances&Version=2016-11-15&")) << r.body;

  std::map<std::string, std::string> expected = {
      {"Action", "RunInstances"},
      {"Version", "2016-11-15"},
      {"ImageId", "ami-0abc"},
      {"InstanceType", "t3.micro"},
      {"MinCount", "1"},
      {"MaxCount", "1"},
      {"SubnetId", "subnet-0aa"},
      {"SecurityGroupId.1", "sg-01"},
      {"SecurityGroupId.2", "sg-02"},
      {"IamInstanceProfile.Name", "sked-runner"},
      {"UserData", "IyEvYmluL3NoCmVjaG8gaGVsbG8gd29ybGQK"},
      {"ClientToken", "sked-t-42-attempt-1"},
      {"InstanceInitiatedShutdownBehavior", "terminate"},
      {"InstanceMarketOptions.MarketType", "spot"},
      {"InstanceMarketOptions.SpotOptions.SpotInstanceType", "one-time"},
      {"InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior", "terminate"},
      {"TagSpecification.1.ResourceType", "instance"},
      {"TagSpecification.1.Tag.1.Key", "sked:task-id"},
      {"TagSpecification.1.Tag.1.Value", "t-42"},
      {"TagSpecification.1.Tag.2.Key", "Name"},
      {"TagSpecification.1.Tag.2.Value", "sked job t-42"},
      {"MetadataOptions.HttpTokens", "required"},
      {"MetadataOptions.HttpEndpoint", "enabled"},
      {"MetadataOptions.HttpPutResponseHopLimit", "2"},
  };
  EXPECT_EQ(DecodeForm(r.body), expected);
  // Reserved characters are percent-encoded with upper-case hex.
  EXPECT_THAT(r.body, HasSubstr("TagSpecification.1.Tag.1.Key=sked%3Atask-id"));
}

TEST(Ec2ClientFakeTest, MaxPriceAndProfileArn) {
  RunSpotParams p = BasicSpot();
  p.max_price = "0.0125";
  p.instance_profile_name = "arn:aws:iam::123456789012:instance-profile/sked";
  p.tags.clear();
  auto form = RunSpotInstanceParams(p);
  ASSERT_TRUE(form.ok());
  std::map<std::string, std::string> m(form->begin(), form->end());
  EXPECT_EQ(m["InstanceMarketOptions.SpotOptions.MaxPrice"], "0.0125");
  EXPECT_EQ(m["IamInstanceProfile.Arn"], p.instance_profile_name);
  EXPECT_EQ(m.count("IamInstanceProfile.Name"), 0u);
  EXPECT_EQ(m.count("TagSpecification.1.ResourceType"), 0u);
}

TEST(Ec2ClientFakeTest, UserDataOver16KiBRejectedBeforeAnyRequest) {
  FakeBundle b = SetupFake();
  RunSpotParams p = BasicSpot();
  p.user_data = std::string(kMaxUserDataBytes + 1, 'x');
  auto inst = b.client->RunSpotInstance(p);
  EXPECT_EQ(inst.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(inst.status().message(), HasSubstr("16384"));
  EXPECT_TRUE(b.server->requests().empty());

  p.user_data = std::string(kMaxUserDataBytes, 'x');  // Exactly the limit is fine.
  b.server->Push(200, RunInstancesXml(kNsSlash, "i-1"));
  ASSERT_TRUE(b.client->RunSpotInstance(p).ok());
  auto reqs = b.server->requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(DecodeForm(reqs[0].body)["UserData"].size(), (kMaxUserDataBytes + 2) / 3 * 4);
}

TEST(Ec2ClientFakeTest, BadClientTokenAndMissingFieldsRejected) {
  RunSpotParams p = BasicSpot();
  p.client_token = std::string(65, 'a');
  EXPECT_EQ(RunSpotInstanceParams(p).status().code(), StatusCode::kInvalidArgument);
  p.client_token = std::string(64, 'a');
  EXPECT_TRUE(RunSpotInstanceParams(p).ok());
  p.client_token = "caf\xc3\xa9";
  EXPECT_EQ(RunSpotInstanceParams(p).status().code(), StatusCode::kInvalidArgument);
  p = BasicSpot();
  p.image_id.clear();
  EXPECT_EQ(RunSpotInstanceParams(p).status().code(), StatusCode::kInvalidArgument);
}

TEST(Ec2ClientFakeTest, ThrottledTwiceThenSucceedsWithSameTokenAndFreshSignatures) {
  FakeBundle b = SetupFake();
  b.server->Push(503, ErrorXml("RequestLimitExceeded", "Request limit exceeded."));
  b.server->Push(503, ErrorXml("RequestLimitExceeded", "Request limit exceeded."));
  b.server->Push(200, RunInstancesXml(kNsSlash, "i-0abc"));
  auto inst = b.client->RunSpotInstance(BasicSpot());
  ASSERT_TRUE(inst.ok()) << inst.status().ToString();
  EXPECT_EQ(inst->instance_id, "i-0abc");

  auto reqs = b.server->requests();
  ASSERT_EQ(reqs.size(), 3u);
  std::set<std::string> dates, auths;
  for (const RecordedRequest& r : reqs) {
    EXPECT_EQ(r.body, reqs[0].body);  // Same bytes, so the same ClientToken.
    EXPECT_EQ(DecodeForm(r.body)["ClientToken"], "sked-t-42-attempt-1");
    ExpectValidSignature(r, b.server->url());
    dates.insert(r.headers.at("x-amz-date"));
    auths.insert(r.headers.at("authorization"));
  }
  EXPECT_EQ(dates.size(), 3u);
  EXPECT_EQ(auths.size(), 3u);
  ASSERT_EQ(b.sleeps->size(), 2u);
  EXPECT_LE((*b.sleeps)[0], 100ms);
  EXPECT_LE((*b.sleeps)[1], 200ms);
}

TEST(Ec2ClientFakeTest, InsufficientCapacityIsResourceExhaustedAndNotRetried) {
  FakeBundle b = SetupFake();
  b.server->Push(500, ErrorXml("InsufficientInstanceCapacity",
                               "There is no Spot capacity available that matches your request."));
  auto inst = b.client->RunSpotInstance(BasicSpot());
  EXPECT_EQ(inst.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(inst.status().message(),
              HasSubstr("InsufficientInstanceCapacity: There is no Spot capacity available"));
  EXPECT_EQ(b.server->requests().size(), 1u);
  EXPECT_TRUE(b.sleeps->empty());
  std::optional<Ec2Error> e = Ec2ErrorOf(inst.status());
  ASSERT_TRUE(e.has_value()) << inst.status().message();
  EXPECT_EQ(e->code, "InsufficientInstanceCapacity");
  EXPECT_EQ(e->message, "There is no Spot capacity available that matches your request.");
  EXPECT_EQ(e->request_id, "req-InsufficientInstanceCapacity");
  EXPECT_EQ(e->action, "RunInstances");
  EXPECT_EQ(e->http_status, 500);
}

TEST(Ec2ClientFakeTest, UnsupportedAndPriceTooLowAreCapacityToo) {
  for (const char* code : {"Unsupported", "SpotMaxPriceTooLow"}) {
    FakeBundle b = SetupFake();
    b.server->Push(400, ErrorXml(code, "no"));
    EXPECT_EQ(b.client->RunSpotInstance(BasicSpot()).status().code(),
              StatusCode::kResourceExhausted)
        << code;
    EXPECT_EQ(b.server->requests().size(), 1u);
  }
}

TEST(Ec2ClientFakeTest, QuotaIsFailedPrecondition) {
  FakeBundle b = SetupFake();
  b.server->Push(400, ErrorXml("MaxSpotInstanceCountExceeded", "Max spot instance count exceeded"));
  EXPECT_EQ(b.client->RunSpotInstance(BasicSpot()).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(b.server->requests().size(), 1u);
}

TEST(Ec2ClientFakeTest, UnauthorizedIsPermissionDeniedAndNotRetried) {
  FakeBundle b = SetupFake();
  b.server->Push(403, ErrorXml("UnauthorizedOperation",
                               "You are not authorized to perform this operation. Encoded "
                               "authorization failure message: abc"));
  auto inst = b.client->RunSpotInstance(BasicSpot());
  EXPECT_EQ(inst.status().code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(inst.status().message(), HasSubstr("UnauthorizedOperation: You are not authorized"));
  EXPECT_EQ(b.server->requests().size(), 1u);

  FakeBundle b2 = SetupFake();
  b2.server->Push(401, ErrorXml("AuthFailure", "AWS was not able to validate the credentials."));
  EXPECT_EQ(b2.client->TerminateInstances({"i-1"}).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(b2.server->requests().size(), 1u);
}

TEST(Ec2ClientFakeTest, OtherClientErrorIsInvalidArgumentAndNotRetried) {
  FakeBundle b = SetupFake();
  b.server->Push(400,
                 ErrorXml("InvalidAMIID.NotFound", "The image id '[ami-0abc]' does not exist"));
  auto inst = b.client->RunSpotInstance(BasicSpot());
  EXPECT_EQ(inst.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(inst.status().message(), HasSubstr("InvalidAMIID.NotFound: The image id"));
  EXPECT_EQ(b.server->requests().size(), 1u);
}

TEST(Ec2ClientFakeTest, InternalErrorRetriedThenUnavailable) {
  FakeBundle b = SetupFake(/*max_retries=*/5);
  for (int i = 0; i < 6; ++i)
    b.server->Push(500, ErrorXml("InternalError", "An internal error has occurred"));
  b.server->Push(200, RunInstancesXml(kNsSlash, "i-never"));  // Must not be reached.
  auto inst = b.client->RunSpotInstance(BasicSpot());
  EXPECT_EQ(inst.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(inst.status().message(), HasSubstr("InternalError: An internal error has occurred"));
  EXPECT_THAT(inst.status().message(), HasSubstr("attempts=6"));
  EXPECT_EQ(b.server->requests().size(), 6u);
  ASSERT_EQ(b.sleeps->size(), 5u);
  const std::chrono::milliseconds caps[] = {100ms, 200ms, 400ms, 800ms, 1000ms};
  for (size_t i = 0; i < 5; ++i) EXPECT_LE((*b.sleeps)[i], caps[i]) << i;
  ASSERT_TRUE(Ec2ErrorOf(inst.status()).has_value());
  EXPECT_EQ(Ec2ErrorOf(inst.status())->code, "InternalError");
}

TEST(Ec2ClientFakeTest, NonXml5xxRetriedAndNonXml4xxNot) {
  FakeBundle b = SetupFake(/*max_retries=*/1);
  b.server->Push(502, "Bad Gateway");
  b.server->Push(200, DescribeXml(kNsSlash, {}));
  auto got = b.client->DescribeInstances({"i-1"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->empty());
  EXPECT_EQ(b.server->requests().size(), 2u);

  FakeBundle b2 = SetupFake();
  b2.server->Push(404, "nope");
  EXPECT_EQ(b2.client->DescribeInstances({"i-1"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(b2.server->requests().size(), 1u);
}

TEST(Ec2ClientFakeTest, TransportErrorRetriedThenUnavailable) {
  int port = testing::PickFreePort();  // Nothing listens there.
  auto sleeps = std::make_shared<int>(0);
  Ec2Client client(Ec2ClientOptions{
      .endpoint = "http://127.0.0.1:" + std::to_string(port) + "/",
      .credentials = TestCredentials(),
      .max_retries = 2,
      .sleep = [sleeps](std::chrono::milliseconds) { ++*sleeps; },
  });
  core::Status s = client.TerminateInstances({"i-1"});
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("transport error"));
  EXPECT_EQ(*sleeps, 2);
  EXPECT_FALSE(Ec2ErrorOf(s).has_value());
}

TEST(Ec2ClientFakeTest, NamespaceWithAndWithoutTrailingSlashParseTheSame) {
  std::string t1, t2;
  auto a = detail::ParseInstancesXml(DescribeXml(kNsSlash, {"i-1", "i-2"}, "tok"), &t1);
  auto c = detail::ParseInstancesXml(DescribeXml(kNsNoSlash, {"i-1", "i-2"}, "tok"), &t2);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(a->size(), 2u);
  ASSERT_EQ(c->size(), 2u);
  EXPECT_EQ(t1, "tok");
  EXPECT_EQ(t2, "tok");
  for (size_t i = 0; i < 2; ++i) {
    const Ec2Instance& x = (*a)[i];
    const Ec2Instance& y = (*c)[i];
    EXPECT_EQ(x.instance_id, y.instance_id);
    EXPECT_EQ(x.state_name, y.state_name);
    EXPECT_EQ(x.tags, y.tags);
  }
  const Ec2Instance& x = (*a)[0];
  EXPECT_EQ(x.instance_id, "i-1");
  EXPECT_EQ(x.image_id, "ami-1");
  EXPECT_EQ(x.instance_type, "t3.micro");
  EXPECT_EQ(x.state_name, "running");
  EXPECT_EQ(x.state_code, 16);
  EXPECT_EQ(x.state_reason_code, "Server.SpotInstanceTermination");
  EXPECT_EQ(x.state_reason_message, "Server.SpotInstanceTermination: reclaimed");
  EXPECT_EQ(x.lifecycle, "spot");
  EXPECT_EQ(x.spot_instance_request_id, "sir-1");
  EXPECT_EQ(x.client_token, "tok");
  EXPECT_EQ(x.launch_time, "2026-01-02T03:04:05.000Z");
  EXPECT_EQ(x.availability_zone, "us-east-1a");
  EXPECT_EQ(x.private_ip, "10.0.0.5");
  EXPECT_EQ(x.subnet_id, "subnet-1");
  EXPECT_EQ(x.tags, (std::vector<Tag>{{"sked:task-id", "t-1"}}));

  // A prefixed namespace is ignored as well.
  std::string prefixed =
      "<ec2:DescribeInstancesResponse xmlns:ec2=\"" + std::string(kNsSlash) +
      "\"><ec2:reservationSet><ec2:item><ec2:instancesSet><ec2:item><ec2:instanceId>i-9"
      "</ec2:instanceId></ec2:item></ec2:instancesSet></ec2:item></ec2:reservationSet>"
      "</ec2:DescribeInstancesResponse>";
  auto p = detail::ParseInstancesXml(prefixed, nullptr);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->size(), 1u);
  EXPECT_EQ((*p)[0].instance_id, "i-9");

  EXPECT_EQ(detail::ParseInstancesXml("not xml <", nullptr).status().code(), StatusCode::kInternal);
}

TEST(Ec2ClientFakeTest, ErrorXmlParsed) {
  auto e = detail::ParseEc2ErrorXml(
      ErrorXml("InvalidInstanceID.NotFound", "The instance ID 'i-1' does not exist"));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, "InvalidInstanceID.NotFound");
  EXPECT_EQ(e->message, "The instance ID 'i-1' does not exist");
  EXPECT_EQ(e->request_id, "req-InvalidInstanceID.NotFound");
  EXPECT_FALSE(detail::ParseEc2ErrorXml("<html>oops</html>").has_value());
  EXPECT_FALSE(detail::ParseEc2ErrorXml("garbage").has_value());
}

TEST(Ec2ClientFakeTest, DescribePagesWithMaxResultsAndNextToken) {
  FakeBundle b = SetupFake();
  b.server->Push(200, DescribeXml(kNsNoSlash, {"i-1", "i-2"}, "page2"));
  b.server->Push(200, DescribeXml(kNsNoSlash, {"i-3"}));
  auto got = b.client->DescribeInstances(DescribeInstancesParams{
      .filters = {{"tag:sked:task-id", {"t-1", "t-2"}}, {"instance-state-name", {"running"}}},
      .page_size = 5});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[2].instance_id, "i-3");
  auto reqs = b.server->requests();
  ASSERT_EQ(reqs.size(), 2u);
  auto f1 = DecodeForm(reqs[0].body);
  auto f2 = DecodeForm(reqs[1].body);
  EXPECT_EQ(f1["Action"], "DescribeInstances");
  EXPECT_EQ(f1["Filter.1.Name"], "tag:sked:task-id");
  EXPECT_EQ(f1["Filter.1.Value.1"], "t-1");
  EXPECT_EQ(f1["Filter.1.Value.2"], "t-2");
  EXPECT_EQ(f1["Filter.2.Name"], "instance-state-name");
  EXPECT_EQ(f1["Filter.2.Value.1"], "running");
  EXPECT_EQ(f1["MaxResults"], "5");
  EXPECT_EQ(f1.count("NextToken"), 0u);
  EXPECT_EQ(f2["NextToken"], "page2");
  EXPECT_EQ(f2["MaxResults"], "5");

  // With instance ids, MaxResults is never sent.
  b.server->Push(200, DescribeXml(kNsNoSlash, {"i-1"}));
  ASSERT_TRUE(b.client
                  ->DescribeInstances(
                      DescribeInstancesParams{.instance_ids = {"i-1", "i-2"}, .page_size = 5})
                  .ok());
  auto f3 = DecodeForm(b.server->requests().back().body);
  EXPECT_EQ(f3["InstanceId.1"], "i-1");
  EXPECT_EQ(f3["InstanceId.2"], "i-2");
  EXPECT_EQ(f3.count("MaxResults"), 0u);
}

TEST(Ec2ClientFakeTest, TerminateWireFormat) {
  FakeBundle b = SetupFake();
  b.server->Push(200,
                 "<TerminateInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
                 "<requestId>x</requestId><instancesSet><item><instanceId>i-1</instanceId>"
                 "<currentState><code>32</code><name>shutting-down</name></currentState>"
                 "</item></instancesSet></TerminateInstancesResponse>");
  ASSERT_TRUE(b.client->TerminateInstances({"i-1", "i-2"}).ok());
  auto f = DecodeForm(b.server->requests().at(0).body);
  EXPECT_EQ(f, (std::map<std::string, std::string>{{"Action", "TerminateInstances"},
                                                   {"Version", "2016-11-15"},
                                                   {"InstanceId.1", "i-1"},
                                                   {"InstanceId.2", "i-2"}}));
  EXPECT_EQ(b.client->TerminateInstances({}).code(), StatusCode::kInvalidArgument);
}

TEST(Ec2ClientTest, Base64) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(Ec2ClientTest, Ec2ErrorOfIgnoresOtherStatuses) {
  EXPECT_FALSE(Ec2ErrorOf(core::OkStatus()).has_value());
  EXPECT_FALSE(Ec2ErrorOf(core::InvalidArgumentError("x: y")).has_value());
}

TEST(Ec2ClientTest, CredentialsFromEnvironment) {
  setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
  unsetenv("AWS_SESSION_TOKEN");
  auto c = CredentialsFromEnvironment();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "AKIAEXAMPLE");
  EXPECT_EQ(c->secret_access_key, "secret");
  EXPECT_EQ(c->session_token, "");
  setenv("AWS_SESSION_TOKEN", "tok", 1);
  EXPECT_EQ(CredentialsFromEnvironment()->session_token, "tok");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  auto missing = CredentialsFromEnvironment();
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), ::testing::Not(HasSubstr("secret")));
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SESSION_TOKEN");
}

// ---------------------------------------------------------------------------
// moto_server and sked-ec2-emulator tests.

std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  return path == nullptr ? "" : ec2emu::FindOnPath(name, path);
}

// The EC2 servers the integration cases run against.
enum class Ec2Server { kMoto, kEmulator };

std::string Ec2ServerName(const ::testing::TestParamInfo<Ec2Server>& info) {
  return info.param == Ec2Server::kMoto ? "Moto" : "Emulator";
}

// A server process the suite started.
struct Ec2ServerProcess {
  bool started = false;
  std::string error;  // Why it is unusable; empty when it answers.
  int port = 0;
  pid_t pid = -1;
};

// One server process per kind, started on first use and stopped after the
// suite. Both accept the moto keys below (moto checks none; the emulator is
// told to accept them).
class Ec2ClientServerTest : public ::testing::TestWithParam<Ec2Server> {
 protected:
  static void TearDownTestSuite() {
    for (Ec2ServerProcess& s : servers_) {
      if (s.pid > 0) {
        kill(-s.pid, SIGTERM);
        for (int i = 0; i < 100; ++i) {
          int wstatus;
          if (waitpid(s.pid, &wstatus, WNOHANG) == s.pid) {
            s.pid = -1;
            break;
          }
          std::this_thread::sleep_for(100ms);
        }
        if (s.pid > 0) {
          kill(-s.pid, SIGKILL);
          waitpid(s.pid, nullptr, 0);
        }
      }
      s = Ec2ServerProcess{};
    }
  }

  void SetUp() override {
    Ec2ServerProcess& s = servers_[static_cast<int>(GetParam())];
    if (!s.started) Start(GetParam(), s);
    ASSERT_TRUE(s.error.empty()) << s.error;
  }

  static void Start(Ec2Server kind, Ec2ServerProcess& s) {
    s.started = true;
    std::string program;
    std::vector<std::string> args;
    s.port = testing::PickFreePort();
    std::string port = std::to_string(s.port);
    if (kind == Ec2Server::kMoto) {
      program = FindOnPath("moto_server");
      if (program.empty()) {
        s.error =
            "moto_server is not on the PATH (it comes with this image's pyenv Python, moto 5.x); "
            "these tests need it";
        return;
      }
      args = {"moto_server", "-H", "127.0.0.1", "-p", port};
    } else {
      program = SKED_EC2_EMULATOR_BIN;
      // Instances are running at the first describe after launch, as on moto.
      args = {"sked-ec2-emulator", "--listen", "127.0.0.1:" + port, "--credentials",
              "AKIDMOTO:motosecret", "--pending-seconds", "0", "--terminate-grace-seconds", "1",
              "--quiet"};
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    s.pid = fork();
    if (s.pid == 0) {
      setpgid(0, 0);
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      execv(program.c_str(), argv.data());
      _exit(127);
    }
    setpgid(s.pid, s.pid);
    // Wait until it answers an EC2 call, not just accepts connections.
    auto deadline = std::chrono::steady_clock::now() + 60s;
    Ec2Client probe(OptionsFor(s.port));
    while (std::chrono::steady_clock::now() < deadline) {
      int wstatus;
      if (waitpid(s.pid, &wstatus, WNOHANG) == s.pid) {
        s.error = args[0] + " exited during startup";
        s.pid = -1;
        return;
      }
      if (CanConnect(s.port) && probe.DescribeInstances({}, {}).ok()) return;
      std::this_thread::sleep_for(100ms);
    }
    s.error = args[0] + " did not answer on port " + port + " within 60 s";
  }

  static Ec2ClientOptions OptionsFor(int port) {
    return Ec2ClientOptions{
        .endpoint = "http://127.0.0.1:" + std::to_string(port) + "/",
        .region = "us-east-1",
        .credentials = {"AKIDMOTO", "motosecret", ""},
        .timeout = 20s,
        .max_retries = 0,
    };
  }

  Ec2ClientOptions Options() const {
    return OptionsFor(servers_[static_cast<int>(GetParam())].port);
  }

  // Unique per test run, so reruns against one server never see old instances.
  static std::string Unique(const std::string& prefix) {
    static int n = 0;
    return prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(++n);
  }

  static inline Ec2ServerProcess servers_[2];
};

INSTANTIATE_TEST_SUITE_P(Servers, Ec2ClientServerTest,
                         ::testing::Values(Ec2Server::kMoto, Ec2Server::kEmulator),
                         Ec2ServerName);

TEST_P(Ec2ClientServerTest, LaunchDescribeTerminateSpot) {
  Ec2Client client(Options());
  std::string task = Unique("task");
  std::string token = Unique("tok");
  auto launched = client.RunSpotInstance(RunSpotParams{
      .image_id = kMotoAmi,
      .instance_type = "t3.micro",
      .user_data = "#!/bin/sh\necho hi\n",
      .client_token = token,
      .tags = {{"sked:task-id", task}, {"Name", "sked " + task}},
  });
  ASSERT_TRUE(launched.ok()) << launched.status().ToString();
  const std::string id = launched->instance_id;
  EXPECT_TRUE(id.starts_with("i-")) << id;
  EXPECT_EQ(launched->state_name, "pending");
  EXPECT_EQ(launched->state_code, 0);
  EXPECT_EQ(launched->lifecycle, "spot");
  EXPECT_EQ(launched->instance_type, "t3.micro");
  EXPECT_EQ(launched->image_id, kMotoAmi);
  EXPECT_EQ(launched->client_token, token);
  EXPECT_THAT(launched->tags, ::testing::UnorderedElementsAre(Tag{"sked:task-id", task},
                                                              Tag{"Name", "sked " + task}));

  auto by_id = client.DescribeInstances({id});
  ASSERT_TRUE(by_id.ok()) << by_id.status().ToString();
  ASSERT_EQ(by_id->size(), 1u);
  EXPECT_EQ((*by_id)[0].instance_id, id);
  EXPECT_EQ((*by_id)[0].state_name, "running");
  EXPECT_EQ((*by_id)[0].state_code, 16);
  EXPECT_EQ((*by_id)[0].lifecycle, "spot");
  EXPECT_FALSE((*by_id)[0].launch_time.empty());
  EXPECT_FALSE((*by_id)[0].private_ip.empty());

  auto by_tag = client.DescribeInstances({}, {{"tag:sked:task-id", {task}}});
  ASSERT_TRUE(by_tag.ok()) << by_tag.status().ToString();
  ASSERT_EQ(by_tag->size(), 1u);
  EXPECT_EQ((*by_tag)[0].instance_id, id);
  EXPECT_EQ((*by_tag)[0].lifecycle, "spot");

  // Filters AND.
  auto spot_only = client.DescribeInstances(
      {}, {{"tag:sked:task-id", {task}}, {"instance-state-name", {"pending", "running"}}});
  ASSERT_TRUE(spot_only.ok()) << spot_only.status().ToString();
  EXPECT_EQ(spot_only->size(), 1u);
  // moto 5.2 answers 500 to the instance-lifecycle filter, so only the
  // emulator is asked for it.
  if (GetParam() == Ec2Server::kEmulator) {
    auto lifecycle = client.DescribeInstances(
        {}, {{"tag:sked:task-id", {task}}, {"instance-lifecycle", {"spot"}}});
    ASSERT_TRUE(lifecycle.ok()) << lifecycle.status().ToString();
    EXPECT_EQ(lifecycle->size(), 1u);
  }

  auto none = client.DescribeInstances({}, {{"tag:sked:task-id", {Unique("nobody")}}});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  ASSERT_TRUE(client.TerminateInstances({id}).ok());
  auto after = client.DescribeInstances({id});
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  ASSERT_EQ(after->size(), 1u);
  EXPECT_THAT((*after)[0].state_name, ::testing::AnyOf("shutting-down", "terminated"));
  // Terminating again while it is still listed succeeds.
  EXPECT_TRUE(client.TerminateInstances({id}).ok());
}

TEST_P(Ec2ClientServerTest, UnknownIdsAreNotFound) {
  Ec2Client client(Options());
  core::Status s = client.TerminateInstances({"i-0123456789abcdef0"});
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("InvalidInstanceID.NotFound"));
  ASSERT_TRUE(Ec2ErrorOf(s).has_value());
  EXPECT_EQ(Ec2ErrorOf(s)->code, "InvalidInstanceID.NotFound");
  EXPECT_EQ(Ec2ErrorOf(s)->action, "TerminateInstances");

  auto d = client.DescribeInstances({"i-0123456789abcdef0"});
  EXPECT_EQ(d.status().code(), StatusCode::kNotFound) << d.status().ToString();
}

TEST_P(Ec2ClientServerTest, DescribeFollowsPages) {
  Ec2Client client(Options());
  std::string batch = Unique("batch");
  std::set<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    auto launched = client.RunSpotInstance(RunSpotParams{
        .image_id = kMotoAmi,
        .instance_type = "t3.nano",
        .client_token = batch + "-" + std::to_string(i),
        .tags = {{"sked:batch", batch}},
    });
    ASSERT_TRUE(launched.ok()) << launched.status().ToString();
    ids.insert(launched->instance_id);
  }
  auto all = client.DescribeInstances(
      DescribeInstancesParams{.filters = {{"tag:sked:batch", {batch}}}, .page_size = 5});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::set<std::string> got;
  for (const Ec2Instance& i : *all) got.insert(i.instance_id);
  EXPECT_EQ(got, ids);
  EXPECT_EQ(all->size(), 7u);
  EXPECT_TRUE(client.TerminateInstances(std::vector<std::string>(ids.begin(), ids.end())).ok());
}

}  // namespace
}  // namespace sked::aws
