#include "server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "http_client.h"

extern char** environ;

#ifndef SKED_BINARY
#define SKED_BINARY "sked"
#endif

namespace sked::blackbox {
namespace {

using Clock = std::chrono::steady_clock;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

ExitStatus Decode(int wstatus) {
  ExitStatus s;
  if (WIFEXITED(wstatus)) {
    s.exited = true;
    s.code = WEXITSTATUS(wstatus);
  } else if (WIFSIGNALED(wstatus)) {
    s.signal = WTERMSIG(wstatus);
  }
  return s;
}

// The environment for a child: ours without any SKED_* (so the developer's shell
// cannot change what a test means), plus `extra`.
std::vector<std::string> ChildEnv(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with("SKED_")) continue;
    std::string_view name = kv.substr(0, kv.find('='));
    if (extra.contains(std::string(name))) continue;
    env.emplace_back(kv);
  }
  for (const auto& [k, v] : extra) env.push_back(k + "=" + v);
  return env;
}

// fork/exec with stdout+stderr appended to `log_path`. Everything the child does
// after fork() is async-signal-safe.
pid_t Spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
            const std::string& log_path) {
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("open " + log_path + ": " + std::strerror(errno));
  int dev_null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    ::close(dev_null);
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Die with the test process, so a crashed or killed test leaves no server behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(dev_null, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::close_range(3, ~0U, 0);
    ::execve(argv[0], argv.data(), envp.data());
    const char msg[] = "blackbox: execve failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(dev_null);
  return pid;
}

// True when process `pid` holds a TCP socket listening on 127.0.0.1:`port` (or
// on any address). Parallel tests can be handed the same free port; this makes
// sure /healthz is answered by our child and not by another test's server.
bool ProcessListensOn(pid_t pid, int port) {
  std::set<std::string> inodes;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code ec2;
    std::string target = std::filesystem::read_symlink(entry.path(), ec2).string();
    if (!ec2 && target.starts_with("socket:[")) inodes.insert(target.substr(8, target.size() - 9));
  }
  if (inodes.empty()) return false;
  char want_port[8];
  std::snprintf(want_port, sizeof want_port, ":%04X", port);
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream tcp(table);
    std::string line;
    std::getline(tcp, line);  // header
    while (std::getline(tcp, line)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      std::istringstream in(line);
      std::string sl, local, remote, st, queues, timer, retr, uid, timeout, inode;
      if (!(in >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >>
            inode)) {
        continue;
      }
      if (st == "0A" && local.ends_with(want_port) && inodes.contains(inode)) return true;
    }
  }
  return false;
}

std::string FormatScale(double d) {
  std::ostringstream os;
  os << d;
  return os.str();
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (exited) return "exit code " + std::to_string(code);
  return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
}

std::string SkedBinary() {
  if (const char* p = std::getenv("BLACKBOX_SKED_BINARY"); p != nullptr && *p != '\0') return p;
  return SKED_BINARY;
}

