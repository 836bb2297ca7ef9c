// File: api/router.h
//
// Method + path routing. Patterns are literal segments and `{name}` captures
// (one non-empty segment each). A path no pattern matches is 404; a path that
// matches with another method is 405 with an Allow header.
//
// Thread safety: routes are added before serving; Route() is then read-only.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "api/http_types.h"

namespace sked::api {

using PathParams = std::map<std::string, std::string>;
using RouteHandler = std::function<HttpResponse(const HttpRequest&, const PathParams&)>;

class Router {
 public:
  void Add(std::string method, const std::string& pattern, RouteHandler handler);

  struct Match {
    const RouteHandler* handler = nullptr;  // null: see allowed
    std::string pattern;                    // the matched route, for metrics
    PathParams params;
    std::vector<std::string> allowed;  // methods of the path when no handler
  };
  Match Route(const std::string& method, const std::string& path) const;

 private:
  struct Entry {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    RouteHandler handler;
  };
  std::vector<Entry> entries_;
};

}  // namespace sked::api
