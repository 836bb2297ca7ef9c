// File: ec2emu/testing/test_support.cc
#include "ec2emu/testing/test_support.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

extern char** environ;

namespace sked::ec2emu::testing {

EmulatorBundle StartEmulatorForTest(EmulatorOptions options) {
  auto started = Emulator::Start(std::move(options));
  EXPECT_TRUE(started.ok()) << started.status().ToString();
  EmulatorBundle b;
  if (!started.ok()) return b;
  b.emulator = std::move(*started);
  b.url = b.emulator->url();
  b.client = std::make_unique<aws::Ec2Client>(aws::Ec2ClientOptions{
      .endpoint = b.url, .credentials = {"test", "test", ""},
      .timeout = std::chrono::seconds(10), .max_retries = 0});
  return b;
}

namespace {

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t AppendHeader(char* data, size_t size, size_t n, void* out) {
  std::string line(data, size * n);
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
  }
  return size * n;
}

int ExitCode(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (const std::string& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

HttpResult HttpCall(const std::string& method, const std::string& url, const std::string& body,
                    const std::vector<std::string>& headers, std::chrono::milliseconds timeout) {
  HttpResult r;
  CURL* curl = curl_easy_init();
  curl_slist* list = nullptr;
  list = curl_slist_append(list, "Expect:");
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty() || method == "POST" || method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &AppendHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r.headers);
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  } else {
    r.error = curl_easy_strerror(rc);
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return r;
}

HttpResult SignedEc2Call(const std::string& url, const std::string& body,
                         const aws::Credentials& credentials, const std::string& region,
                         std::optional<std::chrono::sys_seconds> when) {
  aws::HttpRequestToSign req{
      .method = "POST",
      .url = url,
      .headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}},
      .body = body,
  };
  auto time = when.value_or(std::chrono::floor<std::chrono::seconds>(
      std::chrono::system_clock::now()));
  auto signed_headers =
      aws::SignRequest(req, credentials, {.region = region, .service = "ec2", .time = time});
  if (!signed_headers.ok()) return HttpResult{.error = signed_headers.status().ToString()};
  std::vector<std::string> headers;
  for (const auto& [k, v] : req.headers) headers.push_back(k + ": " + v);
  for (const auto& [k, v] : *signed_headers) {
    if (k != "Host") headers.push_back(k + ": " + v);  // curl sends the same Host itself.
  }
  return HttpCall("POST", url, body, headers);
}

std::string XmlText(const std::string& xml, const std::string& name) {
  std::string open = "<" + name + ">";
  size_t b = xml.find(open);
  if (b == std::string::npos) return "";
  b += open.size();
  size_t e = xml.find("</" + name + ">", b);
  return e == std::string::npos ? "" : xml.substr(b, e - b);
}

int XmlCount(const std::string& xml, const std::string& name) {
  int n = 0;
  std::string open = "<" + name + ">";
  for (size_t p = xml.find(open); p != std::string::npos; p = xml.find(open, p + 1)) ++n;
  return n;
}

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

ProcessResult RunProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         std::chrono::milliseconds timeout) {
  ProcessResult r;
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return r;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return r;
  std::vector<char*> args = CStrings(argv);
  std::vector<char*> envp = CStrings(env);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return r;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      kill(-pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int k = 0; k < 2; ++k) {
      if (fds[k].fd < 0 || (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buf[8192];
      ssize_t n = read(fds[k].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[k]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[k].fd);
        fds[k].fd = -1;
        --open_fds;
      }
    }
  }
  for (pollfd& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  r.exit_code = ExitCode(wstatus);
  return r;
}

std::vector<std::string> Environment(const std::vector<std::string>& drop,
                                     const std::map<std::string, std::string>& add) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('='));
    bool skip = add.count(name) > 0;
    for (const std::string& d : drop) skip = skip || d == name;
    if (!skip) out.push_back(entry);
  }
  for (const auto& [k, v] : add) out.push_back(k + "=" + v);
  return out;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Stop(std::chrono::seconds(10));
}

bool ChildProcess::Start(const std::vector<std::string>& argv, const std::string& stderr_path) {
  int out_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return false;
  std::vector<char*> args = CStrings(argv);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err >= 0) dup2(err, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    return false;
  }
  pid_ = pid;
  out_fd_ = out_pipe[0];
  return true;
}

std::optional<std::string> ChildProcess::ReadLine(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || out_fd_ < 0) return std::nullopt;
    pollfd p{out_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = read(out_fd_, buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

int ChildProcess::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  int wstatus = 0;
  bool done = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      done = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!done) {
    kill(-pid_, SIGKILL);
    waitpid(pid_, &wstatus, 0);
  }
  if (out_fd_ >= 0) close(out_fd_);
  out_fd_ = -1;
  pid_ = -1;
  return ExitCode(wstatus);
}

boost::json::value ParseJson(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) return boost::json::value();
  return v;
}

std::string JsonString(const boost::json::value& v, std::initializer_list<std::string_view> path) {
  const boost::json::value* cur = &v;
  for (std::string_view key : path) {
    if (!cur->is_object()) return "";
    const boost::json::object& o = cur->as_object();
    auto it = o.find(key);
    if (it == o.end()) return "";
    cur = &it->value();
  }
  return cur->is_string() ? std::string(cur->as_string()) : "";
}

}  // namespace sked::ec2emu::testing
