// File: ec2emu/main.cc
//
// sked-ec2-emulator: flags -> EmulatorOptions, start, print the listening
// line, wait for SIGINT/SIGTERM, stop (which terminates every instance).
// docs/EC2_EMULATOR.md describes the flags and the control API.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include "core/logger.h"
#include "ec2emu/emulator.h"

namespace {

using sked::ec2emu::Emulator;
using sked::ec2emu::EmulatorOptions;

// Lines on stderr with a UTC timestamp; stdout is kept for the listening line.
class StderrLogger final : public sked::core::Logger {
 public:
  explicit StderrLogger(bool quiet) : quiet_(quiet) {}
  void Log(sked::core::LogLevel level, std::string_view message) override {
    if (quiet_ && level < sked::core::LogLevel::kWarn) return;
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::lock_guard<std::mutex> lock(mu_);
    std::cerr << stamp << " sked-ec2-emulator: " << message << std::endl;
  }

 private:
  const bool quiet_;
  std::mutex mu_;
};

std::chrono::microseconds Seconds(double s) {
  return std::chrono::microseconds(static_cast<int64_t>(s * 1e6));
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  std::string region = "us-east-1";
  std::vector<std::string> credentials;
  double pending_seconds = 0.5;
  double spot_warning_seconds = 120;
  double terminate_grace_seconds = 5;
  std::vector<std::string> capacity_error_types;
  int throttle = 0;
  std::string work_dir;
  std::vector<std::string> instance_env;
  bool no_run_user_data = false;
  bool quiet = false;

  CLI::App cli{
      "sked-ec2-emulator: a local EC2 (RunInstances, DescribeInstances, TerminateInstances, "
      "DescribeSpotInstanceRequests) with one IMDSv2 per instance and user data run as local "
      "processes. See docs/EC2_EMULATOR.md."};
  cli.add_option("--listen", listen, "HOST:PORT for the EC2 and control API (PORT 0: any free)")
      ->capture_default_str();
  cli.add_option("--region", region, "Region requests must be signed for")->capture_default_str();
  cli.add_option("--credentials", credentials,
                 "ACCESS_KEY_ID:SECRET accepted; repeatable (default: test:test)");
  cli.add_option("--pending-seconds", pending_seconds, "pending -> running delay (fractional)")
      ->capture_default_str();
  cli.add_option("--spot-warning-seconds", spot_warning_seconds,
                 "Interruption notice -> termination, unless the interrupt call names one")
      ->capture_default_str();
  cli.add_option("--terminate-grace-seconds", terminate_grace_seconds,
                 "SIGTERM -> SIGKILL for an instance's process group")
      ->capture_default_str();
  cli.add_option("--capacity-error", capacity_error_types,
                 "Instance type whose RunInstances fails with InsufficientInstanceCapacity; "
                 "repeatable");
  cli.add_option("--throttle", throttle, "Answer the next N EC2 calls with RequestLimitExceeded")
      ->capture_default_str();
  cli.add_option("--work-dir", work_dir,
                 "Directory for per-instance dirs (default: a temporary one, removed at exit)");
  cli.add_option("--instance-env", instance_env,
                 "KEY=VALUE added to every user-data process's environment; repeatable");
  cli.add_flag("--no-run-user-data", no_run_user_data,
               "Keep instances as records only; run no user data");
  cli.add_flag("--quiet", quiet, "Log warnings only (default: one line per call and event)");
  CLI11_PARSE(cli, argc, argv);

  EmulatorOptions o;
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    std::cerr << "--listen: want HOST:PORT, got '" << listen << "'\n";
    return 2;
  }
  o.host = listen.substr(0, colon);
  if (o.host.size() > 2 && o.host.front() == '[' && o.host.back() == ']') {
    o.host = o.host.substr(1, o.host.size() - 2);
  }
  try {
    size_t used = 0;
    int port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || port < 0 || port > 65535) throw 0;
    o.port = static_cast<uint16_t>(port);
  } catch (...) {
    std::cerr << "--listen: bad port in '" << listen << "'\n";
    return 2;
  }
  o.region = region;
  for (const std::string& c : credentials) {
    size_t sep = c.find(':');
    if (sep == std::string::npos) {
      std::cerr << "--credentials: want ACCESS_KEY_ID:SECRET, got '" << c.substr(0, 40) << "'\n";
      return 2;
    }
    o.credentials.push_back({c.substr(0, sep), c.substr(sep + 1), ""});
  }
  for (double s : {pending_seconds, spot_warning_seconds, terminate_grace_seconds}) {
    if (!(s >= 0)) {
      std::cerr << "durations must be non-negative numbers of seconds\n";
      return 2;
    }
  }
  o.pending_delay = Seconds(pending_seconds);
  o.spot_warning = Seconds(spot_warning_seconds);
  o.terminate_grace = Seconds(terminate_grace_seconds);
  o.faults.capacity_error_types = {capacity_error_types.begin(), capacity_error_types.end()};
  o.faults.throttle_next = throttle;
  o.work_dir = work_dir;
  for (const std::string& kv : instance_env) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "--instance-env: want KEY=VALUE, got '" << kv << "'\n";
      return 2;
    }
    o.instance_env.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  o.run_user_data = !no_run_user_data;
  StderrLogger logger(quiet);
  o.logger = &logger;

  // Threads started from here on inherit the blocked stop signals; main waits
  // for them with sigwait. User-data processes get them unblocked again.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto emulator = Emulator::Start(std::move(o));
  if (!emulator.ok()) {
    std::cerr << "sked-ec2-emulator: " << emulator.status().ToString() << "\n";
    return emulator.status().code() == sked::core::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::printf("listening on %s\n", (*emulator)->url().c_str());
  std::fflush(stdout);
  logger.Log(sked::core::LogLevel::kInfo, "work dir " + (*emulator)->work_dir());

  int sig = 0;
  sigwait(&stop_signals, &sig);
  logger.Log(sked::core::LogLevel::kInfo, std::string("got ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                                              "; terminating every instance");
  (*emulator)->Stop();
  return 0;
}
