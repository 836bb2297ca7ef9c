#include "api/router.h"

#include <algorithm>

namespace sked::api {

namespace {

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  if (!path.empty() && path[0] == '/') i = 1;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool MatchSegments(const std::vector<std::string>& pattern, const std::vector<std::string>& path,
                   PathParams& params) {
  if (pattern.size() != path.size()) return false;
  PathParams p;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const auto& seg = pattern[i];
    if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
      if (path[i].empty()) return false;
      p[seg.substr(1, seg.size() - 2)] = path[i];
    } else if (seg != path[i]) {
      return false;
    }
  }
  params = std::move(p);
  return true;
}

}  // namespace

void Router::Add(std::string method, const std::string& pattern, RouteHandler handler) {
  entries_.push_back({std::move(method), pattern, Split(pattern), std::move(handler)});
}

Router::Match Router::Route(const std::string& method, const std::string& path) const {
  Match m;
  auto segments = Split(path);
  for (const auto& e : entries_) {
    PathParams params;
    if (!MatchSegments(e.segments, segments, params)) continue;
    if (e.method == method || (method == "HEAD" && e.method == "GET")) {
      m.handler = &e.handler;
      m.pattern = e.pattern;
      m.params = std::move(params);
      m.allowed.clear();
      return m;
    }
    if (std::find(m.allowed.begin(), m.allowed.end(), e.method) == m.allowed.end())
      m.allowed.push_back(e.method);
  }
  return m;
}

}  // namespace sked::api
