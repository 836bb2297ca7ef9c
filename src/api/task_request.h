// File: api/task_request.h
//
// Decoding and validation of task-creation bodies: `POST /v1/tasks`, each element
// of `POST /v1/tasks:batch`, and the time values every API input shares. The
// rules are docs/API_NOTES.md "Creating a task"; each rejection is an
// InvalidArgument whose message starts with the offending field's JSON path
// (`"tasks[3].env.FOO: names starting with SKED_ are reserved"`), from which the
// HTTP layer derives `details.field` (see error_json.h).
//
// Conventions of every parser here:
// - An optional field given as JSON `null` counts as absent.
// - Integers may be written as any JSON number without a fraction (3, 3.0, 3e0).
// - "Characters" are Unicode code points; "bytes" are UTF-8 bytes.
// - Every string and object key must be valid UTF-8.
//
// Thread safety: free functions without shared state.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/task.h"
#include "core/time.h"

namespace sked::api {

// What the server's configuration lets a create request use.
struct CreateDefaults {
  // The runner of a container task that names none. "" = no default; then the
  // first of `container_runners` is used. Default: "".
  std::string default_container_runner;
  // The container runners enabled on this server, e.g. {"docker"}. A container
  // task is accepted only when this (or default_container_runner) names one.
  // Default: none.
  std::vector<std::string> container_runners;
};

// Limits of API_NOTES "Creating a task".
inline constexpr int kMaxAttemptsLimit = 100;
inline constexpr int64_t kMaxTimeoutS = 604800;
inline constexpr size_t kMaxImageChars = 512;
inline constexpr size_t kMaxCommandArgs = 256;
inline constexpr size_t kMaxArgBytes = 32768;
inline constexpr size_t kMaxEnvEntries = 256;
inline constexpr size_t kMaxEnvNameChars = 256;
inline constexpr size_t kMaxEnvValueBytes = 32768;
inline constexpr size_t kMaxIdempotencyKeyChars = 255;
inline constexpr size_t kMaxLabels = 64;
inline constexpr size_t kMaxLabelKeyChars = 63;
inline constexpr size_t kMaxLabelValueChars = 255;
inline constexpr size_t kMaxQueueChars = 64;
inline constexpr size_t kMaxNotifyUrlChars = 2048;
inline constexpr size_t kMaxBatchTasks = 1000;
inline constexpr std::string_view kDefaultQueue = "default";
// The reason a container task is refused when no container runner is enabled
// (the message is "type: " followed by it).
inline constexpr std::string_view kNoContainerRunnerReason =
    "container tasks need a container runner (this node has no Docker engine on --docker-host)";

// Decodes one create body into a task in state scheduled: type, runner
// ("builtin" for built-in types), run_at (default `now`), image/command/env,
// max_attempts (default 3), timeout_s (default 3600), idempotency_key, labels,
// queue (default "default") and notify_url. It does not set id or created_at.
// `field_prefix` is prepended to every field path ("tasks[3].").
//
// OK: the task. InvalidArgument "<field path>: <reason>" for the first rule
// broken: a body that is not an object, an unknown field, a wrong JSON type, a
// missing required or forbidden field, a value out of range, invalid UTF-8, a
// container task without an enabled container runner.
core::StatusOr<core::Task> ParseCreateTask(const boost::json::value& body,
                                           const CreateDefaults& defaults, core::Time now,
                                           std::string_view field_prefix = "");

// A time input: an RFC 3339 string with `Z` or an offset, or an integer of epoch
// seconds in 0..253402300799; the result lies in years 1970..9999.
// OK: the time. InvalidArgument with the bare reason (no field path; callers
// prepend theirs): "not a time" for a wrong type or unparseable string,
// "out of range (...)" for a time outside those years.
core::StatusOr<core::Time> ParseTimeValue(const boost::json::value& v);

// A notify_url input: a string of at most 2048 characters that is an absolute
// http:// or https:// URL with a host. OK: the URL as given. InvalidArgument
// with the bare reason (no field path; callers prepend theirs): "must be a
// string", "longer than 2048 characters" or "must be an http:// or https://
// URL". REQUIRES: a string `v` is valid UTF-8 (see detail::CheckUtf8).
core::StatusOr<std::string> ParseNotifyUrlValue(const boost::json::value& v);

// Decodes `{"tasks": [ ... ]}` with 1..1000 elements, each as ParseCreateTask
// with prefix "tasks[i].". OK: the tasks in order. InvalidArgument as above,
// "tasks: ..." for the array itself, or "<name>: unknown field".
core::StatusOr<std::vector<core::Task>> ParseBatch(const boost::json::value& body,
                                                   const CreateDefaults& defaults, core::Time now);

}  // namespace sked::api
