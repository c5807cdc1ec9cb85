#!/usr/bin/env bash
# POPGym CountRecallEasy and AutoencodeEasy, which no memory learnt at the table's 204,800
# steps: TrXL and GRU x seeds 0-2 at UPDATES updates of 2,048 steps (default 500: 1,024,000
# steps; 1000 gives 2,048,000), the shipped configs with their schedules annealed over the
# longer run. Runs are named pgl_TASK[_gru]_seedN, apart from the table's pg_ runs, and
# aggregate into results/popgym_long (returns normalised from [-1, 1] as in results/popgym).
#
#   bash scripts/popgym_long.sh
#   UPDATES=1000 SEEDS="0 1 2" bash scripts/popgym_long.sh   # extends finished runs to 2M
#
# As the other task scripts: finished runs are skipped, interrupted ones resume, and
# results/popgym_long/run_scores.csv keeps the runs of earlier checkouts. About 15-40 minutes
# a run per million steps on 2 cores; STEP_TIMEOUT (seconds) goes into new runs' configs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)
source scripts/tasks.sh
export TASK_UPDATES=${UPDATES:-500}
SEEDS=${SEEDS:-0 1 2}
TASKS=(count_recall_easy autoencode_easy)
out=results/popgym_long

for task in "${TASKS[@]}"; do
  variants "popgym/$task" "pgl_$task" 50 gru
  rm -f "$tmp/pgl_${task}_gtrxl.yaml" "$tmp/pgl_${task}_nomem.yaml"
done
# The learning-rate, entropy and clip schedules anneal over the whole run, as the shipped
# configs do over their 100 updates.
sed -i -E "s/max_decay_steps: [0-9]+/max_decay_steps: $TASK_UPDATES/g" "$tmp"/pgl_*.yaml

scores=() renames=() with=()
for task in "${TASKS[@]}"; do
  for v in "" _gru; do
    train "pgl_$task$v" "$SEEDS"
    compgen -G "models/pgl_$task${v}_seed*/scores.csv" > /dev/null \
      && scores+=(models/pgl_"$task$v"_seed*/scores.csv)
    kind=${v#_}
    renames+=(--rename "pgl_$task$v=${kind:-trxl}")
  done
done
[ -f "$out/run_scores.csv" ] && with=(--earlier "$out/run_scores.csv")
"$PY" aggregate.py "${scores[@]}" "${with[@]}" "${renames[@]}" --complete-only \
  --compare trxl gru --max-score 1.0 --min-score -1.0 --out "$out"
