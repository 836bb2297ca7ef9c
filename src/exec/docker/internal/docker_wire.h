// File: exec/docker/internal/docker_wire.h
//
// Pure helpers for the Docker Engine API wire formats: image references, the
// multiplexed log stream, API version choice. Used only by exec/docker (and its
// tests); they do no I/O.
//
// Thread safety: stateless functions, safe to call concurrently.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sked::exec::detail {

// The `fromImage` and `tag` query parameters of POST /images/create.
struct ImageRef {
  std::string name;  // "registry:5000/team/app"
  std::string tag;   // "1.2", "latest", or a digest "sha256:..."
};

// Splits an image reference. A ':' counts as a tag separator only in the last
// path component, so "host:5000/app" has tag "latest". A digest ("@sha256:...")
// wins over a tag. No tag means "latest".
ImageRef SplitImageReference(std::string_view image);

// Decodes the engine's stdout/stderr multiplexed stream (8-byte frame headers:
// stream type, 3 zero bytes, big-endian payload length) into the payloads in
// order. A body that does not start with a valid header is returned unchanged
// (a TTY container's raw stream). kInternal for a stream that breaks midway.
core::StatusOr<std::string> DemuxLogStream(std::string_view raw);

// The exit code in a list entry's Status text, e.g. "Exited (7) 3 seconds ago".
std::optional<int> ExitCodeFromStatusText(std::string_view status);

// Chooses the API version to speak, given the engine's supported range
// ("1.12".."1.41"): kPreferredApiVersion when inside it, else the nearest end.
// kFailedPrecondition if the engine's maximum is below kMinimumApiVersion;
// kInternal if a version does not parse.
inline constexpr char kPreferredApiVersion[] = "1.41";
inline constexpr char kMinimumApiVersion[] = "1.30";  // wait?condition=not-running
core::StatusOr<std::string> ChooseApiVersion(std::string_view engine_min,
                                             std::string_view engine_max);

// True if `s` is well-formed UTF-8 (the engine's JSON decoder would otherwise
// replace bytes silently).
bool IsValidUtf8(std::string_view s);

}  // namespace sked::exec::detail
