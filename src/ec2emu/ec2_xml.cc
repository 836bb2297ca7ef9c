// File: ec2emu/ec2_xml.cc
#include "ec2emu/ec2_xml.h"

#include "ec2emu/internal/util.h"

namespace sked::ec2emu {
namespace {

constexpr char kXmlDecl[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
constexpr char kSpotPrice[] = "0.010400";

// Appends elements to a string; no indentation (parsers do not care).
// Thread safety: one writer per response, used by one thread.
class XmlWriter {
 public:
  void Open(std::string_view name) {
    out_ += '<';
    out_ += name;
    out_ += '>';
  }
  void Close(std::string_view name) {
    out_ += "</";
    out_ += name;
    out_ += '>';
  }
  void Leaf(std::string_view name, std::string_view text) {
    Open(name);
    out_ += XmlEscape(text);
    Close(name);
  }
  void Empty(std::string_view name) {
    out_ += '<';
    out_ += name;
    out_ += "/>";
  }
  void Root(std::string_view name, const std::string& request_id) {
    out_ += kXmlDecl;
    out_ += '<';
    out_ += name;
    out_ += " xmlns=\"";
    out_ += kEc2Namespace;
    out_ += "\">";
    Leaf("requestId", request_id);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

void WriteState(XmlWriter& w, std::string_view element, InstanceState s) {
  w.Open(element);
  w.Leaf("code", std::to_string(StateCode(s)));
  w.Leaf("name", StateName(s));
  w.Close(element);
}

void WriteTags(XmlWriter& w, const std::vector<Tag>& tags) {
  if (tags.empty()) return;  // EC2 leaves tagSet out when there are none.
  w.Open("tagSet");
  for (const Tag& t : tags) {
    w.Open("item");
    w.Leaf("key", t.key);
    w.Leaf("value", t.value);
    w.Close("item");
  }
  w.Close("tagSet");
}

void WriteGroups(XmlWriter& w, const std::vector<SecurityGroup>& groups) {
  if (groups.empty()) {
    w.Empty("groupSet");
    return;
  }
  w.Open("groupSet");
  for (const SecurityGroup& g : groups) {
    w.Open("item");
    w.Leaf("groupId", g.id);
    w.Leaf("groupName", g.name);
    w.Close("item");
  }
  w.Close("groupSet");
}

void WriteInstance(XmlWriter& w, const Instance& i) {
  const bool gone = i.state == InstanceState::kTerminated;
  w.Open("item");
  w.Leaf("instanceId", i.instance_id);
  w.Leaf("imageId", i.image_id);
  WriteState(w, "instanceState", i.state);
  w.Leaf("privateDnsName", gone ? "" : "ip-127-0-0-1.ec2.internal");
  w.Empty("dnsName");
  w.Leaf("reason", i.reason);
  if (!i.key_name.empty()) w.Leaf("keyName", i.key_name);
  w.Leaf("amiLaunchIndex", "0");
  w.Empty("productCodes");
  w.Leaf("instanceType", i.instance_type);
  w.Leaf("launchTime", internal::FormatEc2Time(i.launch_time));
  w.Open("placement");
  w.Leaf("availabilityZone", i.availability_zone);
  w.Empty("groupName");
  w.Leaf("tenancy", "default");
  w.Close("placement");
  w.Open("monitoring");
  w.Leaf("state", "disabled");
  w.Close("monitoring");
  w.Leaf("subnetId", i.subnet_id);
  w.Leaf("vpcId", i.vpc_id);
  if (!gone) w.Leaf("privateIpAddress", i.private_ip);
  w.Leaf("sourceDestCheck", "true");
  WriteGroups(w, i.security_groups);
  if (!i.state_reason_code.empty()) {
    w.Open("stateReason");
    w.Leaf("code", i.state_reason_code);
    w.Leaf("message", i.state_reason_message);
    w.Close("stateReason");
  }
  w.Leaf("architecture", "x86_64");
  w.Leaf("rootDeviceType", "ebs");
  w.Leaf("rootDeviceName", "/dev/xvda");
  w.Empty("blockDeviceMapping");
  if (i.spot) {
    w.Leaf("instanceLifecycle", "spot");
    w.Leaf("spotInstanceRequestId", i.spot->id);
  }
  w.Leaf("virtualizationType", "hvm");
  w.Leaf("clientToken", i.client_token);
  WriteTags(w, i.tags);
  w.Leaf("hypervisor", "xen");
  if (!i.iam_profile_arn.empty()) {
    w.Open("iamInstanceProfile");
    w.Leaf("arn", i.iam_profile_arn);
    w.Leaf("id", i.iam_profile_id);
    w.Close("iamInstanceProfile");
  }
  w.Leaf("ebsOptimized", "false");
  w.Open("metadataOptions");
  w.Leaf("state", "applied");
  w.Leaf("httpTokens", i.http_tokens);
  w.Leaf("httpPutResponseHopLimit", std::to_string(i.hop_limit));
  w.Leaf("httpEndpoint", i.http_endpoint);
  w.Close("metadataOptions");
  w.Close("item");
}

}  // namespace

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string RunInstancesXml(const std::string& request_id, const Reservation& reservation) {
  XmlWriter w;
  w.Root("RunInstancesResponse", request_id);
  w.Leaf("reservationId", reservation.reservation_id);
  w.Leaf("ownerId", reservation.owner_id);
  w.Empty("groupSet");
  w.Open("instancesSet");
  for (const Instance& i : reservation.instances) WriteInstance(w, i);
  w.Close("instancesSet");
  w.Close("RunInstancesResponse");
  return w.Take();
}

std::string DescribeInstancesXml(const std::string& request_id,
                                 const std::vector<Instance>& instances,
                                 const std::string& owner_id, const std::string& next_token) {
  XmlWriter w;
  w.Root("DescribeInstancesResponse", request_id);
  if (instances.empty()) {
    w.Empty("reservationSet");
  } else {
    w.Open("reservationSet");
    size_t k = 0;
    while (k < instances.size()) {
      const std::string& rid = instances[k].reservation_id;
      w.Open("item");
      w.Leaf("reservationId", rid);
      w.Leaf("ownerId", owner_id);
      w.Empty("groupSet");
      w.Open("instancesSet");
      for (; k < instances.size() && instances[k].reservation_id == rid; ++k) {
        WriteInstance(w, instances[k]);
      }
      w.Close("instancesSet");
      w.Close("item");
    }
    w.Close("reservationSet");
  }
  if (!next_token.empty()) w.Leaf("nextToken", next_token);
  w.Close("DescribeInstancesResponse");
  return w.Take();
}

std::string TerminateInstancesXml(const std::string& request_id,
                                  const std::vector<StateChange>& changes) {
  XmlWriter w;
  w.Root("TerminateInstancesResponse", request_id);
  w.Open("instancesSet");
  for (const StateChange& c : changes) {
    w.Open("item");
    w.Leaf("instanceId", c.instance_id);
    WriteState(w, "currentState", c.current);
    WriteState(w, "previousState", c.previous);
    w.Close("item");
  }
  w.Close("instancesSet");
  w.Close("TerminateInstancesResponse");
  return w.Take();
}

std::string DescribeSpotInstanceRequestsXml(const std::string& request_id,
                                            const std::vector<SpotRequestView>& requests) {
  XmlWriter w;
  w.Root("DescribeSpotInstanceRequestsResponse", request_id);
  if (requests.empty()) {
    w.Empty("spotInstanceRequestSet");
  } else {
    w.Open("spotInstanceRequestSet");
    for (const SpotRequestView& v : requests) {
      const SpotRequest& r = v.request;
      w.Open("item");
      w.Leaf("spotInstanceRequestId", r.id);
      w.Leaf("spotPrice", r.max_price.empty() ? kSpotPrice : r.max_price);
      w.Leaf("type", r.type);
      w.Leaf("state", r.state);
      w.Open("status");
      w.Leaf("code", r.status_code);
      w.Leaf("updateTime", internal::FormatEc2Time(r.status_update_time));
      w.Leaf("message", r.status_message);
      w.Close("status");
      w.Open("launchSpecification");
      w.Leaf("imageId", v.image_id);
      w.Leaf("instanceType", v.instance_type);
      w.Open("placement");
      w.Leaf("availabilityZone", v.availability_zone);
      w.Close("placement");
      w.Leaf("subnetId", v.subnet_id);
      w.Open("monitoring");
      w.Leaf("enabled", "false");
      w.Close("monitoring");
      w.Close("launchSpecification");
      w.Leaf("instanceId", v.instance_id);
      w.Leaf("createTime", internal::FormatEc2Time(r.create_time));
      w.Leaf("productDescription", "Linux/UNIX");
      w.Leaf("launchedAvailabilityZone", v.availability_zone);
      w.Leaf("instanceInterruptionBehavior", r.interruption_behavior);
      WriteTags(w, r.tags);
      w.Close("item");
    }
    w.Close("spotInstanceRequestSet");
  }
  w.Close("DescribeSpotInstanceRequestsResponse");
  return w.Take();
}

std::string ErrorXml(const std::string& request_id, std::string_view code,
                     std::string_view message) {
  XmlWriter w;
  std::string out = kXmlDecl;
  w.Open("Response");
  w.Open("Errors");
  w.Open("Error");
  w.Leaf("Code", code);
  w.Leaf("Message", message);
  w.Close("Error");
  w.Close("Errors");
  w.Leaf("RequestID", request_id);
  w.Close("Response");
  return out + w.Take();
}

}  // namespace sked::ec2emu
