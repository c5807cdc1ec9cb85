#!/usr/bin/env bash
# Regenerates docs/performance.md's table of shipped configs: every shipped config the table lists, one
# after another (run it on an otherwise idle machine; ~20 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
for spec in proof_of_memory:10 cartpole_masked:3 minigrid_memory:1 mortar_mayhem_grid:1 \
            mystery_path_grid:1 endless_mortar_mayhem:1; do
  config=${spec%%:*}; updates=${spec##*:}
  echo "== $config"
  "$PY" benchmarks/throughput.py --config "configs/$config.yaml" --updates "$updates" "$@"
done
