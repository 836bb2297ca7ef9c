// File: api/queue_json.h
//
// The queue resource: decoding the body of `PUT /v1/queues/{name}` and
// encoding a queue for `GET /v1/queues`.
//
// Thread safety: free functions without shared state.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string_view>

#include "core/status.h"
#include "core/store.h"
#include "core/time.h"

namespace sked::api {

inline constexpr int64_t kMaxQueueRunning = 1'000'000;
inline constexpr double kMaxQueuePerSecond = 1'000'000;

// `{"max_running": 3, "max_per_second": 10}`; either may be null or absent
// (no limit). PUT replaces both. InvalidArgument "<field>: <reason>" for a
// name outside [A-Za-z0-9_.-]{1,64}, a body that is not an object, another
// field, max_running not an integer in 0..1000000, max_per_second not a
// number in (0, 1000000].
core::StatusOr<core::QueueLimits> ParseQueuePut(std::string_view name,
                                                const boost::json::value& body, core::Time now);

// {"name", "max_running", "max_per_second", "running", "scheduled", "updated_at"}
// (updated_at null for a queue never configured).
boost::json::object QueueToJson(const core::QueueInfo& queue);

}  // namespace sked::api
