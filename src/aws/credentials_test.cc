// File: aws/credentials_test.cc
//
// The credential chain of aws/credentials.h: order (environment, shared
// credentials file, config file, IMDS), INI parsing as botocore's configparser
// does it, and IMDSv2 against a loopback fake that enforces the token rules of
// specs/ec2-spot.md section 6 (TTL header on PUT, token header on GET). The
// environment is always passed as a map, so the process environment and the
// real ~/.aws never leak in; nothing leaves 127.0.0.1.
#include "aws/credentials.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "testing/loopback_http_server.h"

namespace sked::aws {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using core::StatusCode;

constexpr char kToken[] = "imds-token-123";
constexpr char kRole[] = "sked-role";

// IMDSv2 with HttpTokens=required, on a loopback server.
class FakeImds {
 public:
  FakeImds() : server_([this](const Request& req) { return Handle(req); }) {}

  std::string endpoint() const { return server_.base_url(); }

  // What the role document's Expiration says.
  void set_expiration(const std::string& e) {
    std::lock_guard<std::mutex> lock(mu_);
    expiration_ = e;
  }
  // When set, the role document answers 500.
  void set_failing(bool f) { failing_ = f; }

  std::atomic<int> token_puts{0};
  std::atomic<int> role_list_gets{0};
  std::atomic<int> role_gets{0};
  std::atomic<int> rejected{0};  // 400 and 401 answers.
  std::atomic<int> requests{0};
  std::string last_ttl;  // Guarded by mu_.
  std::mutex mu_;

 private:
  using Request = testing::LoopbackHttpServer::Request;

  testing::LoopbackHttpServer::Response Handle(const Request& req) {
    ++requests;
    auto [status, ttl_header, body] = Answer(req);
    testing::LoopbackHttpServer::Response out{.status = status, .body = body};
    if (!ttl_header.empty()) {
      out.headers.emplace_back("X-aws-ec2-metadata-token-ttl-seconds", ttl_header);
    }
    return out;
  }

  std::tuple<int, std::string, std::string> Answer(const Request& req) {
    if (req.method == "PUT" && req.target == "/latest/api/token") {
      ++token_puts;
      auto it = req.headers.find("x-aws-ec2-metadata-token-ttl-seconds");
      int ttl = it == req.headers.end() ? 0 : std::atoi(it->second.c_str());
      if (ttl < 1 || ttl > 21600) {
        ++rejected;
        return {400, "", ""};
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_ttl = it->second;
      }
      return {200, it->second, kToken};
    }
    if (req.method != "GET") return {405, "", ""};
    auto tok = req.headers.find("x-aws-ec2-metadata-token");
    if (tok == req.headers.end() || tok->second != kToken) {
      ++rejected;
      return {401, "", ""};
    }
    if (req.target == "/latest/meta-data/iam/security-credentials/") {
      ++role_list_gets;
      return {200, "", kRole};
    }
    if (req.target == std::string("/latest/meta-data/iam/security-credentials/") + kRole) {
      int n = ++role_gets;
      if (failing_) return {500, "", ""};
      std::lock_guard<std::mutex> lock(mu_);
      std::string json = R"({"Code":"Success","LastUpdated":"2026-12-03T10:00:00Z",)"
                         R"("Type":"AWS-HMAC","AccessKeyId":"ASIAROLE)" +
                         std::to_string(n) + R"(","SecretAccessKey":"rolesecret",)" +
                         R"("Token":"roletoken","Expiration":")" + expiration_ + R"("})";
      return {200, "", json};
    }
    return {404, "", ""};
  }

  std::atomic<bool> failing_{false};
  std::string expiration_ = "2026-12-03T18:00:00Z";  // Guarded by mu_.
  // Last: it calls Handle until destroyed, so it must go before the state above.
  testing::LoopbackHttpServer server_;
};

