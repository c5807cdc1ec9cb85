"""Small helpers of the training loop: schedules, seeding, threads, devices, durations."""
from __future__ import annotations

import os
import random
from typing import Optional

import numpy as np
import torch

from config import ScheduleConfig


def polynomial_decay(schedule: ScheduleConfig, update: int) -> float:
    """(initial - final) * (1 - update / max_decay_steps) ** power + final, then final."""
    if update >= schedule.max_decay_steps:
        return schedule.final
    remaining = 1.0 - update / schedule.max_decay_steps
    return (schedule.initial - schedule.final) * remaining ** schedule.power + schedule.final


def worker_seeds(run_seed: int, n_workers: int) -> list[int]:
    """Distinct, reproducible environment seeds for each worker, derived from the run seed.
    (Forked workers that shared one RNG state played identical episodes in the original.)"""
    children = np.random.SeedSequence([run_seed, 0]).spawn(n_workers)
    return [int(c.generate_state(1)[0] % (2**31 - 1)) for c in children]


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


SMALL_MODEL_PARAMETERS = 1_000_000


def set_torch_threads(requested: Optional[int], parameters: int,
                      cores: Optional[int] = None) -> int:
    """Choose torch's intra-op threads deliberately: torch's default (every core) oversubscribes
    a machine whose cores also run the environment processes, and stalled some updates 25x. Small models run on one thread:
    their ops are too small to pay for waking a second one (proof-of-memory: 3,300 vs 1,100
    steps/s; masked CartPole: 2,900 vs 1,400). Larger ones use every core we may run on
    (`cores`: this process's share when several ranks share the machine)."""
    if requested is None:
        cores = cores or len(os.sched_getaffinity(0))
        requested = 1 if parameters < SMALL_MODEL_PARAMETERS else cores
    torch.set_num_threads(requested)
    return requested


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was asked for but torch sees no CUDA GPU. "
                           "Fix: use --device cpu (or auto).")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def remaining_seconds(elapsed: float, updates_done: int, updates_left: int) -> float:
    """Time left at this process's pace: `updates_done` counts only the updates this process
    ran, so a resumed run is not credited with the updates of the run it resumed."""
    return elapsed / max(updates_done, 1) * updates_left


def format_duration(seconds: float) -> str:
    """ETA-style duration: 3m07s, or 1h02m07s."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> float:
    var = target.var()
    return float("nan") if var == 0 else float(1 - (target - predicted).var() / var)
