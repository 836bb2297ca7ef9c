// File: core/time.h
//
// sked's one notion of wall time: microseconds since the Unix epoch, UTC. Stores
// persist it as an integer (SQLite) or timestamptz (PostgreSQL); the API prints it
// as RFC 3339 with milliseconds. Parsing accepts RFC 3339 with `Z` or an offset.
//
// Thread safety: free functions without shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sked::core {

using Duration = std::chrono::microseconds;
using Time = std::chrono::sys_time<Duration>;

inline Time TimeFromMicros(int64_t us) { return Time(Duration(us)); }
inline int64_t ToMicros(Time t) { return t.time_since_epoch().count(); }
inline Time TimeFromSeconds(int64_t s) { return Time(std::chrono::seconds(s)); }

// "2026-11-23T19:00:00.123Z": milliseconds, always UTC.
std::string FormatRfc3339(Time t);

// Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)"; 't' and 'z' too, and a
// space instead of 'T'. Returns nullopt for anything else, including an
// impossible date (2026-02-30) or a year outside 1970..9999.
std::optional<Time> ParseRfc3339(std::string_view s);

}  // namespace sked::core
