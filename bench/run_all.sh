#!/usr/bin/env bash
# Runs every benchmark in turn (about ten minutes); each prints its table and writes bench/results/<name>.json.
# `run_all.sh --smoke` runs each once at a tiny size (what CI does, so a broken benchmark fails the build;
# its figures mean nothing).
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-../.venv/bin/python}
declare -A smoke=(
  [tools_size]="" [cold_start]="--runs 1" [overhead]="--calls 2" [streaming]="--runs 1 --tokens 10"
  [concurrency]="--calls 5 --runs 1" [list_models]="--calls 3" [memory]="--video-mb 1" [rate_budget]="--calls 10"
  [growth]="--calls 1 --sizes 10,20" [rss_calls]="--calls 20" [replicas]="--clients 2 --seconds 1"
)
for script in tools_size cold_start overhead list_models streaming concurrency memory rate_budget growth rss_calls replicas; do
  if [ "${1:-}" = "--smoke" ]; then
    # shellcheck disable=SC2086  # the sizes are several words on purpose
    "$python" "$script.py" ${smoke[$script]} >/dev/null
  else
    "$python" "$script.py"
  fi
done