const core::Time kNow = *core::ParseRfc3339("2026-12-03T12:00:00Z");

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = std::filesystem::temp_directory_path() /
            ("sked_cred_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(home_);
    std::filesystem::create_directories(home_ / ".aws");
    env_["HOME"] = home_.string();
  }
  void TearDown() override { std::filesystem::remove_all(home_); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(home_ / ".aws" / name) << text;
  }

  CredentialsProviderOptions Options() {
    CredentialsProviderOptions o;
    o.environment = env_;
    o.now = [this] {
      std::lock_guard<std::mutex> lock(now_mu_);
      return now_;
    };
    return o;
  }

  void SetNow(core::Time t) {
    std::lock_guard<std::mutex> lock(now_mu_);
    now_ = t;
  }

  std::filesystem::path home_;
  std::map<std::string, std::string> env_;
  std::mutex now_mu_;
  core::Time now_ = kNow;
};

TEST(ParseIniTest, CommentsSpacesCaseAndContinuations) {
  detail::IniFile ini = detail::ParseIni(
      "top = ignored\n"
      "# a comment\n"
      "; another\n"
      "[default]\r\n"
      "aws_access_key_id=AKIADEF\n"
      "AWS_Secret_Access_Key   =   s e c  \n"
      "  indented = continues the previous value, as in configparser\n"
      "\n"
      "[ work ]\n"
      "aws_access_key_id: AKIAWORK # not a comment\n"
      "s3 =\n"
      "    max_concurrent_requests = 10\n"
      "region=eu-west-1\n");
  ASSERT_EQ(ini.size(), 2u);
  EXPECT_EQ(ini["default"]["aws_access_key_id"], "AKIADEF");
  EXPECT_EQ(ini["default"]["aws_secret_access_key"],
            "s e c\nindented = continues the previous value, as in configparser");
  EXPECT_EQ(ini["default"].count("indented"), 0u);
  EXPECT_EQ(ini["work"]["aws_access_key_id"], "AKIAWORK # not a comment");
  EXPECT_EQ(ini["work"]["s3"], "\nmax_concurrent_requests = 10");
  EXPECT_EQ(ini["work"]["region"], "eu-west-1");
}

TEST_F(CredentialsTest, EnvironmentBeatsFileAndImds) {
  FakeImds imds;
  Write("credentials", "[default]\naws_access_key_id=AKIAFILE\naws_secret_access_key=f\n");
  env_["AWS_ACCESS_KEY_ID"] = "AKIAENV";
  env_["AWS_SECRET_ACCESS_KEY"] = "envsecret";
  env_["AWS_SESSION_TOKEN"] = "envtoken";
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.endpoint();
  CredentialsProvider p(Options());
  auto c = p.Get();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIAENV");
  EXPECT_EQ(c->secret_access_key, "envsecret");
  EXPECT_EQ(c->session_token, "envtoken");
  EXPECT_EQ(p.source(), "environment");
  EXPECT_EQ(imds.requests.load(), 0);
}

TEST_F(CredentialsTest, EnvironmentAccessKeyWithoutSecretStopsTheChain) {
  Write("credentials", "[default]\naws_access_key_id=AKIAFILE\naws_secret_access_key=f\n");
  env_["AWS_ACCESS_KEY_ID"] = "AKIAENV";
  CredentialsProvider p(Options());
  auto c = p.Get();
  EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(c.status().message(), HasSubstr("AWS_SECRET_ACCESS_KEY"));
}

TEST_F(CredentialsTest, FileBeatsImds) {
  FakeImds imds;
  Write("credentials", "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = f\n");
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.endpoint();
  CredentialsProvider p(Options());
  auto c = p.Get();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIAFILE");
  EXPECT_EQ(c->secret_access_key, "f");
  EXPECT_EQ(c->session_token, "");
  EXPECT_EQ(p.source(), "shared-credentials-file");
  EXPECT_EQ(imds.requests.load(), 0);
}

TEST_F(CredentialsTest, FileProfilesCommentsSpacesAndKeyCase) {
  Write("credentials",
        "# personal keys\n"
        "[default]\n"
        "aws_access_key_id=AKIADEFAULT\n"
        "aws_secret_access_key=defsecret\n"
        "\n"
        "; work account\n"
        "[work]\n"
        "  AWS_ACCESS_KEY_ID   =   AKIAWORK  \n"
        "Aws_Secret_Access_Key: worksecret\n"
        "# aws_session_token = commented-out\n"
        "aws_session_token\t=\tworktoken\n");
  env_["AWS_PROFILE"] = "work";
  env_["AWS_EC2_METADATA_DISABLED"] = "true";
  CredentialsProvider p(Options());
  auto c = p.Get();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIAWORK");
  EXPECT_EQ(c->secret_access_key, "worksecret");
  EXPECT_EQ(c->session_token, "worktoken");

  CredentialsProviderOptions o = Options();
  o.profile = "";
  o.environment->erase("AWS_PROFILE");
  CredentialsProvider d(o);
  auto dc = d.Get();
  ASSERT_TRUE(dc.ok()) << dc.status().ToString();
  EXPECT_EQ(dc->access_key_id, "AKIADEFAULT");
  EXPECT_EQ(dc->session_token, "");
}

