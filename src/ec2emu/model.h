// File: ec2emu/model.h
//
// The emulator's EC2 state: instances, their reservations and one-time spot
// requests, the ClientToken map, and the injected faults. It is the part of
// sked-ec2-emulator that decides what EC2 would answer; it knows no HTTP, XML,
// processes or sockets, and it never reads a clock: every call takes `now`,
// so tests drive time by passing it.
//
// Lifecycle of an instance (specs/ec2-spot.md section 5):
//
//   pending(0)       RunInstances creates it here.
//   running(16)      Advance() moves it here once `pending_delay` has passed.
//   shutting-down(32) TerminateInstances (Client.UserInitiatedShutdown),
//                    Shutdown() (Client.InstanceInitiatedShutdown), or
//                    Advance() when a spot interruption's warning has run out
//                    (Server.SpotInstanceTermination) move it here.
//   terminated(48)   MarkTerminated() (called by the emulator once the
//                    instance's processes are gone) or Kill()
//                    (Server.InternalError, at once) move it here. Terminated
//                    instances stay listed.
//
// Errors are EC2 errors carried in core::Status (ec2emu/ec2_error.h).
//
// Thread safety: Ec2Model is safe for concurrent use from multiple threads
// without external synchronization; every method returns copies.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "ec2emu/form.h"
#include "ec2emu/internal/util.h"

namespace sked::ec2emu {

enum class InstanceState { kPending, kRunning, kShuttingDown, kTerminated };

// 0, 16, 32, 48.
int StateCode(InstanceState state);
// "pending", "running", "shutting-down", "terminated".
const char* StateName(InstanceState state);

struct Tag {
  std::string key;
  std::string value;
  bool operator==(const Tag&) const = default;
};

// A one-time spot request, made by RunInstances with
// InstanceMarketOptions.MarketType=spot.
struct SpotRequest {
  std::string id;  // "sir-" + 8 lower-case alphanumerics.
  // active while the instance lives; closed after an interruption or any
  // termination.
  std::string state;
  // fulfilled, then instance-terminated-no-capacity (interruption),
  // instance-terminated-by-user (TerminateInstances or an OS shutdown) or
  // instance-terminated-by-service (Kill).
  std::string status_code;
  std::string status_message;
  core::Time status_update_time;
  core::Time create_time;
  std::string type = "one-time";
  std::string interruption_behavior = "terminate";
  std::string max_price;  // As given; empty: the on-demand price.
  std::vector<Tag> tags;  // TagSpecification with ResourceType spot-instances-request.
};

struct SecurityGroup {
  std::string id;
  std::string name;
};

struct Instance {
  std::string instance_id;     // "i-" + 17 hex.
  std::string reservation_id;  // "r-" + 17 hex.
  std::string image_id;
  std::string instance_type;
  std::string subnet_id;
  std::string vpc_id;
  std::string availability_zone;
  std::string private_ip = "127.0.0.1";
  std::string key_name;
  std::vector<SecurityGroup> security_groups;
  std::string iam_profile_arn;  // Empty: no instance profile.
  std::string iam_profile_id;
  // The last path part of the profile name or ARN; the IMDS role name.
  std::string role_name;
  bool has_user_data = false;
  std::string user_data;  // Decoded bytes.
  std::string client_token;
  std::vector<Tag> tags;
  std::string shutdown_behavior = "stop";  // InstanceInitiatedShutdownBehavior as given.

  InstanceState state = InstanceState::kPending;
  std::string state_reason_code;  // "" until the instance stops.
  std::string state_reason_message;
  std::string reason;  // Free text, "User initiated (2026-01-02 03:04:05 GMT)".
  core::Time launch_time;
  core::Time running_at;  // launch_time + pending delay.

  std::optional<SpotRequest> spot;  // Set for spot instances only.

  // MetadataOptions. Default: HttpTokens required, endpoint enabled, hop 1.
  std::string http_tokens = "required";
  std::string http_endpoint = "enabled";
  int hop_limit = 1;

  // Spot notices served by IMDS: the interruption's action time, and the
  // moment the rebalance recommendation appeared.
  std::optional<core::Time> interruption_time;
  std::optional<core::Time> rebalance_time;

  // DescribeInstances calls naming this id that still answer NotFound (the
  // not_found_describes fault, copied at launch).
  int not_found_describes = 0;

