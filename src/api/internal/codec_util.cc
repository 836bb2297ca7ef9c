#include "api/internal/codec_util.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <limits>

namespace sked::api::detail {
namespace {

// Decodes the code point at s[i] and advances i. REQUIRES: valid UTF-8.
char32_t NextCodePoint(std::string_view s, size_t& i) {
  auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    ++i;
    return b;
  }
  int n = b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : 1;
  char32_t cp = b & (0x3F >> n);
  for (int k = 1; k <= n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n + 1;
  return cp;
}

bool IsWhitespaceOrControl(char32_t c) {
  if (c <= 0x20 || c == 0x7F) return true;  // C0 controls, space, DEL
  if (c >= 0x80 && c <= 0xA0) return true;  // C1 controls, NEL, NBSP
  switch (c) {
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
    case 0xFEFF:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200B;
  }
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;  // no overlongs
      if (b == 0xED) hi = 0x9F;  // no surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;  // no overlongs
      if (b == 0xF4) hi = 0x8F;  // <= U+10FFFF
    } else {
      return false;
    }
    if (i + len > n) return false;
    auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b1 < lo || b1 > hi) return false;
    for (size_t k = 2; k < len; ++k) {
      auto bk = static_cast<unsigned char>(s[i + k]);
      if (bk < 0x80 || bk > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

size_t Utf8Length(std::string_view s) {
  size_t count = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++count;
  }
  return count;
}

bool HasWhitespaceOrControl(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (IsWhitespaceOrControl(NextCodePoint(s, i))) return true;
  }
  return false;
}

std::string Quote(std::string_view s, size_t max_chars) {
  std::string out = "\"";
  size_t i = 0, chars = 0;
  while (i < s.size() && chars < max_chars) {
    size_t start = i;
    NextCodePoint(s, i);
    out.append(s.substr(start, i - start));
    ++chars;
  }
  if (i < s.size()) out += "...";
  out += '"';
  return out;
}

core::Status CheckUtf8(const boost::json::value& v, const std::string& path) {
  switch (v.kind()) {
    case boost::json::kind::string: {
      const auto& s = v.get_string();
      if (!IsValidUtf8(std::string_view(s.data(), s.size())))
        return Invalid(path.empty() ? "request body" : path, "not valid UTF-8");
      return core::OkStatus();
    }
    case boost::json::kind::array: {
      const auto& a = v.get_array();
      for (size_t i = 0; i < a.size(); ++i) {
        RETURN_IF_ERROR(CheckUtf8(a[i], path + "[" + std::to_string(i) + "]"));
      }
      return core::OkStatus();
    }
    case boost::json::kind::object: {
      for (const auto& kv : v.get_object()) {
        std::string_view key(kv.key().data(), kv.key().size());
        if (!IsValidUtf8(key)) {
          return core::InvalidArgumentError((path.empty() ? std::string("request body") : path) +
                                            ": a key is not valid UTF-8");
        }
        RETURN_IF_ERROR(CheckUtf8(kv.value(), JoinPath(path, key)));
      }
      return core::OkStatus();
    }
    default:
      return core::OkStatus();
  }
}

bool IsPathSafe(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '[' || c == ']' || c == '/' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string JoinPath(std::string_view parent, std::string_view key) {
  std::string out(parent);
  if (!out.empty()) out += '.';
  out.append(key);
  return out;
}

std::string_view PathOfPrefix(std::string_view prefix) {
  if (!prefix.empty() && prefix.back() == '.') prefix.remove_suffix(1);
  return prefix;
}

core::Status Invalid(std::string_view path, std::string_view reason) {
  std::string m;
  if (!path.empty()) {
    m.append(path);
    m += ": ";
  }
  m.append(reason);
  return core::InvalidArgumentError(std::move(m));
}

std::optional<int64_t> AsInt64(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::int64:
      return v.get_int64();
    case boost::json::kind::uint64: {
      uint64_t u = v.get_uint64();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(u);
    }
    case boost::json::kind::double_: {
      // 3.0 and 1e2 are integers written as JSON numbers with a fraction or
      // exponent; accept them, but nothing with a fractional part.
      double d = v.get_double();
      if (!(d >= -9.2e18 && d <= 9.2e18)) return std::nullopt;  // also rejects NaN
      auto i = static_cast<int64_t>(d);
      if (static_cast<double>(i) != d) return std::nullopt;
      return i;
    }
    default:
      return std::nullopt;
  }
}

std::string ToLowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::optional<std::string> NormalizeTypeWord(std::string_view word) {
  static constexpr std::string_view kTypes[] = {"fizz", "buzz", "fizzbuzz", "foo",
                                                "bar",  "baz",  "noop",     "container"};
  std::string w;
  for (char c : ToLowerAscii(word)) {
    if (c != ' ' && c != '_' && c != '-') w += c;
  }
  for (std::string_view t : kTypes) {
    if (t == w) return w;
  }
  return std::nullopt;
}

std::optional<int64_t> ParseDigits(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;  // 18 digits cannot overflow
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

bool TimeInRange(core::Time t) {
  int64_t us = core::ToMicros(t);
  return us >= 0 && us < (kMaxEpochSeconds + 1) * 1'000'000;
}

std::optional<core::Time> ParseRfc3339Lenient(std::string_view s) {
  if (auto t = core::ParseRfc3339(s)) return t;
  // A query string decodes '+' to ' ', so "+01:00" arrives as " 01:00".
  if (s.size() >= 25 && s[s.size() - 6] == ' ') {
    std::string fixed(s);
    fixed[fixed.size() - 6] = '+';
    return core::ParseRfc3339(fixed);
  }
  return std::nullopt;
}

}  // namespace sked::api::detail
