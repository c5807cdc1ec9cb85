#!/usr/bin/env bash
# The image-observation tasks with their shipped configs: MiniGrid-MemoryS9 (TrXL,
# GTrXL, TrXL with memory_length 1, GRU) and Memory Gym's Mortar Mayhem Grid and Mystery Path
# Grid (TrXL, TrXL with memory_length 1). Each checkpoint is evaluated on 100 held-out seeds,
# then every task with scores is aggregated with rliable (success rate; Mortar Mayhem: the
# share of its commands carried out) into results/TASK/
# and docs/results.md's generated section is rewritten.
#
#   bash scripts/image_tasks.sh                                    # everything, seeds 0 1 2
#   SEEDS=0 VARIANTS="minigrid minigrid_nomem" bash scripts/image_tasks.sh
#
#   TASK_UPDATES=30 VARIANTS="mortar_grid mortar_grid_nomem" bash scripts/image_tasks.sh
#
# Compute, on 2 CPU cores: one MiniGrid run (100 updates, 819k steps) takes ~1 h (TrXL,
# 33-40 s an update), ~2 h with GTrXL (~70 s); the Memory Gym configs ship CleanRL's 5,000
# updates (82M steps), 2-4 days on a CPU. TASK_UPDATES sets a budget of updates per run (a
# Memory Gym run keeps a checkpoint every tenth of it); a later start with a larger one
# extends the runs and evaluates them again. Runs evaluated after their last training are
# skipped; interrupted ones resume. Seeds can be trained on different machines or days:
# results/TASK/run_scores.csv keeps the scores of runs whose models/ are gone.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SEEDS=${SEEDS:-0 1 2}
VARIANTS=${VARIANTS:-minigrid minigrid_nomem minigrid_gtrxl minigrid_gru \
  mortar_grid mortar_grid_nomem mystery_grid mystery_grid_nomem}
tmp=$(mktemp -d)
source scripts/tasks.sh

variants minigrid_memory minigrid 10 gru
# Ten held-out evaluations along a Memory Gym run, whatever its budget (5,000 updates shipped).
gym_interval=$(( ${TASK_UPDATES:-5000} >= 10 ? ${TASK_UPDATES:-5000} / 10 : 1 ))
variants mortar_mayhem_grid mortar_grid "$gym_interval"
variants mystery_path_grid mystery_grid "$gym_interval"
for v in $VARIANTS; do
  train "$v" "$SEEDS" --n-seeds 100 --repetitions 1
done
aggregate_task minigrid results/minigrid_memory --metric success
# Mortar Mayhem pays 0.1 per command carried out, 10 commands: the return is the share done,
# which shows progress long before whole episodes succeed.
aggregate_task mortar_grid results/mortar_mayhem_grid --metric return --max-score 1
aggregate_task mystery_grid results/mystery_path_grid --metric success
"$PY" scripts/results_section.py