  // Filled in by the emulator's runtime; empty in a bare model.
  std::string imds_endpoint;  // "http://127.0.0.1:PORT/".
  std::string work_dir;
  std::string console_log;

  bool spot_instance() const { return spot.has_value(); }
};

// RunInstances after parsing, before any check against the model.
struct RunParams {
  std::string image_id;
  std::string instance_type = "m1.small";
  int min_count = 1;
  int max_count = 1;
  std::string subnet_id;  // Empty: the default subnet.
  std::string availability_zone;  // Empty: "<region>a".
  std::vector<std::string> security_group_ids;
  std::vector<std::string> security_group_names;
  std::string iam_profile_name;
  std::string iam_profile_arn;
  bool has_user_data = false;
  std::string user_data;  // Decoded.
  std::string client_token;
  std::string key_name;
  bool spot = false;
  std::string spot_type = "one-time";
  std::string interruption_behavior = "terminate";
  std::string max_price;
  std::vector<Tag> instance_tags;
  std::vector<Tag> spot_request_tags;
  std::string http_tokens = "required";
  std::string http_endpoint = "enabled";
  int hop_limit = 1;
  std::string shutdown_behavior = "stop";
  // Every request parameter except ClientToken and DryRun, canonical; two
  // requests with one token must carry the same fingerprint.
  std::string fingerprint;
};

// The injectable EC2 failures (specs/ec2-spot.md section 8(b)).
struct Faults {
  // RunInstances for these instance types / subnets fails with
  // `capacity_error_code`.
  std::set<std::string> capacity_error_types;
  std::set<std::string> capacity_error_subnets;
  // InsufficientInstanceCapacity (500), SpotMaxPriceTooLow (400) or
  // MaxSpotInstanceCountExceeded (400).
  std::string capacity_error_code = "InsufficientInstanceCapacity";
  // The next N EC2 calls answer RequestLimitExceeded (503).
  int throttle_next = 0;
  // Each instance launched while this is K answers InvalidInstanceID.NotFound
  // to the first K DescribeInstances calls naming it by InstanceId.N.
  int not_found_describes = 0;
};

// True for the three codes Faults::capacity_error_code accepts.
bool IsCapacityErrorCode(std::string_view code);

inline constexpr std::string_view kDefaultAccountId = "123456789012";
inline constexpr std::string_view kDefaultSubnetId = "subnet-0e0a1b2c3d4e5f601";
inline constexpr std::string_view kDefaultVpcId = "vpc-0e0a1b2c3d4e5f601";
inline constexpr std::string_view kDefaultSecurityGroupId = "sg-0e0a1b2c3d4e5f601";
// RunInstances may launch at most this many instances in one call.
inline constexpr int kMaxInstancesPerRun = 20;

struct ModelOptions {
  std::string region = "us-east-1";
  std::string account_id = std::string(kDefaultAccountId);
  // pending -> running after this long. Default: 500 ms.
  std::chrono::microseconds pending_delay = std::chrono::milliseconds(500);
};

struct Reservation {
  std::string reservation_id;
  std::string owner_id;
  std::vector<Instance> instances;
};

struct DescribeQuery {
  std::vector<std::string> instance_ids;
  std::vector<Filter> filters;
  int max_results = 0;  // 0: no paging. Else 5..1000.
  std::string next_token;
};

struct DescribePage {
  std::vector<Instance> instances;  // In launch order.
  std::string next_token;           // Empty on the last page.
};

struct StateChange {
  std::string instance_id;
  InstanceState previous;
  InstanceState current;
};

struct SpotRequestView {
  SpotRequest request;
  std::string instance_id;
  std::string image_id;
  std::string instance_type;
  std::string subnet_id;
  std::string availability_zone;
};

// The state of one instance, for the runtime's polling.
struct InstanceStatus {
  std::string instance_id;
  InstanceState state;
};

class Ec2Model {
 public:
  explicit Ec2Model(ModelOptions options);
  Ec2Model(const Ec2Model&) = delete;
  Ec2Model& operator=(const Ec2Model&) = delete;

  const ModelOptions& options() const { return options_; }

