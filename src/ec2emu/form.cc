// File: ec2emu/form.cc
#include "ec2emu/form.h"

#include <optional>
#include <set>

#include <boost/url/encoding_opts.hpp>
#include <boost/url/pct_string_view.hpp>

#include "ec2emu/ec2_error.h"
#include "ec2emu/internal/util.h"

namespace sked::ec2emu {
namespace {

// Percent-decodes one form name or value; a '+' is a space (botocore writes
// spaces that way). nullopt for a malformed escape.
std::optional<std::string> Decode(std::string_view s) {
  auto pct = boost::urls::make_pct_string_view(s);
  if (!pct) return std::nullopt;
  boost::urls::encoding_opts opts;
  opts.space_as_plus = true;
  return pct->decode(opts);
}

}  // namespace

core::StatusOr<Form> Form::Parse(std::string_view encoded) {
  Form form;
  size_t pos = 0;
  while (pos <= encoded.size()) {
    size_t amp = encoded.find('&', pos);
    if (amp == std::string_view::npos) amp = encoded.size();
    std::string_view pair = encoded.substr(pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::optional<std::string> name = Decode(pair.substr(0, eq));
    std::optional<std::string> value =
        Decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!name || !value) {
      return core::InvalidArgumentError("malformed percent-escape in form field '" +
                                        std::string(pair.substr(0, 80)) + "'");
    }
    if (!form.values_.emplace(std::move(*name), std::move(*value)).second) {
      return core::InvalidArgumentError("form field given twice: '" +
                                        std::string(pair.substr(0, eq).substr(0, 80)) + "'");
    }
  }
  return form;
}

bool Form::Has(std::string_view name) const { return values_.find(name) != values_.end(); }

std::string Form::Get(std::string_view name, std::string_view fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::string(fallback) : it->second;
}

std::vector<int> Form::Indices(std::string_view prefix) const {
  std::set<int> found;
  std::string head = std::string(prefix) + ".";
  for (auto it = values_.lower_bound(head); it != values_.end(); ++it) {
    std::string_view name = it->first;
    if (!name.starts_with(head)) break;
    std::string_view rest = name.substr(head.size());
    size_t dot = rest.find('.');
    std::optional<int> n = internal::ParseInt(rest.substr(0, dot));
    if (n && *n > 0) found.insert(*n);
  }
  return {found.begin(), found.end()};
}

std::vector<std::string> Form::List(std::string_view prefix) const {
  std::vector<std::string> out;
  for (int n : Indices(prefix)) {
    auto it = values_.find(std::string(prefix) + "." + std::to_string(n));
    if (it != values_.end()) out.push_back(it->second);
  }
  return out;
}

std::string Form::Fingerprint(const std::vector<std::string>& skip) const {
  std::string out;
  for (const auto& [name, value] : values_) {
    bool skipped = false;
    for (const std::string& s : skip) skipped = skipped || s == name;
    if (skipped) continue;
    out += name;
    out += '=';
    out += value;
    out += '\n';
  }
  return out;
}

core::StatusOr<std::vector<Filter>> FiltersOf(const Form& form) {
  std::vector<Filter> out;
  for (int n : form.Indices("Filter")) {
    std::string base = "Filter." + std::to_string(n);
    if (!form.Has(base + ".Name")) {
      return Ec2ErrorStatus("InvalidParameterValue",
                            "The filter " + base + " has no Name");
    }
    out.push_back(Filter{form.Get(base + ".Name"), form.List(base + ".Value")});
  }
  return out;
}

}  // namespace sked::ec2emu
