#include "exec/docker/internal/docker_wire.h"

#include <charconv>
#include <cstdint>
#include <utility>

namespace sked::exec::detail {

namespace {

// "1.41" -> {1, 41}.
std::optional<std::pair<int, int>> ParseVersion(std::string_view v) {
  size_t dot = v.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  int major = 0, minor = 0;
  auto parse = [](std::string_view s, int& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
  };
  if (!parse(v.substr(0, dot), major) || !parse(v.substr(dot + 1), minor)) return std::nullopt;
  return std::make_pair(major, minor);
}

}  // namespace

ImageRef SplitImageReference(std::string_view image) {
  ImageRef ref;
  size_t at = image.find('@');
  std::string_view name = image.substr(0, at);
  std::string_view digest =
      at == std::string_view::npos ? std::string_view() : image.substr(at + 1);
  size_t slash = name.rfind('/');
  size_t colon = name.rfind(':');
  std::string_view tag;
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    tag = name.substr(colon + 1);
    name = name.substr(0, colon);
  }
  ref.name = std::string(name);
  if (!digest.empty()) {
    ref.tag = std::string(digest);
  } else if (!tag.empty()) {
    ref.tag = std::string(tag);
  } else {
    ref.tag = "latest";
  }
  return ref;
}

core::StatusOr<std::string> DemuxLogStream(std::string_view raw) {
  auto valid_header = [](std::string_view h) {
    auto type = static_cast<unsigned char>(h[0]);
    return type <= 2 && h[1] == 0 && h[2] == 0 && h[3] == 0;
  };
  if (raw.size() < 8 || !valid_header(raw.substr(0, 8))) return std::string(raw);
  std::string out;
  out.reserve(raw.size());
  size_t pos = 0;
  while (pos < raw.size()) {
    if (raw.size() - pos < 8 || !valid_header(raw.substr(pos, 8)))
      return core::InternalError("docker logs: malformed stream frame at byte " +
                                 std::to_string(pos));
    uint32_t len = 0;
    for (int i = 4; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(raw[pos + i]);
    pos += 8;
    if (raw.size() - pos < len)
      return core::InternalError("docker logs: truncated stream frame at byte " +
                                 std::to_string(pos - 8));
    out.append(raw.substr(pos, len));
    pos += len;
  }
  return out;
}

std::optional<int> ExitCodeFromStatusText(std::string_view status) {
  constexpr std::string_view kPrefix = "Exited (";
  if (status.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string_view rest = status.substr(kPrefix.size());
  int code = 0;
  auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), code);
  if (ec != std::errc() || p == rest.data() + rest.size() || *p != ')') return std::nullopt;
  return code;
}

core::StatusOr<std::string> ChooseApiVersion(std::string_view engine_min,
                                             std::string_view engine_max) {
  auto min = ParseVersion(engine_min);
  auto max = ParseVersion(engine_max);
  if (!max)
    return core::InternalError("docker: engine reports API version '" + std::string(engine_max) +
                               "'");
  if (!min) min = std::make_pair(1, 0);  // Old engines omit MinAPIVersion.
  auto preferred = *ParseVersion(kPreferredApiVersion);
  auto minimum = *ParseVersion(kMinimumApiVersion);
  if (*max < minimum)
    return core::FailedPreconditionError("docker: engine API " + std::string(engine_max) +
                                         " is older than the required " + kMinimumApiVersion);
  if (preferred < *min) return std::string(engine_min);
  if (*max < preferred) return std::string(engine_max);
  return std::string(kPreferredApiVersion);
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    int extra = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= static_cast<size_t>(extra)) return false;
    for (int k = 1; k <= extra; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Reject overlong forms, surrogates and code points past U+10FFFF.
    static constexpr uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[extra] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    i += extra + 1;
  }
  return true;
}

}  // namespace sked::exec::detail
