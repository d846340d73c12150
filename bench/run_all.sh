#!/usr/bin/env bash
# Runs every benchmark in turn (about five minutes); each prints its table and writes bench/results/<name>.json.
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-../.venv/bin/python}
for script in tools_size cold_start overhead streaming concurrency memory rate_budget; do
  "$python" "$script.py"
done
