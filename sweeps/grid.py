"""The grid: --grid axes (dotted config keys and their values), every combination of them as
a point that names its runs, and each point's checked config."""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import re
from dataclasses import dataclass
from typing import Any

from preflight.overrides import Setting, load_with, parse_values, value_text
from preflight.refusal import RefusedInput
from sweeps.layout import Layout

# Run names keep to these characters; not "=", which aggregate.py --rename splits on.
UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass(frozen=True)
class GridAxis:
    """One --grid entry: a dotted config key and the values it takes."""
    key: str
    values: tuple


@dataclass(frozen=True)
class Point:
    """One combination of grid values; `label` names its runs (LABEL_seedN)."""
    label: str
    settings: tuple[Setting, ...]           # every --grid key and its value here
    algorithm: str                          # the label without environment keys (rliable)


def parse_grid_entry(text: str) -> GridAxis:
    """argparse type of --grid: `KEY=V1,V2,...`, the values YAML (true, 3, 1.0e-3, null, gru)."""
    key, values = parse_values(text)
    if key == "seed":
        raise argparse.ArgumentTypeError(f"{text!r}: give the seeds with --seeds, e.g. 0-4")
    return GridAxis(key, values)


def name_text(value: Any) -> str:
    """A grid value as it reads in YAML, made safe for a file name."""
    return UNSAFE_NAME_CHARS.sub("_", value_text(value))


def key_names(keys: list[str]) -> dict[str, str]:
    """Each key as it appears in run names: its last part when that is unambiguous."""
    leaves = [key.rsplit(".", 1)[-1] for key in keys]
    unique = len(set(leaves)) == len(leaves)
    return {key: leaf if unique else key for key, leaf in zip(keys, leaves)}


def label(settings: dict[str, Any], names: dict[str, str], fallback: str) -> str:
    parts = [f"{names[key]}-{name_text(value)}" for key, value in settings.items()
             if key in names]
    return "_".join(parts) or fallback


def grid_points(axes: list[GridAxis], sweep: str) -> list[Point]:
    """Every combination of the axes' values. Keys with several values name the runs; the
    environment keys stay out of the algorithm name, so that rliable sees one algorithm on
    several tasks."""
    varying = [axis.key for axis in axes if len(axis.values) > 1]
    names = key_names(varying)
    methods = {key: name for key, name in names.items() if not key.startswith("environment.")}
    points = []
    for values in itertools.product(*(axis.values for axis in axes)):
        settings = dict(zip((axis.key for axis in axes), values))
        points.append(Point(label(settings, names, sweep),
                            tuple(Setting(key, value) for key, value in settings.items()),
                            label(settings, methods, sweep)))
    labels = [p.label for p in points]
    if len(set(labels)) != len(labels):
        raise RefusedInput(f"--grid: two grid points get the same run name "
                           f"({sorted(x for x in labels if labels.count(x) > 1)[0]}) once their "
                           f"values are made file-name safe. Fix: use values that differ in "
                           f"letters or digits.")
    return points


def point_config(path: str, point: Point, cpus: int, gpus: float):
    """The validated config of a grid point; RefusedInput naming the --grid value otherwise."""
    config = load_with(path, point.settings, "--grid")
    if config.device == "cuda" and gpus == 0:
        where = ", ".join(setting.text for setting in point.settings) or "the config"
        raise RefusedInput(f"--gpus-per-run 0, but {where} trains on device cuda. Fix: "
                           f"pass --gpus-per-run 1 (or 0.5 to share a GPU), or use device auto.")
    if config.env_processes is None:
        # Otherwise every trial on a node would start one process per core of the node.
        config = dataclasses.replace(config, env_processes=min(config.n_workers, cpus))
    return config


def write_point_configs(configs: dict, layout: Layout) -> None:
    """Each point's config to models/SWEEP/configs/LABEL.yaml, which train.py reads."""
    import yaml

    from runs.atomic import atomic_write
    for name, config in configs.items():
        with atomic_write(layout.point_config(name), "w", encoding="utf-8") as f:
            yaml.safe_dump(config.to_dict(), f, sort_keys=False)
