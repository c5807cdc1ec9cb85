"""Draw the compute-floor experiments from the log of benchmarks/compute_floor.sh.

    python benchmarks/plot_compute_floor.py benchmarks/logs/compute_floor_2026-12-03.log \
        results/performance/compute_floor.png

Left: the compute floor per update under each compile_update x update_precision pair, per
config (throughput.py's "floor variant" lines). Right: the model FLOPs utilisation of the
eager float32 update and of the compiled bfloat16 one, each against the measured GEMM peak
of its precision and against the specified float32 peak.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, field

VARIANT = re.compile(r"floor variant\s+compile_update (True|False)\s+(\w+)\s+([\d.]+) s per")
RATE = re.compile(r"compute floor FLOP/s\s+([\d.]+) GFLOP/s = ([\d.]+)% of the measured (\w+)")
SPEC = re.compile(r"compute floor vs spec peak\s+([\d.]+)%")
HEADER = re.compile(r"^== (\w+) ")


@dataclass
class ConfigFigures:
    floors: dict[str, float] = field(default_factory=dict)      # variant label -> s / update
    mfu: dict[str, tuple[float, float]] = field(default_factory=dict)  # label -> (% own, % spec)


def parse(text: str) -> dict[str, ConfigFigures]:
    """The figures of each config in a compute_floor.sh log, in the order they ran."""
    figures: dict[str, ConfigFigures] = {}
    current, rate = None, None
    for line in text.splitlines():
        if (match := HEADER.match(line)) and match.group(1) != "done":
            current = figures.setdefault(match.group(1), ConfigFigures())
        elif (match := VARIANT.search(line)) and current is not None:
            compiled = "compiled" if match.group(1) == "True" else "eager"
            current.floors[f"{compiled} {match.group(2)}"] = float(match.group(3))
        elif (match := RATE.search(line)) and current is not None:
            rate = (match.group(3), float(match.group(2)))
        elif (match := SPEC.search(line)) and current is not None and rate is not None:
            label = "eager float32" if rate[0] == "float32" else "compiled bfloat16"
            current.mfu[label] = (rate[1], float(match.group(1)))
    return figures


def plot(figures: dict[str, ConfigFigures], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (floor_ax, mfu_ax) = plt.subplots(1, 2, figsize=(11, 4))
    configs = list(figures)
    variants = list(next(iter(figures.values())).floors)
    width = 0.8 / len(variants)
    for i, variant in enumerate(variants):
        floor_ax.bar([c + i * width for c in range(len(configs))],
                     [figures[name].floors[variant] for name in configs], width, label=variant)
    floor_ax.set_xticks([c + width * (len(variants) - 1) / 2 for c in range(len(configs))],
                        configs)
    floor_ax.set_ylabel("compute floor (s per update)")
    floor_ax.legend(fontsize=8)
    labels = [(name, label) for name in configs for label in figures[name].mfu]
    own = [figures[name].mfu[label][0] for name, label in labels]
    spec = [figures[name].mfu[label][1] for name, label in labels]
    x = range(len(labels))
    mfu_ax.bar([i - 0.2 for i in x], own, 0.4, label="of its precision's measured GEMM peak")
    mfu_ax.bar([i + 0.2 for i in x], spec, 0.4, label="of the specified float32 peak")
    mfu_ax.set_xticks(list(x), [f"{name}\n{label}" for name, label in labels], fontsize=7)
    mfu_ax.set_ylabel("model FLOPs utilisation (%)")
    mfu_ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log")
    parser.add_argument("output")
    args = parser.parse_args(argv)
    with open(args.log) as f:
        figures = parse(f.read())
    if not figures or not all(f.floors and f.mfu for f in figures.values()):
        parser.error(f"{args.log}: no complete compute_floor.sh figures found")
    plot(figures, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
