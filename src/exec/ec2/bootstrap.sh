#!/bin/sh
# sked's EC2 bootstrap: the user data of a spot instance that runs one attempt of one
# task. The scheduler (exec/ec2/user_data.cc) puts the attempt's values in place of the
# parameter line below, each single-quoted, so no value is ever parsed by the shell.
#
# What it does, in order:
#   1. installs and starts Docker if the image has none;
#   2. pulls the task's image (per the pull policy) and starts the container with the
#      task's env on the host network, labelled sked.ec2-instance=<instance id>;
#   3. sends a heartbeat callback at once (the task goes provisioning -> running) and
#      then every SKED_HEARTBEAT_S seconds;
#   4. polls IMDSv2 for a spot interruption notice; on one, gives the container SIGTERM
#      at once (docker stop with a grace that ends SKED_STOP_MARGIN_S before the
#      reclaim, so the job can checkpoint) and reports "interrupted";
#   5. when the container ends, reports succeeded/failed with its exit code and the tail
#      of its logs, then shuts the instance down (which terminates it). If the
#      scheduler cannot be reached for SKED_GIVE_UP_S seconds, it shuts down anyway.
#
# IMDS is at $AWS_EC2_METADATA_SERVICE_ENDPOINT when set (the local emulator), else at
# the usual link-local address. Needs: sh, curl, date, sed, tr, awk.
set -u
umask 077

# @SKED_PARAMETERS@

IMDS=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}
IMDS=${IMDS%/}
NAME="sked-$SKED_TASK_ID-$SKED_ATTEMPT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sked-bootstrap.XXXXXX")
HEARTBEAT_PID=''

log() { printf '%s sked-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

# GET /latest/$1 from IMDSv2; fails on anything but 200.
imds() {
  imds_token=$(curl -sf -m 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' \
    "$IMDS/latest/api/token") || return 1
  curl -sf -m 2 -H "X-aws-ec2-metadata-token: $imds_token" "$IMDS/latest/$1"
}

# stdin -> the contents of a JSON string: printable ASCII and newlines only.
json_escape() {
  tr '\t' ' ' | tr -cd '\12\40-\176' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' |
    awk 'NR > 1 { printf "\\n" } { printf "%s", $0 }'
}

# callback STATUS EXIT_CODE MESSAGE: 0 once the scheduler has answered for good (any
# 2xx or 4xx: a 409 means the attempt is no longer current), 1 to try again.
callback() {
  cb_body=$(printf '{"attempt": %s, "status": "%s", "exit_code": %s, "message": "%s"}' \
    "$SKED_ATTEMPT" "$1" "$2" "$(printf '%s' "$3" | json_escape)")
  cb_code=$(printf '%s' "$cb_body" | curl -s -o /dev/null -w '%{http_code}' -m 10 -X POST \
    -H 'Content-Type: application/json' -H "Authorization: Bearer $SKED_CALLBACK_TOKEN" \
    --data-binary @- "$SKED_CALLBACK_URL") || cb_code=000
  case $cb_code in
    2??) return 0 ;;
    4??) log "callback $1: HTTP $cb_code (the scheduler has moved on)"; return 0 ;;
    *) log "callback $1: HTTP $cb_code"; return 1 ;;
  esac
}

stop_heartbeats() {
  if [ -n "$HEARTBEAT_PID" ]; then kill "$HEARTBEAT_PID" 2>/dev/null; HEARTBEAT_PID=''; fi
}

# Reports the outcome (retrying until SKED_GIVE_UP_S has passed), then powers off.
report_and_shut_down() {
  stop_heartbeats
  give_up_at=$(( $(date +%s) + SKED_GIVE_UP_S ))
  delay=1
  until callback "$@"; do
    if [ "$(date +%s)" -ge "$give_up_at" ]; then
      log "the scheduler was unreachable for ${SKED_GIVE_UP_S}s"
      break
    fi
    sleep "$delay"
    delay=$((delay * 2)); [ "$delay" -gt 30 ] && delay=30
  done
  log "shutting down"
  shutdown -h now 2>/dev/null || poweroff 2>/dev/null || halt
  exit 0
}

