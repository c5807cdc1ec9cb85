#!/usr/bin/env bash
# The jax backend on Craftax-Symbolic-v1 (docs/performance.md, "The jax backend"): env-only
# steps/s at 64-1024 envs with one XLA thread (the backend's setting) and with XLA's
# multi-threaded CPU pool; then the whole loop of configs/craftax_classic_symbolic_cpu.yaml's
# network on Craftax-Symbolic-v1 at 64, 256 and 1024 envs (32 steps each). Run it on an
# otherwise idle machine (~10 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" benchmarks/jax_envs.py --config configs/craftax_symbolic.yaml --envs 64 256 1024
XLA_FLAGS="--xla_cpu_multi_thread_eigen=true" \
  "$PY" benchmarks/jax_envs.py --config configs/craftax_symbolic.yaml --envs 256
for n in 64 256 1024; do
  echo "== Craftax-Symbolic-v1, $n envs x 32 steps"
  "$PY" benchmarks/throughput.py --config configs/craftax_classic_symbolic_cpu.yaml --updates 1 \
    --set environment.name=Craftax-Symbolic-v1 n_workers=$n worker_steps=32 segment_length=32 \
    "$@"
done
