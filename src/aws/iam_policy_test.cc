// Keeps docs/iam-policy.json (the scheduler's minimal IAM policy, shown in the
// README) equal to what the code does: every EC2 action the client can send
// (kEc2Actions, which Ec2Client::Call enforces) is allowed, nothing else of
// EC2 is, tags can be set only as part of RunInstances, terminate is limited
// to instances tagged sked:managed, and the instance profile's role can be
// passed. The README shows the same policy.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "aws/ec2_client.h"

namespace sked::aws {
namespace {

namespace json = boost::json;

json::object Policy() {
  std::ifstream in(SKED_SOURCE_DIR "/docs/iam-policy.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str()).as_object();
}

std::vector<std::string> Actions(const json::object& statement) {
  const json::value& a = statement.at("Action");
  std::vector<std::string> out;
  if (a.is_string()) {
    out.emplace_back(a.as_string());
  } else {
    for (const auto& v : a.as_array()) out.emplace_back(v.as_string());
  }
  return out;
}

TEST(IamPolicyTest, AllowsExactlyTheEc2CallsTheClientMakes) {
  const json::object policy = Policy();
  std::set<std::string> allowed;
  for (const auto& st : policy.at("Statement").as_array()) {
    ASSERT_EQ(st.at("Effect").as_string(), "Allow");
    for (const auto& a : Actions(st.as_object()))
      if (a.rfind("ec2:", 0) == 0 && a != "ec2:CreateTags") allowed.insert(a);
  }
  std::set<std::string> used;
  for (std::string_view a : kEc2Actions) used.insert("ec2:" + std::string(a));
  EXPECT_EQ(allowed, used);
}

TEST(IamPolicyTest, TagsOnlyAtLaunchAndTerminatesOnlyItsOwnInstances) {
  const json::object policy = Policy();
  bool create_tags = false, terminate = false, pass_role = false;
  for (const auto& v : policy.at("Statement").as_array()) {
    const json::object& st = v.as_object();
    for (const auto& a : Actions(st)) {
      if (a == "ec2:CreateTags") {
        create_tags = true;
        EXPECT_EQ(st.at("Condition").at("StringEquals").at("ec2:CreateAction").as_string(),
                  "RunInstances");
      }
      if (a == "ec2:TerminateInstances") {
        terminate = true;
        EXPECT_EQ(st.at("Condition").at("StringEquals").at("ec2:ResourceTag/sked:managed")
                      .as_string(),
                  "true");
      }
      if (a == "iam:PassRole") pass_role = true;
      EXPECT_NE(a.find(':'), std::string::npos) << a;
      EXPECT_EQ(a.find('*'), std::string::npos) << "no wildcard actions: " << a;
    }
  }
  EXPECT_TRUE(create_tags) << "RunInstances with TagSpecification needs ec2:CreateTags";
  EXPECT_TRUE(terminate);
  EXPECT_TRUE(pass_role) << "--ec2-instance-profile needs iam:PassRole";
}

TEST(IamPolicyTest, TheReadmeShowsThePolicyFile) {
  std::ifstream in(SKED_SOURCE_DIR "/README.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string readme = ss.str();
  const size_t mention = readme.find("docs/iam-policy.json");
  ASSERT_NE(mention, std::string::npos);
  const size_t open = readme.find("```json\n", mention);
  ASSERT_NE(open, std::string::npos);
  const size_t close = readme.find("```", open + 8);
  ASSERT_NE(close, std::string::npos);
  EXPECT_EQ(json::parse(readme.substr(open + 8, close - open - 8)), json::value(Policy()));
}

}  // namespace
}  // namespace sked::aws
