// Tests for DockerClient against a real Docker engine (label: docker), plus the
// pure wire helpers in internal/docker_wire.h.
//
// The engine must answer at /var/run/docker.sock (or SKED_TEST_DOCKER_HOST).
// Without one these tests fail, loudly; they never skip. Containers run the
// local image sked-test-busybox:latest, built by tests/docker/build-test-image.sh,
// with host networking; each is labelled sked.test=1 plus a per-test run id and
// removed in TearDown.
#include "exec/docker/docker_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "exec/docker/internal/docker_wire.h"

namespace sked::exec {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

#define ASSERT_OK(expr)                                               \
  do {                                                                \
    const ::sked::core::Status sked_s_ = (expr);                      \
    ASSERT_TRUE(sked_s_.ok()) << #expr << ": " << sked_s_.ToString(); \
  } while (0)

constexpr char kTestImage[] = "sked-test-busybox:latest";

std::string TestHost() {
  const char* h = std::getenv("SKED_TEST_DOCKER_HOST");
  return h != nullptr && *h != '\0' ? h : kDefaultDockerHost;
}

// Runs the image build script once per process; returns its exit status.
int BuildTestImageOnce() {
  static const int rc = [] {
    std::string cmd = std::string("sh '") + SKED_SOURCE_DIR + "/tests/docker/build-test-image.sh'";
    return std::system(cmd.c_str());
  }();
  return rc;
}

std::string NewRunId() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  return std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(rd() % 1000000);
}

class DockerClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DockerClientOptions options;
    options.host = TestHost();
    auto client = DockerClient::Connect(options);
    ASSERT_TRUE(client.ok())
        << "No Docker engine answers at " << options.host << ": " << client.status().ToString()
        << "\nStart one (as root): dockerd --bridge=none --iptables=false >/tmp/dockerd.log 2>&1 &";
    client_ = std::move(*client);
    ASSERT_EQ(BuildTestImageOnce(), 0)
        << "tests/docker/build-test-image.sh failed; it needs the docker CLI and /bin/busybox "
           "(Debian's busybox-static)";
  }

  void TearDown() override {
    if (!client_) return;
    auto list = client_->ListContainers({{"sked.test.run", run_id_}}, /*all=*/true);
    ASSERT_TRUE(list.ok()) << list.status().ToString();
    for (const ContainerInfo& c : *list) {
      core::Status s = client_->RemoveContainer(c.id);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
  }

  // A spec for a uniquely named container of this test, on the host network.
  ContainerSpec Spec(std::vector<std::string> cmd) {
    ContainerSpec spec;
    spec.name = "sked-test-" + run_id_ + "-" + std::to_string(++containers_);
    spec.image = kTestImage;
    spec.cmd = std::move(cmd);
    spec.labels = {{"sked.test", "1"}, {"sked.test.run", run_id_}};
    spec.network_mode = "host";
    return spec;
  }

  // Creates and starts; returns the id, or "" after recording a failure.
  std::string Run(const ContainerSpec& spec) {
    auto id = client_->CreateContainer(spec);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    if (!id.ok()) return "";
    core::Status s = client_->StartContainer(*id);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return *id;
  }

  // Runs `sh -c script` to completion; returns its logs (stdout+stderr).
  std::string RunShell(const std::string& script, ContainerSpec* spec_override = nullptr) {
    ContainerSpec spec = spec_override ? *spec_override : Spec({});
    spec.cmd = {"sh", "-c", script};
    std::string id = Run(spec);
    if (id.empty()) return "";
    auto code = client_->WaitContainer(id, milliseconds(30000));
    EXPECT_TRUE(code.ok()) << code.status().ToString();
    EXPECT_EQ(code.ok() ? *code : -1, 0) << "script: " << script;
    auto logs = client_->Logs(id, -1);
    EXPECT_TRUE(logs.ok()) << logs.status().ToString();
    return logs.ok() ? *logs : "";
  }

  std::unique_ptr<DockerClient> client_;
  const std::string run_id_ = NewRunId();
  int containers_ = 0;
};

TEST(DockerClientConnectTest, RejectsHostThatIsNotAUnixSocket) {
  for (std::string host :
       {"tcp://127.0.0.1:2375", "unix://relative.sock", "unix://", "", "/var/run/docker.sock"}) {
    DockerClientOptions options;
    options.host = host;
    auto c = DockerClient::Connect(options);
    ASSERT_FALSE(c.ok()) << host;
    EXPECT_EQ(c.status().code(), core::StatusCode::kInvalidArgument) << host;
  }
}

