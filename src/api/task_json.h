// File: api/task_json.h
//
// The v1 API's JSON for a task, one of its events and a node (specs/api.md,
// docs/API_NOTES.md "Task JSON"). Every spec field is always present; an absent
// value is `null`. Internal fields (lease_owner, lease_expires_at, handle,
// free_attempts) are never written.
//
// Thread safety: free functions without shared state.
#pragma once

#include <boost/json/object.hpp>

#include "core/store.h"
#include "core/task.h"

namespace sked::api {

// {"id", "type", "run_at", "state", "runner", "image", "command", "env",
//  "attempt", "max_attempts", "timeout_s", "idempotency_key", "labels",
//  "created_at", "started_at", "finished_at", "instance_id", "result", "error",
//  "queue", "notify_url", "schedule_id", "occurrence"}.
// `image`, `command` and `env` are null for built-in types and a string, an
// array and an object (possibly empty) for container tasks; `labels` is always
// an object; `result` is {"exit_code", "output"} or null. Times are RFC 3339 UTC
// with milliseconds. Everything is allocated from `sp`: a page of tasks built
// in one boost::json::monotonic_resource costs a few allocations instead of
// dozens per task.
boost::json::object TaskToJson(const core::Task& task, boost::json::storage_ptr sp = {});

// {"at", "state", "attempt", "node", "instance_id", "message"}; node and
// instance_id are null when absent.
boost::json::object EventToJson(const core::TaskEvent& event);

// {"id", "version", "started_at", "last_heartbeat"}.
boost::json::object NodeToJson(const core::NodeInfo& node);

}  // namespace sked::api
