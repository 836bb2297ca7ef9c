#include "http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace sked::blackbox {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::vector<std::pair<std::string, std::string>>*>(user);
  std::string_view line(data, size * n);
  // A new status line (after "100 Continue", or a redirect) starts a new header block.
  if (line.starts_with("HTTP/")) {
    headers->clear();
  } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
    headers->emplace_back(Trim(line.substr(0, colon)), Trim(line.substr(colon + 1)));
  }
  return size * n;
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool HasHeader(const std::vector<std::string>& headers, std::string_view name) {
  for (const auto& h : headers) {
    auto colon = h.find(':');
    if (colon != std::string::npos && IEquals(std::string_view(h).substr(0, colon), name)) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return v;
  }
  return std::nullopt;
}

boost::json::value HttpResponse::Json() const {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (ec) {
    throw std::runtime_error("response body is not JSON (" + ec.message() +
                             "): " + Describe(*this));
  }
  return v;
}

boost::json::object HttpResponse::Object() const {
  boost::json::value v = Json();
  if (!v.is_object())
    throw std::runtime_error("response body is not a JSON object: " + Describe(*this));
  return v.as_object();
}

std::string Describe(const HttpResponse& r) {
  std::ostringstream os;
  if (r.status == 0) {
    os << "no HTTP response (" << r.transport_error << ")";
    return os.str();
  }
  os << "HTTP " << r.status;
  if (auto ct = r.Header("Content-Type")) os << " content-type=" << *ct;
  constexpr size_t kMax = 2000;
  os << " body=" << (r.body.size() > kMax ? r.body.substr(0, kMax) + "...(truncated)" : r.body);
  return os.str();
}

void PrintTo(const HttpResponse& r, std::ostream* os) { *os << Describe(r); }

HttpClient::HttpClient(std::function<std::string()> base_url) : base_url_(std::move(base_url)) {
  GlobalInit();
}

HttpResponse HttpClient::Request(std::string_view method, std::string_view target,
                                 std::optional<std::string> body,
                                 const std::vector<std::string>& headers,
                                 std::chrono::milliseconds timeout) const {
  HttpResponse out;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) throw std::runtime_error("curl_easy_init failed");
  std::string url = base_url_() + std::string(target);
  std::string method_str(method);
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  if (bearer_ && !HasHeader(headers, "Authorization")) {
    list = curl_slist_append(list, ("Authorization: Bearer " + *bearer_).c_str());
  }
  if (body && !HasHeader(headers, "Content-Type")) {
    list = curl_slist_append(list, "Content-Type:");  // no form-urlencoded default
  }

  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");  // never through an environment proxy
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &out.headers);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);

  if (method_str == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method_str.c_str());
  } else if (method_str == "POST" || method_str == "PUT" || method_str == "PATCH") {
    // An empty body, with Content-Length: 0.
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(0));
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method_str.c_str());
  } else if (method_str != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method_str.c_str());
  }

  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
  } else {
    // A response may still have arrived (e.g. 413 before the whole body was sent).
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    out.status = code;
    out.transport_error = std::string(curl_easy_strerror(rc)) + ": " + errbuf;
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return out;
}

HttpResponse HttpClient::Get(std::string_view target,
                             const std::vector<std::string>& headers) const {
  return Request("GET", target, std::nullopt, headers);
}

HttpResponse HttpClient::Delete(std::string_view target,
                                const std::vector<std::string>& headers) const {
  return Request("DELETE", target, std::nullopt, headers);
}

HttpResponse HttpClient::PostJson(std::string_view target, const boost::json::value& body,
                                  const std::vector<std::string>& headers) const {
  return PostRaw(target, boost::json::serialize(body), headers);
}

HttpResponse HttpClient::PutJson(std::string_view target, const boost::json::value& body,
                                 const std::vector<std::string>& headers) const {
  std::vector<std::string> h = headers;
  if (!HasHeader(h, "Content-Type")) h.push_back("Content-Type: application/json");
  return Request("PUT", target, boost::json::serialize(body), h);
}

HttpResponse HttpClient::PostRaw(std::string_view target, std::string body,
                                 const std::vector<std::string>& headers) const {
  std::vector<std::string> h = headers;
  if (!HasHeader(h, "Content-Type")) h.push_back("Content-Type: application/json");
  return Request("POST", target, std::move(body), h);
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace sked::blackbox
