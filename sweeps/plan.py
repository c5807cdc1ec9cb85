"""What is left to do: a run id names its trial, so a finished run (trained to its point's
updates and evaluated since) is skipped; a saved run is checked against its point's config
before anything is written, so that a finished run is never taken for another config."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

from preflight.refusal import RefusedInput
from sweeps.grid import Point
from sweeps.layout import Layout

# Settings that change where and how fast a run trains, not what it learns: an existing run
# may differ from its point's config in these (a longer `updates` extends it).
RUNTIME_KEYS = ("updates", "device", "env_processes", "torch_threads")


@dataclass(frozen=True)
class Trial:
    run: str
    point: str
    seed: int
    updates: int
    train: bool        # False: trained already, only its evaluation is missing or stale


def lookup(tree: dict, dotted: str) -> Any:
    """The value at a dotted key of a config dict; None where it has none."""
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for key in sorted(set(a) | set(b), key=str)
                for d in differences(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".")]


def saved_update(path: str, expected) -> int:
    """The update a saved run reached; RefusedInput when it is not this sweep's run."""
    from runs.checkpoint import load_model_file
    try:
        payload, saved = load_model_file(path)
    except ValueError as e:           # a ConfigError of its embedded config among them
        raise RefusedInput(f"{e} Fix: delete it to train that run again.") from None
    mine, theirs = saved.to_dict(), expected.to_dict()
    for key in RUNTIME_KEYS:
        del mine[key]
        del theirs[key]
    changed = differences(mine, theirs)
    if changed:
        was, now = lookup(mine, changed[0]), lookup(theirs, changed[0])
        raise RefusedInput(f"{path} was trained with {changed[0]} = {was!r}, this sweep "
                           f"asks for {now!r} ({len(changed)} setting(s) differ). Run ids name "
                           f"the trials, so a finished run would be taken for another config. "
                           f"Fix: pass another --name, or delete that file.")
    return int(payload["update"])


def is_evaluated(layout: Layout, run: str) -> bool:
    scores, model = layout.scores(run), layout.model(run)
    return os.path.isfile(scores) and os.path.getmtime(scores) >= os.path.getmtime(model)


def plan_trial(layout: Layout, run: str, point: Point, seed: int, config) -> Optional[Trial]:
    """The trial still to run for this run id, or None when it is finished."""
    expected = dataclasses.replace(config, seed=seed)
    path = layout.model(run)
    trained = os.path.isfile(path) and saved_update(path, expected) >= config.updates
    if trained and is_evaluated(layout, run):
        return None
    return Trial(run, point.label, seed, config.updates, train=not trained)


class SweepRun(NamedTuple):
    """One run of the sweep: its id (POINT_seedN), grid point and training seed."""
    run: str
    point: Point
    seed: int


def sweep_runs(points: list[Point], seeds: list[int]) -> list[SweepRun]:
    return [SweepRun(f"{point.label}_seed{seed}", point, seed)
            for point in points for seed in seeds]
