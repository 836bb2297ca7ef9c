// File: store/internal/json_columns.h
//
// The JSON text both stores keep for a task's maps and lists (env, labels,
// command): SQLite in text columns, PostgreSQL in jsonb read back as
// `column::text`. SQLite also binds lists and label pairs as parameters
// (runner and state lists, label filters). Only the stores use it; Boost.JSON
// stays in the .cc.
//
// Thread safety: free functions without shared state.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace sked::store::store_internal {

std::string EncodeStringMap(const std::map<std::string, std::string>& m);
std::string EncodeStringList(const std::vector<std::string>& v);
// [[k, v], ...]: keeps repeated keys, which a JSON object would merge.
std::string EncodeStringPairs(
    const std::vector<std::pair<std::string, std::string>>& v);

// kInternal when `text` is not a JSON object of strings (a corrupt row).
core::StatusOr<std::map<std::string, std::string>> DecodeStringMap(
    std::string_view text);
// kInternal when `text` is not a JSON array of strings.
core::StatusOr<std::vector<std::string>> DecodeStringList(
    std::string_view text);

}  // namespace sked::store::store_internal
