#!/usr/bin/env bash
# The compute-floor experiments of docs/performance.md, side by side in one run: for MiniGrid
# Memory and Mortar Mayhem Grid as shipped, benchmarks/throughput.py eagerly in float32 (the
# default) with the floor timed under every compile_update x update_precision pair on the
# same data, then the whole loop with compile_update and bfloat16. Each run compiles into a
# fresh inductor cache, so the printed compile times are cold ones. Run it on an idle machine
# (~15 min on 2 cores):
#     benchmarks/compute_floor.sh 2>&1 | tee floor.log
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export SDL_VIDEODRIVER=dummy PYGAME_HIDE_SUPPORT_PROMPT=1
for config in minigrid_memory mortar_mayhem_grid; do
  for settings in "--floor-variants" "--set compile_update=true update_precision=bfloat16"; do
    echo "== $config $settings ($(date -u +%H:%M:%S))"
    cache=$(mktemp -d)
    # shellcheck disable=SC2086  # the settings are separate words
    TORCHINDUCTOR_CACHE_DIR=$cache "$PY" -W ignore benchmarks/throughput.py \
      --config "configs/$config.yaml" --updates 1 $settings
    rm -rf "$cache"
  done
done
echo "== done ($(date -u +%H:%M:%S))"
