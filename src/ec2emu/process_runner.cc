// File: ec2emu/process_runner.cc
//
// posix_spawn rather than fork: the emulator is multi-threaded, and
// POSIX_SPAWN_SETSID gives the child its own session and process group without
// running any code of ours between fork and exec.
#include "ec2emu/process_runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

extern char** environ;

namespace sked::ec2emu {
namespace {

// posix_spawn with the given stdio targets; waits for nothing.
struct SpawnIo {
  const char* stdout_path = "/dev/null";
  bool append = false;
  int stdout_pipe = -1;  // When >= 0, stdout goes to this descriptor.
};

core::StatusOr<pid_t> Spawn(const std::string& path, const std::vector<std::string>& args,
                            const std::vector<std::string>& env, const std::string& cwd,
                            bool new_session, const SpawnIo& io) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (io.stdout_pipe >= 0) {
    posix_spawn_file_actions_adddup2(&fa, io.stdout_pipe, 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, io.stdout_path,
                                     O_WRONLY | O_CREAT | (io.append ? O_APPEND : O_TRUNC), 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  }
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (new_session) flags |= POSIX_SPAWN_SETSID;
  posix_spawnattr_setflags(&attr, flags);

  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &fa, &attr, argv.data(),
                       env.empty() ? environ : envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return core::InternalError("cannot start " + path + ": " + std::strerror(rc));
  }
  return pid;
}

void AppendLine(const std::string& file, const std::string& line) {
  std::ofstream out(file, std::ios::app);
  out << line << "\n";
}

}  // namespace

core::StatusOr<pid_t> SpawnUserData(const UserDataSpawn& spawn) {
  {
    std::ofstream out(spawn.script_path, std::ios::binary | std::ios::trunc);
    out << spawn.script;
    if (!out) {
      AppendLine(spawn.console_log, "sked-ec2-emulator: cannot write " + spawn.script_path);
      return core::InternalError("cannot write " + spawn.script_path);
    }
  }
  if (chmod(spawn.script_path.c_str(), 0755) != 0) {
    return core::InternalError("chmod " + spawn.script_path + ": " + std::strerror(errno));
  }
  std::vector<std::string> args;
  std::string program;
  if (spawn.script.starts_with("#!")) {
    program = spawn.script_path;
    args = {spawn.script_path};
  } else {
    program = "/bin/sh";
    args = {"/bin/sh", spawn.script_path};
  }
  core::StatusOr<pid_t> pid =
      Spawn(program, args, spawn.env, spawn.dir, /*new_session=*/true,
            SpawnIo{.stdout_path = spawn.console_log.c_str(), .append = true});
  if (!pid.ok()) AppendLine(spawn.console_log, "sked-ec2-emulator: " + pid.status().message());
  return pid;
}

core::Status WriteShutdownShims(const std::string& bin_dir, const std::string& shutdown_url) {
  std::error_code ec;
  std::filesystem::create_directories(bin_dir, ec);
  if (ec) return core::InternalError("mkdir " + bin_dir + ": " + ec.message());
  const std::string script =
      "#!/bin/sh\n"
      "# sked-ec2-emulator: powering the OS off terminates this emulated instance\n"
      "# (InstanceInitiatedShutdownBehavior=terminate). Arguments are ignored.\n"
      "curl -fsS -m 10 -X POST -o /dev/null '" +
      shutdown_url +
      "' || echo \"$0: could not reach the emulator\" >&2\n"
      "exit 0\n";
  for (const char* name : {"shutdown", "poweroff", "halt"}) {
    std::string path = bin_dir + "/" + name;
    std::ofstream out(path, std::ios::trunc);
    out << script;
    out.close();
    if (!out || chmod(path.c_str(), 0755) != 0) {
      return core::InternalError("cannot write " + path);
    }
  }
  return core::OkStatus();
}

void SignalGroup(pid_t pgid, int sig) {
  if (pgid > 0) kill(-pgid, sig);
}

bool ProcessGroupAlive(pid_t pgid) {
  if (pgid <= 0) return false;
  if (kill(-pgid, 0) != 0 && errno == ESRCH) return false;
  // kill() also succeeds for zombies, which an init that does not reap may
  // keep around for ever: look for a member that is not one.
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return true;
  bool alive = false;
  while (dirent* e = readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
    std::string stat;
    if (!std::getline(in, stat)) continue;
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and ')'.
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 1));
    char state = 0;
    long ppid = 0, pgrp = 0;
    fields >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z' && state != 'X') {
      alive = true;
      break;
    }
  }
  closedir(proc);
  return alive;
}

bool ReapIfExited(pid_t pid) {
  if (pid <= 0) return true;
  int status = 0;
  pid_t r = waitpid(pid, &status, WNOHANG);
  return r == pid || (r < 0 && errno == ECHILD);
}

std::string FindOnPath(const std::string& name, const std::string& path) {
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

void RemoveInstanceContainers(const std::string& docker_path, const std::string& instance_id) {
  if (docker_path.empty()) return;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  core::StatusOr<pid_t> ps = Spawn(
      docker_path,
      {"docker", "ps", "-aq", "--filter",
       std::string("label=") + kInstanceContainerLabel + "=" + instance_id},
      {}, "", /*new_session=*/false, SpawnIo{.stdout_pipe = fds[1]});
  close(fds[1]);
  std::string out;
  if (ps.ok()) {
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
      if (n > 0) out.append(buf, static_cast<size_t>(n));
    }
    waitpid(*ps, nullptr, 0);
  }
  close(fds[0]);
  std::vector<std::string> args = {"docker", "rm", "-f"};
  std::istringstream ids(out);
  std::string id;
  while (ids >> id) args.push_back(id);
  if (args.size() == 3) return;
  core::StatusOr<pid_t> rm = Spawn(docker_path, args, {}, "", false, SpawnIo{});
  if (rm.ok()) waitpid(*rm, nullptr, 0);
}

}  // namespace sked::ec2emu
