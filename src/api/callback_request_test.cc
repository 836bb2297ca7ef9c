#include "api/callback_request.h"

#include <gtest/gtest.h>

#include <boost/json/object.hpp>
#include <string>
#include <vector>

#include "api/internal/codec_test_util.h"

namespace sked::api {
namespace {

using testing::IsInvalid;
using testing::IsOk;
using testing::J;

TEST(ParseCallback, AcceptsEveryStatus) {
  for (const char* status : {"succeeded", "failed", "interrupted", "heartbeat"}) {
    SCOPED_TRACE(status);
    auto r = ParseCallback(boost::json::object{{"attempt", 2}, {"status", status}});
    ASSERT_TRUE(IsOk(r));
    EXPECT_EQ(r->attempt, 2);
    EXPECT_EQ(r->status, status);
    EXPECT_FALSE(r->exit_code);
    EXPECT_FALSE(r->message);
  }
}

TEST(ParseCallback, OptionalFields) {
  auto r = ParseCallback(J(R"({"attempt":1,"status":"failed","exit_code":-9,"message":"killed"})"));
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->exit_code, -9);
  EXPECT_EQ(r->message, "killed");
  r = ParseCallback(J(R"({"attempt":1.0,"status":"succeeded","exit_code":null,"message":null})"));
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->attempt, 1);
  EXPECT_FALSE(r->exit_code);
  EXPECT_FALSE(r->message);
  r = ParseCallback(boost::json::object{{"attempt", 2147483647},
                                        {"status", "succeeded"},
                                        {"exit_code", -2147483648LL},
                                        {"message", std::string(4096, 'm')}});
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->attempt, 2147483647);
  EXPECT_EQ(r->exit_code, -2147483648LL);
}

TEST(ParseCallback, Rejects) {
  struct Case {
    boost::json::value body;
    std::string message;
  };
  const std::string kAttempt = "attempt: must be a positive integer";
  const std::string kStatus = "status: must be one of succeeded, failed, interrupted, heartbeat";
  const std::vector<Case> cases = {
      {J("[]"), "request body must be a JSON object"},
      {J(R"({"status":"succeeded"})"), "attempt: required"},
      {J(R"({"attempt":null,"status":"succeeded"})"), "attempt: required"},
      {J(R"({"attempt":"1","status":"succeeded"})"), kAttempt},
      {J(R"({"attempt":0,"status":"succeeded"})"), kAttempt},
      {J(R"({"attempt":-1,"status":"succeeded"})"), kAttempt},
      {J(R"({"attempt":1.5,"status":"succeeded"})"), kAttempt},
      {J(R"({"attempt":2147483648,"status":"succeeded"})"), kAttempt},
      {J(R"({"attempt":1})"), "status: required"},
      {J(R"({"attempt":1,"status":"done"})"), kStatus},
      {J(R"({"attempt":1,"status":"Succeeded"})"), kStatus},
      {J(R"({"attempt":1,"status":1})"), kStatus},
      {J(R"({"attempt":1,"status":"failed","exit_code":"1"})"), "exit_code: must be an integer"},
      {J(R"({"attempt":1,"status":"failed","exit_code":2147483648})"),
       "exit_code: must be an integer"},
      {J(R"({"attempt":1,"status":"failed","exit_code":0.5})"), "exit_code: must be an integer"},
      {J(R"({"attempt":1,"status":"failed","message":1})"), "message: must be a string"},
      {boost::json::object{
           {"attempt", 1}, {"status", "failed"}, {"message", std::string(4097, 'm')}},
       "message: longer than 4096 characters"},
      {boost::json::object{{"attempt", 1}, {"status", "failed"}, {"message", "\xff"}},
       "message: not valid UTF-8"},
      {J(R"({"attempt":1,"status":"failed","token":"x"})"), "token: unknown field"},
      {J(R"({"attempt":1,"status":"failed","a b":"x"})"), R"(unknown field "a b")"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    EXPECT_TRUE(IsInvalid(ParseCallback(c.body), c.message));
  }
  // A 4096-character message of multi-byte characters is within the limit.
  std::string m;
  for (int i = 0; i < 4096; ++i) m += "é";
  EXPECT_TRUE(IsOk(
      ParseCallback(boost::json::object{{"attempt", 1}, {"status", "failed"}, {"message", m}})));
}

}  // namespace
}  // namespace sked::api
