// File: aws/sigv4.cc
//
// SigV4 header signing. Where the spec leaves room, this follows what botocore's
// SigV4Auth (Debian python3-botocore 1.29.27) does, because that is the signer
// AWS's own CLI uses and the one our tests compare against.
#include "aws/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>

namespace sked::aws {
namespace {

using core::InvalidArgumentError;
using core::Status;
using core::StatusOr;

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kHexDigits = "0123456789abcdef";

// botocore's SIGNED_HEADERS_BLACKLIST: headers a proxy or the HTTP stack may
// rewrite after signing.
constexpr std::array<std::string_view, 3> kUnsignedHeaders = {"expect", "user-agent",
                                                              "x-amzn-trace-id"};

// Headers the signer writes itself; a caller-supplied copy would be sent twice.
constexpr std::array<std::string_view, 4> kSignerOwnedHeaders = {"authorization", "x-amz-date",
                                                                 "x-amz-security-token", "date"};

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string ToUpper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::string ToHex(const unsigned char* data, size_t n) {
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHexDigits[data[i] >> 4]);
    out.push_back(kHexDigits[data[i] & 0xf]);
  }
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

// Python's str.split() whitespace for ASCII, so header values trim and collapse
// exactly as botocore's `' '.join(value.split())`.
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
         (c >= '\x1c' && c <= '\x1f');
}

std::string TrimAll(std::string_view v) {
  std::string out;
  size_t i = 0;
  while (i < v.size()) {
    while (i < v.size() && IsSpace(v[i])) ++i;
    if (i == v.size()) break;
    if (!out.empty()) out.push_back(' ');
    while (i < v.size() && !IsSpace(v[i])) out.push_back(v[i++]);
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = HexValue(s[i + 1]);
    int lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// The parts of an absolute URL that signing needs, split the way Python's
// urllib.parse.urlsplit does.
struct ParsedUrl {
  std::string host;   // Lower-case, with ":port" unless it is the default.
  std::string path;   // Raw, as sent.
  std::string query;  // Raw, without '?'.
};

StatusOr<ParsedUrl> ParseUrl(std::string_view url) {
  size_t colon = url.find("://");
  if (colon == std::string_view::npos) {
    return InvalidArgumentError("sigv4: URL is not absolute: " + std::string(url));
  }
  std::string scheme = ToLower(url.substr(0, colon));
  int default_port;
  if (scheme == "https") {
    default_port = 443;
  } else if (scheme == "http") {
    default_port = 80;
  } else {
    return InvalidArgumentError("sigv4: URL scheme must be http or https: " + std::string(url));
  }
  std::string_view rest = url.substr(colon + 3);
  size_t netloc_end = rest.find_first_of("/?#");
  std::string_view netloc = rest.substr(0, netloc_end);
  rest = netloc_end == std::string_view::npos ? std::string_view() : rest.substr(netloc_end);
  if (size_t hash = rest.find('#'); hash != std::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  ParsedUrl out;
  size_t q = rest.find('?');
  out.path = std::string(rest.substr(0, q));
  if (q != std::string_view::npos) out.query = std::string(rest.substr(q + 1));

  if (size_t at = netloc.rfind('@'); at != std::string_view::npos) {
    netloc = netloc.substr(at + 1);
  }
  std::string_view host;
  std::string_view port;
  if (!netloc.empty() && netloc.front() == '[') {
    size_t close = netloc.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgumentError("sigv4: bad IPv6 host in URL: " + std::string(url));
    }
    host = netloc.substr(0, close + 1);
    std::string_view after = netloc.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return InvalidArgumentError("sigv4: bad host in URL: " + std::string(url));
      }
      port = after.substr(1);
    }
  } else {
    size_t c = netloc.rfind(':');
    host = netloc.substr(0, c);
    if (c != std::string_view::npos) port = netloc.substr(c + 1);
  }
  if (host.empty() || host == "[]") {
    return InvalidArgumentError("sigv4: URL has no host: " + std::string(url));
  }
  out.host = ToLower(host);
  if (!port.empty()) {
    int value = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || value > 65535) {
        return InvalidArgumentError("sigv4: bad port in URL: " + std::string(url));
      }
      value = value * 10 + (c - '0');
    }
    if (value > 65535) {
      return InvalidArgumentError("sigv4: bad port in URL: " + std::string(url));
    }
    if (value != default_port) out.host += ":" + std::to_string(value);
  }
  return out;
}

