// File: api/schedule_json.h
//
// The schedule resource of the v1 API: decoding the body of
// `POST /v1/schedules` into a core::Schedule and encoding a schedule for the
// responses. A schedule is a cron expression read in an IANA time zone plus
// the template of the task each occurrence creates; the template is a
// `POST /v1/tasks` body without run_at (each occurrence's run_at is its cron
// time) and without idempotency_key (the scheduler makes occurrences unique).
//
// The parser follows the conventions of task_request.h: each rejection is an
// InvalidArgument whose message starts with the offending field's JSON path
// ("task.env.FOO: ...", "cron: minute field: ..."), an optional field given as
// JSON `null` counts as absent, unknown fields are rejected, and every string
// and object key must be valid UTF-8.
//
// Thread safety: free functions without shared state.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <string_view>

#include "api/task_request.h"
#include "core/schedule.h"
#include "core/status.h"
#include "core/task.h"
#include "core/time.h"

namespace sked::api {

// Longest accepted `cron` expression, after trimming, in characters.
inline constexpr size_t kMaxCronChars = 256;
// Longest accepted `timezone` name in characters. The longest IANA name has
// 32 (America/Argentina/ComodRivadavia); the cap keeps error messages, which
// echo the name, short.
inline constexpr size_t kMaxTimeZoneChars = 64;
// The zone of a schedule that names none.
inline constexpr std::string_view kDefaultScheduleTimeZone = "UTC";

// Decodes a `POST /v1/schedules` body:
//   cron       required string; 5 fields, 6 with seconds first, or an alias
//              (@hourly, @daily, ...), at most 256 characters. Stored as
//              given, with surrounding white space trimmed.
//   task       required object, decoded by ParseCreateTask with prefix
//              "task."; task.run_at and task.idempotency_key are refused.
//   timezone   IANA name. Default: "UTC".
//   overlap    "allow" | "skip" | "cancel_previous". Default: "allow".
//   catch_up   "none" | "latest" | "all". Default: "latest".
//   notify_url http:// or https:// URL, as a task's notify_url. Default: none.
//   paused     boolean. Default: false.
// The result has created_at = updated_at = `now`; id and next_run_at are left
// empty for the service to fill. The task template's run_at is `now` and
// unused.
//
// OK: the schedule. InvalidArgument "<field path>: <reason>" for the first rule
// broken: a body that is not an object ("request body must be a JSON object"),
// an unknown field ("<field>: unknown field"), a missing required field, a
// wrong JSON type, a cron expression the cron parser refuses ("cron: <its
// reason>"), a time zone that cannot be loaded ("timezone: unknown time zone
// 'X'"), an enum value outside its set, invalid UTF-8, or any rule of the
// task template ("task.<field>: ..."). Malformed JSON text is the caller's
// to report.
core::StatusOr<core::Schedule> ParseCreateSchedule(const boost::json::value& body,
                                                   const CreateDefaults& defaults, core::Time now);

// The task template of a schedule as a create body would give it:
// {"type", "runner", "image", "command", "env", "max_attempts", "timeout_s",
//  "labels", "queue", "notify_url"}. `image`, `command` and `env` are null for
// built-in types (as in TaskToJson); notify_url is null when unset. Fields of
// a concrete task (id, run_at, state, attempt, ...) are never written.
boost::json::object TaskTemplateToJson(const core::Task& task);

// {"id", "cron", "timezone", "task", "overlap", "catch_up", "notify_url",
//  "paused", "next_run_at", "created_at", "updated_at"}. `task` is
// TaskTemplateToJson(s.task); notify_url and next_run_at are null when
// absent. Times are RFC 3339 UTC with milliseconds.
boost::json::object ScheduleToJson(const core::Schedule& s);

}  // namespace sked::api
