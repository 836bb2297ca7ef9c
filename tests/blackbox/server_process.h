// File: tests/blackbox/server_process.h
//
// Runs the real `sked` binary as a child process for the black-box suite: a fresh
// temporary directory per server (SQLite file and logs), a free loopback port,
// readiness by polling GET /healthz, stop by SIGTERM (graceful, exit code checked)
// or SIGKILL (crash), and restart on the same database. Nothing here knows the
// server's internals; it uses only the command line, the environment, the port
// and the log, as an operator would.
//
// Thread safety: a ServerProcess belongs to the test thread that made it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "testing/loopback_http_server.h"

namespace sked::blackbox {

using std::chrono::milliseconds;

// How a child process ended.
struct ExitStatus {
  bool exited = false;  // true: normal exit with `code`; false: killed by `signal`
  int code = -1;
  int signal = 0;
  std::string ToString() const;
};

// What `sked serve` is started with. Defaults keep the suite fast.
struct ServerOptions {
  // --time-scale: built-in waits are multiplied by it (fizz 3 s -> 30 ms).
  double time_scale = 0.01;
  // --callback-secret: tests compute callback tokens from it.
  std::string callback_secret = "blackbox-callback-secret";
  // One --api-token per entry; empty: no API auth.
  std::vector<std::string> api_tokens;
  std::optional<std::string> bar_url;            // --bar-url
  std::optional<int> concurrency;                // --concurrency
  std::optional<std::string> node_id;            // --node-id
  // false: --docker-host "" (no docker runner, whatever engine runs here);
  // true: the default socket, so container tasks run on the local engine.
  bool docker = false;
  // --db: default sqlite:<dir>/sked.db. Several servers given one postgres://
  // URL (and --db-schema in extra_args) form a cluster.
  std::optional<std::string> db_url;
  std::optional<int> shutdown_grace_s;           // --shutdown-grace-s
  // The port of --listen, kept across restarts (so the callback URLs handed
  // to running jobs stay valid). Default: a fresh free port per start.
  std::optional<int> port;
  std::vector<std::string> extra_args;           // appended after `serve ...`
  std::map<std::string, std::string> extra_env;  // added to the child's environment
  // Give --listen/--db/--time-scale/--callback-secret as SKED_* variables instead of flags.
  bool config_from_env = false;
};

class ServerProcess {
 public:
  // Makes the temporary directory; starts nothing.
  explicit ServerProcess(ServerOptions options);
  // SIGKILLs a running child; removes the directory unless keep_dir().
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Picks a free port, spawns `sked serve`, and waits until GET /healthz is 200.
  // Also used to restart after Stop()/Kill(): same database file, new port, new
  // log file. Throws std::runtime_error (with the log tail) if the server exits
  // or is not healthy within `timeout`. Polls every `poll_every` once the port
  // is open (0: as fast as possible, as an impatient load balancer would).
  void Start(milliseconds timeout = std::chrono::seconds(20),
             milliseconds poll_every = milliseconds(20));

  // Sends `sig` (SIGTERM or SIGINT: a graceful stop), then waits up to `timeout`
  // for the exit. If it has not exited by then, SIGKILLs it and returns that
  // (signal 9), so a hung shutdown fails the test.
  ExitStatus Stop(milliseconds timeout = std::chrono::seconds(40), int sig = 15 /* SIGTERM */);
  // SIGKILL and reap: a crash, as `kill -9` would do.
  ExitStatus Kill();
  // Non-blocking: the exit status if the child has ended (reaps it).
  std::optional<ExitStatus> Poll();
  bool running() const { return pid_ > 0; }

  int port() const { return port_; }
  std::string base_url() const;  // "http://127.0.0.1:PORT"
  const std::string& dir() const { return dir_; }
  std::string db_path() const { return dir_ + "/sked.db"; }
  ServerOptions& options() { return options_; }

  // The logs of every start so far, oldest first.
  std::string ReadLog() const;
  // The last `lines` lines of ReadLog().
  std::string LogTail(size_t lines = 80) const;
  // Polls the log until it contains `needle`.
  bool WaitForLog(std::string_view needle, milliseconds timeout = std::chrono::seconds(10)) const;

  void set_keep_dir(bool keep) { keep_dir_ = keep; }

 private:
  std::vector<std::string> Args() const;
  std::vector<std::string> Env() const;
  ExitStatus WaitExit(milliseconds timeout, bool* timed_out);

  ServerOptions options_;
  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  int starts_ = 0;
  bool keep_dir_ = false;
};

// The sked binary under test: $BLACKBOX_SKED_BINARY if set, else the build's
// SKED_BINARY.
std::string SkedBinary();

// A free loopback port (testing/loopback_http_server.h).
using testing::PickFreePort;

struct CommandResult {
  ExitStatus status;
  std::string output;  // stdout and stderr interleaved
};
// Runs `args` (args[0] is the program path) to completion, or SIGKILLs it after
// `timeout`. The environment is this process's minus SKED_* plus `extra_env`.
CommandResult RunCommand(const std::vector<std::string>& args,
                         milliseconds timeout = std::chrono::seconds(20),
                         const std::map<std::string, std::string>& extra_env = {});

}  // namespace sked::blackbox
