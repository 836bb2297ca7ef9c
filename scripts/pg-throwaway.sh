#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests: fast (fsync off), loopback only, trust
# auth, its data, socket and log all inside DIR.
#
# usage: scripts/pg-throwaway.sh start DIR   prints the DSN postgresql://sked@127.0.0.1:PORT/sked_test
#        scripts/pg-throwaway.sh stop DIR    stops the cluster and removes DIR
#        scripts/pg-throwaway.sh pause DIR   stops the server, keeps DIR (an outage, for tests)
#        scripts/pg-throwaway.sh resume DIR  starts it again on the same port and socket
#
# DIR may exist (empty) or not; its parent must be reachable by the cluster's user, so
# prefer a directory from `mktemp -d` under /tmp. PostgreSQL refuses to run as root: as
# root, the cluster runs as the system user sked-pg (created if missing).
# Environment: PG_BIN (default /usr/lib/postgresql/15/bin).
# Only the DSN goes to stdout; progress and errors go to stderr.
set -euo pipefail

readonly PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
readonly PG_OS_USER=sked-pg   # the OS user the server runs as, when started by root
readonly DB_USER=sked         # the cluster's superuser, in the DSN
readonly DB_NAME=sked_test
readonly MARKER=.sked-pg-throwaway

log() { echo "pg-throwaway: $*" >&2; }
die() { log "$*"; exit 1; }

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}

(($# == 2)) || usage
cmd=$1
dir=$(realpath -m -- "$2")
[[ "$dir" != / ]] || die "refusing to use / as DIR"
data="$dir/data"

# Runs a server-side command as the cluster's owner, from a directory that user can enter.
as_owner() {
  if ((EUID == 0)); then
    (cd / && runuser -u "$PG_OS_USER" -- "$@")
  else
    (cd / && "$@")
  fi
}

free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    # A refused connection means nothing listens there.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  die "found no free port"
}

# Starts the server of $data on $1 (the port); pg_ctl's status is the result.
start_server() {
  as_owner "$PG_BIN/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 \
    -o "-k '$dir' -p $1 -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >&2
}

require_cluster() {
  [[ -e "$dir/$MARKER" && -f "$dir/port" ]] || die "$dir holds no cluster made by this script"
}

pause() {
  require_cluster
  log "pausing (fast stop) the cluster in $data"
  as_owner "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >&2 || die "pg_ctl stop failed"
}

resume() {
  require_cluster
  local port
  port=$(cat "$dir/port")
  log "resuming the cluster in $data on 127.0.0.1:$port"
  start_server "$port" || die "PostgreSQL did not start again (log: $dir/postgres.log)"
}

start() {
  [[ -x "$PG_BIN/initdb" ]] || die "$PG_BIN/initdb not found: install postgresql-15 (scripts/install-deps.sh --test)"
  if [[ -e "$dir" ]] && [[ -n "$(ls -A -- "$dir")" ]]; then
    die "$dir is not empty (a cluster already there? stop it first)"
  fi
  mkdir -p -- "$dir"
  touch "$dir/$MARKER"

  if ((EUID == 0)); then
    if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
      log "creating system user $PG_OS_USER"
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_OS_USER"
    fi
    chown -R "$PG_OS_USER:" "$dir"
    runuser -u "$PG_OS_USER" -- test -w "$dir" ||
      die "$PG_OS_USER cannot reach $dir (a parent directory is private?); use a DIR under /tmp"
  fi

  log "initdb into $data"
  as_owner "$PG_BIN/initdb" --pgdata="$data" --username="$DB_USER" --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  # Trust auth is only reachable over loopback TCP and the private socket in DIR.
  cat >"$data/pg_hba.conf" <<'EOF'
local all all trust
host all all 127.0.0.1/32 trust
EOF
  if ((EUID == 0)); then
    chown "$PG_OS_USER:" "$data/pg_hba.conf"
  fi

  # The port is free when picked but may be taken before the server binds it: retry.
  local port='' attempt
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    log "starting on 127.0.0.1:$port (attempt $attempt)"
    if start_server "$port"; then
      echo "$port" >"$dir/port"
      break
    fi
    port=''
    tail -n 20 "$dir/postgres.log" >&2 || true
  done
  [[ -n "$port" ]] || die "PostgreSQL did not start (log: $dir/postgres.log)"

  "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U "$DB_USER" "$DB_NAME" ||
    die "createdb $DB_NAME failed"

  local dsn="postgresql://$DB_USER@127.0.0.1:$port/$DB_NAME"
  echo "$dsn" >"$dir/dsn"
  log "ready: $dsn"
  echo "$dsn"
}

stop() {
  if [[ ! -e "$dir" ]]; then
    log "$dir does not exist: nothing to stop"
    return 0
  fi
  [[ -e "$dir/$MARKER" ]] || die "$dir was not made by this script; not touching it"
  if [[ -f "$data/postmaster.pid" ]]; then
    log "stopping the cluster in $data"
    if ! as_owner "$PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 30 stop >&2; then
      local pid
      pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
      if [[ "$pid" =~ ^[0-9]+$ ]]; then
        log "pg_ctl stop failed; killing postmaster $pid"
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
  fi
  rm -rf -- "$dir"
  log "removed $dir"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  pause) pause ;;
  resume) resume ;;
  *) usage ;;
esac
