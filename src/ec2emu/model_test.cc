// File: ec2emu/model_test.cc
//
// The emulator's pieces without sockets or processes: the form decoder, the
// model's lifecycle, filters, paging, idempotency, terminate semantics and
// faults (time passed in explicitly), the XML writers, the SigV4 check (our
// signer's requests accepted, wrong secrets refused) and the IMDS handler's
// token rules and paths.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "aws/sigv4.h"
#include "ec2emu/ec2_api.h"
#include "ec2emu/ec2_error.h"
#include "ec2emu/ec2_xml.h"
#include "ec2emu/form.h"
#include "ec2emu/imds.h"
#include "ec2emu/internal/util.h"
#include "ec2emu/model.h"
#include "ec2emu/sigv4_verify.h"

namespace sked::ec2emu {
namespace {

using core::Time;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// 2026-01-02T03:04:05Z.
const Time kT0 = core::TimeFromSeconds(1767323045);

std::string CodeOf(const core::Status& s) { return SplitEc2Error(s).code; }

RunParams Spot(std::string token = "", std::vector<Tag> tags = {{"sked:task-id", "t-1"}}) {
  RunParams p;
  p.image_id = "ami-12345678";
  p.instance_type = "t3.micro";
  p.spot = true;
  p.client_token = std::move(token);
  p.instance_tags = std::move(tags);
  p.fingerprint = "fp";
  return p;
}

struct Bundle {
  std::unique_ptr<Ec2Model> model;
};

Bundle SetupModel(std::chrono::microseconds pending = 500ms) {
  return Bundle{std::make_unique<Ec2Model>(ModelOptions{.pending_delay = pending})};
}

std::string Launch(Ec2Model& m, RunParams p = Spot(), Time at = kT0) {
  auto r = m.RunInstances(p, at);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->instances.at(0).instance_id : "";
}

std::vector<std::string> Ids(const DescribePage& page) {
  std::vector<std::string> out;
  for (const Instance& i : page.instances) out.push_back(i.instance_id);
  return out;
}

// ---------------------------------------------------------------------------
// Form and helpers.

TEST(FormTest, PlusAndPercent20BothDecodeToSpace) {
  auto f = Form::Parse("Action=RunInstances&A=a+b&B=a%20b&C=%3A%2F%3D&Empty=&Bare");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->Get("A"), "a b");
  EXPECT_EQ(f->Get("B"), "a b");
  EXPECT_EQ(f->Get("C"), ":/=");
  EXPECT_TRUE(f->Has("Empty"));
  EXPECT_EQ(f->Get("Bare"), "");
  EXPECT_EQ(f->Get("Missing", "dflt"), "dflt");
}

TEST(FormTest, MalformedEscapesAndDuplicatesRejected) {
  EXPECT_FALSE(Form::Parse("A=%4").ok());
  EXPECT_FALSE(Form::Parse("A=%zz").ok());
  EXPECT_FALSE(Form::Parse("A=1&A=2").ok());
}

TEST(FormTest, IndexedListsAndFilters) {
  auto f = Form::Parse(
      "InstanceId.2=i-b&InstanceId.1=i-a&InstanceId.10=i-c&Filter.1.Name=tag%3Ak&"
      "Filter.1.Value.1=v1&Filter.1.Value.2=v2&Filter.2.Name=instance-state-name&"
      "Filter.2.Value.1=running");
  ASSERT_TRUE(f.ok());
  EXPECT_THAT(f->List("InstanceId"), ElementsAre("i-a", "i-b", "i-c"));
  auto filters = FiltersOf(*f);
  ASSERT_TRUE(filters.ok());
  ASSERT_EQ(filters->size(), 2u);
  EXPECT_EQ((*filters)[0].name, "tag:k");
  EXPECT_THAT((*filters)[0].values, ElementsAre("v1", "v2"));
  EXPECT_EQ((*filters)[1].name, "instance-state-name");

  auto nameless = Form::Parse("Filter.1.Value.1=x");
  ASSERT_TRUE(nameless.ok());
  EXPECT_EQ(CodeOf(FiltersOf(*nameless).status()), "InvalidParameterValue");
}

TEST(UtilTest, Base64AndGlob) {
  EXPECT_EQ(internal::Base64Decode("aGVsbG8="), "hello");
  EXPECT_EQ(internal::Base64Decode("aGVs\nbG8"), "hello");
  EXPECT_EQ(internal::Base64Decode(internal::Base64Encode(std::string("\0\xff\x10", 3))),
            std::string("\0\xff\x10", 3));
  EXPECT_FALSE(internal::Base64Decode("not base64!").has_value());
  EXPECT_TRUE(internal::GlobMatch("t-*", "t-42"));
  EXPECT_TRUE(internal::GlobMatch("t-?2", "t-42"));
  EXPECT_TRUE(internal::GlobMatch("*", ""));
  EXPECT_FALSE(internal::GlobMatch("t-?", "t-42"));
  EXPECT_EQ(internal::FormatEc2Time(kT0 + 7ms), "2026-01-02T03:04:05.007Z");
  EXPECT_EQ(internal::FormatIsoSeconds(kT0), "2026-01-02T03:04:05Z");
}

TEST(Ec2ErrorTest, StatusesFollowSection4) {
  EXPECT_EQ(Ec2HttpStatus("AuthFailure"), 401u);
  EXPECT_EQ(Ec2HttpStatus("InsufficientInstanceCapacity"), 500u);
  EXPECT_EQ(Ec2HttpStatus("RequestLimitExceeded"), 503u);
  EXPECT_EQ(Ec2HttpStatus("SpotMaxPriceTooLow"), 400u);
  EXPECT_EQ(Ec2HttpStatus("MaxSpotInstanceCountExceeded"), 400u);
  EXPECT_EQ(Ec2HttpStatus("InvalidInstanceID.NotFound"), 400u);
  EXPECT_EQ(Ec2HttpStatus("IdempotentParameterMismatch"), 400u);
  EXPECT_EQ(Ec2HttpStatus("InvalidAction"), 400u);
  auto parts = SplitEc2Error(Ec2ErrorStatus("InvalidInstanceID.NotFound", "no: such"));
  EXPECT_EQ(parts.code, "InvalidInstanceID.NotFound");
  EXPECT_EQ(parts.message, "no: such");
  EXPECT_EQ(SplitEc2Error(core::InternalError("disk on fire")).code, "InternalError");
}

// ---------------------------------------------------------------------------
// RunInstances parsing.

TEST(ParseRunInstancesTest, ReadsTheBotocoreWireNames) {
  auto f = Form::Parse(
      "Action=RunInstances&Version=2016-11-15&ImageId=ami-1&InstanceType=t3.micro&MinCount=1&"
      "MaxCount=1&SubnetId=subnet-9&SecurityGroupId.1=sg-1&SecurityGroupId.2=sg-2&"
      "IamInstanceProfile.Arn=arn%3Aaws%3Aiam%3A%3A1%3Ainstance-profile%2Fpath%2Fsked-runner&"
      "UserData=IyEvYmluL3NoCmVjaG8gaGkK&ClientToken=tok-1&"
      "InstanceInitiatedShutdownBehavior=terminate&InstanceMarketOptions.MarketType=spot&"
      "InstanceMarketOptions.SpotOptions.SpotInstanceType=one-time&"
      "InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior=terminate&"
      "InstanceMarketOptions.SpotOptions.MaxPrice=0.02&"
      "TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=sked%3Atask-id&"
      "TagSpecification.1.Tag.1.Value=t-42&TagSpecification.2.ResourceType=spot-instances-request&"
      "TagSpecification.2.Tag.1.Key=k&TagSpecification.2.Tag.1.Value=v&"
      "MetadataOptions.HttpTokens=required&MetadataOptions.HttpEndpoint=enabled&"
      "MetadataOptions.HttpPutResponseHopLimit=2");
  ASSERT_TRUE(f.ok());
  auto p = ParseRunInstances(*f);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->image_id, "ami-1");
  EXPECT_EQ(p->subnet_id, "subnet-9");
  EXPECT_THAT(p->security_group_ids, ElementsAre("sg-1", "sg-2"));
  EXPECT_EQ(p->user_data, "#!/bin/sh\necho hi\n");
  EXPECT_TRUE(p->spot);
  EXPECT_EQ(p->max_price, "0.02");
  EXPECT_THAT(p->instance_tags, ElementsAre(Tag{"sked:task-id", "t-42"}));
  EXPECT_THAT(p->spot_request_tags, ElementsAre(Tag{"k", "v"}));
  EXPECT_EQ(p->hop_limit, 2);
  EXPECT_EQ(p->shutdown_behavior, "terminate");
  EXPECT_THAT(p->fingerprint, ::testing::Not(HasSubstr("tok-1")));