TEST_F(CredentialsTest, FileFromVariableAndExplicitPath) {
  std::string other = (home_ / "elsewhere.ini").string();
  std::ofstream(other) << "[default]\naws_access_key_id=AKIAOTHER\naws_secret_access_key=o\n";
  env_["AWS_SHARED_CREDENTIALS_FILE"] = other;
  env_["AWS_EC2_METADATA_DISABLED"] = "true";
  CredentialsProvider p(Options());
  auto c = p.Get();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIAOTHER");

  CredentialsProviderOptions o = Options();
  o.credentials_file = "~/.aws/nope";
  CredentialsProvider q(o);
  auto missing = q.Get();
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(home_.string() + "/.aws/nope"));
}

TEST_F(CredentialsTest, ProfileWithoutSecretNamesFileAndProfile) {
  Write("credentials",
        "[partial]\naws_access_key_id = AKIAPART\naws_session_token = t\n");
  env_["AWS_PROFILE"] = "partial";
  env_["AWS_EC2_METADATA_DISABLED"] = "true";
  CredentialsProvider p(Options());
  auto c = p.Get();
  EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(c.status().message(),
              AllOf(HasSubstr(home_.string() + "/.aws/credentials"), HasSubstr("\"partial\""),
                    HasSubstr("aws_secret_access_key")));
}

TEST_F(CredentialsTest, MissingProfileAndKeylessProfileFallThrough) {
  Write("credentials", "[default]\nregion = us-east-1\n");
  env_["AWS_EC2_METADATA_DISABLED"] = "true";
  CredentialsProvider p(Options());
  auto c = p.Get();
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(),
              AllOf(HasSubstr("profile \"default\" (no aws_access_key_id)"),
                    HasSubstr(home_.string() + "/.aws/credentials")));

  env_["AWS_PROFILE"] = "ghost";
  CredentialsProvider q(Options());
  auto g = q.Get();
  EXPECT_EQ(g.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(g.status().message(), HasSubstr("(no profile \"ghost\")"));
}

TEST_F(CredentialsTest, StaticKeysInConfigFile) {
  Write("config",
        "[default]\nregion = us-east-1\n"
        "[profile ci]\naws_access_key_id = AKIACFG\naws_secret_access_key = cfgsecret\n");
  env_["AWS_PROFILE"] = "ci";
  env_["AWS_EC2_METADATA_DISABLED"] = "true";
  CredentialsProvider p(Options());
  auto c = p.Get();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIACFG");
  EXPECT_EQ(p.source(), "config-file");

  // The credentials file wins over the config file for the same profile.
  Write("credentials", "[ci]\naws_access_key_id = AKIACRED\naws_secret_access_key = s\n");
  CredentialsProvider q(Options());
  EXPECT_EQ(q.Get()->access_key_id, "AKIACRED");
}

TEST_F(CredentialsTest, ImdsRoleCredentials) {
  FakeImds imds;
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.endpoint() + "/";
  CredentialsProvider p(Options());
  auto c = p.Get();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "ASIAROLE1");
  EXPECT_EQ(c->secret_access_key, "rolesecret");
  EXPECT_EQ(c->session_token, "roletoken");
  EXPECT_EQ(p.source(), "instance-metadata");
  EXPECT_EQ(imds.token_puts.load(), 1);
  EXPECT_EQ(imds.role_list_gets.load(), 1);
  EXPECT_EQ(imds.role_gets.load(), 1);
  EXPECT_EQ(imds.rejected.load(), 0);
  std::lock_guard<std::mutex> lock(imds.mu_);
  EXPECT_EQ(imds.last_ttl, "21600");
}

