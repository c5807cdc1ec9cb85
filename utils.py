"""Small helpers: schedules, seeding, threads, devices, model files."""
from __future__ import annotations

import os
import random
from typing import Any, Optional

import numpy as np
import torch

from atomic_file import atomic_write
from config import Config, ScheduleConfig, config_from_dict

MODEL_FORMAT = "trxl-ppo-model"
MODEL_VERSION = 1


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


def set_torch_threads(requested: Optional[int], parameters: int) -> int:
    """Choose torch's intra-op threads deliberately: torch's default (every core) oversubscribes
    a machine whose cores also run the environment processes, and stalled some updates 25x. Small models run on one thread:
    their ops are too small to pay for waking a second one (proof-of-memory: 3,300 vs 1,100
    steps/s; masked CartPole: 2,900 vs 1,400). Larger ones use every core we may run on."""
    if requested is None:
        requested = 1 if parameters < SMALL_MODEL_PARAMETERS else len(os.sched_getaffinity(0))
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


def save_model_file(path: str, payload: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same folder, flushed, then renamed, so a kill
    during the save leaves the previous file intact."""
    with atomic_write(path) as f:
        torch.save({"format": MODEL_FORMAT, "version": MODEL_VERSION, **payload}, f)


def load_model_file(path: str, map_location: str | torch.device = "cpu") -> tuple[dict, Config]:
    """Load a model file without unpickling arbitrary objects (weights_only=True) and check it
    is ours. Returns the raw payload and its validated config."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such model file. Fix: pass a file written by train.py, "
                         f"e.g. models/RUN.nn.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:   # noqa: BLE001 - corrupt bytes make torch/pickle raise OSError,
        # IndexError, KeyError, struct.error, bare EOFError... besides UnpicklingError.
        reason = str(e).strip().split("\n")[0] or type(e).__name__
        raise ValueError(f"{path}: not a loadable TrXL-PPO model file (truncated, corrupt, or "
                         f"carrying objects other than tensors, which are refused for safety): "
                         f"{reason}") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not a TrXL-PPO model file (no '{MODEL_FORMAT}' marker).")
    if payload.get("version") != MODEL_VERSION:
        raise ValueError(f"{path}: model file version {payload.get('version')!r}, this code "
                         f"reads version {MODEL_VERSION}.")
    if "config" not in payload:
        raise ValueError(f"{path}: the model file holds no config. Fix: use a file written by "
                         f"train.py.")
    config = config_from_dict(payload["config"], source=f"{path} (embedded config)")
    if INT8_KEY in payload:
        payload["model"] = {**payload["model"], **dequantize_int8(payload.pop(INT8_KEY))}
    return payload, config


# A playing-only copy (scripts/ship_model.py --int8) keeps its weight matrices here, apart from
# "model", so code that predates it fails on the missing keys instead of loading raw integers.
INT8_KEY = "model_int8"


def quantize_int8(weights: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """Symmetric int8 with one float32 scale per output row, for every floating tensor of two
    or more dimensions (linear and conv weights, 4x smaller than float32); the rest is kept.
    Returns (kept tensors, {name: {"q": int8 tensor, "scale": [rows, 1, ...]}})."""
    kept, quantized = {}, {}
    for name, t in weights.items():
        if not (t.is_floating_point() and t.dim() >= 2):
            kept[name] = t
            continue
        t = t.float()
        amax = t.abs().amax(dim=tuple(range(1, t.dim())), keepdim=True)   # [rows, 1, ...]
        scale = torch.where(amax > 0, amax / 127, torch.ones_like(amax))  # an all-zero row
        quantized[name] = {"q": torch.round(t / scale).to(torch.int8), "scale": scale}
    return kept, quantized


def dequantize_int8(quantized: dict[str, dict]) -> dict[str, torch.Tensor]:
    """float32 weights back from quantize_int8's records; each is off by at most scale / 2."""
    return {name: r["q"].float() * r["scale"] for name, r in quantized.items()}
