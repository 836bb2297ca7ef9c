#include "store/internal/json_columns.h"

#include <boost/json.hpp>

namespace sked::store::store_internal {

namespace json = boost::json;

namespace {

// Bytes go back exactly as they were stored. The API accepts only UTF-8, but a
// row must never become unreadable because some other caller did not.
json::value Parse(std::string_view text, boost::system::error_code& ec) {
  json::parse_options opt;
  opt.allow_invalid_utf8 = true;
  return json::parse(text, ec, {}, opt);
}

}  // namespace

std::string EncodeStringMap(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return json::serialize(o);
}

std::string EncodeStringList(const std::vector<std::string>& v) {
  json::array a;
  a.reserve(v.size());
  for (const auto& s : v) a.emplace_back(s);
  return json::serialize(a);
}

std::string EncodeStringPairs(
    const std::vector<std::pair<std::string, std::string>>& v) {
  json::array a;
  a.reserve(v.size());
  for (const auto& [k, val] : v)
    a.emplace_back(json::array{json::string(k), json::string(val)});
  return json::serialize(a);
}

core::StatusOr<std::map<std::string, std::string>> DecodeStringMap(
    std::string_view text) {
  boost::system::error_code ec;
  json::value v = Parse(text, ec);
  if (ec || !v.is_object())
    return core::InternalError("stored map is not a JSON object");
  std::map<std::string, std::string> out;
  for (const auto& [k, val] : v.get_object()) {
    if (!val.is_string())
      return core::InternalError("stored map has a non-string value");
    out.emplace(std::string(k), std::string(val.get_string()));
  }
  return out;
}

core::StatusOr<std::vector<std::string>> DecodeStringList(
    std::string_view text) {
  boost::system::error_code ec;
  json::value v = Parse(text, ec);
  if (ec || !v.is_array())
    return core::InternalError("stored list is not a JSON array");
  std::vector<std::string> out;
  out.reserve(v.get_array().size());
  for (const auto& val : v.get_array()) {
    if (!val.is_string())
      return core::InternalError("stored list has a non-string value");
    out.emplace_back(val.get_string());
  }
  return out;
}

}  // namespace sked::store::store_internal
