// File: api/callback_request.h
//
// Decoding of the body of `POST /v1/tasks/{id}/callback`, the call a job (or its
// host) makes when it ends, sends a heartbeat or is about to be interrupted
// (docs/API_NOTES.md "Callback"). Token checks and state changes are the
// handler's; this only validates the shape.
//
// Thread safety: free functions without shared state.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sked::api {

inline constexpr std::string_view kCallbackSucceeded = "succeeded";
inline constexpr std::string_view kCallbackFailed = "failed";
inline constexpr std::string_view kCallbackInterrupted = "interrupted";
inline constexpr std::string_view kCallbackHeartbeat = "heartbeat";
inline constexpr size_t kMaxCallbackMessageChars = 4096;

struct CallbackRequest {
  int attempt = 0;     // >= 1
  std::string status;  // succeeded | failed | interrupted | heartbeat
  std::optional<int> exit_code;
  std::optional<std::string> message;  // <= 4096 characters
};

// `{"attempt": 1, "status": "...", "exit_code": 0, "message": "..."}`.
// OK: the request. InvalidArgument "<field>: <reason>" for a body that is not
// an object, a missing attempt or status, a wrong type, an attempt < 1, an
// unknown status, an exit_code outside int, a message over 4096 characters,
// invalid UTF-8 or any other field. `null` counts as absent for the optional
// fields.
core::StatusOr<CallbackRequest> ParseCallback(const boost::json::value& body);

}  // namespace sked::api
