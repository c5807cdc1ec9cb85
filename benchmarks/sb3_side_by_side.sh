#!/usr/bin/env bash
# Returns of sb3-contrib's RecurrentPPO beside ours on Pendulum-P-v1 and HalfCheetah-V-v5
# (docs/side-by-side-sb3.md): 3 seeds each at the budgets of scripts/control_tasks.sh,
# scored on the same 20 held-out seeds and aggregated with ours (seeds 0-2 of TrXL and GRU,
# which scripts/control_tasks.sh trains) into results/sb3_side_by_side/TASK.
#
#   SB3_PYTHON=/work/sb3-venv/bin/python benchmarks/sb3_side_by_side.sh
#
# SB3_PYTHON is a Python with sb3-contrib installed (benchmarks/sb3_recurrent_ppo.py says
# how). A run with scores is not trained again; TASKS="pendulum_p" runs one task. About 6
# minutes a run on 2 idle cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SB3=${SB3_PYTHON:?set SB3_PYTHON to a Python with sb3-contrib}
updates=${HALF_CHEETAH_UPDATES:-98}
tmp=$(mktemp -d)
# The budget of scripts/control_tasks.sh: the learning rate annealed over the cut run.
sed -E -e "s/^updates: [0-9]+/updates: $updates/" \
  -e "s/max_decay_steps: [0-9]+/max_decay_steps: $updates/g" \
  configs/mujoco/half_cheetah_v.yaml > "$tmp/half_cheetah_v.yaml"

side_by_side() {   # $1 task folder, $2 our run prefix, $3 config, $4 $5 the score range
  local seed run
  for seed in 0 1 2; do
    run="sb3_$2_seed$seed"
    [ -f "models/$run/scores.csv" ] && continue
    "$SB3" benchmarks/sb3_recurrent_ppo.py "$3" --seed "$seed" --run "$run"
  done
  "$PY" aggregate.py models/{sb3_"$2","$2","$2"_gru}_seed[012]/scores.csv \
    --compare "$2" "sb3_$2" --compare "$2_gru" "sb3_$2" \
    --min-score "$4" --max-score "$5" --out "results/sb3_side_by_side/$1"
}

if [ -z "${TASKS:-}" ] || [[ " $TASKS " == *" pendulum_p "* ]]; then
  side_by_side pendulum_p pendulum configs/pendulum_velocity_masked.yaml -1600 0
fi
if [ -z "${TASKS:-}" ] || [[ " $TASKS " == *" half_cheetah_v "* ]]; then
  side_by_side half_cheetah_v half_cheetah_v "$tmp/half_cheetah_v.yaml" -500 3000
fi