// RFC 3986 section 5.2.4 dot-segment removal; empty segments are dropped too,
// since AWS services collapse consecutive slashes (botocore's
// remove_dot_segments). An empty path becomes "/".
std::string NormalizePath(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> segments;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view seg = path.substr(start, slash - start);
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    start = slash + 1;
  }
  std::string out = path.front() == '/' ? "/" : "";
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out += '/';
    out += segments[i];
  }
  if (path.back() == '/' && !segments.empty()) out += '/';
  return out;
}

// Each name and value is decoded and re-encoded, so the result is canonical
// even if the URL used lower-case hex or left a reserved byte unencoded. For a
// URL built with EncodeQuery this is the identity, which is what botocore
// (which signs the raw pairs) assumes.
StatusOr<std::string> CanonicalQuery(std::string_view query) {
  if (query.empty()) return std::string();
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(start, amp - start);
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    std::optional<std::string> k = PercentDecode(key);
    std::optional<std::string> v = PercentDecode(value);
    if (!k || !v) {
      return InvalidArgumentError("sigv4: malformed percent-escape in query: " + std::string(pair));
    }
    pairs.emplace_back(UriEncode(*k), UriEncode(*v));
    start = amp + 1;
  }
  // By encoded name, then by encoded value for repeated names.
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [k, v] : pairs) {
    if (!out.empty()) out += '&';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

bool Contains(const auto& list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

struct Canonical {
  std::string request;
  std::string signed_headers;
};

StatusOr<Canonical> BuildCanonical(const HttpRequestToSign& request) {
  ASSIGN_OR_RETURN(ParsedUrl url, ParseUrl(request.url));
  ASSIGN_OR_RETURN(std::string query, CanonicalQuery(url.query));

  // (lower-case name, trimmed value), stable-sorted by name so repeated
  // headers keep their order when joined.
  std::vector<std::pair<std::string, std::string>> headers;
  bool has_host = false;
  std::optional<std::string> payload_hash;
  for (const auto& [name, value] : request.headers) {
    std::string lname = ToLower(name);
    if (lname == "x-amz-content-sha256" && !payload_hash) payload_hash = value;
    if (Contains(kUnsignedHeaders, lname)) continue;
    if (lname == "host") has_host = true;
    headers.emplace_back(std::move(lname), TrimAll(value));
  }
  if (!has_host) headers.emplace_back("host", url.host);
  std::stable_sort(headers.begin(), headers.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  std::string canonical_headers;
  std::string signed_headers;
  for (size_t i = 0; i < headers.size(); ++i) {
    if (i > 0 && headers[i].first == headers[i - 1].first) {
      canonical_headers += ',';
      canonical_headers += headers[i].second;
      continue;
    }
    if (i > 0) {
      canonical_headers += '\n';
      signed_headers += ';';
    }
    canonical_headers += headers[i].first;
    canonical_headers += ':';
    canonical_headers += headers[i].second;
    signed_headers += headers[i].first;
  }

  Canonical out;
  out.request = ToUpper(request.method);
  out.request += '\n';
  out.request += UriEncode(NormalizePath(url.path), /*keep_slash=*/true);
  out.request += '\n';
  out.request += query;
  out.request += '\n';
  out.request += canonical_headers;
  out.request += "\n\n";
  out.request += signed_headers;
  out.request += '\n';
  out.request += payload_hash ? *payload_hash : HexSha256(request.body);
  out.signed_headers = std::move(signed_headers);
  return out;
}

}  // namespace

std::string HexSha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return ToHex(md, len);
}

std::string UriEncode(std::string_view s, bool keep_slash) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      static constexpr char kUpperHex[] = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(kUpperHex[c >> 4]);
      out.push_back(kUpperHex[c & 0xf]);
    }
  }
  return out;
}