  Ec2Model m(ModelOptions{});
  auto r = m.RunInstances(*p, kT0);
  ASSERT_TRUE(r.ok());
  const Instance& i = r->instances.at(0);
  EXPECT_EQ(i.role_name, "sked-runner");
  EXPECT_EQ(i.iam_profile_arn, "arn:aws:iam::1:instance-profile/path/sked-runner");
  EXPECT_EQ(i.spot->tags, (std::vector<Tag>{{"k", "v"}}));
}

TEST(ParseRunInstancesTest, RefusesWhatEc2Refuses) {
  auto parse = [](const std::string& extra) {
    auto f = Form::Parse("ImageId=ami-1&MinCount=1&MaxCount=1" + extra);
    EXPECT_TRUE(f.ok());
    return ParseRunInstances(*f).status();
  };
  EXPECT_TRUE(parse("").ok());
  EXPECT_EQ(CodeOf(ParseRunInstances(*Form::Parse("MinCount=1&MaxCount=1")).status()),
            "MissingParameter");
  EXPECT_EQ(CodeOf(ParseRunInstances(*Form::Parse("ImageId=ami-1")).status()),
            "MissingParameter");
  EXPECT_EQ(CodeOf(parse("&UserData=%21%21%21")), "InvalidParameterValue");
  std::string big = internal::Base64Encode(std::string(16385, 'x'));
  EXPECT_EQ(CodeOf(parse("&UserData=" + aws::UriEncode(big))), "InvalidParameterValue");
  std::string limit = internal::Base64Encode(std::string(16384, 'x'));
  EXPECT_TRUE(parse("&UserData=" + aws::UriEncode(limit)).ok());
  EXPECT_EQ(CodeOf(parse("&ClientToken=" + std::string(65, 'a'))), "InvalidParameterValue");
  EXPECT_EQ(CodeOf(parse("&InstanceMarketOptions.MarketType=capacity-block")),
            "InvalidParameterValue");
  EXPECT_EQ(CodeOf(parse("&InstanceMarketOptions.MarketType=spot&InstanceMarketOptions."
                         "SpotOptions.SpotInstanceType=persistent")),
            "Unsupported");
  EXPECT_EQ(CodeOf(parse("&MetadataOptions.HttpTokens=sometimes")), "InvalidParameterValue");
}

