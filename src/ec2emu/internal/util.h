// File: ec2emu/internal/util.h
//
// Small helpers shared inside ec2emu only: random identifiers, the time
// formats EC2 and IMDS print, base64, glob matching for filter values.
//
// Thread safety: Random is safe for concurrent use; the rest are pure.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "core/time.h"

namespace sked::ec2emu::internal {

// A seeded random source for identifiers, tokens and keys. Not a CSPRNG
// (nothing the emulator mints protects anything real).
class Random {
 public:
  Random();
  // `n` lower-case hex digits.
  std::string Hex(size_t n);
  // `n` characters from `alphabet`.
  std::string From(std::string_view alphabet, size_t n);
  // A version-4 UUID, lower case.
  std::string Uuid();

 private:
  std::mutex mu_;
  std::mt19937_64 rng_;  // Guarded by mu_.
};

inline constexpr std::string_view kUpperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
inline constexpr std::string_view kLowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789";
inline constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// "2026-01-02T03:04:05.000Z", as EC2 prints times.
std::string FormatEc2Time(core::Time t);
// "2026-01-02T03:04:05Z", as IMDS prints times.
std::string FormatIsoSeconds(core::Time t);
// "2026-01-02 03:04:05 GMT", as EC2 writes times into `reason`.
std::string FormatReasonTime(core::Time t);

// Standard base64 (RFC 4648 section 4). Padding is optional and ASCII
// whitespace is skipped; nullopt for any other byte outside the alphabet.
std::optional<std::string> Base64Decode(std::string_view in);
std::string Base64Encode(std::string_view in);

// EC2 filter value matching: '*' matches any run, '?' one character.
bool GlobMatch(std::string_view pattern, std::string_view text);

// Parses a non-negative decimal integer that fits in int; nullopt otherwise.
std::optional<int> ParseInt(std::string_view s);

}  // namespace sked::ec2emu::internal
