// File: ec2emu/ec2_api.cc
#include "ec2emu/ec2_api.h"

#include "aws/sigv4.h"
#include "ec2emu/ec2_error.h"
#include "ec2emu/ec2_xml.h"

namespace sked::ec2emu {
namespace {

using core::Status;
using core::StatusOr;

// Raw user data may be at most this long (before base64), as on EC2.
constexpr size_t kMaxUserDataBytes = 16384;
constexpr size_t kMaxClientTokenLength = 64;

Status Invalid(const std::string& message) {
  return Ec2ErrorStatus("InvalidParameterValue", message);
}

Status Missing(const std::string& name) {
  return Ec2ErrorStatus("MissingParameter", "The request must contain the parameter " + name);
}

// `name`'s value must be one of `allowed` when present; `fallback` otherwise.
StatusOr<std::string> Enum(const Form& form, const std::string& name,
                           std::initializer_list<std::string_view> allowed,
                           std::string_view fallback) {
  if (!form.Has(name)) return std::string(fallback);
  std::string v = form.Get(name);
  for (std::string_view a : allowed) {
    if (v == a) return v;
  }
  return Invalid("Value (" + v + ") for parameter " + name + " is invalid.");
}

StatusOr<int> Count(const Form& form, const std::string& name) {
  if (!form.Has(name)) return Missing(name);
  std::optional<int> n = internal::ParseInt(form.Get(name));
  if (!n) return Invalid("Value (" + form.Get(name) + ") for parameter " + name + " is invalid.");
  return *n;
}

StatusOr<std::vector<Tag>> TagsOf(const Form& form, const std::string& prefix) {
  std::vector<Tag> tags;
  for (int m : form.Indices(prefix + ".Tag")) {
    std::string base = prefix + ".Tag." + std::to_string(m);
    std::string key = form.Get(base + ".Key");
    if (key.empty()) return Invalid("Tag keys must not be empty");
    tags.push_back({key, form.Get(base + ".Value")});
  }
  return tags;
}

api::HttpResponse XmlResponse(unsigned status, std::string body) {
  api::HttpResponse r;
  r.status = status;
  r.content_type = std::string(kXmlContentType);
  r.body = std::move(body);
  return r;
}

}  // namespace

StatusOr<RunParams> ParseRunInstances(const Form& form) {
  RunParams p;
  if (!form.Has("ImageId") || form.Get("ImageId").empty()) return Missing("ImageId");
  p.image_id = form.Get("ImageId");
  p.instance_type = form.Get("InstanceType", "m1.small");
  ASSIGN_OR_RETURN(p.min_count, Count(form, "MinCount"));
  ASSIGN_OR_RETURN(p.max_count, Count(form, "MaxCount"));
  if (p.min_count < 1 || p.max_count < p.min_count) {
    return Invalid("MinCount (" + std::to_string(p.min_count) + ") must be at least 1 and at "
                   "most MaxCount (" + std::to_string(p.max_count) + ")");
  }
  p.subnet_id = form.Get("SubnetId");
  p.availability_zone = form.Get("Placement.AvailabilityZone");
  p.key_name = form.Get("KeyName");
  p.security_group_ids = form.List("SecurityGroupId");
  p.security_group_names = form.List("SecurityGroup");
  p.iam_profile_name = form.Get("IamInstanceProfile.Name");
  p.iam_profile_arn = form.Get("IamInstanceProfile.Arn");
  if (form.Has("UserData")) {
    std::optional<std::string> decoded = internal::Base64Decode(form.Get("UserData"));
    if (!decoded) return Invalid("Invalid BASE64 encoding of user data.");
    if (decoded->size() > kMaxUserDataBytes) {
      return Invalid("User data is limited to " + std::to_string(kMaxUserDataBytes) + " bytes.");
    }
    p.has_user_data = true;
    p.user_data = std::move(*decoded);
  }
  p.client_token = form.Get("ClientToken");
  if (p.client_token.size() > kMaxClientTokenLength) {
    return Invalid("Value for parameter ClientToken is longer than " +
                   std::to_string(kMaxClientTokenLength) + " characters.");
  }

  if (form.Has("InstanceMarketOptions.MarketType")) {
    ASSIGN_OR_RETURN(std::string market,
                     Enum(form, "InstanceMarketOptions.MarketType", {"spot"}, "spot"));
    p.spot = market == "spot";
    const std::string so = "InstanceMarketOptions.SpotOptions.";
    ASSIGN_OR_RETURN(p.spot_type, Enum(form, so + "SpotInstanceType", {"one-time", "persistent"},
                                       "one-time"));
    if (p.spot_type == "persistent") {
      return Ec2ErrorStatus("Unsupported",
                            "sked-ec2-emulator supports one-time spot requests only");
    }
    ASSIGN_OR_RETURN(p.interruption_behavior,
                     Enum(form, so + "InstanceInterruptionBehavior",
                          {"hibernate", "stop", "terminate"}, "terminate"));
    if (p.interruption_behavior != "terminate") {
      return Ec2ErrorStatus("InvalidParameterCombination",
                            "A one-time Spot Instance request supports only the terminate "
                            "interruption behavior");
    }
    p.max_price = form.Get(so + "MaxPrice");
  }

  for (int n : form.Indices("TagSpecification")) {
    std::string base = "TagSpecification." + std::to_string(n);
    std::string type = form.Get(base + ".ResourceType");
    if (type.empty()) return Invalid("Tag specification resource type must have a value");
    ASSIGN_OR_RETURN(std::vector<Tag> tags, TagsOf(form, base));
    if (type == "instance") {
      p.instance_tags.insert(p.instance_tags.end(), tags.begin(), tags.end());
    } else if (type == "spot-instances-request") {
      p.spot_request_tags.insert(p.spot_request_tags.end(), tags.begin(), tags.end());
    }
    // Tags for volumes, network interfaces, ... have nothing to land on here.
  }

  ASSIGN_OR_RETURN(p.http_tokens,
                   Enum(form, "MetadataOptions.HttpTokens", {"optional", "required"}, "required"));
  ASSIGN_OR_RETURN(p.http_endpoint, Enum(form, "MetadataOptions.HttpEndpoint",
                                         {"enabled", "disabled"}, "enabled"));
  if (form.Has("MetadataOptions.HttpPutResponseHopLimit")) {
    std::optional<int> hop = internal::ParseInt(form.Get("MetadataOptions.HttpPutResponseHopLimit"));
    if (!hop || *hop < 1 || *hop > 64) {
      return Invalid("HttpPutResponseHopLimit must be between 1 and 64");
    }
    p.hop_limit = *hop;
  }
  ASSIGN_OR_RETURN(p.shutdown_behavior,
                   Enum(form, "InstanceInitiatedShutdownBehavior", {"stop", "terminate"}, "stop"));
  p.fingerprint = form.Fingerprint({"ClientToken", "DryRun"});
  return p;
}

Ec2Api::Ec2Api(Ec2Model& model, const KeyStore& keys, const core::Clock& clock,
               Ec2ApiOptions options)
    : model_(model), keys_(keys), clock_(clock), options_(std::move(options)) {}

api::HttpResponse Ec2Api::Handle(const api::HttpRequest& request) {
  const core::Time now = clock_.Now();
  const std::string request_id = random_.Uuid();
  std::string action;
  auto fail = [&](const Status& s) {
    Ec2ErrorParts e = SplitEc2Error(s);
    unsigned status = Ec2HttpStatus(e.code);
    if (options_.logger != nullptr) {
      options_.logger->Log(core::LogLevel::kInfo, "ec2 " + (action.empty() ? "-" : action) + " " +
                                                      std::to_string(status) + " " + e.code +
                                                      ": " + e.message);
    }
    return XmlResponse(status, ErrorXml(request_id, e.code, e.message));
  };

  if (request.method != "POST" && request.method != "GET") {
    return fail(Ec2ErrorStatus("UnsupportedHttpVerb",
                               "The EC2 Query API takes POST (form body) or GET (query)"));
  }
  StatusOr<Form> form = Form::Parse(request.method == "POST" ? request.body : request.query);
  if (!form.ok()) return fail(Ec2ErrorStatus("MalformedQueryString", form.status().message()));
  action = form->Get("Action");

  Status auth = VerifySigV4(request, keys_, VerifyOptions{.region = options_.region, .now = now});
  if (!auth.ok()) return fail(auth);
  if (model_.TakeThrottle()) return fail(Ec2ErrorStatus("RequestLimitExceeded",
                                                        "Request limit exceeded."));
  if (action.empty()) {
    return fail(Ec2ErrorStatus("MissingAction", "The request must contain the parameter Action"));
  }
  if (!form->Has("Version")) return fail(Missing("Version"));
  if (form->Get("Version") != aws::kEc2ApiVersion) {
    return fail(Ec2ErrorStatus("NoSuchVersion", "The requested version (" + form->Get("Version") +
                                                    ") of service AmazonEC2 does not exist"));
  }
  StatusOr<std::string> body = Dispatch(action, *form, request_id, now);
  if (!body.ok()) return fail(body.status());
  if (options_.logger != nullptr) {
    options_.logger->Log(core::LogLevel::kInfo, "ec2 " + action + " 200");
  }
  return XmlResponse(200, std::move(*body));
}

StatusOr<std::string> Ec2Api::Dispatch(const std::string& action, const Form& form,
                                       const std::string& request_id, core::Time now) {
  using Handler = StatusOr<std::string> (Ec2Api::*)(const Form&, const std::string&, core::Time);
  Handler handler = nullptr;
  if (action == "RunInstances") {
    handler = &Ec2Api::RunInstances;
  } else if (action == "DescribeInstances") {
    handler = &Ec2Api::DescribeInstances;
  } else if (action == "TerminateInstances") {
    handler = &Ec2Api::TerminateInstances;
  } else if (action == "DescribeSpotInstanceRequests") {
    handler = &Ec2Api::DescribeSpotInstanceRequests;
  } else {
    return Ec2ErrorStatus("InvalidAction",
                          "The action " + action + " is not valid for this web service.");
  }
  if (form.Get("DryRun") == "true") {
    return Ec2ErrorStatus("DryRunOperation",
                          "Request would have succeeded, but DryRun flag is set.");
  }
  return (this->*handler)(form, request_id, now);
}

StatusOr<std::string> Ec2Api::RunInstances(const Form& form, const std::string& request_id,
                                           core::Time now) {
  ASSIGN_OR_RETURN(RunParams params, ParseRunInstances(form));
  bool created = false;
  ASSIGN_OR_RETURN(Reservation r, model_.RunInstances(params, now, &created));
  if (created && options_.on_launched) options_.on_launched(r);
  return RunInstancesXml(request_id, r);
}

StatusOr<std::string> Ec2Api::DescribeInstances(const Form& form, const std::string& request_id,
                                                core::Time now) {
  DescribeQuery q;
  q.instance_ids = form.List("InstanceId");
  ASSIGN_OR_RETURN(q.filters, FiltersOf(form));
  if (form.Has("MaxResults")) {
    std::optional<int> n = internal::ParseInt(form.Get("MaxResults"));
    if (!n) return Invalid("Value (" + form.Get("MaxResults") + ") for parameter maxResults is "
                           "invalid. Expecting a value between 5 and 1000.");
    q.max_results = *n;
    if (q.max_results == 0) return Invalid("Value ( 0 ) for parameter maxResults is invalid.");
  }
  q.next_token = form.Get("NextToken");
  ASSIGN_OR_RETURN(DescribePage page, model_.DescribeInstances(q, now));
  return DescribeInstancesXml(request_id, page.instances, model_.options().account_id,
                              page.next_token);
}

StatusOr<std::string> Ec2Api::TerminateInstances(const Form& form, const std::string& request_id,
                                                 core::Time now) {
  ASSIGN_OR_RETURN(std::vector<StateChange> changes,
                   model_.TerminateInstances(form.List("InstanceId"), now));
  return TerminateInstancesXml(request_id, changes);
}

StatusOr<std::string> Ec2Api::DescribeSpotInstanceRequests(const Form& form,
                                                           const std::string& request_id,
                                                           core::Time now) {
  ASSIGN_OR_RETURN(std::vector<Filter> filters, FiltersOf(form));
  ASSIGN_OR_RETURN(std::vector<SpotRequestView> requests,
                   model_.DescribeSpotInstanceRequests(form.List("SpotInstanceRequestId"), filters,
                                                       now));
  return DescribeSpotInstanceRequestsXml(request_id, requests);
}

}  // namespace sked::ec2emu
