// File: ec2emu/ec2_api.h
//
// The EC2 Query API front end: takes the HTTP request, checks its SigV4
// signature, applies the throttling fault, dispatches on Action (version
// 2016-11-15 only) and answers in EC2's XML. Actions: RunInstances,
// DescribeInstances, TerminateInstances, DescribeSpotInstanceRequests; any
// other is InvalidAction (400). A POST carries the parameters as a form body
// (`+` and `%20` both decode to a space); a GET carries them in the query.
//
// Thread safety: Ec2Api is safe for concurrent use from multiple threads
// without external synchronization (the model and key store are).
#pragma once

#include <functional>
#include <string>

#include "api/http_types.h"
#include "core/clock.h"
#include "core/logger.h"
#include "ec2emu/form.h"
#include "ec2emu/internal/util.h"
#include "ec2emu/model.h"
#include "ec2emu/sigv4_verify.h"

namespace sked::ec2emu {

struct Ec2ApiOptions {
  std::string region = "us-east-1";
  // Called after RunInstances created instances (not for an idempotent
  // repeat), before the answer is sent; the emulator starts their IMDS here.
  std::function<void(const Reservation&)> on_launched;
  // Default: discards.
  core::Logger* logger = nullptr;
};

class Ec2Api {
 public:
  // `model`, `keys` and `clock` must outlive the Ec2Api.
  Ec2Api(Ec2Model& model, const KeyStore& keys, const core::Clock& clock, Ec2ApiOptions options);

  api::HttpResponse Handle(const api::HttpRequest& request);

 private:
  core::StatusOr<std::string> Dispatch(const std::string& action, const Form& form,
                                       const std::string& request_id, core::Time now);
  core::StatusOr<std::string> RunInstances(const Form& form, const std::string& request_id,
                                           core::Time now);
  core::StatusOr<std::string> DescribeInstances(const Form& form, const std::string& request_id,
                                                core::Time now);
  core::StatusOr<std::string> TerminateInstances(const Form& form, const std::string& request_id,
                                                 core::Time now);
  core::StatusOr<std::string> DescribeSpotInstanceRequests(const Form& form,
                                                           const std::string& request_id,
                                                           core::Time now);

  Ec2Model& model_;
  const KeyStore& keys_;
  const core::Clock& clock_;
  const Ec2ApiOptions options_;
  internal::Random random_;
};

// Parses RunInstances' form into RunParams (specs/ec2-spot.md section 3).
// EC2 error statuses: MissingParameter, InvalidParameterValue (bad base64,
// user data over 16 KiB, a bad enum value or count), Unsupported (a
// persistent spot request), InvalidParameterCombination.
core::StatusOr<RunParams> ParseRunInstances(const Form& form);

}  // namespace sked::ec2emu
