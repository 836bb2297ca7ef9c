// File: api/callback_token.h
//
// Per-attempt callback tokens: lower-case hex HMAC-SHA256 under the server's
// callback secret of "<task_id>:<attempt>". Any node with the same secret can
// check a token without storing it, and a token never outlives its attempt.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace sked::api {

std::string CallbackToken(std::string_view secret, std::string_view task_id, int attempt);

// Compares in constant time for equal lengths.
bool CallbackTokenMatches(std::string_view secret, std::string_view task_id, int attempt,
                          std::string_view presented);

// Hex HMAC-SHA256 of `body` under `key` (webhook signatures).
std::string HmacSha256Hex(std::string_view key, std::string_view body);

}  // namespace sked::api