  // Launches params.max_count instances in one reservation, all pending. With
  // a ClientToken seen before: the same reservation as it now stands when the
  // fingerprint matches (`*created` false), IdempotentParameterMismatch when
  // it does not. Capacity faults give their configured error.
  core::StatusOr<Reservation> RunInstances(const RunParams& params, core::Time now,
                                           bool* created = nullptr);

  // DescribeInstances. InvalidInstanceID.Malformed / .NotFound for a bad or
  // unknown id (the whole call fails); InvalidParameterValue for an unknown
  // filter, a MaxResults outside 5..1000 or a bad NextToken;
  // InvalidParameterCombination for MaxResults with InstanceId.N.
  core::StatusOr<DescribePage> DescribeInstances(const DescribeQuery& query, core::Time now);

  // TerminateInstances. One unknown id fails the call and terminates none.
  // Instances already shutting down or terminated are reported unchanged.
  core::StatusOr<std::vector<StateChange>> TerminateInstances(const std::vector<std::string>& ids,
                                                              core::Time now);

  // DescribeSpotInstanceRequests. InvalidSpotInstanceRequestID.NotFound for
  // an unknown id; InvalidParameterValue for an unknown filter.
  core::StatusOr<std::vector<SpotRequestView>> DescribeSpotInstanceRequests(
      const std::vector<std::string>& ids, const std::vector<Filter>& filters, core::Time now);

  // Control calls. Each returns the instance afterwards; NotFound (plain
  // core status) for an unknown id, FailedPrecondition when the instance is
  // in no state for it.
  //
  // Interrupt: spot only, pending or running. Serves the instance action at
  // now + warning, and the rebalance notice from now if none yet; the spot
  // request closes with instance-terminated-no-capacity; Advance() shuts
  // the instance down when the warning runs out. Repeating it keeps the
  // first notice.
  core::StatusOr<Instance> Interrupt(const std::string& id, std::chrono::microseconds warning,
                                     core::Time now);
  // Rebalance: the rebalance recommendation from now (pending or running).
  core::StatusOr<Instance> Rebalance(const std::string& id, core::Time now);
  // Kill: terminated at once with Server.InternalError, no notice. A no-op on
  // a terminated instance.
  core::StatusOr<Instance> Kill(const std::string& id, core::Time now);
  // Shutdown: the instance's OS asked to power off; shutting-down with
  // Client.InstanceInitiatedShutdown. A no-op once it is shutting down.
  core::StatusOr<Instance> Shutdown(const std::string& id, core::Time now);

  // Applies every transition due at `now`: pending -> running, and an
  // expired interruption warning -> shutting-down.
  void Advance(core::Time now);
  // shutting-down -> terminated. A no-op in any other state.
  void MarkTerminated(const std::string& id, core::Time now);

  // NotFound for an unknown id.
  core::StatusOr<Instance> Get(const std::string& id) const;
  // Every instance in launch order, terminated ones included.
  std::vector<Instance> List() const;
  std::vector<InstanceStatus> Statuses() const;
  // Records where the runtime put the instance (IMDS URL, work dir, log).
  void SetRuntimeInfo(const std::string& id, std::string imds_endpoint, std::string work_dir,
                      std::string console_log);

  Faults faults() const;
  void SetFaults(Faults faults);
  // Back to no faults, including the NotFound answers still owed for
  // instances launched under not_found_describes.
  void ClearFaults();
  // Consumes one throttled call; true when this call must be throttled.
  bool TakeThrottle();

 private:
  Instance* Find(const std::string& id);  // REQUIRES: mu_ held.
  void AdvanceLocked(core::Time now);     // REQUIRES: mu_ held.
  void CloseSpot(Instance& inst, std::string_view status, core::Time now);  // REQUIRES: mu_ held.

  const ModelOptions options_;
  internal::Random random_;

  mutable std::mutex mu_;
  std::vector<Instance> instances_;          // Guarded by mu_. Launch order.
  std::map<std::string, size_t> index_;      // Guarded by mu_. id -> position.
  struct TokenEntry {
    std::string reservation_id;
    std::string fingerprint;
  };
  std::map<std::string, TokenEntry> tokens_;  // Guarded by mu_.
  Faults faults_;                             // Guarded by mu_.
};

// True for "i-" + 8 or 17 lower-case hex digits, the shapes EC2 accepts.
bool IsWellFormedInstanceId(std::string_view id);

}  // namespace sked::ec2emu
