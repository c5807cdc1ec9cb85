#!/usr/bin/env bash
# Reproduces results/proof_of_memory and results/cartpole_masked and their part of
# docs/results.md: every memory (TrXL, GTrXL, GRU, LSTM, AGaLiTe, FFM, SHM, the selective SSM,
# memory: none, and TrXL with memory_length 1) x 5 seeds on the proof-of-memory task and on masked CartPole, each
# evaluated on held-out seeds and aggregated with rliable. About 4 hours on 2 cores.
#
# A run that has its scores (models/RUN/scores.csv) is not trained again (delete models/RUN*
# to redo it); a run that was interrupted resumes from its last checkpoint. Seeds 0-2 of
# every variant come first, then seeds 3-4, so a shortened invocation still compares all.
# VARIANTS="pom_ffm cartpole_ffm" trains only those (the others' scores come from the
# folders' run_scores.csv, the earlier aggregation).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)

source scripts/tasks.sh

aggregate() {  # $1 run prefix, $2 output folder, $3.. aggregate.py options; runs scored
               # in an earlier checkout come from the folder's run_scores.csv
  local earlier="$2/run_scores.csv" scores=() with=() compares=() v x y
  [ -f "$earlier" ] && with=(--earlier "$earlier")
  for v in "" _gtrxl _nomem _gru _lstm _none _agalite _ffm _shm _ssm; do
    if compgen -G "models/$1${v}_seed*/scores.csv" > /dev/null; then
      scores+=(models/"$1$v"_seed*/scores.csv)
    fi
  done
  for v in :_gru _gtrxl:_gru :_lstm _gru:_none :_nomem _agalite:_gtrxl _ffm:_gru \
           _agalite:_none _ffm:_none _shm:_gru _shm:_none _ssm:_gru _ssm:_none; do
    x=$1${v%%:*} y=$1${v##*:}
    if has_runs "$x" "$earlier" && has_runs "$y" "$earlier"; then
      compares+=(--compare "$x" "$y")
    fi
  done
  "$PY" aggregate.py "${scores[@]}" "${with[@]}" "${compares[@]}" --out "$2" "${@:3}"
}

selected() {   # $1 variant: is it among $VARIANTS (all when unset)?
  [ -z "${VARIANTS:-}" ] || [[ " $VARIANTS " == *" $1 "* ]]
}

task_selected() {   # $1 run prefix: is any of its variants among $VARIANTS (all when unset)?
  [ -z "${VARIANTS:-}" ] || [[ " $VARIANTS" == *" $1"* ]]
}

variants proof_of_memory pom 5 gru lstm none agalite ffm shm ssm
variants cartpole_masked cartpole 25 gru lstm none agalite ffm shm ssm
for seeds in "0 1 2" "3 4"; do
  for v in pom pom_gtrxl pom_nomem pom_gru pom_lstm pom_none pom_agalite pom_ffm pom_shm \
           pom_ssm; do
    if selected "$v"; then train "$v" "$seeds"; fi
  done
  if task_selected pom; then aggregate pom results/proof_of_memory; fi
  # Episodes last up to 500 steps: 10 held-out seeds x 1 greedy episode per checkpoint.
  for v in cartpole cartpole_gru cartpole_lstm cartpole_none cartpole_gtrxl cartpole_nomem \
           cartpole_agalite cartpole_ffm cartpole_shm cartpole_ssm; do
    if selected "$v"; then train "$v" "$seeds" --n-seeds 10 --repetitions 1 --deterministic; fi
  done
  if task_selected cartpole; then aggregate cartpole results/cartpole_masked --max-score 500; fi
done

[ -n "${VARIANTS:-}" ] && exit 0          # a partial run: shipped models and README unchanged
cp models/pom_seed0.nn models/proof_of_memory.nn          # the shipped models
cp models/cartpole_seed0.nn models/cartpole_masked.nn
"$PY" scripts/results_section.py
