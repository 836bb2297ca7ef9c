#include "api/list_query.h"

#include <algorithm>
#include <set>
#include <vector>

#include "api/internal/codec_util.h"
#include "core/ids.h"
#include "core/task.h"

namespace sked::api {
namespace {

using detail::Invalid;
using detail::Quote;

constexpr std::string_view kBase64Url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::string_view kAllTypes[] = {"fizz", "buzz", "fizzbuzz", "foo",
                                          "bar",  "baz",  "noop",     "container"};
constexpr core::TaskState kAllStates[] = {
    core::TaskState::kScheduled, core::TaskState::kProvisioning, core::TaskState::kRunning,
    core::TaskState::kSucceeded, core::TaskState::kFailed,       core::TaskState::kCancelled};

template <typename T>
void AddUnique(std::vector<T>& v, const T& x) {
  if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
}

std::vector<std::string_view> SplitComma(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string_view::npos) end = s.size();
    std::string_view item = s.substr(start, end - start);
    if (!item.empty()) out.push_back(item);  // "a,,b" and a trailing comma are harmless
    start = end + 1;
  }
  return out;
}

std::optional<core::TaskState> LooseState(std::string_view word) {
  std::string w = detail::ToLowerAscii(word);
  if (auto s = core::ParseTaskState(w)) return s;
  if (w == "pending" || w == "queued" || w == "waiting") return core::TaskState::kScheduled;
  if (w == "done" || w == "completed" || w == "complete" || w == "success" || w == "successful")
    return core::TaskState::kSucceeded;
  if (w == "error" || w == "errored") return core::TaskState::kFailed;
  if (w == "canceled") return core::TaskState::kCancelled;
  return std::nullopt;
}

core::StatusOr<core::Time> ParseQueryTime(std::string_view name, std::string_view s) {
  if (auto secs = detail::ParseDigits(s)) {
    if (*secs > detail::kMaxEpochSeconds) return Invalid(name, detail::kTimeOutOfRange);
    return core::TimeFromSeconds(*secs);
  }
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return Invalid(name, detail::kTimeOutOfRange);  // too many digits
  auto t = detail::ParseRfc3339Lenient(s);
  if (!t) return Invalid(name, detail::kNotATime);
  if (!detail::TimeInRange(*t)) return Invalid(name, detail::kTimeOutOfRange);
  return *t;
}

bool IsLabelKey(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || c == '/';
  });
}

bool IsQueueName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

core::StatusOr<core::TaskListParams> Parse(const boost::urls::params_view& params, bool legacy) {
  core::TaskListParams out;
  std::set<std::string> seen;  // scalar parameters already given
  for (const auto& p : params) {
    const std::string& key = p.key;
    if (key.empty() && p.value.empty()) continue;  // "?a=1&" or "?&a=1"
    if (!detail::IsValidUtf8(key))
      return core::InvalidArgumentError("query: a parameter name is not valid UTF-8");
    if (!detail::IsValidUtf8(p.value)) return Invalid(key, "not valid UTF-8");

    std::string name = key;
    if (legacy && name == "status") name = "state";
    if (legacy && name == "kind") name = "type";
    static const std::set<std::string, std::less<>> kKnown = {
        "state", "type",        "since", "until", "label",
        "queue", "schedule_id", "order", "limit", "cursor"};
    if (kKnown.find(name) == kKnown.end()) {
      if (detail::IsPathSafe(key)) return Invalid(key, "unknown parameter");
      return core::InvalidArgumentError("unknown parameter " + Quote(key));
    }
    const std::string_view value = p.has_value ? std::string_view(p.value) : std::string_view();
    if (value.empty()) continue;  // "since=" means not given

    if (name == "state") {
      for (std::string_view word : SplitComma(value)) {
        auto st = legacy ? LooseState(word) : core::ParseTaskState(word);
        if (!st) return Invalid(key, "unknown state " + Quote(word));
        AddUnique(out.states, *st);
      }
      continue;
    }
    if (name == "type") {
      for (std::string_view word : SplitComma(value)) {
        std::optional<std::string> t;
        if (legacy) {
          t = detail::NormalizeTypeWord(word);
        } else if (std::find(std::begin(kAllTypes), std::end(kAllTypes), word) !=
                   std::end(kAllTypes)) {
          t = std::string(word);
        }
        if (!t) return Invalid(key, "unknown type " + Quote(word));
        AddUnique(out.types, *t);
      }
      continue;
    }
    if (name == "label") {
      size_t colon = value.find(':');
      if (colon == std::string_view::npos) return Invalid(key, "must be key:value");
      std::string_view k = value.substr(0, colon), v = value.substr(colon + 1);
      if (!IsLabelKey(k)) return Invalid(key, "key must be 1 to 63 characters of [A-Za-z0-9_.-/]");
      if (detail::Utf8Length(v) > 255) return Invalid(key, "value longer than 255 characters");
      AddUnique(out.labels, std::pair<std::string, std::string>(k, v));
      continue;
    }

    if (!seen.insert(name).second) return Invalid(key, "given more than once");
    if (name == "since" || name == "until") {
      auto t = ParseQueryTime(key, value);
      if (!t.ok()) return t.status();
      (name == "since" ? out.since : out.until) = *t;
    } else if (name == "queue") {
      if (!IsQueueName(value)) return Invalid(key, "must be 1 to 64 characters of [A-Za-z0-9_.-]");
      out.queue = std::string(value);
    } else if (name == "schedule_id") {
      if (detail::Utf8Length(value) > 255) return Invalid(key, "longer than 255 characters");
      out.schedule_id = std::string(value);
    } else if (name == "order") {
      std::string o = legacy ? detail::ToLowerAscii(value) : std::string(value);
      if (o != "asc" && o != "desc") return Invalid(key, "must be asc or desc");
      out.ascending = o == "asc";
    } else if (name == "limit") {
      auto n = detail::ParseDigits(value);
      if (!n || *n < 1 || *n > kMaxListLimit)
        return Invalid(key, "must be an integer from 1 to 1000");
      out.limit = static_cast<int>(*n);
    } else if (name == "cursor") {
      auto c = DecodeCursor(value);
      if (!c.ok()) return c.status();
      out.after = std::move(c).value();
    }
  }
  return out;
}

}  // namespace

