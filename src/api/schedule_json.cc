#include "api/schedule_json.h"

#include <algorithm>
#include <boost/json/string.hpp>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "api/internal/codec_util.h"
#include "api/task_json.h"
#include "cron/cron.h"
#include "cron/time_zone.h"

namespace sked::api {
namespace {

namespace json = boost::json;
using detail::Invalid;

constexpr std::string_view kFields[] = {"cron",     "timezone",   "task",  "overlap",
                                        "catch_up", "notify_url", "paused"};

// The task template's keys, in TaskToJson's order.
constexpr std::string_view kTemplateFields[] = {"type",  "runner",       "image",     "command",
                                                "env",   "max_attempts", "timeout_s", "labels",
                                                "queue", "notify_url"};

// The white space the cron parser splits fields on (std::isspace, C locale).
constexpr std::string_view kCronSpace = " \t\n\v\f\r";

std::string_view View(const json::string& s) { return {s.data(), s.size()}; }

// Absent and null both count as "not given".
const json::value* Find(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return nullptr;
  return v;
}

std::string_view Trim(std::string_view s) {
  const size_t first = s.find_first_not_of(kCronSpace);
  if (first == std::string_view::npos) return {};
  const size_t last = s.find_last_not_of(kCronSpace);
  return s.substr(first, last - first + 1);
}

core::Status ParseCron(const json::value* v, core::Schedule& s) {
  if (v == nullptr) return Invalid("cron", "required");
  if (!v->is_string()) return Invalid("cron", "must be a string");
  const std::string_view expr = Trim(View(v->get_string()));
  if (detail::Utf8Length(expr) > kMaxCronChars) {
    return Invalid("cron", "longer than " + std::to_string(kMaxCronChars) + " characters");
  }
  auto spec = cron::CronSpec::Parse(expr);
  if (!spec.ok()) {
    // The cron parser names its field itself; keep one "cron: " prefix.
    const core::Status st = spec.status();
    std::string_view reason = st.message();
    constexpr std::string_view kPrefix = "cron: ";
    if (reason.substr(0, kPrefix.size()) == kPrefix) reason.remove_prefix(kPrefix.size());
    return Invalid("cron", reason);
  }
  s.cron = std::string(expr);
  return core::OkStatus();
}

core::Status ParseTimeZone(const json::value* v, core::Schedule& s) {
  s.timezone = std::string(kDefaultScheduleTimeZone);
  if (v == nullptr) return core::OkStatus();
  if (!v->is_string()) return Invalid("timezone", "must be a string");
  const std::string_view name = View(v->get_string());
  if (detail::Utf8Length(name) > kMaxTimeZoneChars) {
    return Invalid("timezone", "longer than " + std::to_string(kMaxTimeZoneChars) + " characters");
  }
  // Every failure reads as an unknown zone: a file under the zoneinfo
  // directory that is not TZif data (zone.tab, leapseconds) is no zone either.
  if (!cron::TimeZone::Load(name).ok()) {
    return Invalid("timezone", "unknown time zone '" + std::string(name) + "'");
  }
  s.timezone = std::string(name);
  return core::OkStatus();
}

core::Status ParseTaskTemplate(const json::value* v, const CreateDefaults& defaults, core::Time now,
                               core::Schedule& s) {
  if (v == nullptr) return Invalid("task", "required");
  if (v->is_object()) {
    const json::object& o = v->get_object();
    if (Find(o, "run_at") != nullptr) {
      return Invalid("task.run_at",
                     "not allowed in a schedule (each occurrence's run_at is its cron time)");
    }
    if (Find(o, "idempotency_key") != nullptr) {
      return Invalid("task.idempotency_key", "not allowed in a schedule");
    }
  }
  auto task = ParseCreateTask(*v, defaults, now, "task.");
  if (!task.ok()) return task.status();
  s.task = std::move(task).value();
  return core::OkStatus();
}

core::Status ParseOverlap(const json::value* v, core::Schedule& s) {
  if (v == nullptr) return core::OkStatus();
  std::optional<core::OverlapPolicy> p;
  if (v->is_string()) p = core::ParseOverlapPolicy(View(v->get_string()));
  if (!p) return Invalid("overlap", "must be one of allow, skip, cancel_previous");
  s.overlap = *p;
  return core::OkStatus();
}

core::Status ParseCatchUp(const json::value* v, core::Schedule& s) {
  if (v == nullptr) return core::OkStatus();
  std::optional<core::CatchUpPolicy> p;
  if (v->is_string()) p = core::ParseCatchUpPolicy(View(v->get_string()));
  if (!p) return Invalid("catch_up", "must be one of none, latest, all");
  s.catch_up = *p;
  return core::OkStatus();
}

json::value TimeOrNull(const std::optional<core::Time>& t) {
  if (!t) return nullptr;
  return json::value(core::FormatRfc3339(*t));
}

json::value StringOrNull(const std::optional<std::string>& s) {
  if (!s) return nullptr;
  return json::value(*s);
}

}  // namespace

core::StatusOr<core::Schedule> ParseCreateSchedule(const json::value& body,
                                                   const CreateDefaults& defaults, core::Time now) {
  if (!body.is_object()) return core::InvalidArgumentError("request body must be a JSON object");
  RETURN_IF_ERROR(detail::CheckUtf8(body, ""));
  const json::object& o = body.get_object();
  for (const auto& kv : o) {
    const std::string_view key(kv.key().data(), kv.key().size());
    if (std::find(std::begin(kFields), std::end(kFields), key) != std::end(kFields)) continue;
    if (detail::IsPathSafe(key)) return Invalid(key, "unknown field");
    return core::InvalidArgumentError("unknown field " + detail::Quote(key));
  }

  core::Schedule s;
  RETURN_IF_ERROR(ParseCron(Find(o, "cron"), s));
  RETURN_IF_ERROR(ParseTimeZone(Find(o, "timezone"), s));
  RETURN_IF_ERROR(ParseTaskTemplate(Find(o, "task"), defaults, now, s));
  RETURN_IF_ERROR(ParseOverlap(Find(o, "overlap"), s));
  RETURN_IF_ERROR(ParseCatchUp(Find(o, "catch_up"), s));
  if (const auto* v = Find(o, "notify_url")) {
    auto url = ParseNotifyUrlValue(*v);
    if (!url.ok()) return Invalid("notify_url", url.status().message());
    s.notify_url = std::move(url).value();
  }
  if (const auto* v = Find(o, "paused")) {
    if (!v->is_bool()) return Invalid("paused", "must be a boolean");
    s.paused = v->get_bool();
  }
  s.created_at = now;
  s.updated_at = now;
  return s;
}

json::object TaskTemplateToJson(const core::Task& task) {
  // Picked from TaskToJson so both encode a field the same way.
  json::object full = TaskToJson(task);
  json::object o;
  o.reserve(std::size(kTemplateFields));
  for (std::string_view key : kTemplateFields) o[key] = std::move(full[key]);
  return o;
}

json::object ScheduleToJson(const core::Schedule& s) {
  json::object o;
  o.reserve(11);
  o["id"] = s.id;
  o["cron"] = s.cron;
  o["timezone"] = s.timezone;
  o["task"] = TaskTemplateToJson(s.task);
  o["overlap"] = core::OverlapPolicyName(s.overlap);
  o["catch_up"] = core::CatchUpPolicyName(s.catch_up);
  o["notify_url"] = StringOrNull(s.notify_url);
  o["paused"] = s.paused;
  o["next_run_at"] = TimeOrNull(s.next_run_at);
  o["created_at"] = core::FormatRfc3339(s.created_at);
  o["updated_at"] = core::FormatRfc3339(s.updated_at);
  return o;
}

}  // namespace sked::api
