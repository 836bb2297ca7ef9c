#!/usr/bin/env bash
# Installs what is missing, builds sked in Release and runs one node in the foreground.
#
# usage: scripts/serve.sh [sked serve flags ...]
#   Without a --db flag the node uses SQLite at ./data/sked.db (relative to the repo root).
#   Example: scripts/serve.sh --db postgresql://user@127.0.0.1:5432/sked
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash scripts/install-deps.sh
bash scripts/build.sh release

has_db=0
for arg in "$@"; do
  case "$arg" in
    --db | --db=*) has_db=1 ;;
  esac
done
if ((has_db == 0)); then
  mkdir -p data
  set -- --db sqlite:./data/sked.db "$@"
fi

sked=build/src/app/sked
if [[ ! -x "$sked" ]]; then
  echo "serve.sh: the build produced no $sked" >&2
  exit 1
fi
exec "$sked" serve "$@"
