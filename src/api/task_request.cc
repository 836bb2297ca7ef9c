#include "api/task_request.h"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/scheme.hpp>
#include <cmath>
#include <optional>
#include <utility>

#include "api/internal/codec_util.h"

namespace sked::api {
namespace {

using detail::Invalid;
using detail::IsPathSafe;
using detail::Quote;
using detail::Utf8Length;

constexpr std::string_view kFields[] = {
    "type",         "run_at",    "image",           "command", "env",   "runner",
    "max_attempts", "timeout_s", "idempotency_key", "labels",  "queue", "notify_url"};

std::string_view View(const boost::json::string& s) { return {s.data(), s.size()}; }

// Field paths under one prefix ("" or "tasks[3].").
class Paths {
 public:
  explicit Paths(std::string_view prefix) : prefix_(prefix) {}
  std::string operator()(std::string_view field) const {
    std::string p(prefix_);
    p.append(field);
    return p;
  }
  // The path of a member of an object field: "env.FOO".
  std::string Member(std::string_view field, std::string_view key) const {
    return (*this)(field) + "." + std::string(key);
  }
  std::string_view prefix() const { return prefix_; }

 private:
  std::string_view prefix_;
};

// Absent and null both count as "not given".
const boost::json::value* Find(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return nullptr;
  return v;
}

bool IsEnvName(std::string_view s) {
  if (s.empty()) return false;
  auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  if (!alpha(s[0])) return false;
  return std::all_of(s.begin() + 1, s.end(),
                     [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); });
}

bool IsAlnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool IsLabelKey(std::string_view s) {
  if (s.empty() || s.size() > kMaxLabelKeyChars) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return IsAlnum(c) || c == '_' || c == '.' || c == '-' || c == '/';
  });
}

bool IsQueueName(std::string_view s) {
  if (s.empty() || s.size() > kMaxQueueChars) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlnum(c) || c == '_' || c == '.' || c == '-'; });
}

