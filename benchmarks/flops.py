"""Model FLOPs utilisation: the update's counted FLOPs against the machine's peak rate.

    python benchmarks/flops.py               # this machine's peak, measured and from its specs

The update's FLOPs are counted by torch.utils.flop_counter.FlopCounterMode over its forward
and backward passes (matrix products and convolutions, the operations that set the rate;
element-wise work is not counted, as is usual for MFU). The peak is given two ways:
- measured: the best rate of a large square matrix product (float32, and bfloat16) on the
  threads the run uses; what the machine's BLAS reaches on ideal work;
- specified: cores x clock x float32 lanes of the widest vector unit x 2 (a fused
  multiply-add is two FLOPs) x FMA units per core, read from /proc/cpuinfo; the number of
  FMA units is not visible from software (2 on server Xeon cores with AVX-512, 1 on some
  client parts), so it is an assumption, printed with the figure.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import preflight.process_setup  # noqa: E402,F401  (before torch)

import torch  # noqa: E402

FMA_UNITS_ASSUMED = 2


@dataclass
class Peak:
    measured_float32: float          # FLOP/s of a large float32 matrix product
    measured_bfloat16: float         # the same in bfloat16 (AMX / AVX512-BF16 where present)
    specified: Optional[float]       # cores x clock x lanes x 2 x FMA units; None if unread
    description: str                 # how `specified` was derived


def gemm_rate(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of a (size x size) @ (size x size) product over `repeats` rounds."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(2):
        a @ b                                                            # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best


def specified_peak(cores: int, info: Optional[str] = None) -> tuple[Optional[float], str]:
    """cores x clock x float32 lanes x 2 x FMA units, from /proc/cpuinfo's text `info`
    (read when None; Linux x86)."""
    if info is None:
        try:
            with open("/proc/cpuinfo") as f:
                info = f.read()
        except OSError:
            return None, "no /proc/cpuinfo"
    mhz = [float(line.split(":")[1]) for line in info.splitlines() if line.startswith("cpu MHz")]
    flags = next((line.split(":")[1].split() for line in info.splitlines()
                  if line.startswith("flags")), [])
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    if not mhz or "fma" not in flags:
        return None, "clock or FMA flag not in /proc/cpuinfo"
    clock = max(mhz) * 1e6
    peak = cores * clock * lanes * 2 * FMA_UNITS_ASSUMED
    return peak, (f"{cores} cores x {clock / 1e9:.2f} GHz x {lanes} float32 lanes x 2 (FMA) "
                  f"x {FMA_UNITS_ASSUMED} FMA units (assumed)")


def machine_peak(threads: int) -> Peak:
    """The peak on `threads` torch threads (the run's), measured and specified."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        measured = gemm_rate(torch.float32), gemm_rate(torch.bfloat16)
    finally:
        torch.set_num_threads(previous)
    specified, description = specified_peak(threads)
    return Peak(*measured, specified, description)


def update_flops(trainer) -> int:
    """FLOPs of one update's forward and backward passes (every minibatch of every epoch),
    counted eagerly on the trainer's buffer: each epoch's minibatches hold the same steps,
    so one epoch is counted and multiplied."""
    from torch.utils.flop_counter import FlopCounterMode

    from trainer import Schedules, accumulate_gradients
    model, config = trainer.model, trainer.config
    compiled, model.compile_update = model.compile_update, False   # count the eager ops
    try:
        model.train()
        with FlopCounterMode(display=False) as counter:
            for batch in trainer.buffer.minibatches(config.n_mini_batch, torch.Generator()):
                accumulate_gradients(model, batch, config, Schedules.at(config, 0))
    finally:
        model.compile_update = compiled
        model.zero_grad(set_to_none=True)
    return counter.get_total_flops() * config.epochs


def describe(peak: Peak) -> list[str]:
    lines = [f"peak float32 GEMM (measured)  {peak.measured_float32 / 1e9:.1f} GFLOP/s",
             f"peak bfloat16 GEMM (measured) {peak.measured_bfloat16 / 1e9:.1f} GFLOP/s"]
    if peak.specified is not None:
        lines.append(f"peak float32 (specified)      {peak.specified / 1e9:.1f} GFLOP/s = "
                     f"{peak.description}")
    else:
        lines.append(f"peak float32 (specified)      unknown ({peak.description})")
    return lines


if __name__ == "__main__":
    print("\n".join(describe(machine_peak(len(os.sched_getaffinity(0))))))
