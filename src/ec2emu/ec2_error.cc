// File: ec2emu/ec2_error.cc
#include "ec2emu/ec2_error.h"

namespace sked::ec2emu {
namespace {

using core::StatusCode;

// The canonical code for an EC2 error code; what Ec2Client would map it to.
StatusCode CanonicalCode(std::string_view code) {
  if (code.ends_with(".NotFound")) return StatusCode::kNotFound;
  if (code == "AuthFailure" || code == "MissingAuthenticationToken") {
    return StatusCode::kUnauthenticated;
  }
  if (code == "UnauthorizedOperation") return StatusCode::kPermissionDenied;
  if (code == "InsufficientInstanceCapacity" || code == "SpotMaxPriceTooLow") {
    return StatusCode::kResourceExhausted;
  }
  if (code == "MaxSpotInstanceCountExceeded" || code == "InstanceLimitExceeded") {
    return StatusCode::kFailedPrecondition;
  }
  if (code == "RequestLimitExceeded" || code == "Unavailable") return StatusCode::kUnavailable;
  if (code == "InternalError") return StatusCode::kInternal;
  if (code == "DryRunOperation") return StatusCode::kAborted;
  return StatusCode::kInvalidArgument;
}

}  // namespace

core::Status Ec2ErrorStatus(std::string_view code, std::string_view message) {
  return core::Status(CanonicalCode(code), std::string(code) + ": " + std::string(message));
}

Ec2ErrorParts SplitEc2Error(const core::Status& status) {
  const std::string& m = status.message();
  size_t sep = m.find(": ");
  if (status.ok() || sep == std::string::npos || sep == 0 ||
      m.find_first_of(" \n") < sep) {
    return {"InternalError", "An internal error has occurred"};
  }
  return {m.substr(0, sep), m.substr(sep + 2)};
}

unsigned Ec2HttpStatus(std::string_view code) {
  if (code == "AuthFailure" || code == "MissingAuthenticationToken") return 401;
  if (code == "UnauthorizedOperation") return 403;
  if (code == "DryRunOperation") return 412;
  if (code == "InsufficientInstanceCapacity" || code == "InternalError") return 500;
  if (code == "RequestLimitExceeded" || code == "Unavailable") return 503;
  return 400;
}

}  // namespace sked::ec2emu
