// File: core/ids.h
//
// Task ids: UUIDv7 (RFC 9562), time-ordered and URL-safe, from the injected time
// and random source so tests can pin them.
//
// Thread safety: NewUuidV7 is a pure function of its arguments.
#pragma once

#include <cstdint>
#include <string>

#include "core/time.h"

namespace sked::core {

// `rand_hi`/`rand_lo` supply the 74 random bits.
std::string NewUuidV7(Time now, uint64_t rand_hi, uint64_t rand_lo);

// True for a canonical lower-case UUID string (8-4-4-4-12 hex).
bool IsUuid(const std::string& s);

}  // namespace sked::core
