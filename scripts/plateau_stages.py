"""When MiniGrid-Memory runs leave the walk-and-guess plateau, read from their own TensorBoard
statistics: a table (markdown on stdout and a CSV) and one PNG with a panel per statistic.

    python scripts/plateau_stages.py minigrid_small_entropy_seed0 ... \
        --out results/minigrid_memory/plateau_stages.png

On the plateau a run walks straight to the end of the hallway and guesses: success ~0.5, the
cue in view only in the episodes that start beside it (cue_seen ~1/6), and a value function
that cannot tell a win from a loss (explained variance ~0). Each run is scored on the trailing
mean of SMOOTH updates of three scalars. Early on a run walks at random and often has the
cue in view; it is on the plateau from the first step at which cue_seen falls to 0.3 or
below (it has stopped looking). After that, the first step at which it reaches each mark:

    uses the cue    value/explained_variance >= 0.15: the value predicts the outcome, which it
                    can do only in episodes whose memory carries the cue to the choice
    looks           episode/cue_seen >= 0.5: the agent turns round to find the cue
    solved          episode/success >= 0.9

Beside the marks, the mean policy entropy and value loss over the plateau (from reaching it
to using the cue, or to the end), to compare stuck and solved runs. These are training
episodes, not held-out seeds; scripts/minigrid_study.sh scores those.
"""
from __future__ import annotations

import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from training_curve import runs_parser, scalars, smooth  # noqa: E402

SMOOTH = 10
MARKS = {"uses the cue": ("value/explained_variance", 0.15),
         "looks": ("episode/cue_seen", 0.5),
         "solved": ("episode/success", 0.9)}
PLATEAU = ("episode/cue_seen", 0.3)
ON_PLATEAU = {"entropy on it": "loss/entropy", "value loss on it": "loss/value"}
PANELS = ("episode/success", "episode/cue_seen", "value/explained_variance", *ON_PLATEAU.values())


def first_step(points: list[tuple[int, float]], threshold: float, after: int = -1,
               below: bool = False) -> int | None:
    """The first step after `after` whose trailing mean of SMOOTH updates reaches threshold
    (falls to it when below); None if none does."""
    steps = [step for step, _ in points]
    means = smooth([value for _, value in points], SMOOTH)
    return next((step for step, mean in zip(steps, means)
                 if step > after and (mean <= threshold if below else mean >= threshold)), None)


def stages(curves: dict[str, list[tuple[int, float]]]) -> dict[str, int | None]:
    """The step the run reached the plateau and each mark's first step after it, from one
    run's curves keyed by tag (every mark None when it never reached the plateau)."""
    plateau = first_step(curves[PLATEAU[0]], PLATEAU[1], below=True)
    marks = {mark: None if plateau is None else first_step(curves[tag], threshold, plateau)
             for mark, (tag, threshold) in MARKS.items()}
    return {"plateau": plateau, **marks}


def plateau_means(curves: dict[str, list[tuple[int, float]]],
                  marks: dict[str, int | None]) -> dict[str, float | None]:
    """The mean of each ON_PLATEAU scalar from reaching the plateau to using the cue (or to
    the end); None when the run never reached the plateau."""
    start, end = marks["plateau"], marks["uses the cue"]
    if start is None:
        return dict.fromkeys(ON_PLATEAU)
    means = {}
    for name, tag in ON_PLATEAU.items():
        values = [v for step, v in curves[tag] if step >= start and (end is None or step < end)]
        means[name] = sum(values) / len(values)
    return means


def steps_text(step: int | None, last: int) -> str:
    return f"{step / 1e6:.2f}M" if step is not None else f"not by {last / 1e6:.2f}M"


def plot(runs: dict[str, dict[str, list[tuple[int, float]]]], out: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(7, 2.2 * len(PANELS)), sharex=True)
    for ax, tag in zip(axes, PANELS):
        for run, curves in runs.items():
            steps, values = zip(*curves[tag])
            ax.plot(steps, smooth(list(values), SMOOTH), label=run, linewidth=1.2)
        ax.set_ylabel("value loss" if tag == "loss/value" else tag.split("/")[-1])
        if tag == "value/explained_variance":
            ax.set_ylim(-0.2, 1.0)   # the first updates' large negative values hide the rest
        ax.grid(alpha=0.3)
    axes[0].set_title(f"training episodes, trailing mean of {SMOOTH} updates")
    axes[0].legend(fontsize=7)
    axes[-1].set_xlabel("environment steps")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = runs_parser(__doc__)
    args = parser.parse_args(argv)
    try:
        runs = {run: {tag: scalars(run, args.summaries, tag) for tag in PANELS}
                for run in args.runs}
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    header = ["run", "steps", "plateau", *MARKS, *ON_PLATEAU]
    rows = []
    for run, curves in runs.items():
        marks = stages(curves)
        rows.append({"run": run, "steps": curves["episode/success"][-1][0], **marks,
                     **plateau_means(curves, marks)})
    # The CSV holds steps (empty: not reached); the table on stdout says it in millions.
    with open(os.path.splitext(args.out)[0] + ".csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        cells = [row["run"], f"{row['steps'] / 1e6:.2f}M",
                 *(steps_text(row[key], row["steps"]) for key in ["plateau", *MARKS]),
                 *("" if row[key] is None else f"{row[key]:.3f}" for key in ON_PLATEAU)]
        print("| " + " | ".join(cells) + " |")
    plot(runs, args.out)
    print(f"wrote {args.out} and its .csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
