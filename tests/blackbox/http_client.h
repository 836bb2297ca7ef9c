// File: tests/blackbox/http_client.h
//
// A small blocking HTTP/1.1 client over libcurl for the black-box suite: it talks
// to the sked binary exactly as an outside client would, and returns status,
// headers and body without interpreting them. JSON goes through Boost.JSON.
//
// Thread safety: an HttpClient may be used from one thread at a time; distinct
// clients are independent. HttpResponse is a plain value.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sked::blackbox {

struct HttpResponse {
  // 0 when no HTTP answer arrived; then `transport_error` says why.
  long status = 0;
  std::string transport_error;
  // In arrival order, names as sent; lookups are case-insensitive.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first header called `name` (any case), without surrounding blanks.
  std::optional<std::string> Header(std::string_view name) const;
  // The body parsed as JSON; throws std::runtime_error (with the body) if it is not.
  boost::json::value Json() const;
  // Json() as an object; throws if it is anything else.
  boost::json::object Object() const;
};

// For gtest failure messages: "HTTP 400 content-type=... body=...".
void PrintTo(const HttpResponse& r, std::ostream* os);
std::string Describe(const HttpResponse& r);

class HttpClient {
 public:
  // `base_url` is asked on every request ("http://127.0.0.1:PORT"), so a client
  // survives a server restart on another port.
  explicit HttpClient(std::function<std::string()> base_url);

  // Sent as `Authorization: Bearer <token>` on every request that does not set
  // its own Authorization header. nullopt: none.
  void set_bearer(std::optional<std::string> token) { bearer_ = std::move(token); }

  // `target` is the path and query ("/v1/tasks?limit=10"). `headers` are raw
  // "Name: value" lines; "Name:" removes a header curl would add. A body is
  // sent as is (no Content-Type unless given in `headers`).
  HttpResponse Request(std::string_view method, std::string_view target,
                       std::optional<std::string> body = std::nullopt,
                       const std::vector<std::string>& headers = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(15)) const;

  HttpResponse Get(std::string_view target, const std::vector<std::string>& headers = {}) const;
  HttpResponse Delete(std::string_view target, const std::vector<std::string>& headers = {}) const;
  // JSON body with Content-Type: application/json.
  HttpResponse PostJson(std::string_view target, const boost::json::value& body,
                        const std::vector<std::string>& headers = {}) const;
  HttpResponse PutJson(std::string_view target, const boost::json::value& body,
                       const std::vector<std::string>& headers = {}) const;
  // A raw body (possibly not JSON at all) with Content-Type: application/json.
  HttpResponse PostRaw(std::string_view target, std::string body,
                       const std::vector<std::string>& headers = {}) const;

 private:
  std::function<std::string()> base_url_;
  std::optional<std::string> bearer_;
};

// Percent-encodes a query value.
std::string UrlEncode(std::string_view s);

}  // namespace sked::blackbox