ServerProcess::ServerProcess(ServerOptions options) : options_(std::move(options)) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/sked-bb-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
  }
  dir_ = tmpl;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Kill();
  if (!keep_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string ServerProcess::base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::vector<std::string> ServerProcess::Args() const {
  std::vector<std::string> a = {SkedBinary(), "serve"};
  if (!options_.config_from_env) {
    a.insert(a.end(), {"--listen", "127.0.0.1:" + std::to_string(port_), "--db",
                       options_.db_url.value_or("sqlite:" + db_path()), "--time-scale", FormatScale(options_.time_scale),
                       "--callback-secret", options_.callback_secret});
  }
  for (const auto& t : options_.api_tokens) a.insert(a.end(), {"--api-token", t});
  if (options_.bar_url) a.insert(a.end(), {"--bar-url", *options_.bar_url});
  if (options_.concurrency) {
    a.insert(a.end(), {"--concurrency", std::to_string(*options_.concurrency)});
  }
  if (options_.node_id) a.insert(a.end(), {"--node-id", *options_.node_id});
  if (!options_.docker) a.insert(a.end(), {"--docker-host", ""});
  if (options_.shutdown_grace_s) {
    a.insert(a.end(), {"--shutdown-grace-s", std::to_string(*options_.shutdown_grace_s)});
  }
  a.insert(a.end(), options_.extra_args.begin(), options_.extra_args.end());
  return a;
}

std::vector<std::string> ServerProcess::Env() const {
  std::map<std::string, std::string> extra = options_.extra_env;
  if (options_.config_from_env) {
    extra["SKED_LISTEN"] = "127.0.0.1:" + std::to_string(port_);
    extra["SKED_DB"] = options_.db_url.value_or("sqlite:" + db_path());
    extra["SKED_TIME_SCALE"] = FormatScale(options_.time_scale);
    extra["SKED_CALLBACK_SECRET"] = options_.callback_secret;
  }
  return ChildEnv(extra);
}

void ServerProcess::Start(milliseconds timeout, milliseconds poll_every) {
  if (pid_ > 0) throw std::runtime_error("ServerProcess::Start: already running");
  constexpr int kPortTries = 3;
  for (int tries = 0;; ++tries) {
    port_ = options_.port.value_or(0) > 0 ? *options_.port : PickFreePort();
    std::string log_path = dir_ + "/sked." + std::to_string(starts_++) + ".log";
    pid_ = Spawn(Args(), Env(), log_path);

    HttpClient http([this] { return base_url(); });
    auto deadline = Clock::now() + timeout;
    std::string last;
    while (Clock::now() < deadline) {
      if (auto st = Poll()) {
        std::string log = ReadFile(log_path);
        if (tries + 1 < kPortTries && Lower(log).find("in use") != std::string::npos) break;
        throw std::runtime_error("sked exited during startup (" + st->ToString() +
                                 "); log tail:\n" + LogTail());
      }
      if (!ProcessListensOn(pid_, port_)) {
        last = "not listening on port " + std::to_string(port_) + " yet";
        std::this_thread::sleep_for(std::min(poll_every, milliseconds(20)));
        continue;
      }
      HttpResponse r = http.Request("GET", "/healthz", std::nullopt, {}, milliseconds(1000));
      if (r.status == 200) return;
      last = Describe(r);
      std::this_thread::sleep_for(poll_every);
    }
    if (pid_ > 0) {
      Kill();
      throw std::runtime_error("sked not healthy within " + std::to_string(timeout.count()) +
                               " ms (last /healthz: " + last + "); log tail:\n" + LogTail());
    }
    // The port was taken between PickFreePort() and the server's bind: try another.
  }
}

std::optional<ExitStatus> ServerProcess::Poll() {
  if (pid_ <= 0) return std::nullopt;
  int wstatus = 0;
  pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return Decode(wstatus);
  }
  return std::nullopt;
}

ExitStatus ServerProcess::WaitExit(milliseconds timeout, bool* timed_out) {
  *timed_out = false;
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (auto st = Poll()) return *st;
    if (pid_ <= 0) return ExitStatus{};
    if (Clock::now() >= deadline) {
      *timed_out = true;
      return ExitStatus{};
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
}

ExitStatus ServerProcess::Stop(milliseconds timeout, int sig) {
  if (pid_ <= 0) throw std::runtime_error("ServerProcess::Stop: not running");
  ::kill(pid_, sig);
  bool timed_out = false;
  ExitStatus st = WaitExit(timeout, &timed_out);
  if (timed_out) return Kill();
  return st;
}

ExitStatus ServerProcess::Kill() {
  if (pid_ <= 0) throw std::runtime_error("ServerProcess::Kill: not running");
  ::kill(pid_, SIGKILL);
  int wstatus = 0;
  ::waitpid(pid_, &wstatus, 0);
  pid_ = -1;
  return Decode(wstatus);
}

std::string ServerProcess::ReadLog() const {
  std::string all;
  for (int i = 0; i < starts_; ++i) all += ReadFile(dir_ + "/sked." + std::to_string(i) + ".log");
  return all;
}

std::string ServerProcess::LogTail(size_t lines) const {
  std::string log = ReadLog();
  size_t end = log.size();
  if (end > 0 && log[end - 1] == '\n') --end;  // the last line's own newline
  size_t seen = 0;
  for (size_t pos = end; pos > 0;) {
    size_t nl = log.rfind('\n', pos - 1);
    if (nl == std::string::npos) break;
    if (++seen >= lines) return log.substr(nl + 1);
    pos = nl;
  }
  return log;
}

bool ServerProcess::WaitForLog(std::string_view needle, milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (ReadLog().find(needle) != std::string::npos) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

CommandResult RunCommand(const std::vector<std::string>& args, milliseconds timeout,
                         const std::map<std::string, std::string>& extra_env) {
  char tmpl[] = "/tmp/sked-bb-cmd-XXXXXX";
  int fd = ::mkstemp(tmpl);
  if (fd < 0) throw std::runtime_error(std::string("mkstemp: ") + std::strerror(errno));
  ::close(fd);
  pid_t pid = Spawn(args, ChildEnv(extra_env), tmpl);
  auto deadline = Clock::now() + timeout;
  int wstatus = 0;
  bool done = false;
  while (Clock::now() < deadline) {
    if (::waitpid(pid, &wstatus, WNOHANG) == pid) {
      done = true;
      break;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  if (!done) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &wstatus, 0);
  }
  CommandResult result{Decode(wstatus), ReadFile(tmpl)};
  ::unlink(tmpl);
  return result;
}

}  // namespace sked::blackbox
