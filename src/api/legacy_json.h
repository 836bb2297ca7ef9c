// File: api/legacy_json.h
//
// Request and answer formats of the original briefs' routes (specs/api.md, "The
// original briefs' routes"), so those briefs' clients work unchanged:
// - `POST /schedule`, `GET /list`, `GET /status/{id}`, `PUT /callback/{id}`:
//   jobs as {"id", "docker_image", "env_vars", "scheduled_for", "status",
//   "error_message"}; errors are plain messages, which the HTTP layer writes as
//   {"message": ...} (see LegacyMessageBody in error_json.h).
// - `POST /task/set` and `POST /task`: bodies that make built-in tasks; their
//   answers and errors are the v1 ones (errors "<field>: <reason>").
// Tasks made here are ordinary sked tasks.
//
// Thread safety: free functions without shared state.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "api/task_request.h"
#include "core/status.h"
#include "core/task.h"
#include "core/time.h"

namespace sked::api {

// The spec's exact messages for `POST /schedule`.
inline constexpr std::string_view kDockerImageEmpty = "docker_image field cannot be empty";
inline constexpr std::string_view kScheduledForEmpty = "scheduled_for field cannot be empty";
inline constexpr std::string_view kScheduledForNotATime = "scheduled_for field is not a time";

// SCHEDULED (scheduled), RUNNING (provisioning, running), DONE (succeeded),
// FAILED (failed, cancelled).
std::string_view LegacyStatusWord(core::TaskState state);

// {"id", "docker_image", "env_vars", "scheduled_for", "status", "error_message"}:
// docker_image is the image (null for built-in types), env_vars the env object
// (possibly empty), scheduled_for the run_at in RFC 3339 UTC, status the
// LegacyStatusWord, error_message the task's error or null.
boost::json::object LegacyJobToJson(const core::Task& task);

// "Job id {id} was not found", the message of `GET /status/{id}` for an unknown id.
std::string LegacyNotFoundMessage(std::string_view id);

// `POST /schedule` body `{"docker_image", "scheduled_for", "env_vars"}` into a
// container task (runner: the default container runner). scheduled_for is an
// RFC 3339 time, epoch seconds (a JSON integer or a string of digits) or "HH:MM"
// (also "H:MM", "HH:MM:SS"): its next occurrence in UTC strictly after `now`.
// OK: the task (no id/created_at). InvalidArgument with exactly
// kDockerImageEmpty, kScheduledForEmpty or kScheduledForNotATime for those
// cases; other messages (also without a field prefix) for a bad image, bad
// env_vars, an unknown field, or no container runner enabled.
core::StatusOr<core::Task> ParseLegacySchedule(const boost::json::value& body,
                                               const CreateDefaults& defaults, core::Time now);

// `POST /task/set` body `{"kind": "Fizz"|"Buzz"|"FizzBuzz", "when": <time>}` into
// a built-in task; kind is loose (case-insensitive, ' ', '_', '-' ignored);
// when is epoch seconds (number or digit string) or RFC 3339, default `now`.
// OK: the task. InvalidArgument "kind: ..." / "when: ..." / "<name>: unknown field".
core::StatusOr<core::Task> ParseTaskSet(const boost::json::value& body, core::Time now);

// `POST /task` body `{"type": "Foo"|"Bar"|"Baz", "send_ts": <time>}`, as ParseTaskSet.
core::StatusOr<core::Task> ParseTaskBrief(const boost::json::value& body, core::Time now);

// What a `PUT /callback/{id}` asks for. The route carries no attempt: the
// handler applies it to the task's current attempt.
struct LegacyCallbackRequest {
  std::string status;                  // succeeded | failed | interrupted
  std::optional<std::string> message;  // failed only: the error_message
};

// `{}` (or JSON null, for an empty body) → succeeded;
// `{"failed": <any>, "error_message": "..."}` → failed (error_message optional);
// `{"schedule": <any>}` → interrupted. OK: the request. InvalidArgument for
// failed together with schedule, error_message without failed, a non-string or
// over-4096-character error_message, or any other key.
core::StatusOr<LegacyCallbackRequest> ParseLegacyCallback(const boost::json::value& body);

}  // namespace sked::api
