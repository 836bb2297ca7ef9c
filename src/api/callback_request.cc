#include "api/callback_request.h"

#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <limits>

#include "api/internal/codec_util.h"

namespace sked::api {

using detail::Invalid;

core::StatusOr<CallbackRequest> ParseCallback(const boost::json::value& body) {
  if (!body.is_object()) return core::InvalidArgumentError("request body must be a JSON object");
  RETURN_IF_ERROR(detail::CheckUtf8(body, ""));
  const auto& o = body.get_object();
  for (const auto& kv : o) {
    std::string_view key(kv.key().data(), kv.key().size());
    if (key == "attempt" || key == "status" || key == "exit_code" || key == "message") continue;
    if (detail::IsPathSafe(key)) return Invalid(key, "unknown field");
    return core::InvalidArgumentError("unknown field " + detail::Quote(key));
  }
  auto find = [&](std::string_view key) -> const boost::json::value* {
    const auto* v = o.if_contains(key);
    return v == nullptr || v->is_null() ? nullptr : v;
  };

  CallbackRequest req;
  const auto* attempt = find("attempt");
  if (attempt == nullptr) return Invalid("attempt", "required");
  auto n = detail::AsInt64(*attempt);
  if (!n || *n < 1 || *n > std::numeric_limits<int>::max())
    return Invalid("attempt", "must be a positive integer");
  req.attempt = static_cast<int>(*n);

  const auto* status = find("status");
  if (status == nullptr) return Invalid("status", "required");
  std::string_view s;
  if (status->is_string())
    s = std::string_view(status->get_string().data(), status->get_string().size());
  if (s != kCallbackSucceeded && s != kCallbackFailed && s != kCallbackInterrupted &&
      s != kCallbackHeartbeat)
    return Invalid("status", "must be one of succeeded, failed, interrupted, heartbeat");
  req.status = std::string(s);

  if (const auto* v = find("exit_code")) {
    auto code = detail::AsInt64(*v);
    if (!code || *code < std::numeric_limits<int>::min() || *code > std::numeric_limits<int>::max())
      return Invalid("exit_code", "must be an integer");
    req.exit_code = static_cast<int>(*code);
  }
  if (const auto* v = find("message")) {
    if (!v->is_string()) return Invalid("message", "must be a string");
    std::string_view m(v->get_string().data(), v->get_string().size());
    if (detail::Utf8Length(m) > kMaxCallbackMessageChars)
      return Invalid("message", "longer than 4096 characters");
    req.message = std::string(m);
  }
  return req;
}

}  // namespace sked::api