core::StatusOr<int64_t> IntInRange(const boost::json::value& v, const std::string& path, int64_t lo,
                                   int64_t hi) {
  auto n = detail::AsInt64(v);
  if (!n || *n < lo || *n > hi) {
    return Invalid(path,
                   "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return *n;
}

core::Status CheckType(const std::string& type, const Paths& paths) {
  if (type == core::kContainerType || core::IsBuiltinType(type)) return core::OkStatus();
  return Invalid(paths("type"),
                 "unknown type " + Quote(type) +
                     " (one of fizz, buzz, fizzbuzz, foo, bar, baz, noop, container)");
}

core::Status ParseImage(const boost::json::object& o, const Paths& paths, core::Task& task) {
  const auto* v = Find(o, "image");
  if (v == nullptr) return Invalid(paths("image"), "required for container tasks");
  if (!v->is_string()) return Invalid(paths("image"), "must be a string");
  std::string_view s = View(v->get_string());
  size_t chars = Utf8Length(s);
  if (chars < 1 || chars > kMaxImageChars)
    return Invalid(paths("image"), "must be 1 to 512 characters");
  if (detail::HasWhitespaceOrControl(s))
    return Invalid(paths("image"), "must not contain whitespace or control characters");
  task.image = std::string(s);
  return core::OkStatus();
}

core::Status ParseCommand(const boost::json::value& v, const Paths& paths, core::Task& task) {
  if (!v.is_array()) return Invalid(paths("command"), "must be an array of strings");
  const auto& a = v.get_array();
  if (a.size() > kMaxCommandArgs) return Invalid(paths("command"), "at most 256 elements");
  task.command.clear();
  task.command.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    std::string path = paths("command") + "[" + std::to_string(i) + "]";
    if (!a[i].is_string()) return Invalid(path, "must be a string");
    std::string_view s = View(a[i].get_string());
    if (s.size() > kMaxArgBytes) return Invalid(path, "longer than 32768 bytes");
    task.command.emplace_back(s);
  }
  return core::OkStatus();
}

core::Status ParseEnv(const boost::json::value& v, const Paths& paths, core::Task& task) {
  if (!v.is_object()) return Invalid(paths("env"), "must be an object of strings");
  const auto& o = v.get_object();
  if (o.size() > kMaxEnvEntries) return Invalid(paths("env"), "at most 256 entries");
  task.env.clear();
  for (const auto& kv : o) {
    std::string_view name(kv.key().data(), kv.key().size());
    if (name.empty()) return Invalid(paths("env"), "empty variable name");
    if (!IsEnvName(name)) {
      constexpr std::string_view kRule = "(must match [A-Za-z_][A-Za-z0-9_]*)";
      if (IsPathSafe(name))
        return Invalid(paths.Member("env", name), "invalid name " + std::string(kRule));
      return Invalid(paths("env"), "invalid name " + Quote(name) + " " + std::string(kRule));
    }
    if (name.size() > kMaxEnvNameChars) {
      return Invalid(paths("env"),
                     "variable name " + Quote(name) + " is longer than 256 characters");
    }
    if (name.substr(0, 5) == "SKED_")
      return Invalid(paths.Member("env", name), "names starting with SKED_ are reserved");
    if (!kv.value().is_string()) return Invalid(paths.Member("env", name), "must be a string");
    std::string_view value = View(kv.value().get_string());
    if (value.size() > kMaxEnvValueBytes)
      return Invalid(paths.Member("env", name), "longer than 32768 bytes");
    if (value.find('\0') != std::string_view::npos)  // no process environment can hold NUL
      return Invalid(paths.Member("env", name), "must not contain NUL characters");
    task.env.emplace(std::string(name), std::string(value));
  }
  return core::OkStatus();
}

core::Status ParseLabels(const boost::json::value& v, const Paths& paths, core::Task& task) {
  if (!v.is_object()) return Invalid(paths("labels"), "must be an object of strings");
  const auto& o = v.get_object();
  if (o.size() > kMaxLabels) return Invalid(paths("labels"), "at most 64 entries");
  task.labels.clear();
  for (const auto& kv : o) {
    std::string_view key(kv.key().data(), kv.key().size());
    if (key.empty()) return Invalid(paths("labels"), "empty key");
    if (!IsLabelKey(key)) {
      constexpr std::string_view kRule = "must be 1 to 63 characters of [A-Za-z0-9_.-/]";
      if (IsPathSafe(key)) return Invalid(paths.Member("labels", key), "key " + std::string(kRule));
      return Invalid(paths("labels"), "key " + Quote(key) + " " + std::string(kRule));
    }
    const std::string path = paths.Member("labels", key);
    if (!kv.value().is_string()) return Invalid(path, "must be a string");
    std::string_view value = View(kv.value().get_string());
    if (Utf8Length(value) > kMaxLabelValueChars) return Invalid(path, "longer than 255 characters");
    task.labels.emplace(std::string(key), std::string(value));
  }
  return core::OkStatus();
}

core::Status ParseNotifyUrl(const boost::json::value& v, const Paths& paths, core::Task& task) {
  auto url = ParseNotifyUrlValue(v);
  if (!url.ok()) return Invalid(paths("notify_url"), url.status().message());
  task.notify_url = std::move(url).value();
  return core::OkStatus();
}

// The runner of a container task: the one asked for if enabled, else the
// server's default.
core::Status ParseContainerRunner(const boost::json::object& o, const Paths& paths,
                                  const std::vector<std::string>& enabled, core::Task& task) {
  const auto* v = Find(o, "runner");
  if (v == nullptr) {
    task.runner = enabled.front();
    return core::OkStatus();
  }
  if (!v->is_string()) return Invalid(paths("runner"), "must be a string");
  std::string_view r = View(v->get_string());
  if (r != core::kRunnerDocker && r != core::kRunnerEc2Spot)
    return Invalid(paths("runner"), "unknown runner " + Quote(r) + " (docker or ec2-spot)");
  if (std::find(enabled.begin(), enabled.end(), r) == enabled.end())
    return Invalid(paths("runner"), Quote(r) + " is not enabled on this server");
  task.runner = std::string(r);
  return core::OkStatus();
}

std::vector<std::string> EnabledRunners(const CreateDefaults& d) {
  std::vector<std::string> out;
  if (!d.default_container_runner.empty()) out.push_back(d.default_container_runner);
  for (const auto& r : d.container_runners) {
    if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
  }
  return out;
}

}  // namespace