// ---------------------------------------------------------------------------
// Lifecycle.

TEST(ModelTest, LaunchIsPendingThenRunningAfterTheDelay) {
  Bundle b = SetupModel(500ms);
  bool created = false;
  auto r = b.model->RunInstances(Spot("tok"), kT0, &created);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(created);
  ASSERT_EQ(r->instances.size(), 1u);
  const Instance& i = r->instances[0];
  EXPECT_THAT(i.instance_id, ::testing::MatchesRegex("i-[0-9a-f]{17}"));
  EXPECT_THAT(r->reservation_id, ::testing::MatchesRegex("r-[0-9a-f]{17}"));
  ASSERT_TRUE(i.spot.has_value());
  EXPECT_THAT(i.spot->id, ::testing::MatchesRegex("sir-[0-9a-z]{8}"));
  EXPECT_EQ(i.spot->state, "active");
  EXPECT_EQ(i.spot->status_code, "fulfilled");
  EXPECT_EQ(i.state, InstanceState::kPending);
  EXPECT_EQ(i.availability_zone, "us-east-1a");
  EXPECT_EQ(i.private_ip, "127.0.0.1");
  EXPECT_EQ(i.subnet_id, kDefaultSubnetId);

  b.model->Advance(kT0 + 499ms);
  EXPECT_EQ(b.model->Get(i.instance_id)->state, InstanceState::kPending);
  b.model->Advance(kT0 + 500ms);
  EXPECT_EQ(b.model->Get(i.instance_id)->state, InstanceState::kRunning);
}

TEST(ModelTest, OnDemandHasNoSpotRequest) {
  Bundle b = SetupModel();
  RunParams p = Spot();
  p.spot = false;
  std::string id = Launch(*b.model, p);
  EXPECT_FALSE(b.model->Get(id)->spot.has_value());
  auto spot = b.model->DescribeInstances({.filters = {{"instance-lifecycle", {"spot"}}}}, kT0);
  ASSERT_TRUE(spot.ok());
  EXPECT_TRUE(spot->instances.empty());
  EXPECT_EQ(b.model->Interrupt(id, 1s, kT0).status().code(), core::StatusCode::kFailedPrecondition);
}

TEST(ModelTest, ClientTokenIsIdempotent) {
  Bundle b = SetupModel();
  std::string first = Launch(*b.model, Spot("tok-a"));
  bool created = true;
  auto again = b.model->RunInstances(Spot("tok-a"), kT0 + 1s, &created);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(again->instances.at(0).instance_id, first);
  EXPECT_EQ(again->instances.at(0).state, InstanceState::kRunning);  // As it now stands.
  EXPECT_EQ(b.model->List().size(), 1u);

  RunParams other = Spot("tok-a");
  other.fingerprint = "different";
  EXPECT_EQ(CodeOf(b.model->RunInstances(other, kT0).status()), "IdempotentParameterMismatch");
  EXPECT_EQ(b.model->List().size(), 1u);

  // No token: every call launches.
  Launch(*b.model, Spot(""));
  Launch(*b.model, Spot(""));
  EXPECT_EQ(b.model->List().size(), 3u);
}

TEST(ModelTest, FiltersMatchLikeEc2) {
  Bundle b = SetupModel();
  std::string a = Launch(*b.model, Spot("tok-1", {{"sked:task-id", "t-1"}, {"team", "x"}}));
  std::string c = Launch(*b.model, Spot("tok-2", {{"sked:task-id", "t-2"}}));
  RunParams od = Spot("tok-3", {{"sked:task-id", "t-3"}});
  od.spot = false;
  std::string d = Launch(*b.model, od);
  ASSERT_TRUE(b.model->TerminateInstances({c}, kT0).ok());

  auto q = [&](std::vector<Filter> filters) {
    auto page = b.model->DescribeInstances({.filters = std::move(filters)}, kT0 + 1s);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    return page.ok() ? Ids(*page) : std::vector<std::string>{};
  };
  EXPECT_THAT(q({{"tag:sked:task-id", {"t-1"}}}), ElementsAre(a));
  EXPECT_THAT(q({{"tag:sked:task-id", {"t-1", "t-2"}}}), ElementsAre(a, c));  // OR.
  EXPECT_THAT(q({{"tag:sked:task-id", {"t-*"}}}), ElementsAre(a, c, d));      // Glob.
  EXPECT_THAT(q({{"tag-key", {"team"}}}), ElementsAre(a));
  EXPECT_THAT(q({{"instance-state-name", {"running"}}}), ElementsAre(a, d));
  EXPECT_THAT(q({{"instance-state-name", {"pending", "running"}}, {"tag:team", {"x"}}}),
              ElementsAre(a));  // AND.
  EXPECT_THAT(q({{"instance-id", {c}}}), ElementsAre(c));
  EXPECT_THAT(q({{"instance-lifecycle", {"spot"}}}), ElementsAre(a, c));
  EXPECT_THAT(q({{"client-token", {"tok-3"}}}), ElementsAre(d));
  EXPECT_THAT(q({{"spot-instance-request-id", {b.model->Get(a)->spot->id}}}), ElementsAre(a));
  EXPECT_THAT(q({{"state-reason-code", {"Client.UserInitiatedShutdown"}}}), ElementsAre(c));
  EXPECT_TRUE(q({{"tag:sked:task-id", {"nobody"}}}).empty());

  auto bad = b.model->DescribeInstances({.filters = {{"colour", {"red"}}}}, kT0);
  EXPECT_EQ(CodeOf(bad.status()), "InvalidParameterValue");
}