std::string EncodeQuery(const ParamList& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += UriEncode(k);
    out += '=';
    out += UriEncode(v);
  }
  return out;
}

std::string Ec2QueryBody(std::string_view action, const ParamList& params) {
  std::string out = "Action=" + UriEncode(action) + "&Version=" + std::string(kEc2ApiVersion);
  if (!params.empty()) {
    out += '&';
    out += EncodeQuery(params);
  }
  return out;
}

std::string AmzDate(std::chrono::sys_seconds time) {
  using namespace std::chrono;
  const auto day = floor<days>(time);
  const year_month_day ymd(day);
  const hh_mm_ss hms(time - day);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04d%02u%02uT%02d%02d%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::string CredentialScope(const SigningParams& params) {
  return AmzDate(params.time).substr(0, 8) + "/" + params.region + "/" + params.service +
         "/aws4_request";
}

StatusOr<std::string> CanonicalRequest(const HttpRequestToSign& request) {
  ASSIGN_OR_RETURN(Canonical c, BuildCanonical(request));
  return std::move(c.request);
}

std::string StringToSign(std::string_view canonical_request, const SigningParams& params) {
  std::string out(kAlgorithm);
  out += '\n';
  out += AmzDate(params.time);
  out += '\n';
  out += CredentialScope(params);
  out += '\n';
  out += HexSha256(canonical_request);
  return out;
}

std::string Signature(std::string_view string_to_sign, const Credentials& credentials,
                      const SigningParams& params) {
  std::string key =
      HmacSha256("AWS4" + credentials.secret_access_key, AmzDate(params.time).substr(0, 8));
  key = HmacSha256(key, params.region);
  key = HmacSha256(key, params.service);
  key = HmacSha256(key, "aws4_request");
  std::string sig = HmacSha256(key, string_to_sign);
  return ToHex(reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
}

StatusOr<HeaderList> SignRequest(const HttpRequestToSign& request, const Credentials& credentials,
                                 const SigningParams& params) {
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return InvalidArgumentError("sigv4: access key id and secret are required");
  }
  if (params.region.empty() || params.service.empty()) {
    return InvalidArgumentError("sigv4: region and service are required");
  }
  if (request.method.empty()) {
    return InvalidArgumentError("sigv4: HTTP method is required");
  }
  bool has_host = false;
  for (const auto& [name, value] : request.headers) {
    std::string lname = ToLower(name);
    if (Contains(kSignerOwnedHeaders, lname)) {
      return InvalidArgumentError("sigv4: request already has header " + name +
                                  ", which the signer sets");
    }
    if (lname == "host") has_host = true;
  }
  ASSIGN_OR_RETURN(ParsedUrl url, ParseUrl(request.url));

  HeaderList added;
  if (!has_host) added.emplace_back("Host", url.host);
  added.emplace_back("X-Amz-Date", AmzDate(params.time));
  if (!credentials.session_token.empty()) {
    added.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }

  HttpRequestToSign to_sign = request;
  to_sign.headers.insert(to_sign.headers.end(), added.begin(), added.end());
  ASSIGN_OR_RETURN(Canonical canonical, BuildCanonical(to_sign));
  std::string signature = Signature(StringToSign(canonical.request, params), credentials, params);

  added.emplace_back("Authorization",
                     std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + "/" +
                         CredentialScope(params) + ", SignedHeaders=" + canonical.signed_headers +
                         ", Signature=" + signature);
  return added;
}

}  // namespace sked::aws
