#!/usr/bin/env bash
# Configures sked with CMake + Ninja into build/ and builds it.
#
# usage: scripts/build.sh [release|debug|relwithdebinfo] [-DVAR=VALUE ...] [--target NAME ...]
#   release (the default) is -DCMAKE_BUILD_TYPE=Release. Extra -D options go to the configure
#   step; each --target NAME limits the build to that target.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="$root/build"

mode=${1:-release}
if (($# > 0)); then
  shift
fi
case "${mode,,}" in
  release) build_type=Release ;;
  debug) build_type=Debug ;;
  relwithdebinfo) build_type=RelWithDebInfo ;;
  *)
    echo "usage: $0 [release|debug|relwithdebinfo] [-DVAR=VALUE ...] [--target NAME ...]" >&2
    exit 2
    ;;
esac

configure_args=()
build_args=()
while (($# > 0)); do
  case "$1" in
    -D*) configure_args+=("$1") ;;
    --target)
      if (($# < 2)); then
        echo "build.sh: --target needs a name" >&2
        exit 2
      fi
      build_args+=(--target "$2")
      shift
      ;;
    *)
      echo "build.sh: unknown argument: $1" >&2
      exit 2
      ;;
  esac
  shift
done

# A build/ configured with another generator cannot be reconfigured with Ninja: start its
# CMake cache afresh (the objects are rebuilt; ccache makes that cheap).
cache="$build_dir/CMakeCache.txt"
if [[ -f "$cache" ]] && ! grep -qx 'CMAKE_GENERATOR:INTERNAL=Ninja' "$cache"; then
  echo "build.sh: $build_dir was configured with another generator; reconfiguring with Ninja" >&2
  rm -rf "$cache" "$build_dir/CMakeFiles"
fi

echo "build.sh: configuring $build_type in $build_dir"
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "${configure_args[@]}"
echo "build.sh: building with $(nproc) jobs"
cmake --build "$build_dir" -j "$(nproc)" "${build_args[@]}"
