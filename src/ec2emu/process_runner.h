// File: ec2emu/process_runner.h
//
// What stands in for an instance's operating system: its user-data script
// run as a child process in a process group of its own, the `shutdown`,
// `poweroff` and `halt` commands that ask the emulator to shut the instance
// down, the signals that end it, and the removal of the Docker containers it
// started (a VM's death takes its containers with it).
//
// Thread safety: free functions; distinct process groups may be handled from
// different threads.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/status.h"

namespace sked::ec2emu {

// The Docker label that ties a container to the emulated instance that
// started it: `docker run --label sked.ec2-instance=<instance id> ...`.
inline constexpr char kInstanceContainerLabel[] = "sked.ec2-instance";

struct UserDataSpawn {
  std::string dir;          // The process's working directory; must exist.
  std::string script_path;  // Where the user data is written (mode 0755).
  std::string script;       // The decoded user data.
  std::string console_log;  // stdout and stderr, appended.
  std::vector<std::string> env;  // "K=V" entries, the whole environment.
};

// Writes the script and starts it in a new session (so a new process group
// whose id is the returned pid), stdin from /dev/null, every other descriptor
// closed, signals at their defaults and none blocked. A script starting with
// "#!" is executed directly (the kernel honours the shebang); any other is
// run by /bin/sh. Returns the pid (= process group id). kInternal when the
// file cannot be written or the process cannot start; the reason is also
// appended to the console log.
core::StatusOr<pid_t> SpawnUserData(const UserDataSpawn& spawn);

// Writes `shutdown`, `poweroff` and `halt` into `bin_dir` (created): each
// POSTs to `shutdown_url` with curl and exits 0, as the real ones return
// before the machine goes down.
core::Status WriteShutdownShims(const std::string& bin_dir, const std::string& shutdown_url);

// Sends `sig` to every process in group `pgid`; a no-op for pgid <= 0.
void SignalGroup(pid_t pgid, int sig);

// True while a process of group `pgid` exists that is not a zombie.
bool ProcessGroupAlive(pid_t pgid);

// Reaps `pid` if it has exited (never blocks). True once it is reaped.
bool ReapIfExited(pid_t pid);

// The absolute path of `name` in the colon-separated `path`, or "".
std::string FindOnPath(const std::string& name, const std::string& path);

// Runs `docker ps -aq --filter label=sked.ec2-instance=<id>` and `docker rm
// -f` on what it lists, with `docker` at `docker_path`, waiting for both.
// Errors (no daemon, nothing to remove) are ignored: the caller cannot do
// anything about them and the instance is gone either way.
void RemoveInstanceContainers(const std::string& docker_path, const std::string& instance_id);

}  // namespace sked::ec2emu