TEST(ModelTest, PagingWithMaxResultsAndNextToken) {
  Bundle b = SetupModel();
  std::vector<std::string> all;
  for (int n = 0; n < 7; ++n) {
    all.push_back(Launch(*b.model, Spot("tok-" + std::to_string(n), {{"batch", "b1"}})));
  }
  Launch(*b.model, Spot("other", {{"batch", "b2"}}));
  DescribeQuery q{.filters = {{"tag:batch", {"b1"}}}, .max_results = 5};
  auto p1 = b.model->DescribeInstances(q, kT0);
  ASSERT_TRUE(p1.ok()) << p1.status().ToString();
  EXPECT_EQ(p1->instances.size(), 5u);
  ASSERT_FALSE(p1->next_token.empty());
  q.next_token = p1->next_token;
  auto p2 = b.model->DescribeInstances(q, kT0);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p2->instances.size(), 2u);
  EXPECT_TRUE(p2->next_token.empty());
  std::vector<std::string> got = Ids(*p1);
  for (const std::string& id : Ids(*p2)) got.push_back(id);
  EXPECT_EQ(got, all);

  EXPECT_EQ(CodeOf(b.model->DescribeInstances({.max_results = 4}, kT0).status()),
            "InvalidParameterValue");
  EXPECT_EQ(CodeOf(b.model->DescribeInstances({.max_results = 1001}, kT0).status()),
            "InvalidParameterValue");
  EXPECT_EQ(CodeOf(b.model->DescribeInstances({.instance_ids = {all[0]}, .max_results = 5}, kT0)
                       .status()),
            "InvalidParameterCombination");
  EXPECT_EQ(CodeOf(b.model->DescribeInstances({.max_results = 5, .next_token = "junk"}, kT0)
                       .status()),
            "InvalidParameterValue");
}

TEST(ModelTest, UnknownOrMalformedIdsFailTheWholeCall) {
  Bundle b = SetupModel();
  std::string id = Launch(*b.model);
  auto d = b.model->DescribeInstances({.instance_ids = {id, "i-0123456789abcdef0"}}, kT0);
  EXPECT_EQ(CodeOf(d.status()), "InvalidInstanceID.NotFound");
  EXPECT_THAT(d.status().message(), HasSubstr("i-0123456789abcdef0"));
  EXPECT_EQ(CodeOf(b.model->DescribeInstances({.instance_ids = {"i-xyz"}}, kT0).status()),
            "InvalidInstanceID.Malformed");

  auto t = b.model->TerminateInstances({id, "i-0123456789abcdef0"}, kT0);
  EXPECT_EQ(CodeOf(t.status()), "InvalidInstanceID.NotFound");
  EXPECT_EQ(b.model->Get(id)->state, InstanceState::kPending);  // None terminated.
}

TEST(ModelTest, TerminateSemantics) {
  Bundle b = SetupModel();
  std::string id = Launch(*b.model);
  auto t = b.model->TerminateInstances({id}, kT0 + 1s);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->size(), 1u);
  EXPECT_EQ((*t)[0].previous, InstanceState::kRunning);
  EXPECT_EQ((*t)[0].current, InstanceState::kShuttingDown);
  Instance i = *b.model->Get(id);
  EXPECT_EQ(i.state_reason_code, "Client.UserInitiatedShutdown");
  EXPECT_EQ(i.state_reason_message, "Client.UserInitiatedShutdown: User initiated shutdown");
  EXPECT_THAT(i.reason, HasSubstr("User initiated (2026-01-02 03:04:06 GMT)"));
  EXPECT_EQ(i.spot->state, "closed");
  EXPECT_EQ(i.spot->status_code, "instance-terminated-by-user");

  b.model->MarkTerminated(id, kT0 + 2s);
  EXPECT_EQ(b.model->Get(id)->state, InstanceState::kTerminated);
  // Repeating it on a terminated instance succeeds and changes nothing.
  auto again = b.model->TerminateInstances({id}, kT0 + 3s);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].previous, InstanceState::kTerminated);
  EXPECT_EQ((*again)[0].current, InstanceState::kTerminated);
  // Terminated instances stay listed.
  EXPECT_EQ(b.model->DescribeInstances({.instance_ids = {id}}, kT0 + 1h)->instances.size(), 1u);
  EXPECT_EQ(CodeOf(b.model->TerminateInstances({}, kT0).status()), "MissingParameter");
}

