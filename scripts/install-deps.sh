#!/usr/bin/env bash
# Installs what sked needs to build (and, with --test, to run its whole test suite) on
# Debian 12. Idempotent: a package that is already installed is left alone, and
# `apt-get update` runs only when something must be installed.
#
# usage: scripts/install-deps.sh [--test]
set -euo pipefail

readonly BUILD_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlite3-dev libpq-dev libcurl4-openssl-dev libssl-dev
  libspdlog-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  curl ca-certificates
)

# postgresql-15: the throwaway cluster of the `postgres` tests (/usr/lib/postgresql/15/bin);
# docker.io + busybox-static: the `docker` tests (an image built from a local busybox);
# python3-botocore + awscli: an independent AWS signer/client for the `aws` tests;
# wrk, gnuplot-nox: load and charts for the benchmarks (bench/); chromium: the dashboard's
# browser tests. Node.js and npm (the benchmark's peers) come from Debian only when the
# machine has no `node` of its own.
readonly TEST_PACKAGES=(
  postgresql-15 docker.io busybox-static python3-botocore awscli wrk gnuplot-nox chromium gdb
)

usage() {
  echo "usage: $0 [--test]" >&2
}

with_test=0
for arg in "$@"; do
  case "$arg" in
    --test) with_test=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage; exit 2 ;;
  esac
done

packages=("${BUILD_PACKAGES[@]}")
if ((with_test)); then
  packages+=("${TEST_PACKAGES[@]}")
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    packages+=(nodejs npm)
  fi
  if ! command -v python3 >/dev/null 2>&1; then
    packages+=(python3)
  fi
fi

# Installed means dpkg's package state is `installed`, whatever the selection says: a
# package on hold ("hold ok installed") or selected for removal but still present
# ("deinstall ok installed") is as usable as any other, and apt-get would leave it alone.
is_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

missing=()
for pkg in "${packages[@]}"; do
  if ! is_installed "$pkg"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "install-deps: must install ${missing[*]} but not root and no sudo" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"

# Without systemd (containers, CI sandboxes) a package's postinst may try to start its
# daemon (PostgreSQL's default cluster, dockerd) and fail the install. Forbid service starts
# for the duration, unless the machine already has a policy of its own.
policy=/usr/sbin/policy-rc.d
added_policy=0
remove_policy() {
  if ((added_policy)); then
    "${sudo[@]}" rm -f "$policy"
  fi
}
trap remove_policy EXIT
if [[ ! -d /run/systemd/system && ! -e "$policy" ]]; then
  printf '#!/bin/sh\n# added by sked scripts/install-deps.sh while installing\nexit 101\n' |
    "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  added_policy=1
fi

apt_opts=(-y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" \
  --no-install-recommends "${missing[@]}"

still_missing=()
for pkg in "${missing[@]}"; do
  if ! is_installed "$pkg"; then
    still_missing+=("$pkg")
  fi
done
if ((${#still_missing[@]} > 0)); then
  echo "install-deps: FAILED to install ${still_missing[*]}" >&2
  exit 1
fi
echo "install-deps: installed ${missing[*]}"
