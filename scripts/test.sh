#!/usr/bin/env bash
# The project's one test command (the README's, and CI's through .ci/run): installs what is
# missing, builds, starts what the test labels need (a throwaway PostgreSQL for `postgres`,
# dockerd for `docker`) and runs every CTest test. Exits with ctest's code.
#
# usage: scripts/test.sh
# Environment set for the tests: SKED_TEST_PG_DSN (the throwaway cluster's DSN).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

log() { echo "test.sh: $*" >&2; }

pg_dir=''
dockerd_pid=''
dockerd_log=''

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  if [[ -n "$pg_dir" ]]; then
    bash scripts/pg-throwaway.sh stop "$pg_dir" || log "could not stop PostgreSQL in $pg_dir"
  fi
  if [[ -n "$dockerd_pid" ]] && kill -0 "$dockerd_pid" 2>/dev/null; then
    log "stopping the dockerd this run started (pid $dockerd_pid)"
    kill "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
      kill -0 "$dockerd_pid" 2>/dev/null || break
      sleep 0.5
    done
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

docker_answers() {
  [[ -S /var/run/docker.sock ]] && timeout 15 docker info >/dev/null 2>&1
}

# The `docker` tests need a Docker engine on /var/run/docker.sock. If none answers, start
# one for this run (no bridge, no iptables: the sandbox allows neither) and stop it at exit.
start_dockerd_if_needed() {
  if docker_answers; then
    log "using the Docker engine already on /var/run/docker.sock"
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    log "FATAL: dockerd/docker not found although docker.io should be installed (scripts/install-deps.sh --test)"
    exit 1
  fi
  dockerd_log=$(mktemp "${TMPDIR:-/tmp}/sked-dockerd.XXXXXX")
  log "starting dockerd (log: $dockerd_log)"
  dockerd --bridge=none --iptables=false >"$dockerd_log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 60); do
    if docker_answers; then
      log "dockerd is up"
      return 0
    fi
    if ! kill -0 "$dockerd_pid" 2>/dev/null; then
      break
    fi
    sleep 1
  done
  log "FATAL: dockerd did not come up; the end of its log:"
  tail -n 30 "$dockerd_log" >&2 || true
  exit 1
}

bash scripts/install-deps.sh --test
# Tests ON explicitly: the CMake cache in build/ may hold an OFF from an earlier configure.
bash scripts/build.sh relwithdebinfo -DSKED_BUILD_TESTS=ON

start_dockerd_if_needed

pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/sked-pg.XXXXXX")
SKED_TEST_PG_DSN=$(bash scripts/pg-throwaway.sh start "$pg_dir")
export SKED_TEST_PG_DSN
log "SKED_TEST_PG_DSN=$SKED_TEST_PG_DSN"

# A test that fails is run once more, and the run passes if the second try does; the
# first failure and its output stay in the log, and are named again at its end, so a
# flaky test is seen (and then mended) rather than hidden. A test that hangs is stopped
# by its watchdog (tests/testing/watchdog.cc: its name and every thread's stack) or by
# its CTest TIMEOUT.
ctest_log=$(mktemp "${TMPDIR:-/tmp}/sked-ctest.XXXXXX")
rc=0
ctest --test-dir build --output-on-failure -j2 --repeat until-pass:2 2>&1 | tee "$ctest_log" ||
  rc=${PIPESTATUS[0]}
if grep -E '^ *([0-9]+/[0-9]+ )?Test +#.*[*]{3}' "$ctest_log" >"$ctest_log.failed"; then
  log "failed at least once (output above):"
  sed 's/^/  /' "$ctest_log.failed" >&2
fi
rm -f "$ctest_log" "$ctest_log.failed"
log "ctest exited with $rc"
exit "$rc"
