#!/usr/bin/env bash
# The env backends side by side (docs/performance.md, "Where the environments run"): every
# config on the process backend, then on the in-process vector backend, in one run; then the
# vector backend's plain loop against gymnasium's SyncVectorEnv. Run it on an otherwise idle
# machine (~6 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
for spec in proof_of_memory:10 cartpole_masked:3 popgym/repeat_previous_easy:3 \
            popgym/count_recall_easy:3; do
  config=${spec%%:*}; updates=${spec##*:}
  for backend in processes vector; do
    echo "== $config $backend"
    "$PY" benchmarks/throughput.py --config "configs/$config.yaml" --updates "$updates" \
      --set "environment.backend=$backend" "$@"
  done
done
for config in proof_of_memory cartpole_masked popgym/repeat_previous_easy; do
  "$PY" benchmarks/vector_loop.py --config "configs/$config.yaml"
done
