// File: api/error_json.h
//
// The one table from core::StatusCode to HTTP status and API error code, and the
// error bodies the API writes: `{"error": {"code", "message", "details"}}` for
// v1 routes (specs/api.md "Conventions", docs/API_NOTES.md "Errors") and
// `{"message"}` for the original briefs' routes.
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sked::api {

// InvalidArgument→"invalid_argument", Unauthenticated→"unauthenticated",
// PermissionDenied→"permission_denied", NotFound→"not_found",
// AlreadyExists/FailedPrecondition/Aborted→"conflict",
// ResourceExhausted→"resource_exhausted", Unavailable→"unavailable",
// DeadlineExceeded→"deadline_exceeded", anything else (OK included)→"internal".
std::string_view ErrorCodeName(core::StatusCode code);

// 400, 401, 403, 404, 409, 429, 503, 504 for the codes above; 500 otherwise.
unsigned HttpStatusFor(core::StatusCode code);

// The field path a message starts with: the text before the first ": " when it
// is made only of [A-Za-z0-9_.[]/-] ("tasks[3].env.FOO: reserved" →
// "tasks[3].env.FOO"). nullopt otherwise.
std::optional<std::string> FieldFromMessage(std::string_view message);

// The generic messages that replace backend text.
inline constexpr std::string_view kInternalMessage = "internal error";
inline constexpr std::string_view kUnavailableMessage =
    "the service is temporarily unavailable; retry later";

// `{"error": {"code": ErrorCodeName(code), "message": ..., "details": {...}}}`.
// details is {"field": FieldFromMessage(message)} for an invalid_argument whose
// message starts with a field path, else {}.
// For 500 (internal) and 503 (unavailable) the message is replaced by
// kInternalMessage / kUnavailableMessage, so no SQL or backend text leaks.
std::string ErrorBody(core::StatusCode code, std::string_view message);
inline std::string ErrorBody(const core::Status& status) {
  return ErrorBody(status.code(), status.message());
}

// 405 body: code "method_not_allowed", details {"allow": [...]}. The caller
// also sends the `Allow` header.
std::string MethodNotAllowedBody(const std::vector<std::string>& allowed);

// 413 body: code "payload_too_large", details {"limit_bytes": limit_bytes}.
std::string PayloadTooLargeBody(size_t limit_bytes);

// `{"message": message}`, the error body of the original briefs' routes.
std::string LegacyMessageBody(std::string_view message);

}  // namespace sked::api
