// File: store/postgres/internal/json_codec.h
//
// The JSON text the PostgreSQL backend stores in a task's jsonb columns (env,
// labels, command) and reads back from `column::text`. Only this backend
// reads it; Boost.JSON stays in the .cc.
//
// Thread safety: free functions without shared state.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sked::store::postgres_internal {

std::string EncodeStringMap(const std::map<std::string, std::string>& m);
std::string EncodeStringList(const std::vector<std::string>& v);

// kInternal when `text` is not a JSON object of strings (a corrupt row).
core::StatusOr<std::map<std::string, std::string>> DecodeStringMap(std::string_view text);
// kInternal when `text` is not a JSON array of strings.
core::StatusOr<std::vector<std::string>> DecodeStringList(std::string_view text);

}  // namespace sked::store::postgres_internal