TEST(DockerClientConnectTest, MissingSocketIsUnavailable) {
  DockerClientOptions options;
  options.host = "unix:///nonexistent/sked-docker.sock";
  auto c = DockerClient::Connect(options);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), core::StatusCode::kUnavailable) << c.status().ToString();
  EXPECT_NE(c.status().message().find("/nonexistent/sked-docker.sock"), std::string::npos)
      << c.status().message();
}

TEST_F(DockerClientTest, PingsAndPicksAnApiVersion) {
  ASSERT_OK(client_->Ping());
  EXPECT_FALSE(client_->api_version().empty());
}

TEST_F(DockerClientTest, ImageExists) {
  auto yes = client_->ImageExists(kTestImage);
  ASSERT_TRUE(yes.ok()) << yes.status().ToString();
  EXPECT_TRUE(*yes);
  auto no = client_->ImageExists("sked-test-no-such-image:never");
  ASSERT_TRUE(no.ok()) << no.status().ToString();
  EXPECT_FALSE(*no);
}

TEST_F(DockerClientTest, PullFailureIsReadableAndDoesNotHang) {
  // No registry is reachable from the test environment, so this pull fails;
  // what matters is a prompt, readable error.
  DockerClientOptions options;
  options.host = TestHost();
  options.request_timeout = seconds(20);
  options.pull_timeout = seconds(20);
  auto client = DockerClient::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  const std::string image = "sked-test-no-such-image:1.0";
  auto start = steady_clock::now();
  core::Status s = (*client)->PullImage(image);
  auto elapsed = steady_clock::now() - start;
  ASSERT_FALSE(s.ok());
  EXPECT_LT(elapsed, seconds(25));
  const std::string prefix = "pull " + image + ": ";
  EXPECT_EQ(s.message().substr(0, prefix.size()), prefix) << s.ToString();
  EXPECT_GT(s.message().size(), prefix.size()) << s.ToString();
  std::cout << "PullImage error: " << s.ToString() << "\n";
}

TEST_F(DockerClientTest, CreateWithUnknownImageIsNotFound) {
  ContainerSpec spec = Spec({"true"});
  spec.image = "sked-test-no-such-image:never";
  auto id = client_->CreateContainer(spec);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), core::StatusCode::kNotFound) << id.status().ToString();
}

TEST_F(DockerClientTest, CreateWithNameInUseIsAlreadyExists) {
  ContainerSpec spec = Spec({"true"});
  auto first = client_->CreateContainer(spec);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = client_->CreateContainer(spec);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), core::StatusCode::kAlreadyExists) << second.status().ToString();
}

TEST_F(DockerClientTest, CreateRejectsBadEnvLocally) {
  ContainerSpec spec = Spec({"true"});
  spec.env = {{"A=B", "x"}};
  EXPECT_EQ(client_->CreateContainer(spec).status().code(), core::StatusCode::kInvalidArgument);
  spec.env = {{"A", std::string("nul\0byte", 8)}};
  EXPECT_EQ(client_->CreateContainer(spec).status().code(), core::StatusCode::kInvalidArgument);
  spec.env = {{"A", "\xff\xfe"}};
  EXPECT_EQ(client_->CreateContainer(spec).status().code(), core::StatusCode::kInvalidArgument);
}

TEST_F(DockerClientTest, WaitReturnsExitCode) {
  ContainerSpec spec = Spec({"sh", "-c", "exit 7"});
  spec.memory_bytes = int64_t{64} << 20;
  spec.nano_cpus = 500'000'000;
  std::string id = Run(spec);
  ASSERT_FALSE(id.empty());
  auto code = client_->WaitContainer(id, milliseconds(30000));
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 7);

  auto info = client_->Inspect(id);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->id, id);
  EXPECT_EQ(info->name, spec.name);
  EXPECT_FALSE(info->running);
  EXPECT_EQ(info->status, "exited");
  EXPECT_EQ(info->exit_code, 7);
}

