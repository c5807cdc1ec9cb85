"""A run's training curve from its TensorBoard summaries: the mean of a per-update scalar
(by default the return of the episodes that ended in the update) against environment steps,
smoothed over a few updates, as a PNG with the raw values as a CSV beside it (summaries/ is
not committed; the CSV keeps the curve).

    python scripts/training_curve.py RUN [RUN ...] --out results/craftax_classic/training_curve.png

Every log folder of a run counts (a resumed run continues its folder; runs written by older
checkouts, or folders gathered from several machines, can have more than one); where two cover
the same step, the later folder's value is kept. Training returns are not held-out scores: the
plot says so in its title.
"""
from __future__ import annotations

import argparse
import csv
import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def scalars(run: str, summaries: str, tag: str) -> list[tuple[int, float]]:
    """(step, value) of `tag` over every log folder of `run`, sorted by step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    folders = sorted(glob.glob(os.path.join(summaries, run, "*")))
    if not folders:
        raise ValueError(f"no TensorBoard folder for run {run!r} under {summaries}/. Fix: "
                         f"name a run trained with this checkout, or pass --summaries.")
    by_step: dict[int, float] = {}
    for folder in folders:
        events = EventAccumulator(folder, size_guidance={"scalars": 0}).Reload()
        if tag in events.Tags()["scalars"]:
            by_step.update({e.step: e.value for e in events.Scalars(tag)})
    if not by_step:
        raise ValueError(f"run {run!r} logged no {tag!r}. Fix: pass --tag with one of its "
                         f"scalars (tensorboard --logdir {summaries}/{run} lists them).")
    return sorted(by_step.items())


def runs_parser(doc: str) -> argparse.ArgumentParser:
    """The arguments every script over runs' summaries takes: RUN..., --out, --summaries."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN")
    parser.add_argument("--out", required=True, help="the PNG to write (a .csv goes beside it)")
    parser.add_argument("--summaries", default=os.path.join(ROOT, "summaries"))
    return parser


def smooth(values: list[float], window: int) -> list[float]:
    """The trailing mean over `window` updates (fewer at the start)."""
    return [sum(values[max(0, i - window + 1):i + 1]) / (i + 1 - max(0, i - window + 1))
            for i in range(len(values))]


def main(argv: list[str] | None = None) -> int:
    parser = runs_parser(__doc__)
    parser.add_argument("--tag", default="episode/return")
    parser.add_argument("--smooth", type=int, default=5, help="updates in the trailing mean")
    args = parser.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    try:
        curves = {run: scalars(run, args.summaries, args.tag) for run in args.runs}
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(os.path.splitext(args.out)[0] + ".csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "step", args.tag])
        writer.writerows((run, step, value) for run, points in curves.items()
                         for step, value in points)
    fig, ax = plt.subplots(figsize=(6, 4))
    for run, points in curves.items():
        steps, values = zip(*points)
        ax.plot(steps, smooth(list(values), args.smooth), label=run)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(f"{args.tag} (trailing mean of {args.smooth} updates)")
    ax.set_title("training episodes (not held-out seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out} and its .csv ({sum(len(p) for p in curves.values())} points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
