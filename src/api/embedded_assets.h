// File: api/embedded_assets.h
//
// Documents compiled into the binary: docs/openapi.yaml (served at
// /openapi.yaml) and the dashboard page (served at /). Generated at build time
// by cmake/embed.cmake, so the binary serves exactly what the tree holds.
//
// Thread safety: immutable data.
#pragma once

#include <string_view>

namespace sked::api {

std::string_view OpenApiYaml();
std::string_view DashboardHtml();

}  // namespace sked::api
