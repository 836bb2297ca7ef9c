#include "api/legacy_json.h"

#include <algorithm>
#include <boost/json/string.hpp>
#include <chrono>

#include "api/callback_request.h"
#include "api/internal/codec_util.h"

namespace sked::api {
namespace {

using detail::Invalid;
using detail::Quote;

std::string_view View(const boost::json::string& s) { return {s.data(), s.size()}; }

const boost::json::value* Find(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return nullptr;
  return v;
}

core::Status RejectUnknown(const boost::json::object& o,
                           std::initializer_list<std::string_view> known, bool field_paths) {
  for (const auto& kv : o) {
    std::string_view key(kv.key().data(), kv.key().size());
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    if (field_paths && detail::IsPathSafe(key)) return Invalid(key, "unknown field");
    return core::InvalidArgumentError("unknown field " + Quote(key));
  }
  return core::OkStatus();
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "HH:MM", "H:MM" or "HH:MM:SS": seconds into the day, or nullopt.
std::optional<int64_t> ParseClock(std::string_view s) {
  size_t c1 = s.find(':');
  if (c1 == std::string_view::npos || c1 < 1 || c1 > 2) return std::nullopt;
  auto h = detail::ParseDigits(s.substr(0, c1));
  std::string_view rest = s.substr(c1 + 1);
  std::optional<int64_t> sec = 0;
  if (rest.size() == 5 && rest[2] == ':') {
    sec = detail::ParseDigits(rest.substr(3));
    rest = rest.substr(0, 2);
  }
  if (rest.size() != 2) return std::nullopt;
  auto m = detail::ParseDigits(rest);
  if (!h || !m || !sec || *h > 23 || *m > 59 || *sec > 59) return std::nullopt;
  return *h * 3600 + *m * 60 + *sec;
}

// A time as the briefs write it: RFC 3339, epoch seconds as a JSON integer or a
// digit string, and (when `clock` is set) a time of day, meaning its next
// occurrence in UTC after `now`. nullopt when not a time or out of range.
std::optional<core::Time> ParseLooseTime(const boost::json::value& v, core::Time now, bool clock) {
  std::optional<core::Time> t;
  if (v.is_number()) {
    auto n = detail::AsInt64(v);
    if (n && *n >= 0 && *n <= detail::kMaxEpochSeconds) t = core::TimeFromSeconds(*n);
  } else if (v.is_string()) {
    std::string_view s = TrimSpaces(View(v.get_string()));
    if (auto n = detail::ParseDigits(s)) {
      if (*n <= detail::kMaxEpochSeconds) t = core::TimeFromSeconds(*n);
    } else if (auto secs = clock ? ParseClock(s) : std::nullopt) {
      using namespace std::chrono;
      core::Time day = floor<days>(now);
      t = day + seconds(*secs);
      if (*t <= now) *t += days(1);
    } else {
      t = core::ParseRfc3339(s);
    }
  }
  if (t && !detail::TimeInRange(*t)) return std::nullopt;
  return t;
}

core::Task BuiltinTask(std::string type, core::Time run_at) {
  core::Task task;
  task.type = std::move(type);
  task.runner = std::string(core::kRunnerBuiltin);
  task.queue = std::string(kDefaultQueue);
  task.run_at = run_at;
  return task;
}

// `{"<kind_field>": one of `allowed`, "<time_field>": <time>}` into a built-in task.
core::StatusOr<core::Task> ParseBuiltinBrief(const boost::json::value& body, core::Time now,
                                             std::string_view kind_field,
                                             std::string_view time_field,
                                             std::initializer_list<std::string_view> allowed,
                                             std::string_view allowed_text) {
  if (!body.is_object()) return core::InvalidArgumentError("request body must be a JSON object");
  RETURN_IF_ERROR(detail::CheckUtf8(body, ""));
  const auto& o = body.get_object();
  RETURN_IF_ERROR(RejectUnknown(o, {kind_field, time_field}, /*field_paths=*/true));
  const auto* kind = Find(o, kind_field);
  if (kind == nullptr) return Invalid(kind_field, "required");
  if (!kind->is_string()) return Invalid(kind_field, "must be a string");
  auto type = detail::NormalizeTypeWord(View(kind->get_string()));
  if (!type || std::find(allowed.begin(), allowed.end(), *type) == allowed.end())
    return Invalid(kind_field, "must be one of " + std::string(allowed_text));
  core::Time run_at = now;
  if (const auto* v = Find(o, time_field)) {
    if (v->is_string() && TrimSpaces(View(v->get_string())).empty())
      return Invalid(time_field, detail::kNotATime);
    auto t = ParseLooseTime(*v, now, /*clock=*/false);
    if (!t) {
      // Tell a well-formed but out-of-range time from garbage, as run_at does.
      auto strict = ParseTimeValue(*v);
      bool range = !strict.ok() && strict.status().message() == detail::kTimeOutOfRange;
      return Invalid(time_field, range ? detail::kTimeOutOfRange : detail::kNotATime);
    }
    run_at = *t;
  }
  return BuiltinTask(std::move(*type), run_at);
}

}  // namespace

std::string_view LegacyStatusWord(core::TaskState state) {
  switch (state) {
    case core::TaskState::kScheduled:
      return "SCHEDULED";
    case core::TaskState::kProvisioning:
    case core::TaskState::kRunning:
      return "RUNNING";
    case core::TaskState::kSucceeded:
      return "DONE";
    case core::TaskState::kFailed:
    case core::TaskState::kCancelled:
      return "FAILED";
  }
  return "FAILED";
}

boost::json::object LegacyJobToJson(const core::Task& task) {
  boost::json::object o;
  o["id"] = task.id;
  if (task.type == core::kContainerType) {
    o["docker_image"] = task.image;
  } else {
    o["docker_image"] = nullptr;
  }
  boost::json::object env;
  for (const auto& [k, v] : task.env) env[k] = v;
  o["env_vars"] = std::move(env);
  o["scheduled_for"] = core::FormatRfc3339(task.run_at);
  o["status"] = LegacyStatusWord(task.state);
  if (task.error) {
    o["error_message"] = *task.error;
  } else {
    o["error_message"] = nullptr;
  }
  return o;
}

std::string LegacyNotFoundMessage(std::string_view id) {
  return "Job id " + std::string(id) + " was not found";
}

core::StatusOr<core::Task> ParseLegacySchedule(const boost::json::value& body,
                                               const CreateDefaults& defaults, core::Time now) {
  if (!body.is_object()) return core::InvalidArgumentError("request body must be a JSON object");
  RETURN_IF_ERROR(detail::CheckUtf8(body, ""));
  const auto& o = body.get_object();

  core::Task task;
  task.type = std::string(core::kContainerType);
  task.queue = std::string(kDefaultQueue);

  const auto* image = Find(o, "docker_image");
  if (image == nullptr || (image->is_string() && TrimSpaces(View(image->get_string())).empty()))
    return core::InvalidArgumentError(std::string(kDockerImageEmpty));
  if (!image->is_string()) return core::InvalidArgumentError("docker_image field must be a string");
  std::string_view img = View(image->get_string());
  if (detail::Utf8Length(img) > kMaxImageChars || detail::HasWhitespaceOrControl(img)) {
    return core::InvalidArgumentError(
        "docker_image field is not a valid image (at most 512 characters, no whitespace or "
        "control characters)");
  }
  task.image = std::string(img);

  const auto* when = Find(o, "scheduled_for");
  if (when == nullptr || (when->is_string() && TrimSpaces(View(when->get_string())).empty()))
    return core::InvalidArgumentError(std::string(kScheduledForEmpty));
  auto run_at = ParseLooseTime(*when, now, /*clock=*/true);
  if (!run_at) return core::InvalidArgumentError(std::string(kScheduledForNotATime));
  task.run_at = *run_at;

  if (const auto* env = Find(o, "env_vars")) {
    if (!env->is_object())
      return core::InvalidArgumentError("env_vars field must be an object of strings");
    const auto& e = env->get_object();
    if (e.size() > kMaxEnvEntries)
      return core::InvalidArgumentError("env_vars field has more than 256 entries");
    for (const auto& kv : e) {
      std::string_view name(kv.key().data(), kv.key().size());
      bool valid = !name.empty() && name.size() <= kMaxEnvNameChars &&
                   !(name[0] >= '0' && name[0] <= '9') &&
                   std::all_of(name.begin(), name.end(), [](char c) {
                     return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '_';
                   });
      if (!valid) {
        return core::InvalidArgumentError("env_vars field has an invalid name " + Quote(name) +
                                          " (must match [A-Za-z_][A-Za-z0-9_]*)");
      }
      if (name.substr(0, 5) == "SKED_") {
        return core::InvalidArgumentError("env_vars field has a reserved name " + Quote(name) +
                                          " (names starting with SKED_ are set by sked)");
      }
      if (!kv.value().is_string()) {
        return core::InvalidArgumentError("env_vars field value of " + Quote(name) +
                                          " must be a string");
      }
      std::string_view value = View(kv.value().get_string());
      if (value.size() > kMaxEnvValueBytes) {
        return core::InvalidArgumentError("env_vars field value of " + Quote(name) +
                                          " is longer than 32768 bytes");
      }
      task.env.emplace(std::string(name), std::string(value));
    }
  }
  RETURN_IF_ERROR(
      RejectUnknown(o, {"docker_image", "scheduled_for", "env_vars"}, /*field_paths=*/false));

  if (!defaults.default_container_runner.empty()) {
    task.runner = defaults.default_container_runner;
  } else if (!defaults.container_runners.empty()) {
    task.runner = defaults.container_runners.front();
  } else {
    return core::InvalidArgumentError(std::string(kNoContainerRunnerReason));
  }
  return task;
}

core::StatusOr<core::Task> ParseTaskSet(const boost::json::value& body, core::Time now) {
  return ParseBuiltinBrief(body, now, "kind", "when", {"fizz", "buzz", "fizzbuzz"},
                           "Fizz, Buzz, FizzBuzz");
}

core::StatusOr<core::Task> ParseTaskBrief(const boost::json::value& body, core::Time now) {
  return ParseBuiltinBrief(body, now, "type", "send_ts", {"foo", "bar", "baz"}, "Foo, Bar, Baz");
}

core::StatusOr<LegacyCallbackRequest> ParseLegacyCallback(const boost::json::value& body) {
  LegacyCallbackRequest req;
  if (body.is_null()) {
    req.status = std::string(kCallbackSucceeded);
    return req;
  }
  if (!body.is_object()) return core::InvalidArgumentError("request body must be a JSON object");
  RETURN_IF_ERROR(detail::CheckUtf8(body, ""));
  const auto& o = body.get_object();
  RETURN_IF_ERROR(RejectUnknown(o, {"failed", "error_message", "schedule"}, /*field_paths=*/false));
  const bool failed = o.contains("failed");
  const bool schedule = o.contains("schedule");
  const auto* message = Find(o, "error_message");
  if (failed && schedule)
    return core::InvalidArgumentError("failed and schedule cannot be given together");
  if (message != nullptr && !failed)
    return core::InvalidArgumentError("error_message field is only allowed with failed");
  if (schedule) {
    req.status = std::string(kCallbackInterrupted);
  } else if (failed) {
    req.status = std::string(kCallbackFailed);
    if (message != nullptr) {
      if (!message->is_string())
        return core::InvalidArgumentError("error_message field must be a string");
      std::string_view m = View(message->get_string());
      if (detail::Utf8Length(m) > kMaxCallbackMessageChars)
        return core::InvalidArgumentError("error_message field is longer than 4096 characters");
      req.message = std::string(m);
    }
  } else {
    req.status = std::string(kCallbackSucceeded);
  }
  return req;
}

}  // namespace sked::api
