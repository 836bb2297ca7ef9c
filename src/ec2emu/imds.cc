// File: ec2emu/imds.cc
#include "ec2emu/imds.h"

#include <set>

namespace sked::ec2emu {
namespace {

constexpr char kTtlHeader[] = "x-aws-ec2-metadata-token-ttl-seconds";
constexpr char kTokenHeader[] = "x-aws-ec2-metadata-token";
constexpr size_t kMaxTokens = 10000;

api::HttpResponse Text(unsigned status, std::string body) {
  api::HttpResponse r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

api::HttpResponse NotFound() { return Text(404, "Not Found\n"); }

}  // namespace

ImdsService::ImdsService(const Ec2Model& model, std::string instance_id,
                         std::optional<RoleCredentials> role, std::function<core::Time()> now)
    : model_(model), instance_id_(std::move(instance_id)), role_(std::move(role)),
      now_(std::move(now)) {}

bool ImdsService::TokenValid(const std::string& token, core::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tokens_.find(token);
  return it != tokens_.end() && now < it->second;
}

std::map<std::string, std::string> ImdsService::Leaves(const Instance& i) const {
  std::map<std::string, std::string> m;
  const std::string md = "meta-data/";
  const std::string region = model_.options().region;
  m[md + "ami-id"] = i.image_id;
  m[md + "ami-launch-index"] = "0";
  m[md + "hostname"] = "ip-127-0-0-1.ec2.internal";
  m[md + "local-hostname"] = "ip-127-0-0-1.ec2.internal";
  m[md + "instance-id"] = i.instance_id;
  m[md + "instance-type"] = i.instance_type;
  m[md + "instance-life-cycle"] = i.spot ? "spot" : "on-demand";
  m[md + "local-ipv4"] = i.private_ip;
  m[md + "reservation-id"] = i.reservation_id;
  std::string groups;
  for (const SecurityGroup& g : i.security_groups) groups += (groups.empty() ? "" : "\n") + g.name;
  m[md + "security-groups"] = groups;
  m[md + "placement/availability-zone"] = i.availability_zone;
  m[md + "placement/region"] = region;
  m[md + "services/domain"] = "amazonaws.com";
  m[md + "services/partition"] = "aws";
  if (role_ && !i.role_name.empty()) {
    m[md + "iam/info"] = "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"" +
                         internal::FormatIsoSeconds(role_->last_updated) +
                         "\",\n  \"InstanceProfileArn\" : \"" + i.iam_profile_arn +
                         "\",\n  \"InstanceProfileId\" : \"" + i.iam_profile_id + "\"\n}";
    m[md + "iam/security-credentials/" + i.role_name] =
        "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"" +
        internal::FormatIsoSeconds(role_->last_updated) +
        "\",\n  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"" +
        role_->credentials.access_key_id + "\",\n  \"SecretAccessKey\" : \"" +
        role_->credentials.secret_access_key + "\",\n  \"Token\" : \"" +
        role_->credentials.session_token + "\",\n  \"Expiration\" : \"" +
        internal::FormatIsoSeconds(role_->expiration) + "\"\n}";
  }
  if (i.interruption_time) {
    std::string when = internal::FormatIsoSeconds(*i.interruption_time);
    m[md + "spot/instance-action"] = "{\"action\": \"terminate\", \"time\": \"" + when + "\"}";
    m[md + "spot/termination-time"] = when;
  }
  if (i.rebalance_time) {
    m[md + "events/recommendations/rebalance"] =
        "{\"noticeTime\": \"" + internal::FormatIsoSeconds(*i.rebalance_time) + "\"}";
  }
  if (i.has_user_data) m["user-data"] = i.user_data;
  m["dynamic/instance-identity/document"] =
      "{\n  \"accountId\" : \"" + model_.options().account_id +
      "\",\n  \"architecture\" : \"x86_64\",\n  \"availabilityZone\" : \"" + i.availability_zone +
      "\",\n  \"imageId\" : \"" + i.image_id + "\",\n  \"instanceId\" : \"" + i.instance_id +
      "\",\n  \"instanceType\" : \"" + i.instance_type + "\",\n  \"pendingTime\" : \"" +
      internal::FormatIsoSeconds(i.launch_time) + "\",\n  \"privateIp\" : \"" + i.private_ip +
      "\",\n  \"region\" : \"" + region + "\",\n  \"version\" : \"2017-09-30\"\n}";
  return m;
}

api::HttpResponse ImdsService::Handle(const api::HttpRequest& request) {
  const core::Time now = now_();
  const std::string& path = request.path;

  // /<version>/api/token
  if (path.ends_with("/api/token")) {
    if (request.method != "PUT") {
      api::HttpResponse r = Text(405, "Method Not Allowed\n");
      r.headers.emplace_back("Allow", "PUT");
      return r;
    }
    if (path != "/latest/api/token") return Text(403, "Forbidden\n");
    if (!request.Header("x-forwarded-for").empty()) return Text(403, "Forbidden\n");
    std::optional<int> ttl = internal::ParseInt(request.Header(kTtlHeader));
    if (!ttl || *ttl < 1 || *ttl > kMaxImdsTokenTtlSeconds) return Text(400, "Bad Request\n");
    std::string token = "AQAEA" + random_.From(internal::kBase64Alphabet, 51);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (tokens_.size() >= kMaxTokens) std::erase_if(tokens_, [&](const auto& t) {
          return t.second <= now;
        });
      tokens_[token] = now + std::chrono::seconds(*ttl);
    }
    api::HttpResponse r = Text(200, token);
    r.headers.emplace_back("X-aws-ec2-metadata-token-ttl-seconds", std::to_string(*ttl));
    return r;
  }

  if (request.method != "GET" && request.method != "HEAD") {
    api::HttpResponse r = Text(405, "Method Not Allowed\n");
    r.headers.emplace_back("Allow", "GET, HEAD, PUT");
    return r;
  }
  core::StatusOr<Instance> inst = model_.Get(instance_id_);
  if (!inst.ok()) return NotFound();
  const std::string& token = request.Header(kTokenHeader);
  if (!token.empty() ? !TokenValid(token, now) : inst->http_tokens == "required") {
    return Text(401, "Unauthorized\n");
  }

  if (path == "/") return Text(200, "latest");
  std::string rest;
  if (path == "/latest" || path == "/latest/") {
    rest = "";
  } else if (path.starts_with("/latest/")) {
    rest = path.substr(8);
  } else {
    return NotFound();  // Only "latest" is served, not the dated versions.
  }

  std::map<std::string, std::string> leaves = Leaves(*inst);
  if (!rest.empty() && !rest.ends_with('/')) {
    auto it = leaves.find(rest);
    if (it != leaves.end()) return Text(200, it->second);
  }
  // A directory: list its children.
  std::string dir = rest.empty() || rest.ends_with('/') ? rest : rest + "/";
  std::set<std::string> children;
  for (const auto& [leaf, value] : leaves) {
    if (!leaf.starts_with(dir)) continue;
    std::string_view tail = std::string_view(leaf).substr(dir.size());
    size_t slash = tail.find('/');
    children.insert(slash == std::string_view::npos ? std::string(tail)
                                                    : std::string(tail.substr(0, slash + 1)));
  }
  if (children.empty()) return NotFound();
  std::string body;
  for (const std::string& c : children) body += (body.empty() ? "" : "\n") + c;
  return Text(200, body);
}

}  // namespace sked::ec2emu