TEST(ModelTest, InterruptNoticeThenSpotTermination) {
  Bundle b = SetupModel();
  std::string id = Launch(*b.model);
  b.model->Advance(kT0 + 1s);
  auto i = b.model->Interrupt(id, 2s, kT0 + 1s);
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(i->state, InstanceState::kRunning);
  EXPECT_EQ(i->interruption_time, kT0 + 3s);
  EXPECT_EQ(i->rebalance_time, kT0 + 1s);
  EXPECT_EQ(i->spot->state, "closed");
  EXPECT_EQ(i->spot->status_code, "instance-terminated-no-capacity");
  // A second interrupt keeps the first notice.
  EXPECT_EQ(b.model->Interrupt(id, 60s, kT0 + 2s)->interruption_time, kT0 + 3s);

  b.model->Advance(kT0 + 2999ms);
  EXPECT_EQ(b.model->Get(id)->state, InstanceState::kRunning);
  b.model->Advance(kT0 + 3s);
  Instance after = *b.model->Get(id);
  EXPECT_EQ(after.state, InstanceState::kShuttingDown);
  EXPECT_EQ(after.state_reason_code, "Server.SpotInstanceTermination");
  auto spot = b.model->DescribeSpotInstanceRequests({}, {{"status-code",
                                                         {"instance-terminated-no-capacity"}}},
                                                    kT0 + 3s);
  ASSERT_TRUE(spot.ok());
  ASSERT_EQ(spot->size(), 1u);
  EXPECT_EQ((*spot)[0].instance_id, id);
  EXPECT_EQ(b.model->Interrupt(id, 1s, kT0 + 4s).status().code(),
            core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(b.model->Interrupt("i-0123456789abcdef0", 1s, kT0).status().code(),
            core::StatusCode::kNotFound);
}

TEST(ModelTest, KillAndInstanceInitiatedShutdown) {
  Bundle b = SetupModel();
  std::string killed = Launch(*b.model);
  std::string shut = Launch(*b.model);
  b.model->Advance(kT0 + 1s);
  auto k = b.model->Kill(killed, kT0 + 1s);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->state, InstanceState::kTerminated);
  EXPECT_EQ(k->state_reason_code, "Server.InternalError");
  EXPECT_FALSE(k->interruption_time.has_value());  // No notice.
  EXPECT_EQ(k->spot->status_code, "instance-terminated-by-service");

  auto s = b.model->Shutdown(shut, kT0 + 1s);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->state, InstanceState::kShuttingDown);
  EXPECT_EQ(s->state_reason_code, "Client.InstanceInitiatedShutdown");
  EXPECT_EQ(s->spot->status_code, "instance-terminated-by-user");
}

TEST(ModelTest, SpotRequestsDescribeAndNotFound) {
  Bundle b = SetupModel();
  std::string id = Launch(*b.model);
  std::string sir = b.model->Get(id)->spot->id;
  auto all = b.model->DescribeSpotInstanceRequests({}, {}, kT0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].request.id, sir);
  EXPECT_EQ((*all)[0].request.state, "active");
  EXPECT_EQ(b.model->DescribeSpotInstanceRequests({sir}, {{"instance-id", {id}}}, kT0)->size(),
            1u);
  EXPECT_EQ(CodeOf(b.model->DescribeSpotInstanceRequests({"sir-nothere1"}, {}, kT0).status()),
            "InvalidSpotInstanceRequestID.NotFound");
  EXPECT_EQ(CodeOf(b.model->DescribeSpotInstanceRequests({}, {{"colour", {"x"}}}, kT0).status()),
            "InvalidParameterValue");
}

TEST(ModelTest, FaultsCapacityThrottleAndNotFound) {
  Bundle b = SetupModel();
  Faults f;
  f.capacity_error_types = {"t3.micro"};
  f.capacity_error_subnets = {"subnet-bad"};
  b.model->SetFaults(f);
  auto r = b.model->RunInstances(Spot(), kT0);
  EXPECT_EQ(CodeOf(r.status()), "InsufficientInstanceCapacity");
  EXPECT_EQ(SplitEc2Error(r.status()).message,
            "There is no Spot capacity available that matches your request.");
  RunParams other = Spot();
  other.instance_type = "t3.small";
  EXPECT_TRUE(b.model->RunInstances(other, kT0).ok());
  other.subnet_id = "subnet-bad";
  EXPECT_EQ(CodeOf(b.model->RunInstances(other, kT0).status()), "InsufficientInstanceCapacity");

  f.capacity_error_code = "SpotMaxPriceTooLow";
  b.model->SetFaults(f);
  EXPECT_EQ(CodeOf(b.model->RunInstances(Spot(), kT0).status()), "SpotMaxPriceTooLow");
  f.capacity_error_code = "MaxSpotInstanceCountExceeded";
  b.model->SetFaults(f);
  EXPECT_EQ(CodeOf(b.model->RunInstances(Spot(), kT0).status()), "MaxSpotInstanceCountExceeded");

  b.model->SetFaults(Faults{.throttle_next = 2});
  EXPECT_TRUE(b.model->TakeThrottle());
  EXPECT_TRUE(b.model->TakeThrottle());
  EXPECT_FALSE(b.model->TakeThrottle());

  b.model->SetFaults(Faults{.not_found_describes = 2});
  std::string id = Launch(*b.model);
  for (int n = 0; n < 2; ++n) {
    EXPECT_EQ(CodeOf(b.model->DescribeInstances({.instance_ids = {id}}, kT0).status()),
              "InvalidInstanceID.NotFound")
        << n;
  }
  EXPECT_TRUE(b.model->DescribeInstances({.instance_ids = {id}}, kT0).ok());
  // Filters see it all along; only lookups by id are delayed.
  std::string late = Launch(*b.model);
  EXPECT_EQ(b.model->DescribeInstances({.filters = {{"instance-id", {late}}}}, kT0)
                ->instances.size(),
            1u);
  b.model->ClearFaults();
  EXPECT_TRUE(b.model->DescribeInstances({.instance_ids = {late}}, kT0).ok());
}

