// File: ec2emu/sigv4_verify.cc
#include "ec2emu/sigv4_verify.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "ec2emu/ec2_error.h"

namespace sked::ec2emu {
namespace {

using core::Status;

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
// AWS's text for every signature problem; the reason follows in parentheses
// so a test failure says what was wrong.
constexpr char kAuthFailure[] = "AWS was not able to validate the provided access credentials";

Status AuthFailure(std::string_view why) {
  return Ec2ErrorStatus("AuthFailure", std::string(kAuthFailure) + " (" + std::string(why) + ")");
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    size_t next = s.find(sep, pos);
    out.push_back(s.substr(pos, next == std::string_view::npos ? std::string_view::npos
                                                                : next - pos));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return out;
}

std::optional<std::chrono::sys_seconds> ParseAmzDate(std::string_view s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  for (size_t i = 0; i < 15; ++i) {
    if (i != 8 && (s[i] < '0' || s[i] > '9')) return std::nullopt;
  }
  auto num = [&](size_t pos, size_t n) {
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) v = v * 10 + (s[i] - '0');
    return v;
  };
  using namespace std::chrono;
  year_month_day ymd{year{num(0, 4)}, month{static_cast<unsigned>(num(4, 2))},
                     day{static_cast<unsigned>(num(6, 2))}};
  if (!ymd.ok() || num(9, 2) > 23 || num(11, 2) > 59 || num(13, 2) > 60) return std::nullopt;
  return sys_days{ymd} + hours(num(9, 2)) + minutes(num(11, 2)) + seconds(num(13, 2));
}

struct Authorization {
  std::string access_key_id;
  std::string date;  // YYYYMMDD
  std::string region;
  std::string service;
  std::vector<std::string> signed_headers;
  std::string signed_headers_text;
  std::string signature;
};

std::optional<Authorization> ParseAuthorization(std::string_view header) {
  header = Trim(header);
  if (!header.starts_with(kAlgorithm) || header.size() == kAlgorithm.size() ||
      header[kAlgorithm.size()] != ' ') {
    return std::nullopt;
  }
  Authorization a;
  std::string credential;
  for (std::string_view part : Split(header.substr(kAlgorithm.size() + 1), ',')) {
    part = Trim(part);
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view key = part.substr(0, eq);
    std::string_view value = part.substr(eq + 1);
    if (key == "Credential") {
      credential = std::string(value);
    } else if (key == "SignedHeaders") {
      a.signed_headers_text = std::string(value);
    } else if (key == "Signature") {
      a.signature = std::string(value);
    }
  }
  std::vector<std::string_view> scope = Split(credential, '/');
  if (scope.size() != 5 || scope[4] != "aws4_request" || a.signed_headers_text.empty() ||
      a.signature.empty()) {
    return std::nullopt;
  }
  a.access_key_id = std::string(scope[0]);
  a.date = std::string(scope[1]);
  a.region = std::string(scope[2]);
  a.service = std::string(scope[3]);
  for (std::string_view h : Split(a.signed_headers_text, ';')) a.signed_headers.emplace_back(h);
  return a;
}

bool Contains(const std::vector<std::string>& list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

}  // namespace

void KeyStore::AddStatic(const std::string& access_key_id, const std::string& secret) {
  std::lock_guard<std::mutex> lock(mu_);
  keys_[access_key_id] = Key{secret, "", std::nullopt};
}

aws::Credentials KeyStore::Mint(core::Time expiration) {
  aws::Credentials c;
  c.access_key_id = "ASIA" + random_.From(internal::kUpperAlnum, 16);
  c.secret_access_key = random_.From(internal::kBase64Alphabet, 40);
  c.session_token = "IQoJb3JpZ2luX2VjE" + random_.From(internal::kBase64Alphabet, 300);
  std::lock_guard<std::mutex> lock(mu_);
  keys_[c.access_key_id] = Key{c.secret_access_key, c.session_token, expiration};
  return c;
}

std::optional<KeyStore::Key> KeyStore::Find(const std::string& access_key_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = keys_.find(access_key_id);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

Status VerifySigV4(const api::HttpRequest& request, const KeyStore& keys,
                   const VerifyOptions& options) {
  const std::string& header = request.Header("authorization");
  if (header.empty()) {
    return Ec2ErrorStatus("MissingAuthenticationToken",
                          "The request must contain either a valid (registered) AWS access key "
                          "ID or X.509 certificate.");
  }
  std::optional<Authorization> auth = ParseAuthorization(header);
  if (!auth) return AuthFailure("malformed Authorization header");
  if (auth->region != options.region || auth->service != options.service) {
    return AuthFailure("credential scope names region '" + auth->region + "' and service '" +
                       auth->service + "', expected '" + options.region + "' and '" +
                       options.service + "'");
  }
  if (!Contains(auth->signed_headers, "host")) return AuthFailure("host is not signed");
  if (!Contains(auth->signed_headers, "x-amz-date")) return AuthFailure("x-amz-date is not signed");
  std::optional<std::chrono::sys_seconds> signed_at = ParseAmzDate(request.Header("x-amz-date"));
  if (!signed_at) return AuthFailure("missing or malformed X-Amz-Date");
  if (aws::AmzDate(*signed_at).substr(0, 8) != auth->date) {
    return AuthFailure("credential scope date does not match X-Amz-Date");
  }
  auto skew = options.now - std::chrono::time_point_cast<core::Duration>(*signed_at);
  if (skew > options.max_skew || -skew > options.max_skew) {
    return AuthFailure("X-Amz-Date is more than " + std::to_string(options.max_skew.count()) +
                       " s away from the server's clock");
  }

  std::optional<KeyStore::Key> key = keys.Find(auth->access_key_id);
  if (!key) return AuthFailure("unknown access key " + auth->access_key_id);
  const std::string& token = request.Header("x-amz-security-token");
  if (!token.empty() && !Contains(auth->signed_headers, "x-amz-security-token")) {
    return AuthFailure("x-amz-security-token is sent but not signed");
  }
  if (!key->session_token.empty()) {
    if (token.size() != key->session_token.size() ||
        CRYPTO_memcmp(token.data(), key->session_token.data(), token.size()) != 0) {
      return AuthFailure("temporary credentials need their session token");
    }
    if (key->expiration && options.now >= *key->expiration) {
      return AuthFailure("temporary credentials have expired");
    }
  }
  const std::string& content_sha = request.Header("x-amz-content-sha256");
  if (!content_sha.empty() && content_sha != "UNSIGNED-PAYLOAD" &&
      content_sha != aws::HexSha256(request.body)) {
    return AuthFailure("X-Amz-Content-Sha256 does not match the body");
  }

  aws::HttpRequestToSign to_sign;
  to_sign.method = request.method;
  to_sign.url = "http://" + request.Header("host") + request.target;
  to_sign.body = request.body;
  for (const std::string& name : auth->signed_headers) {
    auto it = request.headers.find(name);
    if (it == request.headers.end()) return AuthFailure("signed header " + name + " is missing");
    to_sign.headers.emplace_back(name, it->second);
  }
  core::StatusOr<std::string> canonical = aws::CanonicalRequest(to_sign);
  if (!canonical.ok()) return AuthFailure("cannot canonicalize the request");
  // The canonical request's signed-header line must be the client's list; it
  // differs when the client signed a header botocore never signs.
  std::string_view creq = *canonical;
  size_t last = creq.rfind('\n');
  size_t before = creq.rfind('\n', last - 1);
  if (creq.substr(before + 1, last - before - 1) != auth->signed_headers_text) {
    return AuthFailure("SignedHeaders lists a header that cannot be signed (user-agent, expect)");
  }
  aws::SigningParams params{.region = auth->region, .service = auth->service, .time = *signed_at};
  aws::Credentials credentials{auth->access_key_id, key->secret, key->session_token};
  std::string expected = aws::Signature(aws::StringToSign(*canonical, params), credentials, params);
  if (expected.size() != auth->signature.size() ||
      CRYPTO_memcmp(expected.data(), auth->signature.data(), expected.size()) != 0) {
    return AuthFailure("signature mismatch");
  }
  return core::OkStatus();
}

}  // namespace sked::ec2emu
