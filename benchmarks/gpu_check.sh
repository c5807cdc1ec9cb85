#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one call (under 8 minutes on one GPU, ~5 more with
# several): the CUDA-marked tests (cache = recompute, resume, losses and gradients on cuda),
# then the synchronised throughput benchmark for Mortar Mayhem Grid and MiniGrid (steps/s,
# peak GPU memory, host-device copies per step), and Craftax-Symbolic-v1 on the jax backend at
# the JAX TrXL-PPO seed's 1024 envs (configs/craftax_symbolic.yaml; needs a CUDA build of jaxlib
# for the envs to run on the GPU, else they run on the CPU). With two or more GPUs it also runs the
# data-parallel tests on them (tests/test_distributed.py: nccl between the GPUs, the same
# update as one rank, exact resume) and trains Mortar Mayhem Grid on 1 and on N GPUs with
# torchrun, printing the steps/s of each. Needs a CUDA build of torch; elsewhere it stops at
# once with a message and exit status 2.
#     DRY_RUN=1 bash benchmarks/gpu_check.sh     # print the commands for 2 GPUs, run none
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
TORCHRUN=${TORCHRUN:-$(dirname "$PY")/torchrun}
export SDL_VIDEODRIVER=dummy PYGAME_HIDE_SUPPORT_PROMPT=1

step() {  # run a command, or print it under DRY_RUN
  if [ -n "${DRY_RUN:-}" ]; then echo "+ $*"; else "$@"; fi
}

if [ -n "${DRY_RUN:-}" ]; then
  gpus=2
else
  "$PY" - <<'PYEOF' || exit 2
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA GPU (built for CUDA "
             f"{torch.version.cuda}). Fix: run it on a machine with a CUDA GPU and a CUDA "
             f"build of torch; nothing was run.")
print(f"gpu_check: {torch.cuda.device_count()} x {torch.cuda.get_device_name()}, torch "
      f"{torch.__version__}, CUDA {torch.version.cuda}", flush=True)
PYEOF
  gpus=$("$PY" -c "import torch; print(torch.cuda.device_count())")
fi
start=$SECONDS
# -k: pygame (Memory Gym) catches SIGTERM, so a stuck step needs SIGKILL to stop.
step timeout -k 10 240 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py
for config in mortar_mayhem_grid minigrid_memory; do
  echo "== $config"
  step timeout -k 10 100 "$PY" benchmarks/gpu_throughput.py --config "configs/$config.yaml" --updates 2
done
echo "== craftax_symbolic (1024 envs x 128 steps)"
step timeout -k 10 150 "$PY" benchmarks/gpu_throughput.py --config configs/craftax_symbolic.yaml \
  --updates 1
if [ "$gpus" -ge 2 ]; then
  echo "== data parallel on $gpus GPUs"
  step timeout -k 10 300 "$PY" -m pytest -q -p no:cacheprovider tests/test_distributed.py
  out=$(mktemp -d)
  for n in 1 "$gpus"; do
    # n_workers 32 x 512 steps in all, whatever n: the same run, split over n GPUs. The
    # last update's steps/s (rank 0 prints the whole run's) is the figure.
    echo "== mortar_mayhem_grid, $n GPU(s)"
    step timeout -k 10 400 "$TORCHRUN" --nproc-per-node "$n" train.py \
      --config configs/mortar_mayhem_grid.yaml --updates 3 --device cuda --run-id "gpus$n" \
      --models-dir "$out/models" --summaries-dir "$out/summaries"
  done
  rm -rf "$out"
fi
echo "gpu_check: done in $((SECONDS - start)) s"