core::StatusOr<core::Time> ParseTimeValue(const boost::json::value& v) {
  core::Time t;
  if (v.is_string()) {
    auto parsed = core::ParseRfc3339(View(v.get_string()));
    if (!parsed) return core::InvalidArgumentError(std::string(detail::kNotATime));
    t = *parsed;
  } else if (v.is_number()) {
    auto n = detail::AsInt64(v);
    if (!n) {
      // Whole numbers beyond int64 are times out of range; 1.5 is no time at all.
      bool whole = v.is_uint64() ||
                   (std::isfinite(v.get_double()) && std::trunc(v.get_double()) == v.get_double());
      return core::InvalidArgumentError(
          std::string(whole ? detail::kTimeOutOfRange : detail::kNotATime));
    }
    if (*n < 0 || *n > detail::kMaxEpochSeconds)
      return core::InvalidArgumentError(std::string(detail::kTimeOutOfRange));
    t = core::TimeFromSeconds(*n);
  } else {
    return core::InvalidArgumentError(std::string(detail::kNotATime));
  }
  if (!detail::TimeInRange(t))
    return core::InvalidArgumentError(std::string(detail::kTimeOutOfRange));
  return t;
}

core::StatusOr<std::string> ParseNotifyUrlValue(const boost::json::value& v) {
  if (!v.is_string()) return core::InvalidArgumentError("must be a string");
  std::string_view s = View(v.get_string());
  if (Utf8Length(s) > kMaxNotifyUrlChars)
    return core::InvalidArgumentError("longer than 2048 characters");
  auto url = boost::urls::parse_uri(s);
  bool ok = url.has_value() &&
            (url->scheme_id() == boost::urls::scheme::http ||
             url->scheme_id() == boost::urls::scheme::https) &&
            url->has_authority() && !url->encoded_host().empty();
  if (!ok) return core::InvalidArgumentError("must be an http:// or https:// URL");
  return std::string(s);
}

