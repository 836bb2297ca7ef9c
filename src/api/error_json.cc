#include "api/error_json.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "api/internal/codec_util.h"

namespace sked::api {
namespace {

struct Mapping {
  std::string_view name;
  unsigned http;
};

// The one table. Keep in step with STYLE.md §5 and specs/api.md "Conventions".
Mapping Map(core::StatusCode code) {
  using C = core::StatusCode;
  switch (code) {
    case C::kInvalidArgument:
      return {"invalid_argument", 400};
    case C::kUnauthenticated:
      return {"unauthenticated", 401};
    case C::kPermissionDenied:
      return {"permission_denied", 403};
    case C::kNotFound:
      return {"not_found", 404};
    case C::kAlreadyExists:
    case C::kFailedPrecondition:
    case C::kAborted:
      return {"conflict", 409};
    case C::kResourceExhausted:
      return {"resource_exhausted", 429};
    case C::kUnavailable:
      return {"unavailable", 503};
    case C::kDeadlineExceeded:
      return {"deadline_exceeded", 504};
    case C::kOk:
    case C::kCancelled:
    case C::kInternal:
      break;
  }
  return {"internal", 500};
}

std::string Body(std::string_view code, std::string_view message, boost::json::object details) {
  boost::json::object error;
  error["code"] = code;
  error["message"] = message;
  error["details"] = std::move(details);
  boost::json::object root;
  root["error"] = std::move(error);
  return boost::json::serialize(root);
}

}  // namespace

std::string_view ErrorCodeName(core::StatusCode code) { return Map(code).name; }

unsigned HttpStatusFor(core::StatusCode code) { return Map(code).http; }

std::optional<std::string> FieldFromMessage(std::string_view message) {
  size_t sep = message.find(": ");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  std::string_view field = message.substr(0, sep);
  if (!detail::IsPathSafe(field)) return std::nullopt;
  return std::string(field);
}

std::string ErrorBody(core::StatusCode code, std::string_view message) {
  const Mapping m = Map(code);
  if (m.http == 500) message = kInternalMessage;
  if (m.http == 503) message = kUnavailableMessage;
  // Messages built from user input were checked for UTF-8; anything else that
  // is not valid UTF-8 would make invalid JSON.
  if (!detail::IsValidUtf8(message)) message = "invalid request";
  boost::json::object details;
  if (code == core::StatusCode::kInvalidArgument) {
    if (auto field = FieldFromMessage(message)) details["field"] = *field;
  }
  return Body(m.name, message, std::move(details));
}

std::string MethodNotAllowedBody(const std::vector<std::string>& allowed) {
  boost::json::array methods;
  std::string list;
  for (const auto& a : allowed) {
    methods.emplace_back(a);
    if (!list.empty()) list += ", ";
    list += a;
  }
  boost::json::object details;
  details["allow"] = std::move(methods);
  return Body("method_not_allowed", "method not allowed; allowed: " + list, std::move(details));
}

std::string PayloadTooLargeBody(size_t limit_bytes) {
  boost::json::object details;
  details["limit_bytes"] = static_cast<uint64_t>(limit_bytes);
  return Body("payload_too_large",
              "request body larger than " + std::to_string(limit_bytes) + " bytes",
              std::move(details));
}

std::string LegacyMessageBody(std::string_view message) {
  if (!detail::IsValidUtf8(message)) message = "invalid request";
  boost::json::object o;
  o["message"] = message;
  return boost::json::serialize(o);
}

}  // namespace sked::api
