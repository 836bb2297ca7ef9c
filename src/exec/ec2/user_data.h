// File: exec/ec2/user_data.h
//
// The user data of an ec2-spot attempt: bootstrap.sh (embedded at build time)
// with the attempt's values in place of its parameter line. Every value is
// single-quoted for the shell, and the job's environment reaches `docker run`
// through `env 'NAME=value' docker run -e NAME ...`, so no byte of a value is
// ever interpreted by a shell or by Docker's env-file parser.
//
// Thread safety: free functions without shared state.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sked::exec {

// How the bootstrap paces itself on the instance. Durations are in seconds
// and may be fractional (tests run them scaled down).
struct BootstrapTiming {
  double heartbeat_s = 30;   // between heartbeat callbacks
  double tick_s = 1;         // how often it checks whether the container ended
  double spot_poll_s = 5;    // how often it asks IMDS for a spot notice (AWS: 5 s)
  int stop_margin_s = 10;    // docker stop's grace ends this long before the reclaim
  int default_grace_s = 90;  // grace when the notice's time cannot be read
  int give_up_s = 600;       // shut down after the job ended and no callback got through
  int log_lines = 50;        // container log lines sent with the outcome
};

struct UserDataParams {
  std::string task_id;
  int attempt = 0;
  std::string image;
  std::vector<std::string> command;  // empty: the image's default
  // The job's environment: the task's env and the SKED_* variables.
  std::map<std::string, std::string> env;
  std::string callback_url;    // the attempt's callback route
  std::string callback_token;  // its bearer token
  std::string pull = "missing";  // missing | always | never
  BootstrapTiming timing;
};

// `s` as one shell word: single-quoted, each ' written as '\''.
std::string ShellQuote(std::string_view s);

// The bootstrap script for one attempt. kInvalidArgument when it would exceed
// EC2's 16 KiB user-data limit (the message says by how much) or a value
// cannot be passed (an env name that is not a shell identifier).
core::StatusOr<std::string> RenderUserData(const UserDataParams& params);

// The embedded bootstrap.sh, as written (for tests and documentation).
std::string_view BootstrapScript();

}  // namespace sked::exec
