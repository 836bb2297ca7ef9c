// File: ec2emu/ec2_xml.h
//
// The EC2 Query API response bodies the emulator writes (specs/ec2-spot.md
// sections 3 and 4): success roots `<XxxResponse xmlns=".../2016-11-15/">`
// with `requestId` first and `<item>` list wrappers, and the error shape
// `<Response><Errors><Error>...</Errors><RequestID>` (no namespace).
//
// Thread safety: free functions without shared state.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ec2emu/model.h"

namespace sked::ec2emu {

// The namespace of every success response, with the trailing slash AWS's own
// answers use.
inline constexpr std::string_view kEc2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/";
inline constexpr std::string_view kXmlContentType = "text/xml;charset=UTF-8";

// &, <, >, " and ' as entities.
std::string XmlEscape(std::string_view text);

std::string RunInstancesXml(const std::string& request_id, const Reservation& reservation);

// Instances are grouped into one reservationSet item per reservation, keeping
// consecutive instances of a reservation together. `next_token` is written
// only when not empty.
std::string DescribeInstancesXml(const std::string& request_id,
                                 const std::vector<Instance>& instances,
                                 const std::string& owner_id, const std::string& next_token);

std::string TerminateInstancesXml(const std::string& request_id,
                                  const std::vector<StateChange>& changes);

std::string DescribeSpotInstanceRequestsXml(const std::string& request_id,
                                            const std::vector<SpotRequestView>& requests);

std::string ErrorXml(const std::string& request_id, std::string_view code,
                     std::string_view message);

}  // namespace sked::ec2emu