TEST_F(CredentialsTest, ImdsFarExpirationIsCachedUntilTheWindow) {
  FakeImds imds;
  imds.set_expiration("2026-12-03T18:00:00Z");  // Six hours after kNow.
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.endpoint();
  CredentialsProvider p(Options());
  ASSERT_TRUE(p.Get().ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(p.Get()->access_key_id, "ASIAROLE1");
  EXPECT_EQ(imds.role_gets.load(), 1);

  // Six minutes before Expiration: still cached.
  SetNow(*core::ParseRfc3339("2026-12-03T17:54:00Z"));
  EXPECT_EQ(p.Get()->access_key_id, "ASIAROLE1");
  EXPECT_EQ(imds.role_gets.load(), 1);
  // Four minutes before: refreshed.
  SetNow(*core::ParseRfc3339("2026-12-03T17:56:00Z"));
  imds.set_expiration("2026-12-04T00:00:00Z");
  EXPECT_EQ(p.Get()->access_key_id, "ASIAROLE2");
  EXPECT_EQ(imds.role_gets.load(), 2);
  EXPECT_EQ(p.Get()->access_key_id, "ASIAROLE2");
  EXPECT_EQ(imds.role_gets.load(), 2);
}

TEST_F(CredentialsTest, ImdsSoonExpirationRefreshesOnNextGet) {
  FakeImds imds;
  imds.set_expiration("2026-12-03T12:03:00Z");  // Three minutes after kNow.
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.endpoint();
  CredentialsProvider p(Options());
  EXPECT_EQ(p.Get()->access_key_id, "ASIAROLE1");
  EXPECT_EQ(p.Get()->access_key_id, "ASIAROLE2");
  EXPECT_EQ(imds.role_gets.load(), 2);
  EXPECT_EQ(imds.token_puts.load(), 2);
  EXPECT_EQ(imds.rejected.load(), 0);
}

TEST_F(CredentialsTest, FailedRefreshKeepsUnexpiredAndReportsExpired) {
  FakeImds imds;
  imds.set_expiration("2026-12-03T12:03:00Z");
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.endpoint();
  CredentialsProvider p(Options());
  ASSERT_TRUE(p.Get().ok());
  imds.set_failing(true);
  auto old = p.Get();  // Refresh fails, old ones still valid for 3 minutes.
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->access_key_id, "ASIAROLE1");

  SetNow(*core::ParseRfc3339("2026-12-03T12:04:00Z"));
  auto expired = p.Get();
  EXPECT_EQ(expired.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(expired.status().message(), Not(HasSubstr("rolesecret")));

  imds.set_failing(false);
  imds.set_expiration("2026-12-03T18:00:00Z");
  auto back = p.Get();
  ASSERT_TRUE(back.ok()) << back.status().ToString();
}

TEST_F(CredentialsTest, ConcurrentGetsFetchOnce) {
  FakeImds imds;
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.endpoint();
  CredentialsProvider p(Options());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (p.Get().ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(imds.role_gets.load(), 1);
}

TEST_F(CredentialsTest, ImdsDisabledIsSkipped) {
  FakeImds imds;
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.endpoint();
  env_["AWS_EC2_METADATA_DISABLED"] = "TRUE";
  CredentialsProvider p(Options());
  auto c = p.Get();
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("AWS_EC2_METADATA_DISABLED=true"));
  EXPECT_EQ(imds.requests.load(), 0);
}

TEST_F(CredentialsTest, UnreachableImdsFailsFastListingSources) {
  // Nothing listens there.
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] =
      "http://127.0.0.1:" + std::to_string(testing::PickFreePort());
  CredentialsProvider p(Options());
  auto start = std::chrono::steady_clock::now();
  auto c = p.Get();
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(),
              AllOf(HasSubstr("environment"), HasSubstr("shared credentials file"),
                    HasSubstr("config file"), HasSubstr("instance metadata"),
                    HasSubstr("PUT /latest/api/token")));
}

TEST_F(CredentialsTest, SilentImdsTimesOutWithinThreeSeconds) {
  // Accepts connections (the kernel completes the handshake) but never answers.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] =
      "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  CredentialsProvider p(Options());
  auto start = std::chrono::steady_clock::now();
  auto c = p.Get();
  auto took = std::chrono::steady_clock::now() - start;
  close(fd);
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("instance metadata"));
}

}  // namespace
}  // namespace sked::aws
