// File: ec2emu/ec2_error.h
//
// How the emulator carries an EC2 error code (specs/ec2-spot.md section 4)
// through core::Status: the message reads "<Code>: <Message>", the canonical
// status code is chosen from the EC2 code by what a caller should do about a
// retry, and the HTTP status comes from one table. The EC2 front end turns the
// status back into the <Response><Errors> body.
//
// Thread safety: free functions without shared state.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace sked::ec2emu {

// A non-OK Status whose message is "<code>: <message>".
core::Status Ec2ErrorStatus(std::string_view code, std::string_view message);

struct Ec2ErrorParts {
  std::string code;     // "InvalidInstanceID.NotFound".
  std::string message;  // The text after "<code>: ".
};

// Splits a status made by Ec2ErrorStatus. Any other non-OK status becomes
// InternalError with a generic message, so no internal text leaks to clients.
Ec2ErrorParts SplitEc2Error(const core::Status& status);

// The HTTP status EC2 answers `code` with: 401 AuthFailure and
// MissingAuthenticationToken, 403 UnauthorizedOperation, 412 DryRunOperation,
// 500 InsufficientInstanceCapacity / InternalError, 503 RequestLimitExceeded /
// Unavailable, 400 for every other code.
unsigned Ec2HttpStatus(std::string_view code);

}  // namespace sked::ec2emu
