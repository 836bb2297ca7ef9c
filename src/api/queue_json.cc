#include "api/queue_json.h"

#include <cmath>
#include <string>

#include "api/internal/codec_util.h"

namespace sked::api {

namespace json = boost::json;
using detail::Invalid;

core::StatusOr<core::QueueLimits> ParseQueuePut(std::string_view name, const json::value& body,
                                                core::Time now) {
  core::QueueLimits q;
  q.name = std::string(name);
  q.updated_at = now;
  if (auto st = core::ValidateQueueLimits({.name = q.name}); !st.ok()) {
    return Invalid("name", "must be 1 to 64 characters of [A-Za-z0-9_.-]");
  }
  if (!body.is_object()) return Invalid("", "body: must be a JSON object");
  if (auto st = detail::CheckUtf8(body, ""); !st.ok()) return st;
  for (const auto& kv : body.as_object()) {
    const std::string_view key = kv.key();
    const json::value& v = kv.value();
    if (key == "max_running") {
      if (v.is_null()) continue;
      std::optional<int64_t> n = detail::AsInt64(v);
      if (!n || *n < 0 || *n > kMaxQueueRunning) {
        return Invalid("max_running", "must be null or an integer from 0 to 1000000");
      }
      q.max_running = *n;
    } else if (key == "max_per_second") {
      if (v.is_null()) continue;
      if (!v.is_number()) return Invalid("max_per_second", "must be null or a number");
      const double d = v.to_number<double>();
      if (!std::isfinite(d) || d <= 0 || d > kMaxQueuePerSecond) {
        return Invalid("max_per_second", "must be greater than 0 and at most 1000000");
      }
      q.max_per_second = d;
    } else {
      if (detail::IsPathSafe(key)) return Invalid(key, "unknown field");
      return core::InvalidArgumentError("unknown field " + detail::Quote(key));
    }
  }
  return q;
}

json::object QueueToJson(const core::QueueInfo& queue) {
  json::object o;
  o["name"] = queue.limits.name;
  o["max_running"] = queue.limits.max_running ? json::value(*queue.limits.max_running)
                                              : json::value(nullptr);
  o["max_per_second"] = queue.limits.max_per_second ? json::value(*queue.limits.max_per_second)
                                                    : json::value(nullptr);
  o["running"] = queue.running;
  o["scheduled"] = queue.scheduled;
  o["updated_at"] = queue.limits.updated_at == core::Time{}
                        ? json::value(nullptr)
                        : json::value(core::FormatRfc3339(queue.limits.updated_at));
  return o;
}

}  // namespace sked::api
