// File: aws/ec2_client.h
//
// A small EC2 Query API client with just the calls the EC2 Spot runner needs:
// launch one one-time spot instance (RunInstances with InstanceMarketOptions),
// describe instances by id or by filter (following nextToken), and terminate
// them. Requests are form POSTs signed with SigV4 (aws/sigv4.h); responses are
// parsed by local element name, so the namespace form (with or without a
// trailing slash, or none on errors) does not matter. Wire names are the ones
// in specs/ec2-spot.md sections 1, 3 and 4.
//
// Errors become core::Status codes chosen by what the caller should do next:
//
//   kResourceExhausted   no capacity in this pool: InsufficientInstanceCapacity,
//                        Unsupported, SpotMaxPriceTooLow, UnfulfillableCapacity,
//                        InsufficientCapacity. Try the next instance type / subnet
//                        now; this pool again only after a cool-down. Never
//                        retried inside the client, although EC2 sends some of
//                        them as HTTP 500.
//   kFailedPrecondition  an account quota: MaxSpotInstanceCountExceeded,
//                        InstanceLimitExceeded, VcpuLimitExceeded. Stop launching
//                        spot for minutes and surface it.
//   kUnavailable         throttling (RequestLimitExceeded, ...), 5xx and transport
//                        errors, after the client's own retries (exponential
//                        backoff with full jitter, same body and ClientToken,
//                        fresh signature) are used up.
//   kNotFound            InvalidInstanceID.NotFound.
//   kPermissionDenied    UnauthorizedOperation, AuthFailure.
//   kInvalidArgument     any other 4xx from EC2, and requests rejected before
//                        sending (empty image id, user data over 16 KiB, ...).
//   kInternal            a 2xx answer that is not the expected XML.
//
// An EC2 error's message reads "<Code>: <Message> [ec2 <Action> http=<status>
// request_id=<id>]"; Ec2ErrorOf() recovers the structured error from it.
//
// Thread safety: Ec2Client is safe for concurrent use from multiple threads
// without external synchronization; each call uses its own connection. The
// free functions have no shared state.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/credentials.h"  // CredentialsFromEnvironment, for existing callers.
#include "aws/sigv4.h"
#include "core/status.h"
#include "core/time.h"

namespace sked::aws {

// Every EC2 action this client sends. Call() refuses any other, so this list
// is what the scheduler's IAM policy must allow (docs/iam-policy.json; a test
// keeps the two equal).
inline constexpr std::string_view kEc2Actions[] = {
    "RunInstances", "DescribeInstances", "TerminateInstances", "DescribeSpotInstanceRequests"};

// Raw user data above this many bytes (before base64) is rejected, as EC2 does.
inline constexpr size_t kMaxUserDataBytes = 16384;
// ClientToken is at most this many ASCII characters.
inline constexpr size_t kMaxClientTokenLength = 64;

inline constexpr std::chrono::seconds kDefaultEc2Timeout{30};
inline constexpr int kDefaultEc2MaxRetries = 5;
inline constexpr std::chrono::milliseconds kDefaultEc2BackoffBase{100};
inline constexpr std::chrono::milliseconds kDefaultEc2BackoffMax{20000};

struct Ec2ClientOptions {
  // Absolute URL the requests are POSTed to. Default (empty):
  // "https://ec2.<region>.amazonaws.com/". Tests use "http://127.0.0.1:PORT/".
  std::string endpoint;
  // Signing region. Default: "us-east-1".
  std::string region = "us-east-1";
  Credentials credentials;
  // When set, asked for the credentials before every request instead of
  // `credentials` (a CredentialsProvider, whose role keys are refreshed
  // before they expire). Its error fails the call.
  std::function<core::StatusOr<Credentials>()> credentials_source;
  // Whole-request timeout for one attempt. Default: 30 s.
  std::chrono::seconds timeout = kDefaultEc2Timeout;
  // Retries after the first attempt for retryable failures. Default: 5, so at
  // most 6 requests per call.
  int max_retries = kDefaultEc2MaxRetries;
  // Retry n (0-based) sleeps a uniform random time in
  // [0, min(backoff_max, backoff_base * 2^n)] ("full jitter").
  // Defaults: 100 ms and 20 s.
  std::chrono::milliseconds backoff_base = kDefaultEc2BackoffBase;
  std::chrono::milliseconds backoff_max = kDefaultEc2BackoffMax;
  // Signing time. Default: the system clock. Wire it to core::Clock::Now.
  std::function<core::Time()> now;
  // How a backoff waits. Default: std::this_thread::sleep_for. Tests pass a
  // recorder so they never sleep.
  std::function<void(std::chrono::milliseconds)> sleep;
};

struct Tag {
  std::string key;
  std::string value;
  bool operator==(const Tag&) const = default;
};

// One DescribeInstances filter: Filter.N.Name and its values (ORed).
struct Ec2Filter {
  std::string name;  // "tag:sked:task-id", "instance-state-name", ...
  std::vector<std::string> values;
};

struct RunSpotParams {
  std::string image_id;       // Required.
  std::string instance_type;  // Required, e.g. "t3.micro".
  std::string subnet_id;      // Optional; EC2 picks the default VPC's when empty.
  std::vector<std::string> security_group_ids;
  // An instance profile name, or its ARN (sent as IamInstanceProfile.Arn when it
  // starts with "arn:"). Empty: none.
  std::string instance_profile_name;
  // Raw bytes; the client base64-encodes them. At most kMaxUserDataBytes.
  std::string user_data;
  // Idempotency key, at most 64 printable ASCII characters; derive it from task
  // id + attempt so a retried launch cannot start a second instance. Empty: the
  // client sends none (not recommended).
  std::string client_token;
  // Put on the instance at launch (TagSpecification.1, ResourceType=instance).
  std::vector<Tag> tags;
  // Spot price cap in USD per hour; unset means the on-demand price.
  std::optional<std::string> max_price;
};

struct Ec2Instance {
  std::string instance_id;
  std::string image_id;
  std::string instance_type;
  std::string state_name;         // pending, running, shutting-down, terminated, ...
  int state_code = 0;             // Low byte only (16 running, 48 terminated, ...).
  std::string state_reason_code;  // "Server.SpotInstanceTermination", ...
  std::string state_reason_message;
  std::string lifecycle;  // "spot", or "" for on-demand.
  std::string spot_instance_request_id;
  std::string client_token;
  std::string launch_time;  // ISO-8601 UTC as EC2 sends it.
  std::string availability_zone;
  std::string private_ip;
  std::string subnet_id;
  std::vector<Tag> tags;
};

struct DescribeInstancesParams {
  // InstanceId.N. One unknown id fails the whole call with kNotFound.
  std::vector<std::string> instance_ids;
  // Filter.N; filters AND, the values within one OR.
  std::vector<Ec2Filter> filters;
  // MaxResults per page (5..1000). Sent only when instance_ids is empty, since
  // EC2 refuses MaxResults together with InstanceId.N. 0: EC2's default.
  int page_size = 0;
};

// One spot instance request (DescribeSpotInstanceRequests).
struct SpotRequest {
  std::string id;           // "sir-..."
  std::string state;        // open, active, closed, cancelled, failed
  std::string status_code;  // fulfilled, marked-for-termination,
                            // instance-terminated-no-capacity, ...
  std::string instance_id;
};

// True for the status codes EC2 gives a request whose instance it is
// reclaiming or has reclaimed (specs/ec2-spot.md section 5).
bool IsSpotReclaim(std::string_view status_code);

// A structured EC2 error, as parsed from the error response.
struct Ec2Error {
  std::string code;     // "InsufficientInstanceCapacity".
  std::string message;  // EC2's text.
  std::string request_id;
  std::string action;  // "RunInstances".
  int http_status = 0;
};

class Ec2Client {
 public:
  explicit Ec2Client(Ec2ClientOptions options);
  Ec2Client(const Ec2Client&) = delete;
  Ec2Client& operator=(const Ec2Client&) = delete;

