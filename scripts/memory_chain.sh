#!/usr/bin/env bash
# Reproduces results/memory_chain and its section of docs/results.md: bsuite's MemoryChain
# (gymnax, memory_length 32: the cue of the first step is asked for after 32 steps) with
# TrXL, GRU and the memoryless control x 3 seeds on the jax backend
# (configs/gymnax/memory_chain*.yaml; TASK_UPDATES=100: 204,800 steps), every checkpoint evaluated on 100 held-out seeds x 1
# greedy episode and aggregated with rliable, returns normalised between -1 (always wrong)
# and 1 (always right); chance is 0. Needs requirements-jax.txt.
#
# As in small_tasks.sh: a run with scores is not trained again, an interrupted one resumes,
# and VARIANTS="mc_gru" trains only those.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)

source scripts/tasks.sh

selected() {   # $1 variant: is it among $VARIANTS (all when unset)?
  [ -z "${VARIANTS:-}" ] || [[ " $VARIANTS " == *" $1 "* ]]
}

variants gymnax/memory_chain mc 50 gru none
for seed in ${SEEDS:-0 1 2}; do          # seed by seed: every variant has seed 0 first
  for v in mc mc_gru mc_none; do
    if selected "$v"; then train "$v" "$seed"; fi
  done
done
earlier=results/memory_chain/run_scores.csv with=() scores=()
[ -f "$earlier" ] && with=(--earlier "$earlier")
for v in mc mc_gru mc_none; do
  if compgen -G "models/${v}_seed*/scores.csv" > /dev/null; then
    scores+=(models/"$v"_seed*/scores.csv)
  fi
done
"$PY" aggregate.py "${scores[@]}" "${with[@]}" --compare mc mc_gru --compare mc mc_none \
  --compare mc_gru mc_none --min-score -1 --max-score 1 --out results/memory_chain
