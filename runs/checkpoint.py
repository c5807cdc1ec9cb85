"""The model file: what a checkpoint holds, saving it atomically, loading it safely, and the
int8 copy that scripts/ship_model.py ships.

A model file is a torch.save archive of a Payload. It loads with torch.load(weights_only=True)
and is checked by runs.integrity before anything is built from it: a model file never runs
code or chooses what is imported.
"""
from __future__ import annotations

import os
import pickle
from typing import Any, TypedDict

import numpy as np
import torch

from config import Config, config_from_dict
from preflight.refusal import RefusedInput, short
from runs import integrity
from runs.atomic import atomic_write, stop_signals_deferred

MODEL_FORMAT = "trxl-ppo-model"
MODEL_VERSION = 1
# A playing-only copy (scripts/ship_model.py --int8) keeps its weight matrices here, apart from
# "model", so code that predates it fails on the missing keys instead of loading raw integers.
INT8_KEY = "model_int8"


class Payload(TypedDict, total=False):
    """What a model file holds (Trainer.checkpoint writes it). Playing needs config, spec
    and model; resuming needs every entry (runs.resume checks them)."""
    format: str                 # MODEL_FORMAT
    version: int                # MODEL_VERSION
    config: dict                # Config.to_dict() of the run
    spec: dict                  # environments.SpaceSpec.to_dict(): observations and actions
    model: dict                 # the network's state_dict (float weights)
    model_int8: dict            # INT8_KEY: quantize_int8's records, in a shipped copy only
    optimizer: dict             # AdamW's state_dict
    update: int                 # updates completed
    steps: int                  # environment steps completed
    skipped_steps: int          # optimiser steps skipped for a non-finite loss
    log_dir: str                # the TensorBoard folder; only its timestamp is ever used
    rng: dict                   # generator states: torch, shuffle (and cuda)
    sampler: dict               # Sampler.state(): running episodes and memory
    world_size: int             # ranks of a data-parallel run (distributed.py); absent: 1
    ranks: list                 # ranks 1..world_size-1: their own {"rng", "sampler"}


def save_model_file(path: str, payload: Payload) -> None:
    """Write atomically (runs.atomic): a kill during the save leaves the previous file, and
    a stop signal (Ctrl-C, SIGTERM, SIGHUP) waits until the file is complete."""
    with stop_signals_deferred(), atomic_write(path) as f:
        torch.save({"format": MODEL_FORMAT, "version": MODEL_VERSION, **payload}, f)


def load_model_file(path: str, map_location: str | torch.device = "cpu"
                    ) -> tuple[Payload, Config]:
    """Load a model file without unpickling arbitrary objects (weights_only=True) and check it
    is ours and intact: zip CRCs, the embedded config, an environment id that would import a
    module (refused unless integrity.allow_env_ids named it), the entries' types. Returns the
    payload (int8 weights dequantised into "model") and its validated config; ValueError
    naming the file otherwise."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such model file. Fix: pass a file written by train.py, "
                         f"e.g. models/RUN.nn.")
    integrity.check_archive(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" not in str(e).lower():
            raise ValueError(f"{path}: not a loadable TrXL-PPO model file (truncated or "
                             f"corrupt): {short(str(e))}") from None
        raise ValueError(integrity.refused_pickle_message(path, e)) from None
    except Exception as e:   # noqa: BLE001 - corrupt bytes make torch/pickle raise OSError,
        # IndexError, KeyError, struct.error, bare EOFError... besides UnpicklingError.
        reason = str(e).strip().split("\n")[0] or type(e).__name__
        raise ValueError(f"{path}: not a loadable TrXL-PPO model file (truncated or "
                         f"corrupt): {short(reason)}") from None
    integrity.check_object_size(payload, path)
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not a TrXL-PPO model file (no '{MODEL_FORMAT}' marker).")
    if payload.get("version") != MODEL_VERSION:
        raise ValueError(f"{path}: model file version {short(payload.get('version'))}, "
                         f"this code reads version {MODEL_VERSION}.")
    if "config" not in payload:
        raise ValueError(f"{path}: the model file holds no config. Fix: use a file written by "
                         f"train.py.")
    config = config_from_dict(payload["config"], source=f"{path} (embedded config)")
    integrity.check_untrusted_environment(config.environment, f"{path} (embedded config)",
                                          integrity.allowed_env_ids())
    integrity.check_entries(payload, [integrity.Entry("spec", dict),
                                      integrity.Entry("model", dict)], path)
    integrity.check_tensor_dict(payload["model"], "'model'", path)
    if INT8_KEY in payload:
        integrity.check_int8_entry(payload[INT8_KEY], path)
        payload["model"] = {**payload["model"], **dequantize_int8(payload.pop(INT8_KEY))}
    return payload, config


def check_environment(where: str, recorded: Any, env_config, found: dict) -> None:
    """RefusedInput when the environment a model file names now has other observations or
    actions (`found`, a SpaceSpec dict) than it was trained on (`recorded`)."""
    if recorded != found:
        raise RefusedInput(f"{where}: trained on observations/actions {short(recorded)}, but "
                           f"environment {env_config.type}/{short(env_config.name)} now gives "
                           f"{found}. Fix: use the environment version it was trained on.")


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


def env_state_to_tensors(tree):
    """An env backend's state (arrays, lists and dicts of them) as tensors, which a
    checkpoint holds (torch.load with weights_only reads tensors, not arrays)."""
    if isinstance(tree, dict):
        return {k: env_state_to_tensors(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [env_state_to_tensors(v) for v in tree]
    return torch.from_numpy(np.array(tree))


def env_state_to_arrays(tree):
    """Undo env_state_to_tensors."""
    if isinstance(tree, dict):
        return {k: env_state_to_arrays(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [env_state_to_arrays(v) for v in tree]
    return tree.numpy()
