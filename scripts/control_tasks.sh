#!/usr/bin/env bash
# Reproduces results/pendulum_p and its part of docs/results.md: Pendulum-P-v1 (Pendulum
# without angular velocity, Ni et al. 2022) with TrXL, GRU and the memoryless control x 5
# seeds, 204,800 steps each (configs/pendulum_velocity_masked*.yaml), every checkpoint
# evaluated on 20 held-out seeds x 1 greedy episode and aggregated with rliable, returns
# normalised between -1600 (about a policy that never swings up) and 0 (the upright maximum).
# About 2 minutes a run on 2 idle cores.
#
# As in small_tasks.sh: a run with scores is not trained again, an interrupted one resumes,
# seeds 0-2 of every variant come first, and VARIANTS="pendulum_gru" trains only those.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)

source scripts/tasks.sh

selected() {   # $1 variant: is it among $VARIANTS (all when unset)?
  [ -z "${VARIANTS:-}" ] || [[ " $VARIANTS " == *" $1 "* ]]
}

variants pendulum_velocity_masked pendulum 10 gru none
for seeds in "0 1 2" "3 4"; do
  for v in pendulum pendulum_gru pendulum_none; do
    if selected "$v"; then train "$v" "$seeds"; fi
  done
  earlier=results/pendulum_p/run_scores.csv with=() scores=()
  [ -f "$earlier" ] && with=(--earlier "$earlier")
  for v in pendulum pendulum_gru pendulum_none; do
    if compgen -G "models/${v}_seed*/scores.csv" > /dev/null; then
      scores+=(models/"$v"_seed*/scores.csv)
    fi
  done
  "$PY" aggregate.py "${scores[@]}" "${with[@]}" \
    --compare pendulum pendulum_gru --compare pendulum pendulum_none \
    --compare pendulum_gru pendulum_none \
    --min-score -1600 --max-score 0 --out results/pendulum_p
done
