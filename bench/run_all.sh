#!/usr/bin/env bash
# Runs every benchmark in turn (about five minutes); each prints its table and writes bench/results/<name>.json.
# `run_all.sh --smoke` runs each once at a tiny size (what CI does, so a broken benchmark fails the build;
# its figures mean nothing).
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-../.venv/bin/python}
declare -A smoke=(
  [tools_size]="" [cold_start]="--runs 1" [overhead]="--calls 2" [streaming]="--runs 1 --tokens 10"
  [concurrency]="--calls 5 --runs 1" [list_models]="--calls 3" [memory]="--video-mb 1" [rate_budget]="--calls 10"
)
for script in tools_size cold_start overhead list_models streaming concurrency memory rate_budget; do
  if [ "${1:-}" = "--smoke" ]; then
    # shellcheck disable=SC2086  # the sizes are several words on purpose
    "$python" "$script.py" ${smoke[$script]} >/dev/null
  else
    "$python" "$script.py"
  fi
done