TEST_F(DockerClientTest, EnvValuesArriveVerbatim) {
  const std::map<std::string, std::string> env = {
      {"QUOTES", "he said \"hi\" and 'bye'"},
      {"SUBST", "$(id)"},
      {"BACKTICK", "`id`"},
      {"NEWLINES", "line1\nline2\n"},
      {"UNICODE",
       "\xC3\xBCn\xC3\xAF\x63\xC3\xB8\x64\xC3\xA9 \xE2\x9C\x93 \xE6\x97\xA5\xE6\x9C\xAC "
       "\xF0\x9F\x9A\x80"},
      {"EQUALS", "a=b==c="},
      {"EMPTY", ""},
      {"SPACES", "  lead and trail  "},
      {"BACKSLASH", "back\\slash \\n not a newline"},
      {"PERCENT", "%s %d %n 100%"},
      {"SEMICOLON", "; echo pwned; exit 3"},
      {"TAB", "tab\there"},
      {"DOLLAR", "$HOME ${PATH} $$ $1"},
  };
  ContainerSpec spec = Spec({});
  spec.env = env;
  std::string script;
  std::string expected;
  for (const auto& [name, value] : env) {
    // The value reaches printf as an argument, never as shell text.
    script += "printf 'BEGIN " + name + "\\n%s\\nEND\\n' \"$" + name + "\"; ";
    expected += "BEGIN " + name + "\n" + value + "\nEND\n";
  }
  EXPECT_EQ(RunShell(script, &spec), expected);
}

TEST_F(DockerClientTest, LabelsRoundTripThroughInspectAndList) {
  ContainerSpec spec = Spec({"true"});
  spec.labels["sked.job"] = "job-42";
  spec.labels["sked.note"] = "a b=c \"quoted\" \xE2\x9C\x93";
  auto id = client_->CreateContainer(spec);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ContainerSpec other = Spec({"true"});
  other.labels["sked.job"] = "job-43";
  ASSERT_TRUE(client_->CreateContainer(other).ok());

  auto info = client_->Inspect(*id);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  for (const auto& [k, v] : spec.labels) EXPECT_EQ(info->labels[k], v) << k;
  EXPECT_EQ(info->status, "created");
  EXPECT_FALSE(info->exit_code.has_value());

  auto list = client_->ListContainers({{"sked.test.run", run_id_}, {"sked.job", "job-42"}}, true);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, *id);
  EXPECT_EQ((*list)[0].name, spec.name);
  EXPECT_EQ((*list)[0].labels, info->labels);
  EXPECT_EQ((*list)[0].status, "created");

  // An empty value matches any value of the key: both containers.
  auto both = client_->ListContainers({{"sked.test.run", run_id_}, {"sked.job", ""}}, true);
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_EQ(both->size(), 2u);

  auto none = client_->ListContainers({{"sked.test.run", run_id_}, {"sked.job", "job-44"}}, true);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());

  // all=false lists running containers only; these were never started.
  auto running = client_->ListContainers({{"sked.test.run", run_id_}}, false);
  ASSERT_TRUE(running.ok()) << running.status().ToString();
  EXPECT_TRUE(running->empty());
}

TEST_F(DockerClientTest, ListReportsExitCode) {
  std::string id = Run(Spec({"sh", "-c", "exit 3"}));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(client_->WaitContainer(id, milliseconds(30000)).ok());
  auto list = client_->ListContainers({{"sked.test.run", run_id_}}, true);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].status, "exited");
  EXPECT_FALSE((*list)[0].running);
  EXPECT_EQ((*list)[0].exit_code, 3);
}

TEST_F(DockerClientTest, KillStopsARunningContainer) {
  std::string id = Run(Spec({"sleep", "60"}));
  ASSERT_FALSE(id.empty());
  auto info = client_->Inspect(id);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->running);
  EXPECT_EQ(info->status, "running");

  auto start = steady_clock::now();
  ASSERT_OK(client_->KillContainer(id));
  auto code = client_->WaitContainer(id, milliseconds(10000));
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 137);  // 128 + SIGKILL
  EXPECT_LT(steady_clock::now() - start, seconds(10));

  ASSERT_OK(client_->KillContainer(id));  // Not running: still OK.
  ASSERT_OK(client_->KillContainer("sked-test-no-such-container"));
}

