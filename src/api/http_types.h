// File: api/http_types.h
//
// The HTTP request and response as the router and handlers see them: plain
// structs, so handlers are tested without sockets and Beast stays inside
// http_server.cc.
//
// Thread safety: plain values.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace sked::api {

struct HttpRequest {
  std::string method;   // "GET", "POST", ...
  std::string target;   // path and query as received
  std::string path;     // percent-decoded path, no query
  std::string query;    // the raw query string, without '?'
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;

  // The header's value, or "" when absent. `name` in lower case.
  const std::string& Header(const std::string& name) const {
    static const std::string kEmpty;
    auto it = headers.find(name);
    return it == headers.end() ? kEmpty : it->second;
  }
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

}  // namespace sked::api
