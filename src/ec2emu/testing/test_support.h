// File: ec2emu/testing/test_support.h
//
// Helpers for the emulator's tests only: HTTP calls with libcurl (plain and
// SigV4-signed with aws/sigv4.h), child processes with captured output and a
// deadline, bounded polling, and JSON access.
//
// Thread safety: free functions without shared state; a ChildProcess is used
// from one thread.
#pragma once

#include <sys/types.h>

#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aws/ec2_client.h"
#include "aws/sigv4.h"
#include "ec2emu/emulator.h"

namespace sked::ec2emu::testing {

// A running emulator and an Ec2Client for it (keys "test"/"test", a 10 s
// timeout, no retries, so a test sees each answer as sent).
struct EmulatorBundle {
  std::unique_ptr<Emulator> emulator;
  std::unique_ptr<aws::Ec2Client> client;
  std::string url;
};

// Starts the emulator with `options`; a failure to start fails the test.
EmulatorBundle StartEmulatorForTest(EmulatorOptions options);

struct HttpResult {
  long status = 0;  // 0: transport error (see `error`).
  std::string body;
  std::map<std::string, std::string> headers;  // Lower-case names.
  std::string error;
};

// One HTTP request; `headers` as "Name: value".
HttpResult HttpCall(const std::string& method, const std::string& url,
                    const std::string& body = "", const std::vector<std::string>& headers = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

// POSTs `body` to the EC2 endpoint `url`, signed with `credentials` at `when`
// (default: now) for `region`.
HttpResult SignedEc2Call(const std::string& url, const std::string& body,
                         const aws::Credentials& credentials,
                         const std::string& region = "us-east-1",
                         std::optional<std::chrono::sys_seconds> when = std::nullopt);

// The text of the first element named `name` in `xml`, or "".
std::string XmlText(const std::string& xml, const std::string& name);
// How many times `<name>` opens in `xml`.
int XmlCount(const std::string& xml, const std::string& name);

// Polls `pred` every 10 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& pred,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed; -1 when it could not start.
  std::string out;
  std::string err;
  bool timed_out = false;
};

// Runs `argv` with exactly `env` ("K=V") and waits, at most `timeout`
// (then SIGKILL).
ProcessResult RunProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

// This process's environment, minus the names in `drop`, plus `add`.
std::vector<std::string> Environment(const std::vector<std::string>& drop,
                                     const std::map<std::string, std::string>& add);

// A long-running child (the emulator binary) in its own process group that
// dies with the test process; stdout is piped, stderr goes to `stderr_path`.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool Start(const std::vector<std::string>& argv, const std::string& stderr_path);
  // The next stdout line, or nullopt at EOF or after `timeout`.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL after `grace`; returns the exit status (as
  // RunProcess reports it).
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
};

boost::json::value ParseJson(const std::string& text);
// o[k1][k2]... as a string ("" when absent or not a string).
std::string JsonString(const boost::json::value& v, std::initializer_list<std::string_view> path);

}  // namespace sked::ec2emu::testing
