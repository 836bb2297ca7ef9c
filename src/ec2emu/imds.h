// File: ec2emu/imds.h
//
// One instance's IMDSv2 (specs/ec2-spot.md section 6), as an HTTP handler
// that the emulator serves on its own loopback port per instance:
//
//   PUT /latest/api/token   X-aws-ec2-metadata-token-ttl-seconds 1..21600
//                           (else 400), answered with the token and the TTL
//                           echoed; 403 with X-Forwarded-For or on a versioned
//                           path (/2021-03-23/api/token).
//   GET /latest/...         X-aws-ec2-metadata-token must be a live token
//                           (401 otherwise; without one, 401 only when the
//                           instance's HttpTokens is "required").
//
// Paths under /latest/: meta-data/ (listing), meta-data/instance-id,
// instance-type, instance-life-cycle, ami-id, ami-launch-index, hostname,
// local-hostname, local-ipv4, reservation-id, security-groups,
// placement/availability-zone, placement/region, iam/info,
// iam/security-credentials/ and .../<role>, spot/instance-action and
// spot/termination-time (404 until an interruption), events/recommendations/
// rebalance (404 until an interruption or a rebalance notice), user-data
// (404 if none), dynamic/instance-identity/document. A path ending in '/' (or
// naming a directory) lists its children, one per line, directories with a
// trailing '/'.
//
// Thread safety: ImdsService is safe for concurrent use from multiple
// threads without external synchronization.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "api/http_types.h"
#include "aws/sigv4.h"
#include "core/time.h"
#include "ec2emu/internal/util.h"
#include "ec2emu/model.h"

namespace sked::ec2emu {

inline constexpr int kMaxImdsTokenTtlSeconds = 21600;

// The instance role's credentials as IMDS serves them.
struct RoleCredentials {
  aws::Credentials credentials;
  core::Time last_updated;
  core::Time expiration;
};

class ImdsService {
 public:
  // `model` must outlive the service. `role` is set when the instance has an
  // instance profile. `now` is the wall clock.
  ImdsService(const Ec2Model& model, std::string instance_id, std::optional<RoleCredentials> role,
              std::function<core::Time()> now);

  api::HttpResponse Handle(const api::HttpRequest& request);

 private:
  // The leaves under /latest/ for the instance as it now is.
  std::map<std::string, std::string> Leaves(const Instance& instance) const;
  bool TokenValid(const std::string& token, core::Time now);

  const Ec2Model& model_;
  const std::string instance_id_;
  const std::optional<RoleCredentials> role_;
  const std::function<core::Time()> now_;
  internal::Random random_;

  std::mutex mu_;
  std::map<std::string, core::Time> tokens_;  // Guarded by mu_. token -> expiry.
};

}  // namespace sked::ec2emu
