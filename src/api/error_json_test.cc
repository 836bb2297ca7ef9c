#include "api/error_json.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <string>
#include <vector>

namespace sked::api {
namespace {

using C = core::StatusCode;

TEST(ErrorTable, EveryCode) {
  struct Row {
    C code;
    std::string_view name;
    unsigned http;
  };
  const std::vector<Row> table = {
      {C::kOk, "internal", 500},
      {C::kCancelled, "internal", 500},
      {C::kInvalidArgument, "invalid_argument", 400},
      {C::kDeadlineExceeded, "deadline_exceeded", 504},
      {C::kNotFound, "not_found", 404},
      {C::kAlreadyExists, "conflict", 409},
      {C::kPermissionDenied, "permission_denied", 403},
      {C::kUnauthenticated, "unauthenticated", 401},
      {C::kResourceExhausted, "resource_exhausted", 429},
      {C::kFailedPrecondition, "conflict", 409},
      {C::kAborted, "conflict", 409},
      {C::kUnavailable, "unavailable", 503},
      {C::kInternal, "internal", 500},
  };
  for (const auto& row : table) {
    SCOPED_TRACE(std::string(core::StatusCodeName(row.code)));
    EXPECT_EQ(ErrorCodeName(row.code), row.name);
    EXPECT_EQ(HttpStatusFor(row.code), row.http);
  }
}

TEST(FieldFromMessage, OnlyFieldPathPrefixes) {
  EXPECT_EQ(FieldFromMessage("run_at: not a time"), "run_at");
  EXPECT_EQ(FieldFromMessage("env.FOO: names starting with SKED_ are reserved"), "env.FOO");
  EXPECT_EQ(FieldFromMessage("tasks[3].command[0]: must be a string"), "tasks[3].command[0]");
  EXPECT_EQ(FieldFromMessage("labels.app.kubernetes.io/name: longer than 255 characters"),
            "labels.app.kubernetes.io/name");
  EXPECT_EQ(FieldFromMessage("env.A-B: invalid name"), "env.A-B");
  EXPECT_EQ(FieldFromMessage("a: b: c"), "a");
  EXPECT_EQ(FieldFromMessage("request body must be a JSON object"), std::nullopt);
  EXPECT_EQ(FieldFromMessage("request body: a key is not valid UTF-8"), std::nullopt);
  EXPECT_EQ(FieldFromMessage(R"(unknown field "a: b")"), std::nullopt);
  EXPECT_EQ(FieldFromMessage(": x"), std::nullopt);
  EXPECT_EQ(FieldFromMessage("run_at:not a time"), std::nullopt);
  EXPECT_EQ(FieldFromMessage(""), std::nullopt);
}

boost::json::value Parse(const std::string& s) { return boost::json::parse(s); }

TEST(ErrorBody, InvalidArgumentCarriesTheField) {
  EXPECT_EQ(Parse(ErrorBody(C::kInvalidArgument, "run_at: not a time")),
            Parse(R"({"error":{"code":"invalid_argument","message":"run_at: not a time",
                                "details":{"field":"run_at"}}})"));
  EXPECT_EQ(Parse(ErrorBody(core::InvalidArgumentError("tasks[3].env.FOO: x"))),
            Parse(R"({"error":{"code":"invalid_argument","message":"tasks[3].env.FOO: x",
                                "details":{"field":"tasks[3].env.FOO"}}})"));
  EXPECT_EQ(Parse(ErrorBody(C::kInvalidArgument, "request body must be a JSON object")),
            Parse(R"({"error":{"code":"invalid_argument",
                                "message":"request body must be a JSON object","details":{}}})"));
}

TEST(ErrorBody, OtherCodesKeepTheirMessageButNoField) {
  EXPECT_EQ(
      Parse(ErrorBody(C::kNotFound, "task abc: not found")),
      Parse(R"({"error":{"code":"not_found","message":"task abc: not found","details":{}}})"));
  EXPECT_EQ(
      Parse(ErrorBody(C::kFailedPrecondition, "task already succeeded")),
      Parse(R"({"error":{"code":"conflict","message":"task already succeeded","details":{}}})"));
  EXPECT_EQ(
      Parse(ErrorBody(C::kUnauthenticated, "missing bearer token")),
      Parse(
          R"({"error":{"code":"unauthenticated","message":"missing bearer token","details":{}}})"));
}

TEST(ErrorBody, BackendTextNeverLeaks) {
  for (C code : {C::kInternal, C::kCancelled, C::kOk}) {
    EXPECT_EQ(Parse(ErrorBody(code, "ERROR: relation \"tasks\" does not exist")),
              Parse(R"({"error":{"code":"internal","message":"internal error","details":{}}})"));
  }
  EXPECT_EQ(Parse(ErrorBody(C::kUnavailable, "could not connect to server: Connection refused")),
            Parse(R"({"error":{"code":"unavailable",
                                "message":"the service is temporarily unavailable; retry later",
                                "details":{}}})"));
}

TEST(ErrorBody, InvalidUtf8MessageStillMakesValidJson) {
  auto v = Parse(ErrorBody(C::kInvalidArgument, "x: \xff"));
  EXPECT_EQ(v.at("error").at("message"), "invalid request");
}

TEST(ErrorBody, SpecialBodies) {
  EXPECT_EQ(Parse(MethodNotAllowedBody({"GET", "POST"})),
            Parse(R"({"error":{"code":"method_not_allowed",
                                "message":"method not allowed; allowed: GET, POST",
                                "details":{"allow":["GET","POST"]}}})"));
  EXPECT_EQ(Parse(PayloadTooLargeBody(1048576)), Parse(R"({"error":{"code":"payload_too_large",
                                "message":"request body larger than 1048576 bytes",
                                "details":{"limit_bytes":1048576}}})"));
  EXPECT_EQ(Parse(LegacyMessageBody("docker_image field cannot be empty")),
            Parse(R"({"message":"docker_image field cannot be empty"})"));
  EXPECT_EQ(Parse(LegacyMessageBody("a \"quoted\"\n")), Parse(R"({"message":"a \"quoted\"\n"})"));
}

}  // namespace
}  // namespace sked::api
