// File: ec2emu/form.h
//
// The EC2 Query API request as the emulator reads it: an
// application/x-www-form-urlencoded body (or a GET query string) decoded into
// name -> value, with the EC2 protocol's flattened lists (specs/ec2-spot.md
// section 1): `InstanceId.1`, `Filter.2.Value.1`, `TagSpecification.1.Tag.3.Key`.
// Both `+` and `%20` decode to a space, since clients may pick either.
//
// Thread safety: Form is a value; const methods may be called concurrently.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sked::ec2emu {

class Form {
 public:
  // Parses "a=b&c=d". InvalidArgument on a malformed percent-escape or a
  // name given twice (EC2 would not know which one to use).
  static core::StatusOr<Form> Parse(std::string_view encoded);

  bool Has(std::string_view name) const;
  // The value, or `fallback` when absent.
  std::string Get(std::string_view name, std::string_view fallback = "") const;

  // The N of every name that is "<prefix>.N" or starts with "<prefix>.N.",
  // ascending. `prefix` may itself be nested ("Filter.2.Value").
  std::vector<int> Indices(std::string_view prefix) const;
  // The values of "<prefix>.N" for each such N, in ascending N.
  std::vector<std::string> List(std::string_view prefix) const;

  // Every "name=value\n", sorted by name, except the names in `skip`: the
  // fingerprint that ClientToken idempotency compares.
  std::string Fingerprint(const std::vector<std::string>& skip) const;

  const std::map<std::string, std::string, std::less<>>& values() const { return values_; }

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

// One `Filter.N`: its Name and its `Value.M` list (values OR, filters AND).
struct Filter {
  std::string name;
  std::vector<std::string> values;
};

// All `Filter.N` in ascending N. InvalidParameterValue (as an EC2 error
// status) when a filter has no Name.
core::StatusOr<std::vector<Filter>> FiltersOf(const Form& form);

}  // namespace sked::ec2emu
