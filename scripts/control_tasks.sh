#!/usr/bin/env bash
# Reproduces the continuous-control part of docs/results.md, every checkpoint evaluated on 20
# held-out seeds x 1 greedy episode and aggregated with rliable:
#  - results/pendulum_p: Pendulum-P-v1 (Pendulum without angular velocity, Ni et al. 2022),
#    204,800 steps a run (configs/pendulum_velocity_masked*.yaml), returns normalised between
#    -1600 (about a policy that never swings up) and 0 (the upright maximum). About 2
#    minutes a run on 2 idle cores.
#  - results/half_cheetah_v: HalfCheetah-V-v5 (velocities only), configs/mujoco/
#    half_cheetah_v*.yaml cut to HALF_CHEETAH_UPDATES updates of 2,048 steps (default 98:
#    200,704 steps, the learning rate annealed over them; the configs' 488 updates are the
#    1M steps of Ni et al.), returns normalised between -500 (about a random policy's
#    -300 over 1,000 steps, less a margin) and 3000. About 4 minutes a run on 2 idle cores.
# Each task with TrXL, GRU and the memoryless control x 5 seeds.
#
# As in small_tasks.sh: a run with scores is not trained again, an interrupted one resumes,
# seeds 0-2 of every variant come first, TASKS="half_cheetah_v" runs one task,
# VARIANTS="pendulum_gru" trains only those and SEED_GROUPS="0-2" only seeds 0-2.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)
updates=${HALF_CHEETAH_UPDATES:-98}

source scripts/tasks.sh

selected() {   # $1 name, $2 the list (all when empty): is $1 on it?
  [ -z "$2" ] || [[ " $2 " == *" $1 "* ]]
}

variants pendulum_velocity_masked pendulum 10 gru none
variants mujoco/half_cheetah_v half_cheetah_v 49 gru none
for f in "$tmp"/half_cheetah_v*.yaml; do
  sed -i -E -e "s/^updates: [0-9]+/updates: $updates/" \
    -e "s/max_decay_steps: [0-9]+/max_decay_steps: $updates/g" "$f"
done
# A bench window pauses background jobs (SIGSTOP): a pause is not a hung environment.
for f in "$tmp"/*.yaml; do echo "step_timeout: 86400" >> "$f"; done

run_task() {   # $1 run prefix, $2 seeds, $3 results folder, $4 $5 the score range
  local v earlier="$3/run_scores.csv" with=() scores=()
  for v in "$1" "$1_gru" "$1_none"; do
    if selected "$v" "${VARIANTS:-}"; then train "$v" "$2"; fi
  done
  [ -f "$earlier" ] && with=(--earlier "$earlier")
  for v in "$1" "$1_gru" "$1_none"; do
    if compgen -G "models/${v}_seed*/scores.csv" > /dev/null; then
      scores+=(models/"$v"_seed*/scores.csv)
    fi
  done
  "$PY" aggregate.py "${scores[@]}" "${with[@]}" \
    --compare "$1" "$1_gru" --compare "$1" "$1_none" --compare "$1_gru" "$1_none" \
    --min-score "$4" --max-score "$5" --out "$3"
}

for group in 0-2 3-4; do
  selected "$group" "${SEED_GROUPS:-}" || continue
  seeds=$([ "$group" = 0-2 ] && echo "0 1 2" || echo "3 4")
  if selected pendulum_p "${TASKS:-}"; then
    run_task pendulum "$seeds" results/pendulum_p -1600 0
  fi
  if selected half_cheetah_v "${TASKS:-}"; then
    run_task half_cheetah_v "$seeds" results/half_cheetah_v -500 3000
  fi
done
