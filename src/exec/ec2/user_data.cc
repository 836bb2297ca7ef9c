#include "exec/ec2/user_data.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "aws/ec2_client.h"

namespace sked::exec {

namespace {

constexpr std::string_view kParameterLine = "# @SKED_PARAMETERS@\n";

bool IsShellName(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Shortest decimal that reads back as `v` ("0.25", "30").
std::string Number(double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// `script` without its comment lines (the shebang stays) and blank lines:
// user data is limited to 16 KiB, and the comments are in the source.
std::string StripComments(std::string_view script, bool keep_first) {
  std::string out;
  size_t pos = 0;
  bool first = true;
  while (pos < script.size()) {
    size_t end = script.find('\n', pos);
    if (end == std::string_view::npos) end = script.size();
    std::string_view line = script.substr(pos, end - pos);
    size_t text = line.find_first_not_of(" \t");
    bool drop = text == std::string_view::npos || line[text] == '#';
    if (first && keep_first) drop = false;
    if (!drop) out.append(line).append("\n");
    first = false;
    pos = end + 1;
  }
  return out;
}

}  // namespace

std::string ShellQuote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

core::StatusOr<std::string> RenderUserData(const UserDataParams& p) {
  const std::string_view script = BootstrapScript();
  const size_t at = script.find(kParameterLine);
  if (at == std::string_view::npos) return core::InternalError("bootstrap.sh has no parameter line");
  if (p.image.empty()) return core::InvalidArgumentError("ec2-spot: the task has no image");
  if (p.callback_url.empty() || p.callback_token.empty())
    return core::FailedPreconditionError("ec2-spot: the job has no callback URL or token");

  const BootstrapTiming& t = p.timing;
  const double tick = std::max(0.05, t.tick_s);
  const long poll_ticks = std::max(1L, std::lround(t.spot_poll_s / tick));
  std::string params;
  auto set = [&params](std::string_view name, std::string_view value) {
    params.append(name).append("=").append(ShellQuote(value)).append("\n");
  };
  set("SKED_TASK_ID", p.task_id);
  set("SKED_ATTEMPT", std::to_string(p.attempt));
  set("SKED_IMAGE", p.image);
  set("SKED_CALLBACK_URL", p.callback_url);
  set("SKED_CALLBACK_TOKEN", p.callback_token);
  set("SKED_PULL", p.pull);
  set("SKED_HEARTBEAT_S", Number(std::max(0.05, t.heartbeat_s)));
  set("SKED_TICK_S", Number(tick));
  set("SKED_POLL_TICKS", std::to_string(poll_ticks));
  set("SKED_STOP_MARGIN_S", std::to_string(t.stop_margin_s));
  set("SKED_DEFAULT_GRACE_S", std::to_string(t.default_grace_s));
  set("SKED_GIVE_UP_S", std::to_string(t.give_up_s));
  set("SKED_LOG_LINES", std::to_string(t.log_lines));

  // The container: `env` hands each variable to the docker CLI, which passes
  // it on by name (-e NAME), so values never meet a parser.
  std::string assignments, names;
  for (const auto& [name, value] : p.env) {
    if (!IsShellName(name))
      return core::InvalidArgumentError("ec2-spot: env name " + ShellQuote(name) +
                                        " is not a shell identifier");
    assignments += " \\\n    " + ShellQuote(name + "=" + value);
    names += " -e " + ShellQuote(name);
  }
  params += "sked_start_container() {\n  env" + assignments +
            " \\\n    docker run -d --name \"$NAME\" --network host"
            " --label \"sked.ec2-instance=$INSTANCE_ID\" --label " +
            ShellQuote("sked.task-id=" + p.task_id) + " --label " +
            ShellQuote("sked.attempt=" + std::to_string(p.attempt)) + names + " \\\n    " +
            ShellQuote(p.image);
  for (const std::string& arg : p.command) params += " " + ShellQuote(arg);
  params += "\n}\n";

  std::string out = StripComments(script.substr(0, at), /*keep_first=*/true);
  out += params;
  out += StripComments(script.substr(at + kParameterLine.size()), /*keep_first=*/false);
  if (out.size() > aws::kMaxUserDataBytes) {
    return core::InvalidArgumentError(
        "ec2-spot: the task's image, command and env make a user data of " +
        std::to_string(out.size()) + " bytes; EC2 allows " +
        std::to_string(aws::kMaxUserDataBytes) + " (" +
        std::to_string(out.size() - aws::kMaxUserDataBytes) + " too many)");
  }
  return out;
}

}  // namespace sked::exec