TEST_F(DockerClientTest, WaitTimesOut) {
  std::string id = Run(Spec({"sleep", "60"}));
  ASSERT_FALSE(id.empty());
  auto start = steady_clock::now();
  auto code = client_->WaitContainer(id, milliseconds(300));
  auto elapsed = steady_clock::now() - start;
  ASSERT_FALSE(code.ok());
  EXPECT_EQ(code.status().code(), core::StatusCode::kDeadlineExceeded) << code.status().ToString();
  // Only a guard against hanging: libcurl may fire its timer a hair early, so
  // no lower bound is asserted.
  EXPECT_LT(elapsed, seconds(5));
  auto missing = client_->WaitContainer("sked-test-no-such-container", milliseconds(5000));
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound) << missing.status().ToString();
}

TEST_F(DockerClientTest, RemoveLeavesNothing) {
  auto created = client_->CreateContainer(Spec({"true"}));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::string running = Run(Spec({"sleep", "60"}));
  ASSERT_FALSE(running.empty());

  for (const std::string& id : {*created, running}) {
    ASSERT_OK(client_->RemoveContainer(id));
    auto info = client_->Inspect(id);
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.status().code(), core::StatusCode::kNotFound) << info.status().ToString();
    ASSERT_OK(client_->RemoveContainer(id));  // Already gone: OK.
  }
  auto list = client_->ListContainers({{"sked.test.run", run_id_}}, true);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_TRUE(list->empty());
}

TEST_F(DockerClientTest, LogsTailReturnsTheLastLines) {
  std::string id = Run(Spec({"sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do echo out$i; done"}));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(client_->WaitContainer(id, milliseconds(30000)).ok());
  auto tail = client_->Logs(id, 3);
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  EXPECT_EQ(*tail, "out8\nout9\nout10\n");
  auto all = client_->Logs(id, -1);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, "out1\nout2\nout3\nout4\nout5\nout6\nout7\nout8\nout9\nout10\n");
  auto missing = client_->Logs("sked-test-no-such-container", 3);
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound) << missing.status().ToString();
}

TEST_F(DockerClientTest, LogsIncludeStderr) {
  EXPECT_EQ(RunShell("echo to-stderr >&2"), "to-stderr\n");
}

TEST_F(DockerClientTest, HostNetworkReachesLoopback) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int port = ntohs(addr.sin_port);

  std::thread server([fd] {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 30000) != 1) return;
    int conn = ::accept(fd, nullptr, nullptr);
    if (conn < 0) return;
    char buf[1024];
    (void)::recv(conn, buf, sizeof buf, 0);
    const std::string reply = "HTTP/1.0 200 OK\r\nContent-Length: 16\r\n\r\nhello-from-host\n";
    (void)::send(conn, reply.data(), reply.size(), MSG_NOSIGNAL);
    ::close(conn);
  });
  std::string logs = RunShell("wget -q -O- http://127.0.0.1:" + std::to_string(port) + "/");
  server.join();
  ::close(fd);
  EXPECT_EQ(logs, "hello-from-host\n");
}

TEST_F(DockerClientTest, ConcurrentCallsAreSafe) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        if (!client_->Ping().ok()) ++failures;
        auto exists = client_->ImageExists(kTestImage);
        if (!exists.ok() || !*exists) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// --- A canned engine on a unix socket: answers the engine cannot be made to
// give here (an error inside a 200 pull stream, malformed JSON, a 5xx). ---