  // Launches exactly one one-time spot instance (MinCount=MaxCount=1,
  // InstanceMarketOptions spot/one-time, interruption and OS shutdown both
  // terminate, IMDSv2 required with hop limit 2 so containers reach IMDS).
  // Returns the instance as RunInstances reports it (normally "pending").
  // Errors: see the table at the top of this file; kResourceExhausted means
  // "this pool has no capacity, try the next one".
  core::StatusOr<Ec2Instance> RunSpotInstance(const RunSpotParams& params);

  // All instances matching `params`, across every page (nextToken followed).
  // An empty result is OK. kNotFound when an id in instance_ids is unknown.
  core::StatusOr<std::vector<Ec2Instance>> DescribeInstances(const DescribeInstancesParams& params);
  core::StatusOr<std::vector<Ec2Instance>> DescribeInstances(
      const std::vector<std::string>& ids, const std::vector<Ec2Filter>& filters = {});

  // Terminates `ids`. OK also for instances already terminated but still
  // listed. kNotFound if any id is unknown (then none is terminated);
  // kInvalidArgument for an empty list.
  core::Status TerminateInstances(const std::vector<std::string>& ids);

  // The spot requests matching `filters` ("instance-id", "state",
  // "status-code", ...), across every page.
  core::StatusOr<std::vector<SpotRequest>> DescribeSpotInstanceRequests(
      const std::vector<Ec2Filter>& filters);

  // The URL requests go to (after applying the default).
  const std::string& endpoint() const { return endpoint_; }

 private:
  // Sends Action=<action> with `params`, retrying as documented; returns the
  // 2xx response body.
  core::StatusOr<std::string> Call(std::string_view action, const ParamList& params);
  std::chrono::milliseconds Backoff(int retry);

  Ec2ClientOptions options_;
  std::string endpoint_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;  // Guarded by rng_mu_ (jitter only).
};

// The EC2 error carried by `status`, if it came from an EC2 error response
// (nullopt for OK, transport failures and client-side validation errors).
std::optional<Ec2Error> Ec2ErrorOf(const core::Status& status);

// The form parameters RunSpotInstance sends after Action and Version, in order.
// kInvalidArgument for what EC2 would refuse anyway (see RunSpotParams).
core::StatusOr<ParamList> RunSpotInstanceParams(const RunSpotParams& params);

// Standard base64 with padding (RFC 4648 section 4).
std::string Base64Encode(std::string_view data);

namespace detail {

// Parses an EC2 error body (<Response><Errors><Error><Code>...). nullopt when
// `body` is not one. Exposed for tests.
std::optional<Ec2Error> ParseEc2ErrorXml(std::string_view body);

// The requests of a DescribeSpotInstanceRequests response body, and its
// nextToken. kInternal when `body` is not XML.
core::StatusOr<std::vector<SpotRequest>> ParseSpotRequestsXml(std::string_view body,
                                                              std::string* next_token);

// The instances of a RunInstances / DescribeInstances response body, and its
// nextToken (empty when last page). kInternal when `body` is not XML.
core::StatusOr<std::vector<Ec2Instance>> ParseInstancesXml(std::string_view body,
                                                           std::string* next_token);

}  // namespace detail
}  // namespace sked::aws
