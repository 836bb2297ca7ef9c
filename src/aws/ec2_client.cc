// File: aws/ec2_client.cc
//
// Ec2Client over libcurl (one easy handle per attempt) and Boost.PropertyTree's
// XML parser. See ec2_client.h for the contract and specs/ec2-spot.md for the
// wire facts.
#include "aws/ec2_client.h"

#include <algorithm>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <cstdlib>
#include <exception>
#include <functional>
#include <sstream>
#include <thread>

#include "aws/internal/http.h"
#include "core/clock.h"

namespace sked::aws {
namespace {

using boost::property_tree::ptree;
using core::Status;
using core::StatusCode;
using core::StatusOr;

constexpr char kFormContentType[] = "application/x-www-form-urlencoded; charset=utf-8";
constexpr char kUserAgent[] = "sked-ec2/1";
// A guard against a server that keeps handing out next tokens.
constexpr int kMaxDescribePages = 10000;
constexpr size_t kMaxBodyInMessage = 200;

// ---------------------------------------------------------------------------
// XML helpers: everything by local name, so namespaces and prefixes are ignored.

std::string_view LocalName(std::string_view key) {
  size_t colon = key.rfind(':');
  return colon == std::string_view::npos ? key : key.substr(colon + 1);
}

bool IsElement(std::string_view key) { return key.empty() || key[0] != '<'; }

const ptree* Child(const ptree& t, std::string_view name) {
  for (const auto& [key, child] : t) {
    if (IsElement(key) && LocalName(key) == name) return &child;
  }
  return nullptr;
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string Text(const ptree* t, std::string_view name) {
  if (t == nullptr) return "";
  const ptree* c = Child(*t, name);
  return c == nullptr ? "" : Trim(c->data());
}

// The <item> children of a list wrapper such as <instancesSet>.
std::vector<const ptree*> Items(const ptree* wrapper) {
  std::vector<const ptree*> out;
  if (wrapper == nullptr) return out;
  for (const auto& [key, child] : *wrapper) {
    if (IsElement(key) && LocalName(key) == "item") out.push_back(&child);
  }
  return out;
}

// The document's root element, or nullptr when `body` is not XML.
std::optional<ptree> ParseXml(std::string_view body) {
  std::istringstream in{std::string(body)};
  ptree doc;
  try {
    boost::property_tree::read_xml(in, doc, boost::property_tree::xml_parser::no_comments);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  for (const auto& [key, child] : doc) {
    if (IsElement(key)) return child;
  }
  return std::nullopt;
}

Ec2Instance ParseInstance(const ptree& item) {
  Ec2Instance inst;
  inst.instance_id = Text(&item, "instanceId");
  inst.image_id = Text(&item, "imageId");
  inst.instance_type = Text(&item, "instanceType");
  const ptree* state = Child(item, "instanceState");
  inst.state_name = Text(state, "name");
  std::string code = Text(state, "code");
  if (!code.empty()) inst.state_code = std::atoi(code.c_str()) & 0xFF;
  const ptree* reason = Child(item, "stateReason");
  inst.state_reason_code = Text(reason, "code");
  inst.state_reason_message = Text(reason, "message");
  inst.lifecycle = Text(&item, "instanceLifecycle");
  inst.spot_instance_request_id = Text(&item, "spotInstanceRequestId");
  inst.client_token = Text(&item, "clientToken");
  inst.launch_time = Text(&item, "launchTime");
  inst.availability_zone = Text(Child(item, "placement"), "availabilityZone");
  inst.private_ip = Text(&item, "privateIpAddress");
  inst.subnet_id = Text(&item, "subnetId");
  for (const ptree* tag : Items(Child(item, "tagSet"))) {
    inst.tags.push_back({Text(tag, "key"), Text(tag, "value")});
  }
  return inst;
}

// Filter.N.Name and Filter.N.Value.M, 1-based, in order.
void AppendFilters(const std::vector<Ec2Filter>& filters, ParamList& out) {
  for (size_t i = 0; i < filters.size(); ++i) {
    const std::string prefix = "Filter." + std::to_string(i + 1);
    out.emplace_back(prefix + ".Name", filters[i].name);
    for (size_t j = 0; j < filters[i].values.size(); ++j) {
      out.emplace_back(prefix + ".Value." + std::to_string(j + 1), filters[i].values[j]);
    }
  }
}

// ---------------------------------------------------------------------------
// Classification (specs/ec2-spot.md section 4).

bool IsOneOf(std::string_view code, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), code) != set.end();
}

struct Classified {
  StatusCode code;
  bool retry;
};

Classified ClassifyEc2Error(std::string_view code, long http_status) {
  if (IsOneOf(code, {"InsufficientInstanceCapacity", "InsufficientCapacity", "Unsupported",
                     "SpotMaxPriceTooLow", "UnfulfillableCapacity"})) {
    return {StatusCode::kResourceExhausted, false};
  }
  if (IsOneOf(code,
              {"MaxSpotInstanceCountExceeded", "InstanceLimitExceeded", "VcpuLimitExceeded"})) {
    return {StatusCode::kFailedPrecondition, false};
  }
  if (IsOneOf(code,
              {"RequestLimitExceeded", "EC2ThrottledException", "Throttling", "ThrottlingException",
               "RequestThrottled", "InternalError", "InternalFailure", "Unavailable",
               "ServiceUnavailable", "RequestTimeout", "PriorRequestNotComplete"})) {
    return {StatusCode::kUnavailable, true};
  }
  if (code == "InvalidInstanceID.NotFound") return {StatusCode::kNotFound, false};
  if (IsOneOf(code, {"UnauthorizedOperation", "AuthFailure"})) {
    return {StatusCode::kPermissionDenied, false};
  }
  if (http_status >= 500) return {StatusCode::kUnavailable, true};
  return {StatusCode::kInvalidArgument, false};
}

std::string Ec2ErrorMessage(const Ec2Error& e, int attempts) {
  std::string m = e.code + ": " + e.message + " [ec2 " + e.action +
                  " http=" + std::to_string(e.http_status) + " request_id=" + e.request_id;
  if (attempts > 1) m += " attempts=" + std::to_string(attempts);
  return m + "]";
}

std::string Snippet(std::string_view body) {
  std::string s = Trim(body.substr(0, kMaxBodyInMessage));
  return body.size() > kMaxBodyInMessage ? s + "..." : s;
}

// ---------------------------------------------------------------------------
// HTTP over libcurl (aws/internal/http.h).

internal::HttpResult Post(const std::string& url, const HeaderList& headers,
                          const std::string& body, std::chrono::seconds timeout) {
  internal::HttpExchange x;
  x.method = "POST";
  x.url = url;
  for (const auto& [name, value] : headers) x.headers.push_back(name + ": " + value);
  x.headers.push_back("Expect:");  // No 100-continue round trip.
  x.body = body;
  x.user_agent = kUserAgent;
  x.timeout = timeout;
  return internal::Perform(x);
}

bool IsPrintableAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

}  // namespace

// ---------------------------------------------------------------------------

std::string Base64Encode(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t v = uint8_t(data[i]) << 16;
    if (rest == 2) v |= uint8_t(data[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

StatusOr<ParamList> RunSpotInstanceParams(const RunSpotParams& p) {
  if (p.image_id.empty()) return core::InvalidArgumentError("RunSpotInstance: image_id is empty");
  if (p.instance_type.empty()) {
    return core::InvalidArgumentError("RunSpotInstance: instance_type is empty");
  }
  if (p.user_data.size() > kMaxUserDataBytes) {
    return core::InvalidArgumentError("RunSpotInstance: user data is " +
                                      std::to_string(p.user_data.size()) +
                                      " bytes, more than the 16384 EC2 accepts");
  }
  if (p.client_token.size() > kMaxClientTokenLength || !IsPrintableAscii(p.client_token)) {
    return core::InvalidArgumentError(
        "RunSpotInstance: client token must be at most 64 printable ASCII characters");
  }
  if (p.max_price && p.max_price->empty()) {
    return core::InvalidArgumentError("RunSpotInstance: max_price is set but empty");
  }
  ParamList out = {
      {"ImageId", p.image_id},
      {"InstanceType", p.instance_type},
      {"MinCount", "1"},
      {"MaxCount", "1"},
  };
  if (!p.subnet_id.empty()) out.emplace_back("SubnetId", p.subnet_id);
  for (size_t i = 0; i < p.security_group_ids.size(); ++i) {
    out.emplace_back("SecurityGroupId." + std::to_string(i + 1), p.security_group_ids[i]);
  }
  if (!p.instance_profile_name.empty()) {
    bool arn = p.instance_profile_name.starts_with("arn:");
    out.emplace_back(arn ? "IamInstanceProfile.Arn" : "IamInstanceProfile.Name",
                     p.instance_profile_name);
  }
  if (!p.user_data.empty()) out.emplace_back("UserData", Base64Encode(p.user_data));
  if (!p.client_token.empty()) out.emplace_back("ClientToken", p.client_token);
  out.emplace_back("InstanceInitiatedShutdownBehavior", "terminate");
  out.emplace_back("InstanceMarketOptions.MarketType", "spot");
  out.emplace_back("InstanceMarketOptions.SpotOptions.SpotInstanceType", "one-time");
  out.emplace_back("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior", "terminate");
  if (p.max_price) out.emplace_back("InstanceMarketOptions.SpotOptions.MaxPrice", *p.max_price);
  if (!p.tags.empty()) {
    out.emplace_back("TagSpecification.1.ResourceType", "instance");
    for (size_t i = 0; i < p.tags.size(); ++i) {
      if (p.tags[i].key.empty())
        return core::InvalidArgumentError("RunSpotInstance: empty tag key");
      std::string prefix = "TagSpecification.1.Tag." + std::to_string(i + 1);
      out.emplace_back(prefix + ".Key", p.tags[i].key);
      out.emplace_back(prefix + ".Value", p.tags[i].value);
    }
  }
  out.emplace_back("MetadataOptions.HttpTokens", "required");
  out.emplace_back("MetadataOptions.HttpEndpoint", "enabled");
  out.emplace_back("MetadataOptions.HttpPutResponseHopLimit", "2");
  return out;
}

namespace detail {

std::optional<Ec2Error> ParseEc2ErrorXml(std::string_view body) {
  std::optional<ptree> root = ParseXml(body);
  if (!root) return std::nullopt;
  // <Response><Errors><Error>; also tolerate <ErrorResponse><Error>.
  const ptree* error = nullptr;
  if (const ptree* errors = Child(*root, "Errors")) error = Child(*errors, "Error");
  if (error == nullptr) error = Child(*root, "Error");
  if (error == nullptr) return std::nullopt;
  Ec2Error e;
  e.code = Text(error, "Code");
  e.message = Text(error, "Message");
  if (e.code.empty()) return std::nullopt;
  for (std::string_view name : {"RequestID", "RequestId", "requestId"}) {
    e.request_id = Text(&*root, name);
    if (!e.request_id.empty()) break;
  }
  return e;
}

StatusOr<std::vector<Ec2Instance>> ParseInstancesXml(std::string_view body,
                                                     std::string* next_token) {
  std::optional<ptree> root = ParseXml(body);
  if (!root) return core::InternalError("ec2: response is not XML: " + Snippet(body));
  std::vector<Ec2Instance> out;
  if (const ptree* reservations = Child(*root, "reservationSet")) {
    for (const ptree* r : Items(reservations)) {
      for (const ptree* i : Items(Child(*r, "instancesSet"))) out.push_back(ParseInstance(*i));
    }
  } else {
    for (const ptree* i : Items(Child(*root, "instancesSet"))) out.push_back(ParseInstance(*i));
  }
  if (next_token != nullptr) *next_token = Text(&*root, "nextToken");
  return out;
}

StatusOr<std::vector<SpotRequest>> ParseSpotRequestsXml(std::string_view body,
                                                        std::string* next_token) {
  std::optional<ptree> root = ParseXml(body);
  if (!root) return core::InternalError("ec2: response is not XML: " + Snippet(body));
  std::vector<SpotRequest> out;
  for (const ptree* item : Items(Child(*root, "spotInstanceRequestSet"))) {
    SpotRequest r;
    r.id = Text(item, "spotInstanceRequestId");
    r.state = Text(item, "state");
    r.status_code = Text(Child(*item, "status"), "code");
    r.instance_id = Text(item, "instanceId");
    out.push_back(std::move(r));
  }
  if (next_token != nullptr) *next_token = Text(&*root, "nextToken");
  return out;
}

}  // namespace detail

// ---------------------------------------------------------------------------

Ec2Client::Ec2Client(Ec2ClientOptions options)
    : options_(std::move(options)), rng_(std::random_device{}()) {
  endpoint_ = options_.endpoint.empty() ? "https://ec2." + options_.region + ".amazonaws.com/"
                                        : options_.endpoint;
  if (!options_.now) options_.now = [] { return core::SystemClock::Get().Now(); };
  if (!options_.sleep) {
    options_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  }
  internal::InitCurlOnce();
}

std::chrono::milliseconds Ec2Client::Backoff(int retry) {
  int64_t cap = options_.backoff_base.count();
  for (int i = 0; i < retry && cap < options_.backoff_max.count(); ++i) cap *= 2;
  cap = std::min<int64_t>(cap, options_.backoff_max.count());
  if (cap <= 0) return std::chrono::milliseconds(0);
  std::lock_guard<std::mutex> lock(rng_mu_);
  return std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, cap)(rng_));
}

StatusOr<std::string> Ec2Client::Call(std::string_view action, const ParamList& params) {
  if (std::find(std::begin(kEc2Actions), std::end(kEc2Actions), action) == std::end(kEc2Actions))
    return core::InternalError("ec2 " + std::string(action) +
                               ": not in kEc2Actions (and so not in the IAM policy)");
  const std::string body = Ec2QueryBody(action, params);
  const int max_attempts = std::max(0, options_.max_retries) + 1;
  Status last;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    HttpRequestToSign request{
        .method = "POST",
        .url = endpoint_,
        .headers = {{"Content-Type", kFormContentType}},
        .body = body,
    };
    SigningParams signing{
        .region = options_.region,
        .service = "ec2",
        .time = std::chrono::floor<std::chrono::seconds>(options_.now()),
    };
    Credentials credentials = options_.credentials;
    if (options_.credentials_source) {
      // Instance-role keys expire: ask the source for each attempt.
      ASSIGN_OR_RETURN(credentials, options_.credentials_source());
    }
    ASSIGN_OR_RETURN(HeaderList signed_headers, SignRequest(request, credentials, signing));
    HeaderList headers = request.headers;
    headers.insert(headers.end(), signed_headers.begin(), signed_headers.end());

    internal::HttpResult r = Post(endpoint_, headers, body, options_.timeout);
    bool retry = false;
    if (r.curl != CURLE_OK) {
      std::string m = "ec2 " + std::string(action) + ": transport error: " + r.curl_error + " (" +
                      endpoint_ + ")";
      if (r.curl == CURLE_URL_MALFORMAT || r.curl == CURLE_UNSUPPORTED_PROTOCOL) {
        return core::InvalidArgumentError(m);
      }
      if (attempt > 1) m += " [attempts=" + std::to_string(attempt) + "]";
      last = core::UnavailableError(m);
      retry = true;
    } else if (r.status >= 200 && r.status < 300) {
      return std::move(r.body);
    } else if (std::optional<Ec2Error> e = detail::ParseEc2ErrorXml(r.body)) {
      e->action = std::string(action);
      e->http_status = static_cast<int>(r.status);
      Classified c = ClassifyEc2Error(e->code, r.status);
      last = Status(c.code, Ec2ErrorMessage(*e, attempt));
      retry = c.retry;
    } else {
      std::string m = "ec2 " + std::string(action) + ": HTTP " + std::to_string(r.status) + ": " +
                      Snippet(r.body);
      if (attempt > 1) m += " [attempts=" + std::to_string(attempt) + "]";
      retry = r.status >= 500 || r.status == 429;
      last = retry ? core::UnavailableError(m) : core::InvalidArgumentError(m);
    }
    if (!retry || attempt == max_attempts) return last;
    options_.sleep(Backoff(attempt - 1));
  }
  return last;  // Not reached: the loop returns on its last attempt.
}

StatusOr<Ec2Instance> Ec2Client::RunSpotInstance(const RunSpotParams& params) {
  ASSIGN_OR_RETURN(ParamList form, RunSpotInstanceParams(params));
  ASSIGN_OR_RETURN(std::string body, Call("RunInstances", form));
  ASSIGN_OR_RETURN(std::vector<Ec2Instance> instances, detail::ParseInstancesXml(body, nullptr));
  if (instances.size() != 1) {
    return core::InternalError("ec2 RunInstances: expected 1 instance in the response, got " +
                               std::to_string(instances.size()));
  }
  return std::move(instances[0]);
}

namespace {

// Every item of a Describe* call, following nextToken from `base` until the
// last page. `call` sends one page's form; `parse` reads its items and token.
template <typename T>
StatusOr<std::vector<T>> AllPages(
    std::string_view action, const ParamList& base,
    const std::function<StatusOr<std::string>(const ParamList&)>& call,
    StatusOr<std::vector<T>> (*parse)(std::string_view, std::string*)) {
  std::vector<T> all;
  std::string token;
  for (int page = 0; page < kMaxDescribePages; ++page) {
    ParamList form = base;
    if (!token.empty()) form.emplace_back("NextToken", token);
    ASSIGN_OR_RETURN(std::string body, call(form));
    std::string next;
    ASSIGN_OR_RETURN(std::vector<T> got, parse(body, &next));
    for (T& item : got) all.push_back(std::move(item));
    if (next.empty()) return all;
    if (next == token) {
      return core::InternalError("ec2 " + std::string(action) + ": server repeated nextToken");
    }
    token = std::move(next);
  }
  return core::InternalError("ec2 " + std::string(action) + ": too many pages");
}

}  // namespace

StatusOr<std::vector<Ec2Instance>> Ec2Client::DescribeInstances(
    const DescribeInstancesParams& params) {
  ParamList base;
  for (size_t i = 0; i < params.instance_ids.size(); ++i) {
    base.emplace_back("InstanceId." + std::to_string(i + 1), params.instance_ids[i]);
  }
  AppendFilters(params.filters, base);
  if (params.page_size != 0 && params.instance_ids.empty()) {
    if (params.page_size < 5 || params.page_size > 1000) {
      return core::InvalidArgumentError("DescribeInstances: page_size must be 5..1000");
    }
    base.emplace_back("MaxResults", std::to_string(params.page_size));
  }
  return AllPages<Ec2Instance>(
      "DescribeInstances", base,
      [this](const ParamList& form) { return Call("DescribeInstances", form); },
      detail::ParseInstancesXml);
}

StatusOr<std::vector<Ec2Instance>> Ec2Client::DescribeInstances(
    const std::vector<std::string>& ids, const std::vector<Ec2Filter>& filters) {
  return DescribeInstances(DescribeInstancesParams{.instance_ids = ids, .filters = filters});
}

StatusOr<std::vector<SpotRequest>> Ec2Client::DescribeSpotInstanceRequests(
    const std::vector<Ec2Filter>& filters) {
  ParamList base;
  AppendFilters(filters, base);
  return AllPages<SpotRequest>(
      "DescribeSpotInstanceRequests", base,
      [this](const ParamList& form) { return Call("DescribeSpotInstanceRequests", form); },
      detail::ParseSpotRequestsXml);
}

bool IsSpotReclaim(std::string_view code) {
  return code == "marked-for-termination" || code == "marked-for-stop" ||
         code == "instance-terminated-no-capacity" || code == "instance-terminated-by-price" ||
         code == "instance-terminated-by-service" || code == "instance-terminated-capacity-oversubscribed" ||
         code == "instance-stopped-no-capacity" || code == "instance-stopped-by-price";
}

Status Ec2Client::TerminateInstances(const std::vector<std::string>& ids) {
  if (ids.empty()) return core::InvalidArgumentError("TerminateInstances: no instance ids");
  ParamList form;
  for (size_t i = 0; i < ids.size(); ++i) {
    form.emplace_back("InstanceId." + std::to_string(i + 1), ids[i]);
  }
  ASSIGN_OR_RETURN(std::string body, Call("TerminateInstances", form));
  (void)body;
  return core::OkStatus();
}

std::optional<Ec2Error> Ec2ErrorOf(const Status& status) {
  if (status.ok()) return std::nullopt;
  const std::string& m = status.message();
  size_t open = m.rfind(" [ec2 ");
  if (open == std::string::npos || m.back() != ']') return std::nullopt;
  size_t sep = m.find(": ");
  if (sep == std::string::npos || sep > open) return std::nullopt;
  Ec2Error e;
  e.code = m.substr(0, sep);
  e.message = m.substr(sep + 2, open - sep - 2);
  std::istringstream fields(m.substr(open + 6, m.size() - open - 7));
  std::string field;
  if (!(fields >> e.action)) return std::nullopt;
  bool have_http = false;
  while (fields >> field) {
    if (field.starts_with("http=")) {
      e.http_status = std::atoi(field.c_str() + 5);
      have_http = true;
    } else if (field.starts_with("request_id=")) {
      e.request_id = field.substr(11);
    }
  }
  if (!have_http) return std::nullopt;
  return e;
}

}  // namespace sked::aws