class FakeEngine {
 public:
  // `routes` maps "METHOD /path?query" (version prefix included) to a raw
  // HTTP response; /_ping and /version are built in.
  explicit FakeEngine(std::map<std::string, std::string> routes) : routes_(std::move(routes)) {
    routes_.emplace("GET /_ping", Reply(200, "OK"));
    routes_.emplace("GET /version", Reply(200, R"({"ApiVersion":"1.41","MinAPIVersion":"1.12"})"));
    path_ = (std::filesystem::temp_directory_path() / ("sked-fake-docker-" + NewRunId() + ".sock"))
                .string();
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 8) != 0)
      ADD_FAILURE() << "fake engine cannot listen on " << path_;
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeEngine() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
    std::filesystem::remove(path_);
  }

  std::string host() const { return "unix://" + path_; }

  static std::string Reply(int status, const std::string& body) {
    return "HTTP/1.1 " + std::to_string(status) +
           " X\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) != 1) continue;
      int conn = ::accept(fd_, nullptr, nullptr);
      if (conn < 0) continue;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(conn, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, n);
      }
      // "POST /v1.41/images/create?... HTTP/1.1" -> "POST /v1.41/images/create?..."
      std::string line = req.substr(0, req.find(" HTTP/"));
      auto it = routes_.find(line);
      std::string reply =
          it != routes_.end()
              ? it->second
              : Reply(404, R"({"message":"fake engine: no route for )" + line + "\"}");
      (void)::send(conn, reply.data(), reply.size(), MSG_NOSIGNAL);
      ::close(conn);
    }
  }

  std::map<std::string, std::string> routes_;
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::unique_ptr<DockerClient> ConnectTo(const FakeEngine& engine) {
  DockerClientOptions options;
  options.host = engine.host();
  options.request_timeout = seconds(5);
  auto c = DockerClient::Connect(options);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

TEST(DockerClientFakeEngineTest, PullErrorInsideTheStreamIsFailedPrecondition) {
  const std::string stream =
      "{\"status\":\"Pulling from team/app\",\"id\":\"v2\"}\r\n"
      "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1,\"total\":2}}\r\n"
      "{\"errorDetail\":{\"message\":\"manifest unknown\"},\"error\":\"manifest unknown\"}\r\n";
  FakeEngine engine({
      {"POST /v1.41/images/create?fromImage=reg%3A5000%2Fteam%2Fapp&tag=v2",
       FakeEngine::Reply(200, stream)},
      {"POST /v1.41/images/create?fromImage=ok&tag=latest",
       FakeEngine::Reply(200, "{\"status\":\"Status: Image is up to date for ok:latest\"}\r\n")},
      {"POST /v1.41/images/create?fromImage=denied&tag=latest",
       FakeEngine::Reply(404, R"({"message":"pull access denied for denied"})")},
  });
  auto client = ConnectTo(engine);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->api_version(), "1.41");
  core::Status s = client->PullImage("reg:5000/team/app:v2");
  EXPECT_EQ(s.code(), core::StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_EQ(s.message(), "pull reg:5000/team/app:v2: manifest unknown");
  ASSERT_OK(client->PullImage("ok"));
  s = client->PullImage("denied");
  EXPECT_EQ(s.code(), core::StatusCode::kNotFound) << s.ToString();
  EXPECT_EQ(s.message(), "pull denied: pull access denied for denied");
}

TEST(DockerClientFakeEngineTest, MapsServerErrorsAndMalformedAnswers) {
  FakeEngine engine({
      {"GET /v1.41/containers/c1/json", FakeEngine::Reply(500, R"({"message":"engine hiccup"})")},
      {"GET /v1.41/containers/c2/json", FakeEngine::Reply(200, "{not json")},
      {"GET /v1.41/containers/c3/json", FakeEngine::Reply(200, R"({"Id":"c3"})")},
      {"GET /v1.41/containers/c4/json",
       FakeEngine::Reply(200, R"({"Id":"c4","Name":"/n","Config":{"Labels":null},)"
                              R"("State":{"Status":"exited","Running":false,"ExitCode":"x"}})")},
      {"POST /v1.41/containers/c5/wait?condition=not-running",
       FakeEngine::Reply(200, R"({"StatusCode":"seven"})")},
      {"GET /v1.41/containers/json?all=1", FakeEngine::Reply(200, R"({"not":"an array"})")},
      {"POST /v1.41/containers/c6/kill", FakeEngine::Reply(409, R"({"message":"not running"})")},
  });
  auto client = ConnectTo(engine);
  ASSERT_NE(client, nullptr);
  auto r1 = client->Inspect("c1");
  EXPECT_EQ(r1.status().code(), core::StatusCode::kUnavailable);
  EXPECT_EQ(r1.status().message(), "inspect container c1: engine hiccup");
  EXPECT_EQ(client->Inspect("c2").status().code(), core::StatusCode::kInternal);
  EXPECT_EQ(client->Inspect("c3").status().code(), core::StatusCode::kInternal);  // No State.
  auto r4 = client->Inspect("c4");
  ASSERT_TRUE(r4.ok()) << r4.status().ToString();
  EXPECT_EQ(r4->name, "n");
  EXPECT_TRUE(r4->labels.empty());
  EXPECT_FALSE(r4->exit_code.has_value());
  EXPECT_EQ(client->WaitContainer("c5", milliseconds(0)).status().code(),
            core::StatusCode::kInternal);
  EXPECT_EQ(client->ListContainers({}, true).status().code(), core::StatusCode::kInternal);
  ASSERT_OK(client->KillContainer("c6"));
  EXPECT_EQ(client->Inspect("../images").status().code(), core::StatusCode::kInvalidArgument);
}

// --- Wire helpers: no engine needed. ---

TEST(DockerWireTest, SplitImageReference) {
  auto split = [](std::string_view s) {
    detail::ImageRef r = detail::SplitImageReference(s);
    return r.name + " | " + r.tag;
  };
  EXPECT_EQ(split("busybox"), "busybox | latest");
  EXPECT_EQ(split("busybox:1.36"), "busybox | 1.36");
  EXPECT_EQ(split("library/busybox:1.36"), "library/busybox | 1.36");
  EXPECT_EQ(split("localhost:5000/app"), "localhost:5000/app | latest");
  EXPECT_EQ(split("localhost:5000/team/app:v2"), "localhost:5000/team/app | v2");
  EXPECT_EQ(split("app@sha256:abcd"), "app | sha256:abcd");
  EXPECT_EQ(split("reg:5000/app:v1@sha256:abcd"), "reg:5000/app | sha256:abcd");
}

TEST(DockerWireTest, DemuxLogStream) {
  auto frame = [](char stream, std::string payload) {
    std::string h = {stream, 0, 0, 0};
    uint32_t n = payload.size();
    h += static_cast<char>(n >> 24);
    h += static_cast<char>(n >> 16);
    h += static_cast<char>(n >> 8);
    h += static_cast<char>(n);
    return h + payload;
  };
  auto out = detail::DemuxLogStream(frame(1, "a\n") + frame(2, "err\n") + frame(1, ""));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "a\nerr\n");
  auto empty = detail::DemuxLogStream("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
  auto raw = detail::DemuxLogStream("plain tty output\n");  // Not framed: unchanged.
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(*raw, "plain tty output\n");
  std::string truncated = frame(1, "abcdef");
  truncated.pop_back();
  EXPECT_EQ(detail::DemuxLogStream(truncated).status().code(), core::StatusCode::kInternal);
  EXPECT_EQ(detail::DemuxLogStream(frame(1, "x") + "junk").status().code(),
            core::StatusCode::kInternal);
}

TEST(DockerWireTest, ChooseApiVersion) {
  EXPECT_EQ(*detail::ChooseApiVersion("1.12", "1.41"), "1.41");
  EXPECT_EQ(*detail::ChooseApiVersion("1.24", "1.47"), "1.41");
  EXPECT_EQ(*detail::ChooseApiVersion("1.44", "1.51"), "1.44");
  EXPECT_EQ(*detail::ChooseApiVersion("1.12", "1.35"), "1.35");
  EXPECT_EQ(*detail::ChooseApiVersion("", "1.41"), "1.41");
  EXPECT_EQ(detail::ChooseApiVersion("1.12", "1.29").status().code(),
            core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(detail::ChooseApiVersion("1.12", "x").status().code(), core::StatusCode::kInternal);
}

TEST(DockerWireTest, ExitCodeFromStatusText) {
  EXPECT_EQ(detail::ExitCodeFromStatusText("Exited (7) 3 seconds ago"), 7);
  EXPECT_EQ(detail::ExitCodeFromStatusText("Exited (137) About a minute ago"), 137);
  EXPECT_EQ(detail::ExitCodeFromStatusText("Up 5 seconds"), std::nullopt);
  EXPECT_EQ(detail::ExitCodeFromStatusText("Exited ("), std::nullopt);
}

TEST(DockerWireTest, IsValidUtf8) {
  EXPECT_TRUE(detail::IsValidUtf8(""));
  EXPECT_TRUE(detail::IsValidUtf8("plain"));
  EXPECT_TRUE(detail::IsValidUtf8("\xC3\xBC \xE2\x9C\x93 \xF0\x9F\x9A\x80"));
  EXPECT_FALSE(detail::IsValidUtf8("\xff"));
  EXPECT_FALSE(detail::IsValidUtf8("\xC3"));              // Truncated.
  EXPECT_FALSE(detail::IsValidUtf8("\xC0\xAF"));          // Overlong '/'.
  EXPECT_FALSE(detail::IsValidUtf8("\xED\xA0\x80"));      // Surrogate.
  EXPECT_FALSE(detail::IsValidUtf8("\xF4\x90\x80\x80"));  // Past U+10FFFF.
}

}  // namespace
}  // namespace sked::exec
