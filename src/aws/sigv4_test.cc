// File: aws/sigv4_test.cc
//
// SigV4 against AWS's own signer: each case is signed here and by botocore's
// SigV4Auth (tests/aws/botocore_sign.py under Debian's /usr/bin/python3), and
// the Authorization, X-Amz-Date and X-Amz-Security-Token headers, the canonical
// request and the string to sign must be byte-identical. Known answers from the
// AWS SigV4 test suite and specs/ec2-spot.md pin both signers.
#include "aws/sigv4.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>

namespace sked::aws {
namespace {

using std::chrono::sys_days;
using namespace std::chrono_literals;
using core::StatusOr;

constexpr char kPython[] = "/usr/bin/python3";
constexpr char kScript[] = SKED_SOURCE_DIR "/tests/aws/botocore_sign.py";
constexpr char kExampleKey[] = "AKIDEXAMPLE";
constexpr char kExampleSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr char kFormType[] = "application/x-www-form-urlencoded; charset=utf-8";

// 2015-08-30T12:36:00Z, the AWS test suite's time.
constexpr std::chrono::sys_seconds kSuiteTime =
    sys_days{std::chrono::year{2015} / 8 / 30} + 12h + 36min;

std::chrono::sys_seconds At(int y, unsigned mo, unsigned d, int h, int mi, int s) {
  return sys_days{std::chrono::year{y} / mo / d} + std::chrono::hours(h) +
         std::chrono::minutes(mi) + std::chrono::seconds(s);
}

struct Case {
  std::string name;
  HttpRequestToSign request;
  Credentials credentials;
  SigningParams params;
  ParamList form_params;  // When set, the body is Ec2QueryBody(action, form_params).
  std::string action;
};

struct Reference {
  std::map<std::string, std::string> headers;
  std::string canonical_request;
  std::string string_to_sign;
  std::string form_body;
};

std::string IsoTime(std::chrono::sys_seconds t) {
  std::string d = AmzDate(t);  // YYYYMMDDTHHMMSSZ
  return d.substr(0, 4) + "-" + d.substr(4, 2) + "-" + d.substr(6, 2) + "T" + d.substr(9, 2) + ":" +
         d.substr(11, 2) + ":" + d.substr(13, 2) + "Z";
}

bool BotocoreAvailable() {
  static const bool available =
      std::system((std::string(kPython) + " -c 'import botocore.auth' >/dev/null 2>&1").c_str()) ==
      0;
  return available;
}

// Runs botocore on `c`. Returns nullopt (after an ADD_FAILURE) on any error.
std::optional<Reference> SignWithBotocore(const Case& c) {
  boost::json::object in;
  in["method"] = c.request.method;
  in["url"] = c.request.url;
  boost::json::array headers;
  for (const auto& [k, v] : c.request.headers) headers.push_back({k, v});
  in["headers"] = std::move(headers);
  in["body"] = c.request.body;
  in["region"] = c.params.region;
  in["service"] = c.params.service;
  in["access_key"] = c.credentials.access_key_id;
  in["secret_key"] = c.credentials.secret_access_key;
  in["token"] = c.credentials.session_token;
  in["time"] = IsoTime(c.params.time);
  if (!c.form_params.empty()) {
    boost::json::array form;
    for (const auto& [k, v] : c.form_params) form.push_back({k, v});
    in["form_params"] = std::move(form);
  }

  char path[] = "/tmp/sked_sigv4_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) {
    ADD_FAILURE() << "mkstemp failed";
    return std::nullopt;
  }
  close(fd);
  {
    std::ofstream f(path, std::ios::binary);
    f << boost::json::serialize(in);
  }
  std::string cmd = std::string(kPython) + " " + kScript + " < " + path;
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  if (p != nullptr) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  }
  int rc = p != nullptr ? pclose(p) : -1;
  unlink(path);
  if (rc != 0) {
    ADD_FAILURE() << "botocore_sign.py failed (" << rc << ") for " << c.name;
    return std::nullopt;
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(out, ec);
  if (ec) {
    ADD_FAILURE() << "bad JSON from botocore_sign.py: " << out;
    return std::nullopt;
  }
  Reference ref;
  const auto& o = v.as_object();
  for (const auto& [k, val] : o.at("headers").as_object()) {
    ref.headers[std::string(k)] = std::string(val.as_string());
  }
  ref.canonical_request = std::string(o.at("canonical_request").as_string());
  ref.string_to_sign = std::string(o.at("string_to_sign").as_string());
  if (o.contains("form_body")) {
    ref.form_body = std::string(o.at("form_body").as_string());
  }
  return ref;
}

std::map<std::string, std::string> ToMap(const HeaderList& headers) {
  std::map<std::string, std::string> m;
  for (const auto& [k, v] : headers) m[k] = v;
  return m;
}

Credentials ExampleCredentials(std::string token = "") {
  return {kExampleKey, kExampleSecret, std::move(token)};
}

HttpRequestToSign Ec2Post(std::string region, std::string body) {
  return {.method = "POST",
          .url = "https://ec2." + region + ".amazonaws.com/",
          .headers = {{"Content-Type", kFormType}},
          .body = std::move(body)};
}

std::vector<Case> Cases() {
  std::vector<Case> cases;

  const ParamList run_instances = {
      {"ImageId", "ami-0abcdef1234567890"},
      {"InstanceType", "c6i.large"},
      {"MinCount", "1"},
      {"MaxCount", "1"},
      {"SubnetId", "subnet-0123456789abcdef0"},
      {"SecurityGroupId.1", "sg-0a1b2c3d"},
      {"SecurityGroupId.2", "sg-4e5f6a7b"},
      {"IamInstanceProfile.Arn", "arn:aws:iam::123456789012:instance-profile/sked/runner"},
      {"UserData", "IyEvYmluL3NoCmVjaG8gaGk+Pz8/Cg=="},
      {"ClientToken", "sked-job-42+attempt=3~x"},
      {"InstanceInitiatedShutdownBehavior", "terminate"},
      {"InstanceMarketOptions.MarketType", "spot"},
      {"InstanceMarketOptions.SpotOptions.SpotInstanceType", "one-time"},
      {"InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior", "terminate"},
      {"InstanceMarketOptions.SpotOptions.MaxPrice", "0.0425"},
      {"TagSpecification.1.ResourceType", "instance"},
      {"TagSpecification.1.Tag.1.Key", "sked:job"},
      {"TagSpecification.1.Tag.1.Value", "nightly report / eu (ÆØÅ ü 日本)"},
      {"TagSpecification.1.Tag.2.Key", "Name"},
      {"TagSpecification.1.Tag.2.Value", "a b  c=d&e;f'g\"h*i(j)!k$l,m"},
      {"MetadataOptions.HttpTokens", "required"},
      {"MetadataOptions.HttpEndpoint", "enabled"},
      {"MetadataOptions.HttpPutResponseHopLimit", "2"},
  };
  {
    Case c{.name = "run_instances_spot",
           .request = Ec2Post("us-east-1", ""),
           .credentials = ExampleCredentials(),
           .params = {"us-east-1", "ec2", At(2026, 1, 2, 3, 4, 5)},
           .form_params = run_instances,
           .action = "RunInstances"};
    cases.push_back(c);
    c.name = "run_instances_spot_session_token";
    c.request = Ec2Post("eu-west-1", "");
    c.credentials = {"ASIAEXAMPLEKEY123456", "s3cr3t/with+slash=and~tilde",
                     "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+/="};
    c.params = {"eu-west-1", "ec2", At(2026, 3, 14, 15, 9, 26)};
    cases.push_back(c);
  }
  cases.push_back({.name = "describe_instances_filters",
                   .request = Ec2Post("us-east-1", ""),
                   .credentials = ExampleCredentials("TOKEN-EXAMPLE"),
                   .params = {"us-east-1", "ec2", kSuiteTime},
                   .form_params = {{"Filter.1.Name", "tag:scheduler-job"},
                                   {"Filter.1.Value.1", "job-42"},
                                   {"Filter.2.Name", "instance-state-name"},
                                   {"Filter.2.Value.1", "pending"},
                                   {"Filter.2.Value.2", "running"}},
                   .action = "DescribeInstances"});
  cases.push_back({.name = "terminate_instances_year_rollover",
                   .request = Ec2Post("ap-southeast-2", ""),
                   .credentials = ExampleCredentials(),
                   .params = {"ap-southeast-2", "ec2", At(2025, 12, 31, 23, 59, 59)},
                   .form_params = {{"InstanceId.1", "i-0123456789abcdef0"},
                                   {"InstanceId.2", "i-0fedcba9876543210"}},
                   .action = "TerminateInstances"});
  cases.push_back({.name = "describe_spot_requests_midnight",
                   .request = Ec2Post("us-west-2", ""),
                   .credentials = ExampleCredentials("tok"),
                   .params = {"us-west-2", "ec2", At(2024, 3, 1, 0, 0, 0)},
                   .form_params = {{"SpotInstanceRequestId.1", "sir-abc123"}},
                   .action = "DescribeSpotInstanceRequests"});
  cases.push_back({.name = "leap_day_end",
                   .request = Ec2Post("us-east-1", "Action=DescribeInstances&Version=2016-11-15"),
                   .credentials = ExampleCredentials(),
                   .params = {"us-east-1", "ec2", At(2024, 2, 29, 23, 59, 59)}});
  cases.push_back({.name = "get_query_repeated_and_empty",
                   .request = {.method = "GET",
                               .url = "https://service.us-east-1.amazonaws.com/"
                                      "?b=2&a=1&a=0&empty=&flag&c=x%2Fy%20z~&Zeta=%C3%A9&a-b=3",
                               .headers = {},
                               .body = ""},
                   .credentials = ExampleCredentials(),
                   .params = {"us-east-1", "service", kSuiteTime}});
  cases.push_back({.name = "path_with_spaces_and_specials",
                   .request = {.method = "get",
                               .url = "https://example.amazonaws.com/a%20b/c+d/./e/../f//"
                                      "g~h/%C3%A9$x=1:y@z/?q=1#frag",
                               .headers = {},
                               .body = ""},
                   .credentials = ExampleCredentials(),
                   .params = {"eu-central-1", "service", At(2019, 7, 4, 12, 0, 0)}});
  cases.push_back({.name = "header_internal_spaces_and_repeats",
                   .request = {.method = "POST",
                               .url = "https://example.amazonaws.com/",
                               .headers = {{"X-Custom", "   a    b \t  c   "},
                                           {"My-Header1", "value1"},
                                           {"my-header1", "  value2  "},
                                           {"User-Agent", "sked/0.1 (unsigned)"},
                                           {"Content-Type", kFormType}},
                               .body = "Param1=value1"},
                   .credentials = ExampleCredentials("session"),
                   .params = {"us-east-1", "service", kSuiteTime}});
  cases.push_back({.name = "bodyless_get_empty_path",
                   .request = {.method = "GET",
                               .url = "https://service.us-east-1.amazonaws.com",
                               .headers = {},
                               .body = ""},
                   .credentials = ExampleCredentials(),
                   .params = {"us-east-1", "service", kSuiteTime}});
  cases.push_back({.name = "http_loopback_with_port",
                   .request = {.method = "POST",
                               .url = "http://127.0.0.1:18080/",
                               .headers = {{"Content-Type", kFormType}},
                               .body = ""},
                   .credentials = ExampleCredentials("emulator-token"),
                   .params = {"us-east-1", "ec2", At(2026, 6, 30, 23, 59, 30)},
                   .form_params = {{"InstanceId.1", "i-000000000000000001"}},
                   .action = "DescribeInstances"});
  cases.push_back({.name = "https_default_port_and_upper_host",
                   .request = {.method = "POST",
                               .url = "https://EC2.US-EAST-1.amazonaws.com:443/",
                               .headers = {{"Content-Type", kFormType}},
                               .body = "Action=DescribeInstances&Version=2016-11-15"},
                   .credentials = ExampleCredentials(),
                   .params = {"us-east-1", "ec2", kSuiteTime}});
  cases.push_back({.name = "caller_host_header",
                   .request = {.method = "POST",
                               .url = "http://127.0.0.1:8080/",
                               .headers = {{"Host", "ec2.local:8080"}, {"Content-Type", kFormType}},
                               .body = "Action=DescribeInstances&Version=2016-11-15"},
                   .credentials = ExampleCredentials(),
                   .params = {"us-east-1", "ec2", kSuiteTime}});
  for (Case& c : cases) {
    if (!c.action.empty()) c.request.body = Ec2QueryBody(c.action, c.form_params);
  }
  return cases;
}

class BotocoreParityTest : public ::testing::TestWithParam<Case> {};

TEST_P(BotocoreParityTest, MatchesBotocore) {
  // scripts/install-deps.sh --test installs python3-botocore: without it this
  // comparison cannot be made, and that is a failure, not a skip.
  ASSERT_TRUE(BotocoreAvailable()) << kPython
                                   << " cannot import botocore (apt-get install python3-botocore)";
  const Case& c = GetParam();
  StatusOr<HeaderList> signed_headers = SignRequest(c.request, c.credentials, c.params);
  ASSERT_TRUE(signed_headers.ok()) << signed_headers.status().ToString();
  std::optional<Reference> ref = SignWithBotocore(c);
  ASSERT_TRUE(ref.has_value());

  std::map<std::string, std::string> ours = ToMap(*signed_headers);
  // Host is ours only: botocore leaves it to urllib3, which sends the same
  // value it signed; the canonical request comparison below covers it.
  ours.erase("Host");
  EXPECT_EQ(ours, ref->headers);
  EXPECT_EQ(ours["Authorization"], ref->headers["Authorization"]);

  HttpRequestToSign sent = c.request;
  for (const auto& h : *signed_headers) {
    if (h.first != "Authorization") sent.headers.push_back(h);
  }
  StatusOr<std::string> creq = CanonicalRequest(sent);
  ASSERT_TRUE(creq.ok()) << creq.status().ToString();
  EXPECT_EQ(*creq, ref->canonical_request);
  EXPECT_EQ(StringToSign(*creq, c.params), ref->string_to_sign);
  if (!c.form_params.empty()) {
    EXPECT_EQ(EncodeQuery(c.form_params), ref->form_body);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, BotocoreParityTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

std::string SignatureOf(const HeaderList& headers) {
  for (const auto& [k, v] : headers) {
    if (k == "Authorization") return v.substr(v.rfind('=') + 1);
  }
  return "";
}

// AWS SigV4 test suite, get-vanilla / post-vanilla (host example.amazonaws.com,
// service "service"): the canonical request and the signature are the
// published ones.
TEST(Sigv4KnownAnswerTest, GetVanilla) {
  HttpRequestToSign req{
      .method = "GET", .url = "https://example.amazonaws.com/", .headers = {}, .body = ""};
  SigningParams params{"us-east-1", "service", kSuiteTime};
  StatusOr<HeaderList> h = SignRequest(req, ExampleCredentials(), params);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(ToMap(*h).at("Host"), "example.amazonaws.com");
  EXPECT_EQ(ToMap(*h).at("X-Amz-Date"), "20150830T123600Z");
  EXPECT_EQ(ToMap(*h).at("Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
            "aws4_request, SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  req.headers = *h;
  req.headers.pop_back();  // Authorization
  EXPECT_EQ(*CanonicalRequest(req),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sigv4KnownAnswerTest, PostVanilla) {
  HttpRequestToSign req{.method = "POST",
                        .url = "https://example.amazonaws.com/",
                        .headers = {{"Host", "example.amazonaws.com"}},
                        .body = ""};
  StatusOr<HeaderList> h =
      SignRequest(req, ExampleCredentials(), {"us-east-1", "service", kSuiteTime});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(ToMap(*h).count("Host"), 0u);  // The caller's Host is kept.
  EXPECT_EQ(SignatureOf(*h), "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(Sigv4KnownAnswerTest, GetVanillaWithSessionToken) {
  HttpRequestToSign req{
      .method = "GET", .url = "https://example.amazonaws.com/", .headers = {}, .body = ""};
  StatusOr<HeaderList> h = SignRequest(
      req, ExampleCredentials("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
      {"us-east-1", "service", kSuiteTime});
  ASSERT_TRUE(h.ok());
  EXPECT_THAT(ToMap(*h).at("Authorization"),
              ::testing::HasSubstr("SignedHeaders=host;x-amz-date;x-amz-security-token,"));
  EXPECT_EQ(SignatureOf(*h), "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
}

// aws-c-auth's variant signs the body hash header and Content-Length.
TEST(Sigv4KnownAnswerTest, PostXWwwFormUrlencodedSignBody) {
  HttpRequestToSign req{.method = "POST",
                        .url = "https://example.amazonaws.com/",
                        .headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                                    {"Host", "example.amazonaws.com"},
                                    {"Content-Length", "13"},
                                    {"x-amz-content-sha256", HexSha256("Param1=value1")}},
                        .body = "Param1=value1"};
  EXPECT_EQ(HexSha256("Param1=value1"),
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  StatusOr<HeaderList> h =
      SignRequest(req, ExampleCredentials(), {"us-east-1", "service", kSuiteTime});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(SignatureOf(*h), "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b");
}

// The EC2 vectors in specs/ec2-spot.md, made by botocore.
TEST(Sigv4KnownAnswerTest, Ec2DescribeInstances) {
  SigningParams params{"us-east-1", "ec2", kSuiteTime};
  HttpRequestToSign req = Ec2Post("us-east-1", Ec2QueryBody("DescribeInstances", {}));
  EXPECT_EQ(req.body.size(), 43u);
  StatusOr<HeaderList> h = SignRequest(req, ExampleCredentials(), params);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(SignatureOf(*h), "16bec6625521eb1b2a944bb8409fdd5a54007d61862cf7074d07d2e75a3a4950");

  req.url = "http://127.0.0.1:8080/";
  h = SignRequest(req, ExampleCredentials(), params);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(ToMap(*h).at("Host"), "127.0.0.1:8080");
  EXPECT_EQ(SignatureOf(*h), "91f8f27c998a8d8c47b774244ac55b5d923b15b4ea863061e66dac18dca1e6a4");

  req.url = "https://ec2.us-east-1.amazonaws.com/";
  req.body = Ec2QueryBody("DescribeInstances", {{"Filter.1.Name", "tag:scheduler-job"},
                                                {"Filter.1.Value.1", "job-42"},
                                                {"Filter.2.Name", "instance-state-name"},
                                                {"Filter.2.Value.1", "pending"},
                                                {"Filter.2.Value.2", "running"}});
  EXPECT_EQ(req.body.size(), 185u);
  EXPECT_EQ(HexSha256(req.body),
            "c2f650655466c30401bf3febc21004771314f2020830dd283b515b9640dc872f");
  h = SignRequest(req, ExampleCredentials("TOKEN-EXAMPLE"), params);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(ToMap(*h).at("X-Amz-Security-Token"), "TOKEN-EXAMPLE");
  EXPECT_THAT(
      ToMap(*h).at("Authorization"),
      ::testing::HasSubstr("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,"));
  EXPECT_EQ(SignatureOf(*h), "b888c905110be6dddc027bc2bc45f5c428c597979db2df719088e578de4fefdb");
  HttpRequestToSign sent = req;
  sent.headers.insert(sent.headers.end(), h->begin(), h->end() - 1);
  std::string sts = StringToSign(*CanonicalRequest(sent), params);
  EXPECT_EQ(sts.substr(sts.rfind('\n') + 1),
            "86efc5ba800ddcbfb1c0c6ba7c6e8ffb5e5d4ef077b770646a0b911b070f29e0");
}

TEST(Sigv4EncodingTest, UriEncodeUsesTheUnreservedSet) {
  EXPECT_EQ(UriEncode("AZaz09-_.~"), "AZaz09-_.~");
  EXPECT_EQ(UriEncode("a b+c/d=e:f$g"), "a%20b%2Bc%2Fd%3De%3Af%24g");
  EXPECT_EQ(UriEncode("/a b/", /*keep_slash=*/true), "/a%20b/");
  EXPECT_EQ(UriEncode("é"), "%C3%A9");
  EXPECT_EQ(UriEncode(std::string("\0\xff", 2)), "%00%FF");
}

TEST(Sigv4EncodingTest, Ec2QueryBodyKeepsOrder) {
  EXPECT_EQ(Ec2QueryBody("RunInstances", {{"MinCount", "1"},
                                          {"TagSpecification.1.Tag.1.Value", "a b"},
                                          {"LaunchTemplateConfigs.1.Version", "$Latest"}}),
            "Action=RunInstances&Version=2016-11-15&MinCount=1&"
            "TagSpecification.1.Tag.1.Value=a%20b&"
            "LaunchTemplateConfigs.1.Version=%24Latest");
  EXPECT_EQ(Ec2QueryBody("DescribeInstances", {}), "Action=DescribeInstances&Version=2016-11-15");
}

TEST(Sigv4EncodingTest, AmzDateAndScope) {
  EXPECT_EQ(AmzDate(kSuiteTime), "20150830T123600Z");
  EXPECT_EQ(AmzDate(At(1999, 12, 31, 23, 59, 59)), "19991231T235959Z");
  EXPECT_EQ(CredentialScope({"eu-west-1", "ec2", At(2026, 1, 2, 0, 0, 0)}),
            "20260102/eu-west-1/ec2/aws4_request");
}

// Not compared with botocore, which signs the raw query pairs: a query that
// is not already canonically encoded is normalized the way the spec asks.
TEST(Sigv4CanonicalTest, QueryIsDecodedAndReencoded) {
  HttpRequestToSign req{.method = "GET",
                        .url = "https://h.example/?b=%7e%2f&a=x/y",
                        .headers = {{"Host", "h.example"}},
                        .body = ""};
  StatusOr<std::string> creq = CanonicalRequest(req);
  ASSERT_TRUE(creq.ok());
  EXPECT_THAT(*creq, ::testing::StartsWith("GET\n/\na=x%2Fy&b=~%2F\nhost:h.example\n"));
}

TEST(Sigv4ErrorTest, RejectsBadInput) {
  const SigningParams params{"us-east-1", "ec2", kSuiteTime};
  HttpRequestToSign ok = Ec2Post("us-east-1", "Action=DescribeInstances");
  ASSERT_TRUE(SignRequest(ok, ExampleCredentials(), params).ok());

  auto code_of = [&](HttpRequestToSign r, Credentials c, SigningParams p) {
    return SignRequest(r, c, p).status().code();
  };
  using core::StatusCode;
  EXPECT_EQ(code_of(ok, {"", "s", ""}, params), StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of(ok, {"a", "", ""}, params), StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of(ok, ExampleCredentials(), {"", "ec2", kSuiteTime}),
            StatusCode::kInvalidArgument);
  for (const char* owned : {"authorization", "X-Amz-Date", "X-AMZ-SECURITY-TOKEN", "Date"}) {
    HttpRequestToSign r = ok;
    r.headers.push_back({owned, "x"});
    EXPECT_EQ(code_of(r, ExampleCredentials(), params), StatusCode::kInvalidArgument) << owned;
  }
  for (const char* url : {"ec2.amazonaws.com/", "ftp://h/", "https:///x", "https://h:99999/",
                          "https://h:8x/", "https://h/?a=%zz", "https://h/?a=%2"}) {
    HttpRequestToSign r = ok;
    r.url = url;
    EXPECT_EQ(code_of(r, ExampleCredentials(), params), StatusCode::kInvalidArgument) << url;
  }
  HttpRequestToSign r = ok;
  r.method = "";
  EXPECT_EQ(code_of(r, ExampleCredentials(), params), StatusCode::kInvalidArgument);
}

TEST(Sigv4ErrorTest, SecretNeverInOutput) {
  StatusOr<HeaderList> h =
      SignRequest(Ec2Post("us-east-1", ""), ExampleCredentials(), {"us-east-1", "ec2", kSuiteTime});
  ASSERT_TRUE(h.ok());
  for (const auto& [k, v] : *h) EXPECT_EQ(v.find(kExampleSecret), std::string::npos);
}

}  // namespace
}  // namespace sked::aws