// ---------------------------------------------------------------------------
// XML.

TEST(Ec2XmlTest, ShapesOfSections3And4) {
  Bundle b = SetupModel();
  auto r = b.model->RunInstances(Spot("tok", {{"k&<", "v\"'>"}}), kT0);
  ASSERT_TRUE(r.ok());
  std::string run = RunInstancesXml("req-1", *r);
  EXPECT_THAT(run, HasSubstr("<RunInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/"
                             "2016-11-15/\"><requestId>req-1</requestId><reservationId>r-"));
  EXPECT_THAT(run, HasSubstr("<instanceState><code>0</code><name>pending</name></instanceState>"));
  EXPECT_THAT(run, HasSubstr("<instanceLifecycle>spot</instanceLifecycle>"));
  EXPECT_THAT(run, HasSubstr("<key>k&amp;&lt;</key><value>v&quot;&apos;&gt;</value>"));
  EXPECT_THAT(run, HasSubstr("<launchTime>2026-01-02T03:04:05.000Z</launchTime>"));
  EXPECT_THAT(run, HasSubstr("<groupSet/>"));

  std::string empty = DescribeInstancesXml("req-2", {}, "123", "");
  EXPECT_THAT(empty, HasSubstr("<reservationSet/>"));
  EXPECT_THAT(empty, ::testing::Not(HasSubstr("nextToken")));

  std::string err = ErrorXml("req-3", "AuthFailure", "no <way>");
  EXPECT_THAT(err, HasSubstr("<Response><Errors><Error><Code>AuthFailure</Code><Message>no "
                             "&lt;way&gt;</Message></Error></Errors><RequestID>req-3</RequestID>"
                             "</Response>"));
  EXPECT_THAT(err, ::testing::Not(HasSubstr("xmlns")));
}

// ---------------------------------------------------------------------------
// SigV4 verification.

struct SignedRequest {
  api::HttpRequest request;
};

api::HttpRequest Signed(const std::string& body, const aws::Credentials& creds,
                        std::chrono::sys_seconds when, const std::string& region = "us-east-1",
                        const std::string& host = "127.0.0.1:18080") {
  aws::HttpRequestToSign req{
      .method = "POST",
      .url = "http://" + host + "/",
      .headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}},
      .body = body,
  };
  auto added = aws::SignRequest(req, creds, {.region = region, .service = "ec2", .time = when});
  EXPECT_TRUE(added.ok());
  api::HttpRequest r;
  r.method = "POST";
  r.target = "/";
  r.path = "/";
  r.body = body;
  r.headers["content-type"] = req.headers[0].second;
  r.headers["user-agent"] = "test/1";  // Sent, never signed.
  for (const auto& [k, v] : *added) {
    std::string lower;
    for (char c : k) lower.push_back(static_cast<char>(std::tolower(c)));
    r.headers[lower] = v;
  }
  return r;
}

TEST(SigV4VerifyTest, OurSignerIsAcceptedAndWrongSecretsAreNot) {
  KeyStore keys;
  keys.AddStatic("test", "test");
  const std::string body = "Action=DescribeInstances&Version=2016-11-15";
  const auto when = std::chrono::floor<std::chrono::seconds>(kT0);
  VerifyOptions o{.region = "us-east-1", .now = kT0 + 30s};

  EXPECT_TRUE(VerifySigV4(Signed(body, {"test", "test", ""}, when), keys, o).ok());

  core::Status wrong = VerifySigV4(Signed(body, {"test", "wrong", ""}, when), keys, o);
  EXPECT_EQ(CodeOf(wrong), "AuthFailure");
  EXPECT_EQ(Ec2HttpStatus(CodeOf(wrong)), 401u);
  EXPECT_THAT(wrong.message(), HasSubstr("signature mismatch"));
  EXPECT_THAT(wrong.message(), ::testing::Not(HasSubstr("test:test")));

  EXPECT_EQ(CodeOf(VerifySigV4(Signed(body, {"nobody", "test", ""}, when), keys, o)),
            "AuthFailure");
  EXPECT_EQ(CodeOf(VerifySigV4(Signed(body, {"test", "test", ""}, when, "eu-west-1"), keys, o)),
            "AuthFailure");

  api::HttpRequest tampered = Signed(body, {"test", "test", ""}, when);
  tampered.body += "&InstanceId.1=i-12345678";
  EXPECT_EQ(CodeOf(VerifySigV4(tampered, keys, o)), "AuthFailure");

  api::HttpRequest other_host = Signed(body, {"test", "test", ""}, when);
  other_host.headers["host"] = "127.0.0.1:18081";
  EXPECT_EQ(CodeOf(VerifySigV4(other_host, keys, o)), "AuthFailure");

  api::HttpRequest unsigned_request = Signed(body, {"test", "test", ""}, when);
  unsigned_request.headers.erase("authorization");
  core::Status missing = VerifySigV4(unsigned_request, keys, o);
  EXPECT_EQ(CodeOf(missing), "MissingAuthenticationToken");
  EXPECT_EQ(Ec2HttpStatus(CodeOf(missing)), 401u);

  VerifyOptions late = o;
  late.now = kT0 + 16min;
  EXPECT_EQ(CodeOf(VerifySigV4(Signed(body, {"test", "test", ""}, when), keys, late)),
            "AuthFailure");
}