core::StatusOr<core::Task> ParseCreateTask(const boost::json::value& body,
                                           const CreateDefaults& defaults, core::Time now,
                                           std::string_view field_prefix) {
  const Paths paths(field_prefix);
  const std::string_view self = detail::PathOfPrefix(field_prefix);
  if (!body.is_object()) {
    if (self.empty()) return core::InvalidArgumentError("request body must be a JSON object");
    return Invalid(self, "must be a JSON object");
  }
  RETURN_IF_ERROR(detail::CheckUtf8(body, std::string(self)));
  const auto& o = body.get_object();

  for (const auto& kv : o) {
    std::string_view key(kv.key().data(), kv.key().size());
    if (std::find(std::begin(kFields), std::end(kFields), key) != std::end(kFields)) continue;
    if (IsPathSafe(key)) return Invalid(paths(key), "unknown field");
    return Invalid(self, "unknown field " + Quote(key));
  }

  core::Task task;
  task.state = core::TaskState::kScheduled;

  // type
  const auto* type = Find(o, "type");
  if (type == nullptr) return Invalid(paths("type"), "required");
  if (!type->is_string()) return Invalid(paths("type"), "must be a string");
  task.type = std::string(View(type->get_string()));
  RETURN_IF_ERROR(CheckType(task.type, paths));
  const bool container = task.type == core::kContainerType;
  const std::vector<std::string> enabled = EnabledRunners(defaults);
  if (container && enabled.empty()) {
    return Invalid(paths("type"), kNoContainerRunnerReason);
  }

  // run_at
  task.run_at = now;
  if (const auto* v = Find(o, "run_at")) {
    auto t = ParseTimeValue(*v);
    if (!t.ok()) return Invalid(paths("run_at"), t.status().message());
    task.run_at = *t;
  }

  // Container-only fields.
  if (container) {
    RETURN_IF_ERROR(ParseImage(o, paths, task));
    if (const auto* v = Find(o, "command")) RETURN_IF_ERROR(ParseCommand(*v, paths, task));
    if (const auto* v = Find(o, "env")) RETURN_IF_ERROR(ParseEnv(*v, paths, task));
    RETURN_IF_ERROR(ParseContainerRunner(o, paths, enabled, task));
  } else {
    for (std::string_view f : {"image", "command", "env"}) {
      if (Find(o, f) != nullptr) return Invalid(paths(f), "only allowed for container tasks");
    }
    if (const auto* v = Find(o, "runner")) {
      if (!v->is_string() || View(v->get_string()) != core::kRunnerBuiltin)
        return Invalid(paths("runner"), "built-in types only run on \"builtin\"");
    }
    task.runner = std::string(core::kRunnerBuiltin);
  }

  if (const auto* v = Find(o, "max_attempts")) {
    auto n = IntInRange(*v, paths("max_attempts"), 1, kMaxAttemptsLimit);
    if (!n.ok()) return n.status();
    task.max_attempts = static_cast<int>(*n);
  }
  if (const auto* v = Find(o, "timeout_s")) {
    auto n = IntInRange(*v, paths("timeout_s"), 1, kMaxTimeoutS);
    if (!n.ok()) return n.status();
    task.timeout_s = *n;
  }
  if (const auto* v = Find(o, "idempotency_key")) {
    if (!v->is_string()) return Invalid(paths("idempotency_key"), "must be a string");
    std::string_view s = View(v->get_string());
    size_t chars = Utf8Length(s);
    if (chars < 1 || chars > kMaxIdempotencyKeyChars)
      return Invalid(paths("idempotency_key"), "must be 1 to 255 characters");
    task.idempotency_key = std::string(s);
  }
  if (const auto* v = Find(o, "labels")) RETURN_IF_ERROR(ParseLabels(*v, paths, task));
  task.queue = std::string(kDefaultQueue);
  if (const auto* v = Find(o, "queue")) {
    if (!v->is_string()) return Invalid(paths("queue"), "must be a string");
    std::string_view s = View(v->get_string());
    if (!IsQueueName(s))
      return Invalid(paths("queue"), "must be 1 to 64 characters of [A-Za-z0-9_.-]");
    task.queue = std::string(s);
  }
  if (const auto* v = Find(o, "notify_url")) RETURN_IF_ERROR(ParseNotifyUrl(*v, paths, task));
  return task;
}

core::StatusOr<std::vector<core::Task>> ParseBatch(const boost::json::value& body,
                                                   const CreateDefaults& defaults, core::Time now) {
  if (!body.is_object()) return core::InvalidArgumentError("request body must be a JSON object");
  RETURN_IF_ERROR(detail::CheckUtf8(body, ""));
  const auto& o = body.get_object();
  for (const auto& kv : o) {
    std::string_view key(kv.key().data(), kv.key().size());
    if (key == "tasks") continue;
    if (IsPathSafe(key)) return Invalid(key, "unknown field");
    return core::InvalidArgumentError("unknown field " + Quote(key));
  }
  const auto* v = Find(o, "tasks");
  if (v == nullptr) return Invalid("tasks", "required");
  if (!v->is_array()) return Invalid("tasks", "must be an array of tasks");
  const auto& a = v->get_array();
  if (a.empty()) return Invalid("tasks", "must hold at least 1 task");
  if (a.size() > kMaxBatchTasks) return Invalid("tasks", "at most 1000 tasks");
  std::vector<core::Task> tasks;
  tasks.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    std::string prefix = "tasks[" + std::to_string(i) + "].";
    auto t = ParseCreateTask(a[i], defaults, now, prefix);
    if (!t.ok()) return t.status();
    tasks.push_back(std::move(t).value());
  }
  return tasks;
}

}  // namespace sked::api
