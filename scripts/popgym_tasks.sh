#!/usr/bin/env bash
# Reproduces results/popgym and docs/results-popgym.md's tables: five POPGym Easy tasks
# (RepeatPrevious, RepeatFirst, CountRecall, Autoencode, PositionOnlyCartPole) x TrXL, GRU and
# the memoryless control (memory: none) x seeds, each run evaluated on held-out seeds and
# aggregated with rliable over the five tasks, returns min/max-normalised per task as POPGym's
# MMER is. Needs popgym (pip install -r requirements-popgym.txt). Each run is ~205k steps, a
# few minutes on 2 cores.
#
#   bash scripts/popgym_tasks.sh            # seed 0, then seeds 1 and 2
#   SEEDS="0 1 2 3 4" bash scripts/popgym_tasks.sh
#   VARIANTS="'' _gru _none _gtrxl" ...      # GTrXL too (configs/popgym/*_gtrxl.yaml)
#
# A run that has its scores is not trained again; an interrupted one resumes (tasks.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)

source scripts/tasks.sh

TASKS=(repeat_previous_easy repeat_first_easy count_recall_easy autoencode_easy
       position_only_cartpole_easy)
read -r -a KINDS <<< "${KINDS:-trxl gru none}"

run_prefix() { echo "pg_$1"; }                          # pg_repeat_previous_easy, ...
suffix() { [ "$1" = trxl ] && echo "" || echo "_$1"; }  # the variant's run-name suffix

# Each task's worst return (its best is 1): POPGym's card tasks return between -1 and 1, its
# CartPole between 0 and 1.
declare -A MIN_SCORE=([repeat_previous_easy]=RepeatPreviousEasy=-1
                      [repeat_first_easy]=RepeatFirstEasy=-1 [count_recall_easy]=CountRecallEasy=-1
                      [autoencode_easy]=AutoencodeEasy=-1
                      [position_only_cartpole_easy]=PositionOnlyCartPoleEasy=0)

aggregate_popgym() {  # the tasks that have scores; rliable needs every memory on each of them
  local scores=() renames=() mins=() task kind
  for task in "${TASKS[@]}"; do
    compgen -G "models/$(run_prefix "$task")*_seed*/scores.csv" > /dev/null || continue
    mins+=("${MIN_SCORE[$task]}")
    for kind in "${KINDS[@]}"; do
      compgen -G "models/$(run_prefix "$task")$(suffix "$kind")_seed*/scores.csv" > /dev/null \
        || continue
      scores+=(models/"$(run_prefix "$task")$(suffix "$kind")"_seed*/scores.csv)
      renames+=(--rename "$(run_prefix "$task")$(suffix "$kind")=$kind")
    done
  done
  "$PY" aggregate.py "${scores[@]}" "${renames[@]}" --compare trxl gru --compare trxl none \
    --compare gru none --max-score 1.0 --min-score "${mins[@]}" --out results/popgym
}

for task in "${TASKS[@]}"; do
  variants "popgym/$task" "$(run_prefix "$task")" 25 gru none
done
batches=("0" "1 2")
[ -n "${SEEDS:-}" ] && batches=("$SEEDS")
for seeds in "${batches[@]}"; do
  for task in "${TASKS[@]}"; do
    for kind in "${KINDS[@]}"; do train "$(run_prefix "$task")$(suffix "$kind")" "$seeds"; done
  done
  aggregate_popgym
done