TEST(SigV4VerifyTest, MintedCredentialsNeedTheirSessionTokenAndExpire) {
  KeyStore keys;
  aws::Credentials minted = keys.Mint(kT0 + 1h);
  EXPECT_TRUE(minted.access_key_id.starts_with("ASIA"));
  const std::string body = "Action=DescribeInstances&Version=2016-11-15";
  const auto when = std::chrono::floor<std::chrono::seconds>(kT0);
  VerifyOptions o{.region = "us-east-1", .now = kT0};

  EXPECT_TRUE(VerifySigV4(Signed(body, minted, when), keys, o).ok());
  EXPECT_EQ(CodeOf(VerifySigV4(
                Signed(body, {minted.access_key_id, minted.secret_access_key, ""}, when), keys,
                o)),
            "AuthFailure");
  EXPECT_EQ(CodeOf(VerifySigV4(Signed(body, {minted.access_key_id, minted.secret_access_key,
                                             "forged-token"},
                                      when),
                               keys, o)),
            "AuthFailure");
  // An unsigned token header is refused even when the signature is right.
  aws::Credentials no_token{minted.access_key_id, minted.secret_access_key, ""};
  api::HttpRequest r = Signed(body, no_token, when);
  r.headers["x-amz-security-token"] = minted.session_token;
  EXPECT_EQ(CodeOf(VerifySigV4(r, keys, o)), "AuthFailure");

  VerifyOptions expired{.region = "us-east-1", .now = kT0 + 1h};
  EXPECT_EQ(CodeOf(VerifySigV4(Signed(body, minted, std::chrono::floor<std::chrono::seconds>(
                                                        kT0 + 1h)),
                               keys, expired)),
            "AuthFailure");
}

// ---------------------------------------------------------------------------
// IMDS.

struct ImdsBundle {
  std::unique_ptr<Ec2Model> model;
  std::unique_ptr<ImdsService> imds;
  std::shared_ptr<Time> now;
  std::string id;
};

ImdsBundle SetupImds(RunParams p) {
  ImdsBundle b;
  b.model = std::make_unique<Ec2Model>(ModelOptions{});
  b.now = std::make_shared<Time>(kT0);
  b.id = Launch(*b.model, p);
  std::optional<RoleCredentials> role;
  if (!b.model->Get(b.id)->role_name.empty()) {
    role = RoleCredentials{{"ASIAEXAMPLE", "secret", "session"}, kT0, kT0 + 6h};
  }
  auto now = b.now;
  b.imds = std::make_unique<ImdsService>(*b.model, b.id, role, [now] { return *now; });
  return b;
}

api::HttpRequest ImdsRequest(std::string method, std::string path,
                             std::map<std::string, std::string> headers = {}) {
  api::HttpRequest r;
  r.method = std::move(method);
  r.path = path;
  r.target = path;
  r.headers = std::move(headers);
  return r;
}

std::string Token(ImdsService& imds, int ttl = 60) {
  auto r = imds.Handle(ImdsRequest("PUT", "/latest/api/token",
                                   {{"x-aws-ec2-metadata-token-ttl-seconds",
                                     std::to_string(ttl)}}));
  EXPECT_EQ(r.status, 200u);
  return r.body;
}

TEST(ImdsTest, TokenRules) {
  RunParams p = Spot();
  ImdsBundle b = SetupImds(p);
  ImdsService& imds = *b.imds;
  for (const char* bad : {"0", "21601", "abc", ""}) {
    auto r = imds.Handle(ImdsRequest("PUT", "/latest/api/token",
                                     {{"x-aws-ec2-metadata-token-ttl-seconds", bad}}));
    EXPECT_EQ(r.status, 400u) << bad;
  }
  EXPECT_EQ(imds.Handle(ImdsRequest("PUT", "/latest/api/token", {})).status, 400u);
  auto fwd = imds.Handle(ImdsRequest("PUT", "/latest/api/token",
                                     {{"x-aws-ec2-metadata-token-ttl-seconds", "60"},
                                      {"x-forwarded-for", "10.0.0.1"}}));
  EXPECT_EQ(fwd.status, 403u);
  auto versioned = imds.Handle(ImdsRequest("PUT", "/2021-03-23/api/token",
                                           {{"x-aws-ec2-metadata-token-ttl-seconds", "60"}}));
  EXPECT_EQ(versioned.status, 403u);

  auto ok = imds.Handle(ImdsRequest("PUT", "/latest/api/token",
                                    {{"x-aws-ec2-metadata-token-ttl-seconds", "21600"}}));
  ASSERT_EQ(ok.status, 200u);
  EXPECT_FALSE(ok.body.empty());
  EXPECT_THAT(ok.headers, ::testing::Contains(::testing::Pair(
                              "X-aws-ec2-metadata-token-ttl-seconds", "21600")));

  const std::string path = "/latest/meta-data/instance-id";
  EXPECT_EQ(imds.Handle(ImdsRequest("GET", path)).status, 401u);  // HttpTokens required.
  EXPECT_EQ(imds.Handle(ImdsRequest("GET", path, {{"x-aws-ec2-metadata-token", "nope"}})).status,
            401u);
  std::string token = Token(imds, 2);
  auto got = imds.Handle(ImdsRequest("GET", path, {{"x-aws-ec2-metadata-token", token}}));
  EXPECT_EQ(got.status, 200u);
  EXPECT_EQ(got.body, b.id);
  *b.now = kT0 + 2s;  // The token has expired.
  EXPECT_EQ(imds.Handle(ImdsRequest("GET", path, {{"x-aws-ec2-metadata-token", token}})).status,
            401u);
}

