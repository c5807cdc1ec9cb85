#!/usr/bin/env bash
# The background queue of the memory table: alternates a few missing table runs
# (scripts/memory_table.py --train --limit TABLE_RUNS) with CHUNK updates of the MiniGrid
# study (scripts/minigrid_study.sh), so that both advance, until neither has work left.
# Meant to run for days at low priority, e.g.
#
#   nohup nice -n 19 bash scripts/table_queue.sh > models/queue.log 2>&1 &
#
# TABLE_COLUMNS names the table's columns it trains (default: all but HalfCheetah-V, whose
# runs scripts/control_tasks.sh trains).
# Stopping it at any point loses at most the update in progress: both resume.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export STEP_TIMEOUT=${STEP_TIMEOUT:-86400}
read -r -a columns <<< "${TABLE_COLUMNS:-ProofOfMemory MaskedCartPole RepeatPrevious \
  RepeatFirst CountRecall Autoencode PosOnlyCartPole Pendulum-P}"
table_left=1 study_left=1
while [ $table_left = 1 ] || [ $study_left = 1 ]; do
  if [ $table_left = 1 ]; then
    "$PY" scripts/memory_table.py --train --limit "${TABLE_RUNS:-6}" \
      --step-timeout "$STEP_TIMEOUT" --columns "${columns[@]}" || exit 1
    "$PY" scripts/memory_table.py --list-missing --columns "${columns[@]}" \
      | grep -q "^0 missing" && table_left=0
  fi
  if [ $study_left = 1 ]; then
    CHUNK=${CHUNK:-20} bash scripts/minigrid_study.sh
    case $? in 0) ;; 3) study_left=0 ;; *) exit 1 ;; esac
  fi
done
