#!/usr/bin/env bash
# MiniGrid-MemoryS9 runs that test why some runs stay on the walk-and-guess plateau
# (docs/results.md, MiniGrid section): each RUNS entry VARIANT:SEED trains
# configs/minigrid_memory_VARIANT.yaml (VARIANT "" is the shipped config) as run
# minigrid_VARIANT_seedSEED, evaluates every checkpoint on 100 held-out seeds and aggregates
# results/minigrid_memory with the earlier runs.
#
#   bash scripts/minigrid_study.sh                     # every run to its budget, in order
#   CHUNK=25 bash scripts/minigrid_study.sh            # only 25 more updates of the first
#                                                      # unfinished run, then exit
#
# Runs resume from their last checkpoint; a run evaluated after its last training is skipped.
# Exit status 0 when it did some work, 3 when every run is finished and evaluated.
# STEP_TIMEOUT (seconds) goes into new runs' configs (86400 for background jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
# The first candidate (an early entropy bonus on the small config), the second (the same with
# the observation-reconstruction loss), the GRU at the second's settings, the first's control
# with the shipped constant entropy weight, then the GRU at the first's settings.
RUNS=${RUNS:-small_entropy:0 small_entropy:1 small_entropy:2 small_entropy:3 small_entropy:4 \
  small_entropy_recon:0 small_entropy_recon:1 small_entropy_recon:2 small_entropy_recon:3 \
  small_entropy_recon:4 \
  small_entropy_recon_gru:0 small_entropy_recon_gru:1 small_entropy_recon_gru:2 \
  small_entropy_recon_gru:3 small_entropy_recon_gru:4 \
  small:0 small:1 small:2 small:3 small:4 \
  small_entropy_gru:0 small_entropy_gru:1 small_entropy_gru:2 small_entropy_gru:3 small_entropy_gru:4}
CHUNK=${CHUNK:-0}

progress() {   # $1 model file: updates it has trained (0 when there is none)
  [ -f "$1" ] || { echo 0; return; }
  "$PY" - "$1" <<'PYEOF'
import sys
from runs.checkpoint import load_model_file
print(load_model_file(sys.argv[1])[0]["update"])
PYEOF
}

budget() {     # $1 config: its updates
  "$PY" -c "import sys; from config import load_config; print(load_config(sys.argv[1]).updates)" "$1"
}

aggregate() {
  local scores=() with=()
  compgen -G "models/minigrid*_seed*/scores.csv" > /dev/null && scores=(models/minigrid*_seed*/scores.csv)
  [ -f results/minigrid_memory/run_scores.csv ] && with=(--earlier results/minigrid_memory/run_scores.csv)
  "$PY" aggregate.py "${scores[@]}" "${with[@]}" --metric success --complete-only \
    --compare minigrid minigrid_nomem --compare minigrid minigrid_gtrxl \
    --compare minigrid_small_entropy minigrid_small \
    --compare minigrid_small_entropy minigrid_nomem \
    --compare minigrid_small_entropy minigrid_small_entropy_gru \
    --compare minigrid_small_entropy_recon minigrid_small_entropy \
    --compare minigrid_small_entropy_recon minigrid_nomem \
    --compare minigrid_small_entropy_recon minigrid_small_entropy_recon_gru \
    --out results/minigrid_memory
}

for entry in $RUNS; do
  variant=${entry%%:*} seed=${entry##*:}
  config=configs/minigrid_memory${variant:+_$variant}.yaml
  run=minigrid${variant:+_$variant}_seed$seed
  total=$(budget "$config")
  done_updates=$(progress "models/$run.nn")
  if [ "$done_updates" -ge "$total" ] && [ "models/$run/scores.csv" -nt "models/$run.nn" ]; then
    continue
  fi
  if [ "$done_updates" -lt "$total" ]; then
    target=$total
    [ "$CHUNK" -gt 0 ] && target=$(( done_updates + CHUNK < total ? done_updates + CHUNK : total ))
    if [ -f "models/$run.nn" ]; then
      "$PY" train.py --resume "$run" --updates "$target"
    else
      sets=(checkpoint_interval=20)
      [ -n "${STEP_TIMEOUT:-}" ] && sets+=("step_timeout=$STEP_TIMEOUT")
      "$PY" train.py --config "$config" --run-id "$run" --seed "$seed" --overwrite \
        --updates "$target" --set "${sets[@]}"
    fi
    [ "$target" -lt "$total" ] && exit 0
  fi
  "$PY" evaluate.py "$run" --n-seeds 100 --repetitions 1
  aggregate
  [ "$CHUNK" -gt 0 ] && exit 0
done
[ "$CHUNK" -gt 0 ] && exit 3
exit 0
