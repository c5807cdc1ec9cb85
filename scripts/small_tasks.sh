#!/usr/bin/env bash
# Reproduces results/proof_of_memory and results/cartpole_masked and the README's results
# section: 5 seeds of TrXL, GTrXL on the proof-of-memory task and a memoryless control
# (memory_length 1); masked CartPole with 5 TrXL seeds and 3 seeds each of GTrXL and the
# control. About 50 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)

variants() {   # $1 config, $2 name, $3 checkpoint interval: writes $tmp/$2{,_gtrxl,_nomem}.yaml
  cp "configs/$1.yaml" "$tmp/$2.yaml"
  echo "checkpoint_interval: $3" >> "$tmp/$2.yaml"
  sed 's/gtrxl: false/gtrxl: true/' "$tmp/$2.yaml" > "$tmp/$2_gtrxl.yaml"
  sed -E 's/memory_length: [0-9]+/memory_length: 1/' "$tmp/$2.yaml" > "$tmp/$2_nomem.yaml"
}

variants proof_of_memory pom 5
for v in pom pom_gtrxl pom_nomem; do
  "$PY" train.py --config "$tmp/$v.yaml" --run-id "$v" --seeds 0 1 2 3 4
  "$PY" evaluate.py "${v}_seed*"
done
"$PY" aggregate.py models/pom_seed*/scores.csv models/pom_gtrxl_seed*/scores.csv \
  models/pom_nomem_seed*/scores.csv --compare pom pom_nomem --compare pom_gtrxl pom_nomem \
  --out results/proof_of_memory

variants cartpole_masked cartpole 25
"$PY" train.py --config "$tmp/cartpole.yaml" --run-id cartpole --seeds 0 1 2 3 4
"$PY" train.py --config "$tmp/cartpole_nomem.yaml" --run-id cartpole_nomem --seeds 0 1 2
"$PY" train.py --config "$tmp/cartpole_gtrxl.yaml" --run-id cartpole_gtrxl --seeds 0 1 2
# Episodes last up to 500 steps: 10 held-out seeds x 1 greedy episode per checkpoint.
for v in cartpole cartpole_nomem cartpole_gtrxl; do
  "$PY" evaluate.py "${v}_seed*" --n-seeds 10 --repetitions 1 --deterministic
done
"$PY" aggregate.py models/cartpole_seed*/scores.csv models/cartpole_gtrxl_seed*/scores.csv \
  models/cartpole_nomem_seed*/scores.csv --max-score 500 --compare cartpole cartpole_nomem \
  --compare cartpole_gtrxl cartpole_nomem --out results/cartpole_masked

cp models/pom_seed0.nn models/proof_of_memory.nn          # the shipped models
cp models/cartpole_seed0.nn models/cartpole_masked.nn
"$PY" scripts/results_section.py
