#!/usr/bin/env bash
# Reproduces results/proof_of_memory and results/cartpole_masked and their part of
# docs/results.md: every memory (TrXL, GTrXL, GRU, LSTM, memory: none, and TrXL with
# memory_length 1) x 5 seeds on the proof-of-memory task and on masked CartPole, each
# evaluated on held-out seeds and aggregated with rliable. About 2 hours on 2 cores.
#
# A run that has its scores (models/RUN/scores.csv) is not trained again (delete models/RUN*
# to redo it); a run that was interrupted resumes from its last checkpoint. Seeds 0-2 of
# every variant come first, then seeds 3-4, so a shortened invocation still compares all.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)

source scripts/tasks.sh

aggregate() {  # $1 run prefix, $2 output folder, $3.. aggregate.py options
  local scores=()
  for v in "" _gtrxl _nomem _gru _lstm _none; do scores+=(models/"$1$v"_seed*/scores.csv); done
  "$PY" aggregate.py "${scores[@]}" --compare "$1" "$1_gru" --compare "$1_gtrxl" "$1_gru" \
    --compare "$1" "$1_lstm" --compare "$1_gru" "$1_none" --compare "$1" "$1_nomem" \
    --out "$2" "${@:3}"
}

variants proof_of_memory pom 5 gru lstm none
variants cartpole_masked cartpole 25 gru lstm none
for seeds in "0 1 2" "3 4"; do
  for v in pom pom_gtrxl pom_nomem pom_gru pom_lstm pom_none; do train "$v" "$seeds"; done
  aggregate pom results/proof_of_memory
  # Episodes last up to 500 steps: 10 held-out seeds x 1 greedy episode per checkpoint.
  for v in cartpole cartpole_gru cartpole_lstm cartpole_none cartpole_gtrxl cartpole_nomem; do
    train "$v" "$seeds" --n-seeds 10 --repetitions 1 --deterministic
  done
  aggregate cartpole results/cartpole_masked --max-score 500
done

cp models/pom_seed0.nn models/proof_of_memory.nn          # the shipped models
cp models/cartpole_seed0.nn models/cartpole_masked.nn
"$PY" scripts/results_section.py