ensure_docker() {
  if ! command -v docker >/dev/null 2>&1; then
    log "installing Docker"
    if command -v apt-get >/dev/null 2>&1; then
      apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io
    elif command -v dnf >/dev/null 2>&1; then
      dnf install -y -q docker
    elif command -v yum >/dev/null 2>&1; then
      yum install -y -q docker
    fi
  fi
  command -v docker >/dev/null 2>&1 || return 1
  docker info >/dev/null 2>&1 && return 0
  systemctl start docker 2>/dev/null || service docker start 2>/dev/null
  tries=0
  until docker info >/dev/null 2>&1; do
    tries=$((tries + 1)); [ "$tries" -gt 60 ] && return 1
    sleep 1
  done
}

pull_image() {
  case $SKED_PULL in
    never) return 0 ;;
    missing) docker image inspect "$SKED_IMAGE" >/dev/null 2>&1 && return 0 ;;
  esac
  docker pull -q "$SKED_IMAGE" >/dev/null
}

# The spot notice's JSON ($1) -> seconds the container may take to stop.
stop_grace() {
  grace=$SKED_DEFAULT_GRACE_S
  at=$(printf '%s' "$1" | sed -n 's/.*"time"[^"]*"\([^"]*\)".*/\1/p')
  if [ -n "$at" ] && at_s=$(date -u -d "$at" +%s 2>/dev/null); then
    grace=$((at_s - $(date -u +%s) - SKED_STOP_MARGIN_S))
  fi
  [ "$grace" -lt 0 ] && grace=0
  echo "$grace"
}

on_interruption() {
  log "spot interruption notice: $1"
  grace=$(stop_grace "$1")
  docker stop -t "$grace" "$NAME" >/dev/null 2>&1 &  # SIGTERM now, SIGKILL before the reclaim
  stop_heartbeats
  tries=0
  until callback interrupted 0 "spot interruption notice on $INSTANCE_ID: $1"; do
    tries=$((tries + 1)); [ "$tries" -ge 5 ] && break
    sleep 1
  done
  wait
  log "container stopped; waiting for EC2 to reclaim the instance"
  exit 0
}

INSTANCE_ID=$(imds meta-data/instance-id) || INSTANCE_ID=unknown
log "task $SKED_TASK_ID attempt $SKED_ATTEMPT on instance $INSTANCE_ID, image $SKED_IMAGE"

if ! ensure_docker; then
  report_and_shut_down failed 125 "Docker could not be installed or started on $INSTANCE_ID"
fi
if ! pull_image 2>"$WORK/pull.err"; then
  report_and_shut_down failed 125 "image $SKED_IMAGE could not be pulled: $(tail -c 1000 "$WORK/pull.err")"
fi
docker rm -f "$NAME" >/dev/null 2>&1
if ! sked_start_container >/dev/null 2>"$WORK/run.err"; then
  report_and_shut_down failed 125 "the container did not start: $(tail -c 1000 "$WORK/run.err")"
fi
log "container $NAME started"

callback heartbeat 0 "started on $INSTANCE_ID" || true
(
  while sleep "$SKED_HEARTBEAT_S"; do callback heartbeat 0 "" || true; done
) &
HEARTBEAT_PID=$!
(
  docker wait "$NAME" >"$WORK/exit.tmp" 2>/dev/null
  mv "$WORK/exit.tmp" "$WORK/exit"
) &

ticks=0
while [ ! -f "$WORK/exit" ]; do
  if [ $((ticks % SKED_POLL_TICKS)) -eq 0 ] && notice=$(imds meta-data/spot/instance-action); then
    on_interruption "$notice"
  fi
  ticks=$((ticks + 1))
  sleep "$SKED_TICK_S"
done

code=$(cat "$WORK/exit")
case $code in '' | *[!0-9]*) code=125 ;; esac
output=$(docker logs --tail "$SKED_LOG_LINES" "$NAME" 2>&1 | tail -c 4000)
docker rm -f "$NAME" >/dev/null 2>&1
log "container exited with code $code"
if [ "$code" -eq 0 ]; then
  report_and_shut_down succeeded 0 "$output"
fi
report_and_shut_down failed "$code" "$output"
