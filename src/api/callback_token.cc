#include "api/callback_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace sked::api {

std::string HmacSha256Hex(std::string_view key, std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xF]);
  }
  return out;
}

std::string CallbackToken(std::string_view secret, std::string_view task_id, int attempt) {
  std::string msg(task_id);
  msg += ':';
  msg += std::to_string(attempt);
  return HmacSha256Hex(secret, msg);
}

bool CallbackTokenMatches(std::string_view secret, std::string_view task_id, int attempt,
                          std::string_view presented) {
  std::string want = CallbackToken(secret, task_id, attempt);
  if (presented.size() != want.size()) return false;
  return CRYPTO_memcmp(want.data(), presented.data(), want.size()) == 0;
}

}  // namespace sked::api