core::StatusOr<core::TaskListParams> ParseListQuery(const boost::urls::params_view& params) {
  return Parse(params, /*legacy=*/false);
}

core::StatusOr<core::TaskListParams> ParseLegacyTaskQuery(const boost::urls::params_view& params) {
  return Parse(params, /*legacy=*/true);
}

std::string EncodeCursor(const core::TaskListCursor& cursor) {
  const std::string raw = std::to_string(core::ToMicros(cursor.run_at)) + ":" + cursor.id;
  std::string out;
  out.reserve((raw.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < raw.size(); i += 3) {
    uint32_t n = (static_cast<unsigned char>(raw[i]) << 16) |
                 (static_cast<unsigned char>(raw[i + 1]) << 8) |
                 static_cast<unsigned char>(raw[i + 2]);
    out += kBase64Url[(n >> 18) & 63];
    out += kBase64Url[(n >> 12) & 63];
    out += kBase64Url[(n >> 6) & 63];
    out += kBase64Url[n & 63];
  }
  if (i < raw.size()) {
    uint32_t n = static_cast<unsigned char>(raw[i]) << 16;
    if (i + 1 < raw.size()) n |= static_cast<unsigned char>(raw[i + 1]) << 8;
    out += kBase64Url[(n >> 18) & 63];
    out += kBase64Url[(n >> 12) & 63];
    if (i + 1 < raw.size()) out += kBase64Url[(n >> 6) & 63];
  }
  return out;
}

core::StatusOr<core::TaskListCursor> DecodeCursor(std::string_view text) {
  const core::Status malformed = core::InvalidArgumentError("cursor: malformed");
  if (text.empty() || text.size() > 256 || text.size() % 4 == 1) return malformed;
  std::string raw;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    size_t v = kBase64Url.find(c);
    if (v == std::string_view::npos) return malformed;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      raw += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  size_t colon = raw.find(':');
  if (colon == std::string::npos) return malformed;
  auto micros = detail::ParseDigits(std::string_view(raw).substr(0, colon));
  if (!micros || *micros > (detail::kMaxEpochSeconds + 1) * 1'000'000 - 1) return malformed;
  std::string id = raw.substr(colon + 1);
  if (id.empty() || id.size() > 128) return malformed;
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return malformed;
  }
  core::TaskListCursor cursor{core::TimeFromMicros(*micros), std::move(id)};
  // Only the canonical spelling is accepted (no stray trailing bits).
  if (EncodeCursor(cursor) != text) return malformed;
  return cursor;
}

core::StatusOr<core::ScheduleListParams> ParseScheduleListQuery(
    const boost::urls::params_view& params) {
  core::ScheduleListParams out;
  out.limit = kDefaultListLimit;
  for (const auto& p : params) {
    const std::string& key = p.key;
    if (key.empty() && p.value.empty()) continue;
    if (!detail::IsValidUtf8(key))
      return core::InvalidArgumentError("query: a parameter name is not valid UTF-8");
    if (!detail::IsValidUtf8(p.value)) return Invalid(key, "not valid UTF-8");
    const std::string_view value = p.has_value ? std::string_view(p.value) : std::string_view();
    if (key == "limit") {
      if (value.empty()) continue;
      auto n = detail::ParseDigits(value);
      if (!n || *n < 1 || *n > kMaxListLimit)
        return Invalid(key, "must be an integer from 1 to 1000");
      out.limit = static_cast<int>(*n);
    } else if (key == "cursor") {
      if (value.empty()) continue;
      if (!core::IsUuid(std::string(value))) return Invalid(key, "malformed");
      out.after_id = std::string(value);
    } else if (detail::IsPathSafe(key)) {
      return Invalid(key, "unknown parameter");
    } else {
      return core::InvalidArgumentError("unknown parameter " + Quote(key));
    }
  }
  return out;
}

}  // namespace sked::api
