#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one call (under 8 minutes on one GPU): the CUDA-marked
# tests (cache = recompute, resume, losses and gradients on cuda), then the synchronised
# throughput benchmark for Mortar Mayhem Grid and MiniGrid (steps/s, peak GPU memory,
# host-device copies per step), and Craftax-Symbolic-v1 on the jax backend at the JAX TrXL-PPO
# seed's 1024 envs (configs/craftax_symbolic.yaml; needs a CUDA build of jaxlib for the envs to
# run on the GPU, else they run on the CPU and the figure says how far that carries). Needs a
# CUDA build of torch; elsewhere it stops at once with a message and exit status 2.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export SDL_VIDEODRIVER=dummy PYGAME_HIDE_SUPPORT_PROMPT=1
"$PY" - <<'PYEOF' || exit 2
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA GPU (built for CUDA "
             f"{torch.version.cuda}). Fix: run it on a machine with one CUDA GPU and a CUDA "
             f"build of torch; nothing was run.")
print(f"gpu_check: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}", flush=True)
PYEOF
start=$SECONDS
# -k: pygame (Memory Gym) catches SIGTERM, so a stuck step needs SIGKILL to stop.
timeout -k 10 240 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py
for config in mortar_mayhem_grid minigrid_memory; do
  echo "== $config"
  timeout -k 10 100 "$PY" benchmarks/gpu_throughput.py --config "configs/$config.yaml" --updates 2
done
echo "== craftax_symbolic (1024 envs x 128 steps)"
timeout -k 10 150 "$PY" benchmarks/gpu_throughput.py --config configs/craftax_symbolic.yaml \
  --updates 1
echo "gpu_check: done in $((SECONDS - start)) s"
