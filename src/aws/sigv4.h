// File: aws/sigv4.h
//
// AWS Signature Version 4 (header signing) for the EC2 Query API and any other
// non-S3 service, plus the RFC 3986 encoding helpers that build a Query API form
// body. The result matches botocore's `SigV4Auth` byte for byte for the same
// request, which tests/aws/botocore_sign.py checks; the steps are the ones in
// specs/ec2-spot.md section 2:
//
//   canonical request = METHOD \n canonical URI \n canonical query \n
//                       canonical headers \n \n signed headers \n hex(SHA-256(body))
//   string to sign    = AWS4-HMAC-SHA256 \n amz-date \n scope \n hex(SHA-256(creq))
//   signature         = hex(HMAC(kSigning, string to sign)), where kSigning comes
//                       from the chain "AWS4"+secret -> date -> region -> service ->
//                       "aws4_request".
//
// The signer never reads the clock: the caller passes the signing time (from the
// injected core::Clock), so tests and retries are deterministic.
//
// Thread safety: free functions without shared state; safe to call concurrently.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace sked::aws {

// One HTTP header or one query / form parameter, in the order given.
using Header = std::pair<std::string, std::string>;
using HeaderList = std::vector<Header>;
using ParamList = std::vector<std::pair<std::string, std::string>>;

// The one EC2 Query API version sked speaks (specs/ec2-spot.md section 1).
inline constexpr std::string_view kEc2ApiVersion = "2016-11-15";

// Long-term (AKIA...) or temporary (ASIA... plus session token) credentials.
// The secret never appears in any returned string or status message.
struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  // Empty for long-term keys. When set, it is sent and signed as
  // X-Amz-Security-Token.
  std::string session_token;
};

// The request exactly as it will go on the wire, before signing.
struct HttpRequestToSign {
  std::string method;  // "POST", "GET"; upper-cased for signing.
  // Absolute URL, e.g. "https://ec2.us-east-1.amazonaws.com/" or
  // "http://127.0.0.1:18080/". The path and query must already be
  // percent-encoded as they will be sent (EncodeQuery / UriEncode produce that).
  std::string url;
  // Headers the transport will send, in order. Repeated names are signed as
  // one comma-joined value. User-Agent, Expect and X-Amzn-Trace-Id are sent
  // but not signed (as botocore does), so proxies may rewrite them.
  HeaderList headers;
  std::string body;  // Exact body bytes; empty for GET.
};

struct SigningParams {
  std::string region;             // "us-east-1".
  std::string service;            // "ec2".
  std::chrono::sys_seconds time;  // Signing time, UTC; the server allows minutes of skew.
};

// Signs `request` and returns the headers the caller must add before sending:
// Host (only when `request.headers` has none; it carries the port unless it is
// the scheme's default), X-Amz-Date, X-Amz-Security-Token (only with a session
// token) and Authorization. X-Amz-Content-Sha256 is not added: EC2 does not use
// it and botocore does not send it; if the caller supplies one, its value is
// signed as the payload hash, as botocore does.
//
// Returns InvalidArgument if the URL is not an absolute http(s) URL, its
// query holds a malformed percent-escape, a credential, region, service or
// method is empty, or `request.headers` already carries Authorization,
// X-Amz-Date, X-Amz-Security-Token or Date (the signer owns those; a retry must
// start again from the unsigned request).
core::StatusOr<HeaderList> SignRequest(const HttpRequestToSign& request,
                                       const Credentials& credentials, const SigningParams& params);

// The pieces SignRequest is made of, exposed for tests and debugging.

// The canonical request for `request` with exactly the headers it carries
// (plus host derived from the URL when absent). Pass the request together
// with SignRequest's returned headers to get the string that was signed.
// Returns InvalidArgument for the same URL problems as SignRequest.
core::StatusOr<std::string> CanonicalRequest(const HttpRequestToSign& request);

// "AWS4-HMAC-SHA256\n<amz-date>\n<scope>\n<hex SHA-256 of canonical_request>".
std::string StringToSign(std::string_view canonical_request, const SigningParams& params);

// Lower-case hex HMAC-SHA256 of `string_to_sign` under the key derived from
// the secret, date, region and service.
std::string Signature(std::string_view string_to_sign, const Credentials& credentials,
                      const SigningParams& params);

// "20150830T123600Z".
std::string AmzDate(std::chrono::sys_seconds time);

// "20150830/us-east-1/ec2/aws4_request".
std::string CredentialScope(const SigningParams& params);

// Lower-case hex SHA-256 of `data`.
std::string HexSha256(std::string_view data);

// Percent-encodes every byte outside RFC 3986's unreserved set
// (A-Z a-z 0-9 - _ . ~) as %XX with upper-case hex; a space becomes %20.
// With `keep_slash`, '/' is left as is (for URI paths).
std::string UriEncode(std::string_view s, bool keep_slash = false);

// "k1=v1&k2=v2" with keys and values UriEncode'd, in the order given. Used for
// Query API form bodies and URL query strings.
std::string EncodeQuery(const ParamList& params);

// An EC2 Query API form body: "Action=<action>&Version=2016-11-15&<params>".
// Send it with Content-Type "application/x-www-form-urlencoded; charset=utf-8".
std::string Ec2QueryBody(std::string_view action, const ParamList& params);

}  // namespace sked::aws
