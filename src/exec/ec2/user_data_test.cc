// Renders the ec2-spot user data and runs what matters through a real /bin/sh:
// quoting survives hostile values, the container's env and command reach
// `docker run` byte for byte (through a recording fake docker on PATH), the
// script parses, and the 16 KiB limit is enforced.
#include "exec/ec2/user_data.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "aws/ec2_client.h"

namespace sked::exec {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kHostile = {
    "plain",
    "",
    "it's",
    "'",
    "''",
    "a\"b",
    "$(touch /tmp/sked-pwned)",
    "`id`",
    "$HOME ${PATH}",
    "back\\slash\\",
    "line1\nline2\n",
    "tab\there",
    "; rm -rf / #",
    "* ? [a-z]",
    "-e",
    "--network=none",
    "ünïcødé ✓",
};

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sked-userdata-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& text, bool exec = false) {
  std::ofstream(p, std::ios::binary) << text;
  if (exec) fs::permissions(p, fs::perms::owner_all);
}

// Runs `script` with /bin/sh (dash on Debian); returns the exit status.
int RunSh(const fs::path& script, const std::string& path_prefix = "") {
  pid_t pid = fork();
  if (pid == 0) {
    if (!path_prefix.empty()) {
      std::string path = path_prefix + ":" + getenv("PATH");
      setenv("PATH", path.c_str(), 1);
    }
    execl("/bin/sh", "sh", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

UserDataParams Params() {
  UserDataParams p;
  p.task_id = "0190c2a4-1111-7000-8000-000000000001";
  p.attempt = 2;
  p.image = "sked-test-busybox:latest";
  p.callback_url = "http://127.0.0.1:8080/v1/tasks/x/callback";
  p.callback_token = "tok'en";
  return p;
}

// The text of the rendered `sked_start_container` function.
std::string StartFunction(const std::string& user_data) {
  size_t from = user_data.find("sked_start_container() {\n");
  size_t to = user_data.find("\n}\n", from);
  if (from == std::string::npos || to == std::string::npos) return "";
  return user_data.substr(from, to + 3 - from);
}

TEST(ShellQuoteTest, EveryHostileValueComesBackVerbatim) {
  TempDir dir;
  for (size_t i = 0; i < kHostile.size(); ++i) {
    const fs::path out = dir.path() / ("out" + std::to_string(i));
    WriteFile(dir.path() / "s.sh",
              "printf '%s' " + ShellQuote(kHostile[i]) + " > " + ShellQuote(out.string()) + "\n");
    ASSERT_EQ(RunSh(dir.path() / "s.sh"), 0) << kHostile[i];
    EXPECT_EQ(ReadFile(out), kHostile[i]);
  }
  EXPECT_FALSE(fs::exists("/tmp/sked-pwned"));
}

TEST(UserDataTest, ScriptParsesAndStartsWithItsShebang) {
  auto ud = RenderUserData(Params());
  ASSERT_TRUE(ud.ok()) << ud.status().ToString();
  EXPECT_EQ(ud->rfind("#!/bin/sh\n", 0), 0u);
  EXPECT_EQ(ud->find("@SKED_PARAMETERS@"), std::string::npos);
  EXPECT_NE(ud->find("SKED_ATTEMPT='2'\n"), std::string::npos);
  EXPECT_NE(ud->find("SKED_CALLBACK_TOKEN='tok'\\''en'\n"), std::string::npos);
  // Comments are stripped to save user-data bytes; the source keeps them.
  EXPECT_LT(ud->size(), BootstrapScript().size());
  TempDir dir;
  WriteFile(dir.path() / "ud.sh", *ud);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-n", (dir.path() / "ud.sh").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "sh -n rejected the user data";
}

TEST(UserDataTest, EnvAndCommandReachDockerRunByteForByte) {
  UserDataParams p = Params();
  for (size_t i = 0; i < kHostile.size(); ++i) p.env["V" + std::to_string(i)] = kHostile[i];
  p.command = kHostile;
  auto ud = RenderUserData(p);
  ASSERT_TRUE(ud.ok()) << ud.status().ToString();
  const std::string fn = StartFunction(*ud);
  ASSERT_FALSE(fn.empty());

  TempDir dir;
  // A docker that records, NUL-separated, its arguments and the value of
  // each variable passed by name with -e.
  WriteFile(dir.path() / "docker",
            "#!/bin/sh\n"
            ": > \"$OUT/args\"; : > \"$OUT/env\"\n"
            "for a in \"$@\"; do printf '%s\\0' \"$a\" >> \"$OUT/args\"; done\n"
            "while [ $# -gt 0 ]; do\n"
            "  if [ \"$1\" = -e ]; then eval \"v=\\${$2}\"; printf '%s=%s\\0' \"$2\" \"$v\" >> "
            "\"$OUT/env\"; shift; fi\n"
            "  shift\n"
            "done\n",
            /*exec=*/true);
  WriteFile(dir.path() / "run.sh", "export OUT=" + ShellQuote(dir.path().string()) +
                                       "\nNAME=sked-x-2\nINSTANCE_ID=i-0123\n" + fn +
                                       "sked_start_container\n");
  ASSERT_EQ(RunSh(dir.path() / "run.sh", dir.path().string()), 0);

  std::vector<std::string> args;
  std::string all = ReadFile(dir.path() / "args");
  for (size_t from = 0, nul; (nul = all.find('\0', from)) != std::string::npos; from = nul + 1)
    args.push_back(all.substr(from, nul - from));
  std::vector<std::string> want_tail = {p.image};
  want_tail.insert(want_tail.end(), kHostile.begin(), kHostile.end());
  ASSERT_GE(args.size(), want_tail.size());
  EXPECT_EQ(std::vector<std::string>(args.end() - want_tail.size(), args.end()), want_tail);
  EXPECT_EQ(args[0], "run");
  auto has = [&](const std::string& a) { return std::find(args.begin(), args.end(), a) != args.end(); };
  EXPECT_TRUE(has("sked.ec2-instance=i-0123"));
  EXPECT_TRUE(has("sked.task-id=" + p.task_id));
  EXPECT_TRUE(has("sked-x-2"));

  std::string env = ReadFile(dir.path() / "env");
  for (size_t i = 0; i < kHostile.size(); ++i) {
    std::string want = "V" + std::to_string(i) + "=" + kHostile[i] + std::string(1, '\0');
    EXPECT_NE(env.find(want), std::string::npos) << "V" << i << " = " << kHostile[i];
  }
  EXPECT_FALSE(fs::exists("/tmp/sked-pwned"));
}

TEST(UserDataTest, OverTheLimitIsRefusedSayingByHowMuch) {
  UserDataParams p = Params();
  p.env["BIG"] = std::string(aws::kMaxUserDataBytes, 'x');
  auto ud = RenderUserData(p);
  ASSERT_EQ(ud.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(ud.status().message().find("too many"), std::string::npos) << ud.status().message();
}

TEST(UserDataTest, NoCallbackMeansNoLaunch) {
  UserDataParams p = Params();
  p.callback_token.clear();
  EXPECT_EQ(RenderUserData(p).status().code(), core::StatusCode::kFailedPrecondition);
  p = Params();
  p.image.clear();
  EXPECT_EQ(RenderUserData(p).status().code(), core::StatusCode::kInvalidArgument);
}

TEST(UserDataTest, EnvNamesMustBeShellIdentifiers) {
  UserDataParams p = Params();
  p.env["BAD-NAME"] = "x";
  EXPECT_EQ(RenderUserData(p).status().code(), core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sked::exec
