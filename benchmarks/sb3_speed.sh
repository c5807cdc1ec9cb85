#!/usr/bin/env bash
# Whole-loop steps/s of ours (TrXL and GRU) and sb3-contrib's RecurrentPPO on Pendulum-P-v1
# and HalfCheetah-V-v5, interleaved (ours TrXL, ours GRU, sb3; ROUNDS times per task), for
# docs/side-by-side-sb3.md. Run it on an otherwise idle machine:
#
#   SB3_PYTHON=/work/sb3-venv/bin/python benchmarks/sb3_speed.sh | tee speed.log
#
# Two figures per run of UPDATES updates of 16 workers x 128 steps (configs of
# scripts/control_tasks.sh, the learning rate annealed over UPDATES, no evaluation): "loop",
# steps / seconds of the training loop (every rollout and optimisation: sb3's learn(), the
# trainer's per-update times), and "process", steps / wall seconds of the whole command
# (imports, environment creation, worker start-up and our final model file too). The last lines give each side's median and sb3's median over ours.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SB3=${SB3_PYTHON:?set SB3_PYTHON to a Python with sb3-contrib}
UPDATES=${UPDATES:-10} ROUNDS=${ROUNDS:-3}
tmp=$(mktemp -d)
trap 'rm -rf models/sb3_speed_* summaries/sb3_speed_*' EXIT
export SDL_VIDEODRIVER=dummy

timed() {   # $1 side, $2 task, $3 round, $4.. command: one line of both figures
  local side=$1 task=$2 round=$3 start end
  shift 3
  start=$(date +%s.%N)
  "$@" > "$tmp/out.log" 2>&1 || { cat "$tmp/out.log" >&2; exit 1; }
  end=$(date +%s.%N)
  "$PY" - "$tmp/out.log" "$side" "$task" "$round" "$((UPDATES * 2048))" "$start" "$end" <<'PYEOF'
import json
import re
import sys
log, side, task, round_, steps, start, end = sys.argv[1:]
steps, wall = int(steps), float(end) - float(start)
text = open(log).read()
# The loop's own seconds: sb3's learn(), timed by the runner; the trainer's sampling and
# optimisation of each update (its console line gives the update's steps / those seconds).
if side.startswith("sb3"):
    loop = json.loads(text.strip().splitlines()[-1])["train_seconds"]
else:
    rates = [float(r) for r in re.findall(r"^update +\d+/\d+ +steps +[\d,]+ +(\d+) steps/s",
                                          text, re.M)]
    loop = sum(2048 / r for r in rates)
print(f"{side:10s} {task:15s} round {round_}  {steps:7d} steps  process {wall:6.1f} s "
      f"{steps / wall:7.1f} steps/s  loop {loop:6.1f} s {steps / loop:7.1f} steps/s")
PYEOF
}

for task in pendulum_p half_cheetah_v; do
  if [ "$task" = pendulum_p ]; then base=configs/pendulum_velocity_masked
  else base=configs/mujoco/half_cheetah_v; fi
  for kind in "" _gru; do
    sed -E "s/max_decay_steps: [0-9]+/max_decay_steps: $UPDATES/g" "$base$kind.yaml" \
      > "$tmp/$task$kind.yaml"
  done
  for round in $(seq "$ROUNDS"); do
    timed ours-trxl "$task" "$round" "$PY" train.py --config "$tmp/$task.yaml" \
      --run-id "sb3_speed_$task" --updates "$UPDATES" --overwrite
    timed ours-gru "$task" "$round" "$PY" train.py --config "$tmp/${task}_gru.yaml" \
      --run-id "sb3_speed_${task}_gru" --updates "$UPDATES" --overwrite
    timed sb3-lstm "$task" "$round" "$SB3" benchmarks/sb3_recurrent_ppo.py \
      "$tmp/$task.yaml" --run unused --updates "$UPDATES" --no-eval
  done
done | tee "$tmp/speed.txt"
"$PY" - "$tmp/speed.txt" <<'PYEOF'
import statistics
import sys
from collections import defaultdict
rates = defaultdict(list)       # (task, side) -> steps/s of each round
for line in open(sys.argv[1]):
    fields = line.split()
    rates[fields[1], fields[0], "process"].append(float(fields[9]))
    rates[fields[1], fields[0], "loop"].append(float(fields[-2]))
median = {key: statistics.median(values) for key, values in rates.items()}
for (task, side, what), value in sorted(median.items()):
    print(f"median {task:15s} {side:10s} {what:7s} {value:7.1f} steps/s")
for task, what in sorted({(task, what) for task, _, what in median}):
    sb3 = median[task, "sb3-lstm", what]
    print(f"ratio  {task:15s} {what:7s} ours-trxl / sb3 "
          f"{median[task, 'ours-trxl', what] / sb3:.2f}, "
          f"ours-gru / sb3 {median[task, 'ours-gru', what] / sb3:.2f}")
PYEOF