TEST(ImdsTest, OptionalTokensAllowV1Reads) {
  RunParams p = Spot();
  p.http_tokens = "optional";
  ImdsBundle b = SetupImds(p);
  EXPECT_EQ(b.imds->Handle(ImdsRequest("GET", "/latest/meta-data/instance-id")).status, 200u);
  // A bad token is still refused.
  EXPECT_EQ(b.imds->Handle(ImdsRequest("GET", "/latest/meta-data/instance-id",
                                       {{"x-aws-ec2-metadata-token", "bad"}}))
                .status,
            401u);
}

TEST(ImdsTest, PathsListingsRoleAndSpotNotices) {
  RunParams p = Spot();
  p.iam_profile_name = "sked-runner";
  p.has_user_data = true;
  p.user_data = "#!/bin/sh\necho hi\n";
  ImdsBundle b = SetupImds(p);
  ImdsService& imds = *b.imds;
  std::string token = Token(imds);
  auto get = [&](const std::string& path) {
    return imds.Handle(ImdsRequest("GET", path, {{"x-aws-ec2-metadata-token", token}}));
  };
  auto listing = get("/latest/meta-data/");
  ASSERT_EQ(listing.status, 200u);
  EXPECT_THAT(listing.body, HasSubstr("instance-id\n"));
  EXPECT_THAT(listing.body, HasSubstr("placement/\n"));
  EXPECT_THAT(listing.body, HasSubstr("iam/"));
  EXPECT_THAT(listing.body, ::testing::Not(HasSubstr("spot/")));
  EXPECT_EQ(get("/latest/meta-data/instance-type").body, "t3.micro");
  EXPECT_EQ(get("/latest/meta-data/instance-life-cycle").body, "spot");
  EXPECT_EQ(get("/latest/meta-data/placement/availability-zone").body, "us-east-1a");
  EXPECT_EQ(get("/latest/meta-data/ami-id").body, "ami-12345678");
  EXPECT_EQ(get("/latest/meta-data/local-ipv4").body, "127.0.0.1");
  EXPECT_EQ(get("/latest/user-data").body, "#!/bin/sh\necho hi\n");
  EXPECT_EQ(get("/latest/meta-data/no-such-thing").status, 404u);
  EXPECT_EQ(get("/latest/meta-data/iam/security-credentials/").body, "sked-runner");
  auto creds = get("/latest/meta-data/iam/security-credentials/sked-runner");
  ASSERT_EQ(creds.status, 200u);
  for (const char* field : {"\"Code\" : \"Success\"", "\"Type\" : \"AWS-HMAC\"",
                            "\"AccessKeyId\" : \"ASIAEXAMPLE\"", "\"SecretAccessKey\" : \"secret\"",
                            "\"Token\" : \"session\"",
                            "\"Expiration\" : \"2026-01-02T09:04:05Z\"", "\"LastUpdated\""}) {
    EXPECT_THAT(creds.body, HasSubstr(field));
  }

  EXPECT_EQ(get("/latest/meta-data/spot/instance-action").status, 404u);
  EXPECT_EQ(get("/latest/meta-data/spot/termination-time").status, 404u);
  EXPECT_EQ(get("/latest/meta-data/events/recommendations/rebalance").status, 404u);
  ASSERT_TRUE(b.model->Interrupt(b.id, 120s, kT0).ok());
  auto action = get("/latest/meta-data/spot/instance-action");
  ASSERT_EQ(action.status, 200u);
  EXPECT_EQ(action.body, "{\"action\": \"terminate\", \"time\": \"2026-01-02T03:06:05Z\"}");
  EXPECT_EQ(get("/latest/meta-data/spot/termination-time").body, "2026-01-02T03:06:05Z");
  EXPECT_EQ(get("/latest/meta-data/events/recommendations/rebalance").body,
            "{\"noticeTime\": \"2026-01-02T03:04:05Z\"}");
}

TEST(ImdsTest, NoUserDataIs404AndRebalanceAlone) {
  ImdsBundle b = SetupImds(Spot());
  std::string token = Token(*b.imds);
  auto get = [&](const std::string& path) {
    return b.imds->Handle(ImdsRequest("GET", path, {{"x-aws-ec2-metadata-token", token}}));
  };
  EXPECT_EQ(get("/latest/user-data").status, 404u);
  EXPECT_EQ(get("/latest/meta-data/iam/security-credentials/").status, 404u);
  ASSERT_TRUE(b.model->Rebalance(b.id, kT0 + 5s).ok());
  EXPECT_EQ(get("/latest/meta-data/events/recommendations/rebalance").status, 200u);
  EXPECT_EQ(get("/latest/meta-data/spot/instance-action").status, 404u);
}

}  // namespace
}  // namespace sked::ec2emu
