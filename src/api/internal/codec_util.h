// File: api/internal/codec_util.h
//
// Helpers shared by the api codecs (task_request, list_query, callback_request,
// legacy_json): UTF-8 checks, character counts, integer extraction from JSON
// numbers, field-path formatting and the InvalidArgument messages built from
// them. Used only inside src/api (namespace detail).
//
// Thread safety: free functions without shared state.
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/time.h"

namespace sked::api::detail {

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Number of code points. REQUIRES: IsValidUtf8(s).
size_t Utf8Length(std::string_view s);

// True when `s` holds a whitespace or control code point (C0, DEL, C1, and the
// Unicode white-space set). REQUIRES: IsValidUtf8(s).
bool HasWhitespaceOrControl(std::string_view s);

// `s` in double quotes, cut to at most `max_chars` code points (with "..."),
// for echoing user input in an error message. REQUIRES: IsValidUtf8(s).
std::string Quote(std::string_view s, size_t max_chars = 64);

// Walks `v` and returns InvalidArgument for the first string or object key that
// is not valid UTF-8, naming its path ("env.FOO: not valid UTF-8"). `path` is
// the path of `v` itself ("" for a request body).
core::Status CheckUtf8(const boost::json::value& v, const std::string& path);

// True when `s` is non-empty and every byte is in [A-Za-z0-9_.[]/-], i.e. it can
// appear in a message's field-path prefix (see error_json.h).
bool IsPathSafe(std::string_view s);

// "parent.key" ("key" when parent is empty).
std::string JoinPath(std::string_view parent, std::string_view key);

// `prefix` without its trailing '.', as the path of the object it prefixes.
std::string_view PathOfPrefix(std::string_view prefix);

// InvalidArgument("<path>: <reason>"), or just "<reason>" when path is empty.
core::Status Invalid(std::string_view path, std::string_view reason);

// The integer a JSON number holds: int64, uint64 within int64, or a double with
// no fraction within int64. nullopt for anything else.
std::optional<int64_t> AsInt64(const boost::json::value& v);

// Lower-case ASCII copy.
std::string ToLowerAscii(std::string_view s);

// A task type named loosely, as the original briefs do ("FizzBuzz", "Fizz Buzz",
// "fizz_buzz"): case-insensitive, ignoring ' ', '_' and '-'. Returns the type's
// API name, or nullopt when it names none of the eight types.
std::optional<std::string> NormalizeTypeWord(std::string_view word);

// Parses a decimal integer made only of ASCII digits (no sign), nullopt when
// empty, non-digit or overflowing.
std::optional<int64_t> ParseDigits(std::string_view s);

// The latest representable instant: 9999-12-31T23:59:59Z as epoch seconds.
inline constexpr int64_t kMaxEpochSeconds = 253402300799;

// Validates a time for the API: 0 <= t < 10000-01-01T00:00:00Z.
bool TimeInRange(core::Time t);

// Reason text shared by every time field.
inline constexpr std::string_view kNotATime = "not a time";
inline constexpr std::string_view kTimeOutOfRange =
    "out of range (epoch seconds 0 to 253402300799, years 1970 to 9999)";

// Parses an RFC 3339 string as core::ParseRfc3339 does, also undoing the
// form-decoding of '+' in an offset ("...:00 01:00" from a query string's
// "+01:00"). nullopt when not a time.
std::optional<core::Time> ParseRfc3339Lenient(std::string_view s);

}  // namespace sked::api::detail
