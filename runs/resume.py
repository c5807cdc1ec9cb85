"""Whether a checkpoint fits the run about to continue it, checked once, before a worker
starts (train.py) and again once the workers run (Trainer, which sees the sampler's state):
the entries a resumed run restores, the environment's spaces, the network's weights, the
optimiser's moments, the generator states and the sampler's state, by structure, dtype and
shape. A checkpoint that fits continues the run bit-identically; one that does not is
refused naming the first entry that differs.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

from preflight.refusal import RefusedInput, short
from runs.checkpoint import Payload, check_environment
from runs.integrity import Entry, check_entries, state_dict_mismatch


def check_training_state(payload: Payload, path: str) -> None:
    """RefusedInput unless the payload has every entry a resumed run restores, of the right
    type (check_resumable compares their shapes with the new run's)."""
    fix = "resume from another checkpoint of the run, or train again"
    check_entries(payload, [Entry(key, kind, fix) for key, kind in (
        ("optimizer", dict), ("rng", dict), ("sampler", dict), ("update", int),
        ("steps", int), ("skipped_steps", int))], path)
    for key in ("update", "steps", "skipped_steps"):
        if payload[key] < 0:
            raise RefusedInput(f"{path}: its {key!r} entry is negative. Fix: {fix}.")
    rng = payload["rng"]
    if not all(isinstance(rng.get(k), torch.Tensor) and rng[k].dtype == torch.uint8
               for k in ("torch", "shuffle")):
        raise RefusedInput(f"{path}: its 'rng' entry lacks the torch and shuffle generator "
                           f"states. Fix: {fix}.")
    optimizer = payload["optimizer"]
    if not isinstance(optimizer.get("state"), dict) or \
            not isinstance(optimizer.get("param_groups"), list):
        raise RefusedInput(f"{path}: its 'optimizer' entry is not an optimiser state. "
                           f"Fix: {fix}.")


def check_resumable(payload: Payload, where: str, environment, spec: dict, model_state: dict,
                    parameters: list, rng: dict, sampler: Optional[dict] = None) -> None:
    """RefusedInput naming the first part of `payload` that does not fit the run about to
    continue it: its environment (`environment`'s config, which now gives `spec`), its
    network's state (`model_state`, `parameters`, possibly on the meta device), its
    generator states `rng` and, once the workers run, its sampler's state. `where` names the
    checkpoint in the message."""
    check_environment(where, payload["spec"], environment, spec)
    problem = checkpoint_mismatch(model_state, parameters, rng, payload, sampler)
    if problem:
        raise RefusedInput(f"{where}: does not fit the run its config describes: {problem}. "
                           f"Fix: resume from a checkpoint written by train.py for this "
                           f"config.")


def checkpoint_mismatch(model_state: dict, parameters: list, rng: dict, payload: dict,
                        sampler: Optional[dict] = None) -> Optional[str]:
    """The first entry of a checkpoint that does not fit the run about to continue it: its
    network's state (`model_state`, `parameters`, possibly on the meta device), its generator
    states `rng` and, once the workers run, its sampler's state; None when all fit. A CUDA
    generator state is compared only when the run has one (a GPU checkpoint resumes on a CPU)."""
    found_rng = payload["rng"]
    return state_dict_mismatch(model_state, payload["model"]) or \
        optimizer_mismatch(parameters, payload["optimizer"]) or \
        structure_mismatch(rng, {k: found_rng.get(k) for k in rng}, "'rng'") or \
        (structure_mismatch(sampler, payload["sampler"], "'sampler'") if sampler is not None
         else None)


def structure_mismatch(expected: Any, found: Any, where: str, exact_shapes: bool = True
                       ) -> Optional[str]:
    """None when `found` has the structure of `expected` (a fresh run's state): the same
    dict keys, list lengths, tensor dtypes and shapes (inside lists, which hold one tensor
    per running episode, only the number of dimensions), numbers of the same kind; else
    where the first difference is."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(found, torch.Tensor):
            return f"{where} is a {type(found).__name__}, not a tensor"
        if found.dtype != expected.dtype or found.dim() != expected.dim() or (
                exact_shapes and found.shape != expected.shape):
            return (f"{where} is {found.dtype} {list(found.shape)}, the run needs "
                    f"{expected.dtype} {list(expected.shape)}")
        return None
    if isinstance(expected, dict):
        if not isinstance(found, dict):
            return f"{where} is a {type(found).__name__}, not a dict"
        if set(found) != set(expected):
            keys = sorted(map(str, set(found) ^ set(expected)))
            return f"{where} has other entries than the run's (differing: {short(keys)})"
        for key in expected:
            problem = structure_mismatch(expected[key], found[key], f"{where}.{key}",
                                         exact_shapes)
            if problem:
                return problem
        return None
    if isinstance(expected, (list, tuple)):
        if not isinstance(found, (list, tuple)) or len(found) != len(expected):
            return f"{where} is not a list of {len(expected)} entries"
        for i, (e, f) in enumerate(zip(expected, found)):
            problem = structure_mismatch(e, f, f"{where}[{i}]", exact_shapes=False)
            if problem:
                return problem
        return None
    numbers = (int, float)
    if isinstance(expected, numbers) and not isinstance(expected, bool):
        ok = isinstance(found, numbers) and not isinstance(found, bool)
    else:
        ok = type(found) is type(expected)
    return None if ok else f"{where} is a {type(found).__name__}, not a {type(expected).__name__}"


def optimizer_mismatch(parameters: list, state: dict) -> Optional[str]:
    """None when an AdamW state_dict fits `parameters` (in order); else the first problem."""
    groups = state.get("param_groups")
    if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], dict) \
            or len(groups[0].get("params", ())) != len(parameters):
        return f"'optimizer' does not hold one parameter group of {len(parameters)} parameters"
    moments = state.get("state")
    if not isinstance(moments, dict):
        return "'optimizer' has no per-parameter state"
    for index, record in moments.items():
        if not isinstance(index, int) or not 0 <= index < len(parameters):
            return f"'optimizer' has state for a parameter {short(index)} the network lacks"
        shape = parameters[index].shape
        for key in ("exp_avg", "exp_avg_sq"):
            value = record.get(key) if isinstance(record, dict) else None
            if not isinstance(value, torch.Tensor) or value.shape != shape:
                return f"'optimizer' state {index}.{key} does not have its parameter's " \
                       f"shape {list(shape)}"
    return None


# What differs between the ranks of a data-parallel run (distributed.py): each rank's own
# generator states and sampler. A checkpoint of N > 1 ranks keeps rank 0's at the top level
# (where a 1-rank checkpoint keeps them) and those of ranks 1..N-1 in "ranks", in order.
RANK_ENTRIES = ("rng", "sampler")


def rank_part(payload: Payload, rank: int) -> dict:
    """The entries of `payload` that rank `rank` restores besides the shared ones."""
    if rank == 0:
        return {key: payload[key] for key in RANK_ENTRIES}
    return payload["ranks"][rank - 1]


def check_world_size(payload: Payload, where: str, world_size: int) -> None:
    """RefusedInput unless the checkpoint was written by a run of `world_size` ranks: every
    rank's running episodes and memory continue only on a rank of the same place (another
    number of ranks would need each worker's episodes moved between ranks)."""
    saved = payload.get("world_size", 1)
    ranks = payload.get("ranks", [])
    if not isinstance(saved, int) or saved < 1 or not isinstance(ranks, list) or \
            len(ranks) != saved - 1 or not all(isinstance(r, dict) and set(r) == set(RANK_ENTRIES)
                                               for r in ranks):
        raise RefusedInput(f"{where}: its 'world_size' and 'ranks' entries do not describe the "
                           f"ranks of a run. Fix: resume from another checkpoint of the run.")
    if saved != world_size:
        def launch(n: int) -> str:
            return "python train.py" if n == 1 else f"torchrun --nproc-per-node {n} train.py"
        raise RefusedInput(
            f"{where}: written by a run of {saved} rank(s), resumed with {world_size}; each "
            f"rank's running episodes and memory continue only on a rank of the same place. "
            f"Fix: resume with {saved} rank(s): {launch(saved)} --resume ... (on several "
            f"machines: {saved} ranks in all).")
