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
# A run that has its scores, here or in results/popgym/run_scores.csv (the runs of earlier
# checkouts; models/ is not committed), is not trained again; an interrupted one resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)

source scripts/tasks.sh
earlier=results/popgym/run_scores.csv

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

unscored() {   # $1 variant, $2 seeds: those with no scores in an earlier checkout
  local seed left=()
  for seed in $2; do
    grep -q "^[^,]*,$1_seed$seed," "$earlier" 2> /dev/null || left+=("$seed")
  done
  echo "${left[*]}"
}

aggregate_popgym() {  # the tasks that have scores; rliable needs every memory on each of them
  local scores=() renames=() mins=() with=() task kind run found
  [ -f "$earlier" ] && with=(--earlier "$earlier")
  for task in "${TASKS[@]}"; do
    found=""
    for kind in "${KINDS[@]}"; do
      run=$(run_prefix "$task")$(suffix "$kind")
      has_runs "$run" "$earlier" || continue
      compgen -G "models/${run}_seed*/scores.csv" > /dev/null \
        && scores+=(models/"$run"_seed*/scores.csv)
      renames+=(--rename "$run=$kind")
      found=1
    done
    [ -n "$found" ] && mins+=("${MIN_SCORE[$task]}")
  done
  "$PY" aggregate.py "${scores[@]}" "${with[@]}" "${renames[@]}" --compare trxl gru \
    --compare trxl none --compare gru none --max-score 1.0 --min-score "${mins[@]}" \
    --out results/popgym
}

for task in "${TASKS[@]}"; do
  variants "popgym/$task" "$(run_prefix "$task")" 25 gru none
done
batches=("0" "1 2")
[ -n "${SEEDS:-}" ] && batches=("$SEEDS")
for seeds in "${batches[@]}"; do
  for task in "${TASKS[@]}"; do
    for kind in "${KINDS[@]}"; do
      run=$(run_prefix "$task")$(suffix "$kind")
      train "$run" "$(unscored "$run" "$seeds")"
    done
  done
  aggregate_popgym
done
