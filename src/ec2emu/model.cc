// File: ec2emu/model.cc
#include "ec2emu/model.h"

#include <algorithm>
#include <array>

#include "ec2emu/ec2_error.h"

namespace sked::ec2emu {
namespace {

using core::Status;
using core::StatusOr;
using core::Time;

constexpr std::string_view kPagePrefix = "emu-page-";
constexpr char kOnDemandPrice[] = "0.010400";

constexpr std::array<std::string_view, 3> kCapacityCodes = {
    "InsufficientInstanceCapacity", "SpotMaxPriceTooLow", "MaxSpotInstanceCountExceeded"};

std::string SpotStatusMessage(std::string_view status) {
  if (status == "fulfilled") return "Your spot request is fulfilled.";
  if (status == "instance-terminated-no-capacity") {
    return "Spot Instance terminated due to no available capacity.";
  }
  if (status == "instance-terminated-by-user") return "Spot Instance terminated by user.";
  if (status == "instance-terminated-by-service") {
    return "Spot Instance terminated by the service.";
  }
  return std::string(status);
}

void SetStopReason(Instance& inst, std::string_view code, std::string_view text,
                   std::string reason) {
  inst.state_reason_code = std::string(code);
  inst.state_reason_message = std::string(code) + ": " + std::string(text);
  inst.reason = std::move(reason);
}

bool IsLive(InstanceState s) { return s == InstanceState::kPending || s == InstanceState::kRunning; }

// The last path part of an instance profile name or ARN.
std::string RoleNameOf(std::string_view name_or_arn) {
  size_t slash = name_or_arn.rfind('/');
  return std::string(slash == std::string_view::npos ? name_or_arn : name_or_arn.substr(slash + 1));
}

std::string IdList(const std::vector<std::string>& ids) {
  std::string out;
  for (const std::string& id : ids) {
    if (!out.empty()) out += ", ";
    out += id;
  }
  return out;
}

Status InstanceNotFound(const std::vector<std::string>& ids) {
  if (ids.size() == 1) {
    return Ec2ErrorStatus("InvalidInstanceID.NotFound",
                          "The instance ID '" + ids[0] + "' does not exist");
  }
  return Ec2ErrorStatus("InvalidInstanceID.NotFound",
                        "The instance IDs '" + IdList(ids) + "' do not exist");
}

Status CheckWellFormed(const std::vector<std::string>& ids) {
  for (const std::string& id : ids) {
    if (!IsWellFormedInstanceId(id)) {
      return Ec2ErrorStatus("InvalidInstanceID.Malformed", "Invalid id: \"" + id + "\"");
    }
  }
  return core::OkStatus();
}

// The instance's values for a DescribeInstances filter name; nullopt when the
// name is not one the emulator knows.
std::optional<std::vector<std::string>> InstanceValues(const Instance& i, std::string_view name) {
  using V = std::vector<std::string>;
  auto opt = [](const std::string& s) { return s.empty() ? V{} : V{s}; };
  if (name.starts_with("tag:")) {
    V out;
    for (const Tag& t : i.tags) {
      if (t.key == name.substr(4)) out.push_back(t.value);
    }
    return out;
  }
  if (name == "instance-id") return V{i.instance_id};
  if (name == "instance-state-name") return V{StateName(i.state)};
  if (name == "instance-state-code") return V{std::to_string(StateCode(i.state))};
  if (name == "instance-type") return V{i.instance_type};
  if (name == "image-id") return V{i.image_id};
  if (name == "subnet-id") return V{i.subnet_id};
  if (name == "vpc-id") return V{i.vpc_id};
  if (name == "availability-zone" || name == "placement.availability-zone") {
    return V{i.availability_zone};
  }
  if (name == "reservation-id") return V{i.reservation_id};
  if (name == "client-token") return opt(i.client_token);
  if (name == "private-ip-address") return V{i.private_ip};
  if (name == "key-name") return opt(i.key_name);
  if (name == "instance-lifecycle") return i.spot ? V{"spot"} : V{};
  if (name == "spot-instance-request-id") return i.spot ? V{i.spot->id} : V{};
  if (name == "state-reason-code") return opt(i.state_reason_code);
  if (name == "iam-instance-profile.arn") return opt(i.iam_profile_arn);
  if (name == "tag-key" || name == "tag-value") {
    V out;
    for (const Tag& t : i.tags) out.push_back(name == "tag-key" ? t.key : t.value);
    return out;
  }
  if (name == "group-id" || name == "instance.group-id" || name == "group-name" ||
      name == "instance.group-name") {
    bool ids = name.ends_with("group-id");
    V out;
    for (const SecurityGroup& g : i.security_groups) out.push_back(ids ? g.id : g.name);
    return out;
  }
  return std::nullopt;
}

std::optional<std::vector<std::string>> SpotValues(const SpotRequestView& v,
                                                   std::string_view name) {
  using V = std::vector<std::string>;
  const SpotRequest& r = v.request;
  if (name.starts_with("tag:")) {
    V out;
    for (const Tag& t : r.tags) {
      if (t.key == name.substr(4)) out.push_back(t.value);
    }
    return out;
  }
  if (name == "spot-instance-request-id") return V{r.id};
  if (name == "instance-id") return V{v.instance_id};
  if (name == "state") return V{r.state};
  if (name == "status-code") return V{r.status_code};
  if (name == "type") return V{r.type};
  if (name == "launched-availability-zone") return V{v.availability_zone};
  if (name == "launch.instance-type") return V{v.instance_type};
  if (name == "launch.image-id") return V{v.image_id};
  if (name == "tag-key" || name == "tag-value") {
    V out;
    for (const Tag& t : r.tags) out.push_back(name == "tag-key" ? t.key : t.value);
    return out;
  }
  return std::nullopt;
}

// Values OR within a filter, filters AND; an attribute matches a value by
// glob ('*', '?').
template <typename T, typename F>
bool MatchesAll(const T& item, const std::vector<Filter>& filters, F values_of) {
  for (const Filter& f : filters) {
    std::vector<std::string> have = *values_of(item, f.name);
    bool any = false;
    for (const std::string& want : f.values) {
      for (const std::string& h : have) any = any || internal::GlobMatch(want, h);
    }
    if (!any) return false;
  }
  return true;
}

template <typename T, typename F>
Status CheckFilterNames(const std::vector<Filter>& filters, const T& probe, F values_of) {
  for (const Filter& f : filters) {
    if (!values_of(probe, f.name)) {
      return Ec2ErrorStatus("InvalidParameterValue", "The filter '" + f.name + "' is invalid");
    }
    if (f.values.empty()) {
      return Ec2ErrorStatus("InvalidParameterValue",
                            "The filter '" + f.name + "' needs at least one value");
    }
  }
  return core::OkStatus();
}

}  // namespace

int StateCode(InstanceState state) {
  switch (state) {
    case InstanceState::kPending:
      return 0;
    case InstanceState::kRunning:
      return 16;
    case InstanceState::kShuttingDown:
      return 32;
    case InstanceState::kTerminated:
      return 48;
  }
  return 0;
}

const char* StateName(InstanceState state) {
  switch (state) {
    case InstanceState::kPending:
      return "pending";
    case InstanceState::kRunning:
      return "running";
    case InstanceState::kShuttingDown:
      return "shutting-down";
    case InstanceState::kTerminated:
      return "terminated";
  }
  return "pending";
}

bool IsCapacityErrorCode(std::string_view code) {
  return std::find(kCapacityCodes.begin(), kCapacityCodes.end(), code) != kCapacityCodes.end();
}

bool IsWellFormedInstanceId(std::string_view id) {
  if (!id.starts_with("i-")) return false;
  std::string_view hex = id.substr(2);
  if (hex.size() != 8 && hex.size() != 17) return false;
  return std::all_of(hex.begin(), hex.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Ec2Model::Ec2Model(ModelOptions options) : options_(std::move(options)) {}

Instance* Ec2Model::Find(const std::string& id) {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : &instances_[it->second];
}

void Ec2Model::CloseSpot(Instance& inst, std::string_view status, Time now) {
  if (!inst.spot || inst.spot->state != "active") return;
  inst.spot->state = "closed";
  inst.spot->status_code = std::string(status);
  inst.spot->status_message = SpotStatusMessage(status);
  inst.spot->status_update_time = now;
}

StatusOr<Reservation> Ec2Model::RunInstances(const RunParams& params, Time now, bool* created) {
  if (created != nullptr) *created = false;
  std::lock_guard<std::mutex> lock(mu_);
  AdvanceLocked(now);

  if (!params.client_token.empty()) {
    auto it = tokens_.find(params.client_token);
    if (it != tokens_.end()) {
      if (it->second.fingerprint != params.fingerprint) {
        return Ec2ErrorStatus("IdempotentParameterMismatch",
                              "Arguments on this idempotent request are inconsistent with "
                              "arguments used in previous request(s).");
      }
      Reservation r{it->second.reservation_id, options_.account_id, {}};
      for (const Instance& i : instances_) {
        if (i.reservation_id == r.reservation_id) r.instances.push_back(i);
      }
      return r;
    }
  }

  if (params.image_id.empty()) {
    return Ec2ErrorStatus("MissingParameter", "The request must contain the parameter ImageId");
  }
  if (params.min_count < 1 || params.max_count < params.min_count) {
    return Ec2ErrorStatus("InvalidParameterValue",
                          "MinCount must be at least 1 and at most MaxCount");
  }
  if (params.max_count > kMaxInstancesPerRun) {
    return Ec2ErrorStatus("InstanceLimitExceeded",
                          "You have requested more instances (" +
                              std::to_string(params.max_count) +
                              ") than your current instance limit of " +
                              std::to_string(kMaxInstancesPerRun) + " allows.");
  }

  const std::string subnet =
      params.subnet_id.empty() ? std::string(kDefaultSubnetId) : params.subnet_id;
  const std::string az =
      params.availability_zone.empty() ? options_.region + "a" : params.availability_zone;
  if (faults_.capacity_error_types.count(params.instance_type) > 0 ||
      faults_.capacity_error_subnets.count(subnet) > 0) {
    const std::string& code = faults_.capacity_error_code;
    if (code == "SpotMaxPriceTooLow") {
      return Ec2ErrorStatus(code, "Your Spot request price of " +
                                      (params.max_price.empty() ? "0.001" : params.max_price) +
                                      " is lower than the minimum required Spot request "
                                      "fulfillment price of " +
                                      kOnDemandPrice + ".");
    }
    if (code == "MaxSpotInstanceCountExceeded") {
      return Ec2ErrorStatus(code, "Max spot instance count exceeded");
    }
    if (params.spot) {
      return Ec2ErrorStatus(code, "There is no Spot capacity available that matches your request.");
    }
    return Ec2ErrorStatus(code, "We currently do not have sufficient " + params.instance_type +
                                    " capacity in the Availability Zone you requested (" + az +
                                    "). Our system will be working on provisioning additional "
                                    "capacity.");
  }

  Reservation r{"r-" + random_.Hex(17), options_.account_id, {}};
  std::string profile_arn = params.iam_profile_arn;
  if (profile_arn.empty() && !params.iam_profile_name.empty()) {
    profile_arn =
        "arn:aws:iam::" + options_.account_id + ":instance-profile/" + params.iam_profile_name;
  }
  std::vector<SecurityGroup> groups;
  for (const std::string& id : params.security_group_ids) groups.push_back({id, id});
  for (const std::string& name : params.security_group_names) {
    groups.push_back({"sg-" + random_.Hex(17), name});
  }
  if (groups.empty()) groups.push_back({std::string(kDefaultSecurityGroupId), "default"});

  for (int n = 0; n < params.max_count; ++n) {
    Instance i;
    i.instance_id = "i-" + random_.Hex(17);
    i.reservation_id = r.reservation_id;
    i.image_id = params.image_id;
    i.instance_type = params.instance_type;
    i.subnet_id = subnet;
    i.vpc_id = std::string(kDefaultVpcId);
    i.availability_zone = az;
    i.key_name = params.key_name;
    i.security_groups = groups;
    i.iam_profile_arn = profile_arn;
    if (!profile_arn.empty()) {
      i.iam_profile_id = "AIPA" + random_.From(internal::kUpperAlnum, 17);
      i.role_name = RoleNameOf(params.iam_profile_arn.empty() ? params.iam_profile_name
                                                               : params.iam_profile_arn);
    }
    i.has_user_data = params.has_user_data;
    i.user_data = params.user_data;
    i.client_token = params.client_token;
    i.tags = params.instance_tags;
    i.shutdown_behavior = params.shutdown_behavior;
    i.launch_time = now;
    i.running_at = now + options_.pending_delay;
    i.http_tokens = params.http_tokens;
    i.http_endpoint = params.http_endpoint;
    i.hop_limit = params.hop_limit;
    i.not_found_describes = faults_.not_found_describes;
    if (params.spot) {
      SpotRequest s;
      s.id = "sir-" + random_.From(internal::kLowerAlnum, 8);
      s.state = "active";
      s.status_code = "fulfilled";
      s.status_message = SpotStatusMessage("fulfilled");
      s.status_update_time = now;
      s.create_time = now;
      s.type = params.spot_type;
      s.interruption_behavior = params.interruption_behavior;
      s.max_price = params.max_price;
      s.tags = params.spot_request_tags;
      i.spot = std::move(s);
    }
    index_[i.instance_id] = instances_.size();
    instances_.push_back(i);
    r.instances.push_back(std::move(i));
  }
  if (!params.client_token.empty()) {
    tokens_[params.client_token] = TokenEntry{r.reservation_id, params.fingerprint};
  }
  if (created != nullptr) *created = true;
  return r;
}

StatusOr<DescribePage> Ec2Model::DescribeInstances(const DescribeQuery& query, Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  AdvanceLocked(now);
  RETURN_IF_ERROR(CheckWellFormed(query.instance_ids));
  RETURN_IF_ERROR(CheckFilterNames(query.filters, Instance{}, InstanceValues));
  if (query.max_results != 0) {
    if (!query.instance_ids.empty()) {
      return Ec2ErrorStatus("InvalidParameterCombination",
                            "The parameter instancesSet cannot be used with the parameter "
                            "maxResults");
    }
    if (query.max_results < 5 || query.max_results > 1000) {
      return Ec2ErrorStatus("InvalidParameterValue",
                            "Value ( " + std::to_string(query.max_results) +
                                " ) for parameter maxResults is invalid. Expecting a value "
                                "between 5 and 1000.");
    }
  }
  size_t offset = 0;
  if (!query.next_token.empty()) {
    std::optional<int> n;
    if (query.next_token.starts_with(kPagePrefix)) {
      n = internal::ParseInt(std::string_view(query.next_token).substr(kPagePrefix.size()));
    }
    if (!n) {
      return Ec2ErrorStatus("InvalidParameterValue",
                            "The token '" + query.next_token + "' is invalid");
    }
    offset = static_cast<size_t>(*n);
  }

  std::set<std::string> wanted(query.instance_ids.begin(), query.instance_ids.end());
  if (!wanted.empty()) {
    std::vector<std::string> missing;
    for (const std::string& id : wanted) {
      if (Find(id) == nullptr) missing.push_back(id);
    }
    if (!missing.empty()) return InstanceNotFound(missing);
    // Eventual consistency: a fresh instance may still be unknown.
    std::vector<std::string> hidden;
    for (const std::string& id : wanted) {
      Instance* i = Find(id);
      if (i->not_found_describes > 0) {
        --i->not_found_describes;
        hidden.push_back(id);
      }
    }
    if (!hidden.empty()) return InstanceNotFound(hidden);
  }

  std::vector<const Instance*> matched;
  for (const Instance& i : instances_) {
    if (!wanted.empty() && wanted.count(i.instance_id) == 0) continue;
    if (!MatchesAll(i, query.filters, InstanceValues)) continue;
    matched.push_back(&i);
  }
  if (offset > matched.size()) {
    return Ec2ErrorStatus("InvalidParameterValue",
                          "The token '" + query.next_token + "' is invalid");
  }
  DescribePage page;
  size_t end = matched.size();
  if (query.max_results > 0 && offset + query.max_results < matched.size()) {
    end = offset + query.max_results;
    page.next_token = std::string(kPagePrefix) + std::to_string(end);
  }
  for (size_t k = offset; k < end; ++k) page.instances.push_back(*matched[k]);
  return page;
}

StatusOr<std::vector<StateChange>> Ec2Model::TerminateInstances(const std::vector<std::string>& ids,
                                                                Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  AdvanceLocked(now);
  if (ids.empty()) {
    return Ec2ErrorStatus("MissingParameter",
                          "The request must contain the parameter InstanceId");
  }
  RETURN_IF_ERROR(CheckWellFormed(ids));
  std::vector<std::string> missing;
  for (const std::string& id : ids) {
    if (Find(id) == nullptr) missing.push_back(id);
  }
  if (!missing.empty()) return InstanceNotFound(missing);

  std::vector<StateChange> out;
  std::set<std::string> seen;
  for (const std::string& id : ids) {
    if (!seen.insert(id).second) continue;
    Instance& i = *Find(id);
    StateChange c{id, i.state, i.state};
    if (IsLive(i.state)) {
      i.state = InstanceState::kShuttingDown;
      SetStopReason(i, "Client.UserInitiatedShutdown", "User initiated shutdown",
                    "User initiated (" + internal::FormatReasonTime(now) + ")");
      CloseSpot(i, "instance-terminated-by-user", now);
      c.current = i.state;
    }
    out.push_back(c);
  }
  return out;
}

StatusOr<std::vector<SpotRequestView>> Ec2Model::DescribeSpotInstanceRequests(
    const std::vector<std::string>& ids, const std::vector<Filter>& filters, Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  AdvanceLocked(now);
  RETURN_IF_ERROR(CheckFilterNames(filters, SpotRequestView{}, SpotValues));
  std::vector<SpotRequestView> all;
  for (const Instance& i : instances_) {
    if (!i.spot) continue;
    all.push_back(SpotRequestView{*i.spot, i.instance_id, i.image_id, i.instance_type,
                                  i.subnet_id, i.availability_zone});
  }
  std::set<std::string> wanted(ids.begin(), ids.end());
  for (const std::string& id : wanted) {
    bool known = std::any_of(all.begin(), all.end(),
                             [&](const SpotRequestView& v) { return v.request.id == id; });
    if (!known) {
      return Ec2ErrorStatus("InvalidSpotInstanceRequestID.NotFound",
                            "The spot instance request ID '" + id + "' does not exist");
    }
  }
  std::vector<SpotRequestView> out;
  for (SpotRequestView& v : all) {
    if (!wanted.empty() && wanted.count(v.request.id) == 0) continue;
    if (!MatchesAll(v, filters, SpotValues)) continue;
    out.push_back(std::move(v));
  }
  return out;
}

StatusOr<Instance> Ec2Model::Interrupt(const std::string& id, std::chrono::microseconds warning,
                                       Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  AdvanceLocked(now);
  Instance* i = Find(id);
  if (i == nullptr) return core::NotFoundError("no instance " + id);
  if (!i->spot) {
    return core::FailedPreconditionError(id + " is an on-demand instance; only spot instances "
                                              "are interrupted");
  }
  if (!IsLive(i->state)) {
    return core::FailedPreconditionError(id + " is " + StateName(i->state));
  }
  if (!i->interruption_time) {
    i->interruption_time = now + warning;
    if (!i->rebalance_time) i->rebalance_time = now;
    CloseSpot(*i, "instance-terminated-no-capacity", now);
  }
  // A zero warning shuts it down now.
  AdvanceLocked(now);
  return *i;
}

StatusOr<Instance> Ec2Model::Rebalance(const std::string& id, Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  AdvanceLocked(now);
  Instance* i = Find(id);
  if (i == nullptr) return core::NotFoundError("no instance " + id);
  if (!IsLive(i->state)) {
    return core::FailedPreconditionError(id + " is " + StateName(i->state));
  }
  if (!i->rebalance_time) i->rebalance_time = now;
  return *i;
}

StatusOr<Instance> Ec2Model::Kill(const std::string& id, Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  AdvanceLocked(now);
  Instance* i = Find(id);
  if (i == nullptr) return core::NotFoundError("no instance " + id);
  if (i->state != InstanceState::kTerminated) {
    i->state = InstanceState::kTerminated;
    SetStopReason(*i, "Server.InternalError", "Internal error",
                  "Service initiated (" + internal::FormatReasonTime(now) + ")");
    CloseSpot(*i, "instance-terminated-by-service", now);
  }
  return *i;
}

StatusOr<Instance> Ec2Model::Shutdown(const std::string& id, Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  AdvanceLocked(now);
  Instance* i = Find(id);
  if (i == nullptr) return core::NotFoundError("no instance " + id);
  if (IsLive(i->state)) {
    i->state = InstanceState::kShuttingDown;
    SetStopReason(*i, "Client.InstanceInitiatedShutdown", "Instance initiated shutdown",
                  "Instance initiated shutdown (" + internal::FormatReasonTime(now) + ")");
    CloseSpot(*i, "instance-terminated-by-user", now);
  }
  return *i;
}

void Ec2Model::Advance(Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  AdvanceLocked(now);
}

void Ec2Model::AdvanceLocked(Time now) {
  for (Instance& i : instances_) {
    if (i.state == InstanceState::kPending && now >= i.running_at) {
      i.state = InstanceState::kRunning;
    }
    if (IsLive(i.state) && i.interruption_time && now >= *i.interruption_time) {
      i.state = InstanceState::kShuttingDown;
      SetStopReason(i, "Server.SpotInstanceTermination", "Spot instance termination",
                    "Service initiated (" + internal::FormatReasonTime(now) + ")");
    }
  }
}

void Ec2Model::MarkTerminated(const std::string& id, Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  Instance* i = Find(id);
  if (i != nullptr && i->state == InstanceState::kShuttingDown) {
    i->state = InstanceState::kTerminated;
  }
}

StatusOr<Instance> Ec2Model::Get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return core::NotFoundError("no instance " + id);
  return instances_[it->second];
}

std::vector<Instance> Ec2Model::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  return instances_;
}

std::vector<InstanceStatus> Ec2Model::Statuses() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<InstanceStatus> out;
  out.reserve(instances_.size());
  for (const Instance& i : instances_) out.push_back({i.instance_id, i.state});
  return out;
}

void Ec2Model::SetRuntimeInfo(const std::string& id, std::string imds_endpoint,
                              std::string work_dir, std::string console_log) {
  std::lock_guard<std::mutex> lock(mu_);
  Instance* i = Find(id);
  if (i == nullptr) return;
  i->imds_endpoint = std::move(imds_endpoint);
  i->work_dir = std::move(work_dir);
  i->console_log = std::move(console_log);
}

Faults Ec2Model::faults() const {
  std::lock_guard<std::mutex> lock(mu_);
  return faults_;
}

void Ec2Model::SetFaults(Faults faults) {
  std::lock_guard<std::mutex> lock(mu_);
  faults_ = std::move(faults);
}

void Ec2Model::ClearFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  faults_ = Faults{};
  for (Instance& i : instances_) i.not_found_describes = 0;
}

bool Ec2Model::TakeThrottle() {
  std::lock_guard<std::mutex> lock(mu_);
  if (faults_.throttle_next <= 0) return false;
  --faults_.throttle_next;
  return true;
}

}  // namespace sked::ec2emu
