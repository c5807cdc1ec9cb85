"""A score broken down by a column of evaluate.py's score files, per run and checkpoint.

    python scripts/breakdown.py models/minigrid_seed2/scores.csv --by start_column \
        --metric success --out results/minigrid_memory/by_start_column

Why: a MiniGrid-MemoryS9 agent that walks straight to the choice without turning
round sees the cue only when it starts in column 1, so its success should be ~1 there and
~0.5 elsewhere (0.58 overall); an agent that looks first succeeds from every column. The
breakdown measures that instead of reading it off the training curve. Any numeric column
works, e.g. a Memory Gym metric.

Prints each run's latest checkpoint (score, +- standard error, episodes per value) and, with
--out, writes breakdown.csv (every checkpoint) and breakdown.png (the score against steps, a
line per value, a panel per run).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import evaluation  # noqa: E402


def latest_lines(table, by: str) -> list[str]:
    """The printed table: each run's latest checkpoint, one line per value of `by`."""
    lines = []
    for run, rows in table.groupby("run", sort=True):
        latest = rows[rows["steps"] == rows["steps"].max()]
        lines.append(f"{run}, {latest['checkpoint'].iloc[0]} ({latest['steps'].iloc[0]:,} "
                     f"steps):")
        lines += [f"  {by} {row[by]:g}: {row['score']:.3f} +- {row['standard_error']:.3f} "
                  f"({row['episodes']} episodes)" for _, row in latest.iterrows()]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scores", nargs="+", metavar="SCORES_CSV",
                        help="score files written by evaluate.py (models/RUN/scores.csv)")
    parser.add_argument("--by", required=True,
                        help="the column to break down by, e.g. start_column (MiniGrid)")
    parser.add_argument("--metric", default="success",
                        help="the score: return, length, success or an environment metric "
                             "(default: %(default)s)")
    parser.add_argument("--out", help="folder for breakdown.csv and breakdown.png")
    args = parser.parse_args(argv)
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out}: exists and is not a folder")
    try:
        table = evaluation.breakdown(evaluation.load_scores(args.scores), args.metric, args.by)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(latest_lines(table, args.by)))
    if args.out:
        import matplotlib
        matplotlib.use("Agg")
        os.makedirs(args.out, exist_ok=True)
        table.to_csv(os.path.join(args.out, "breakdown.csv"), index=False)
        figure = evaluation.plot_breakdown(table, args.metric, args.by)
        figure.savefig(os.path.join(args.out, "breakdown.png"), dpi=120, bbox_inches="tight")
        print(f"wrote {args.out}/breakdown.csv and breakdown.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
