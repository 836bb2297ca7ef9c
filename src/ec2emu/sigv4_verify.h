// File: ec2emu/sigv4_verify.h
//
// The emulator's side of SigV4 (specs/ec2-spot.md section 2): the keys it
// accepts, and the check of a received request's Authorization header. The
// signature is recomputed with aws/sigv4.h, the same code our client signs
// with and that tests prove byte-identical to botocore, from what arrived: the
// method, the `host` header, exactly the headers named in SignedHeaders, the
// path and query as sent, the body, X-Amz-Date and the credential scope.
//
// Thread safety: KeyStore is safe for concurrent use from multiple threads
// without external synchronization. VerifySigV4 has no state of its own.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "api/http_types.h"
#include "aws/sigv4.h"
#include "core/status.h"
#include "core/time.h"
#include "ec2emu/internal/util.h"

namespace sked::ec2emu {

// A request's X-Amz-Date may be this far from the emulator's clock.
inline constexpr std::chrono::minutes kDefaultMaxClockSkew{15};
// Minted instance-role credentials are valid this long.
inline constexpr std::chrono::hours kMintedCredentialsLifetime{6};

class KeyStore {
 public:
  // Accepts `access_key_id` with `secret` for ever, without a session token.
  void AddStatic(const std::string& access_key_id, const std::string& secret);

  // Makes temporary credentials (ASIA... key, secret, session token) that are
  // accepted until `expiration`, only together with their session token.
  aws::Credentials Mint(core::Time expiration);

  struct Key {
    std::string secret;
    std::string session_token;             // Empty for static keys.
    std::optional<core::Time> expiration;  // Set for minted keys.
  };
  std::optional<Key> Find(const std::string& access_key_id) const;

 private:
  internal::Random random_;
  mutable std::mutex mu_;
  std::map<std::string, Key> keys_;  // Guarded by mu_.
};

struct VerifyOptions {
  std::string region;              // The credential scope must name it.
  std::string service = "ec2";
  core::Time now;
  std::chrono::seconds max_skew = kDefaultMaxClockSkew;
};

// OK when `request` carries a valid SigV4 Authorization header from a key in
// `keys`. Otherwise an EC2 error status (ec2emu/ec2_error.h):
// MissingAuthenticationToken when there is no Authorization header, else
// AuthFailure (unknown key, wrong signature, wrong scope, X-Amz-Date missing
// or unsigned or too far from `now`, a session token that is unsigned or does
// not belong to the key, expired temporary credentials, an
// X-Amz-Content-Sha256 that is not the body's hash). The message names the
// reason but never a secret.
core::Status VerifySigV4(const api::HttpRequest& request, const KeyStore& keys,
                         const VerifyOptions& options);

}  // namespace sked::ec2emu
