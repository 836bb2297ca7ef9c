// File: aws/internal/http.h
//
// One HTTP exchange over libcurl, as the EC2 client (a signed form POST) and
// the IMDS credential source (a token PUT, then GETs) make it: one easy
// handle per call, no shared state, no proxy from the environment unless
// asked, and the transport error kept apart from the HTTP status.
//
// Thread safety: Perform may be called from any thread.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace sked::aws::internal {

struct HttpExchange {
  std::string method = "GET";  // "GET", "PUT", "POST"
  std::string url;
  // Raw "Name: value" lines; "Name:" removes a header curl would add.
  std::vector<std::string> headers;
  // Sent with its Content-Length, an empty body too (a PUT with
  // Content-Length: 0). nullopt: no body.
  std::optional<std::string> body;
  std::string user_agent = "sked";
  std::chrono::milliseconds connect_timeout{0};  // 0: curl's default
  std::chrono::milliseconds timeout{0};          // the whole exchange; 0: none
  bool no_proxy = false;  // ignore http_proxy & co. (IMDS is link-local)
};

struct HttpResult {
  CURLcode curl = CURLE_OK;  // the transport; the HTTP status is only valid when OK
  std::string curl_error;
  long status = 0;
  std::string body;
  bool transport_ok() const { return curl == CURLE_OK; }
};

HttpResult Perform(const HttpExchange& x);

// curl_global_init, once per process; Perform calls it too.
void InitCurlOnce();

}  // namespace sked::aws::internal
