"""Per-task final scores of an aggregation, as a markdown table (algorithm x task).

    python scripts/per_task.py results/popgym --min-score RepeatPreviousEasy=-1 ... --max-score 1

Reads aggregate.py's run_scores.csv, takes each run's latest checkpoint, normalises it to
(score - min) / (max - min) of its task as aggregate.py does, and prints the mean over the runs
of each algorithm on each task with the number of runs: the per-task view that the aggregate
IQM (over runs and tasks together) does not show.
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv=None) -> int:
    import evaluation as ev
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="an aggregate.py --out folder with run_scores.csv")
    parser.add_argument("--max-score", nargs="+", default=[], metavar="VALUE|TASK=VALUE")
    parser.add_argument("--min-score", nargs="+", default=[], metavar="VALUE|TASK=VALUE")
    parser.add_argument("--metric", default="return")
    args = parser.parse_args(argv)
    try:
        table = ev.read_run_scores(os.path.join(args.folder, "run_scores.csv"), args.metric)
        tasks = sorted(table["task"].unique())
        finals, normalised = ev.normalise(ev.final_scores(table),
                                          ev.parse_max_scores(args.max_score, tasks),
                                          ev.parse_min_scores(args.min_score, tasks))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not normalised:
        print("note: no max score: raw scores", file=sys.stderr)
    means = finals.groupby(["algorithm", "task"])["score"].agg(["mean", "count"])
    print("| algorithm | " + " | ".join(tasks) + " |")
    print("|---|" + "---|" * len(tasks))
    for algorithm in sorted(finals["algorithm"].unique()):
        cells = [f"{means.loc[(algorithm, t), 'mean']:.3f} ({means.loc[(algorithm, t), 'count']})"
                 if (algorithm, t) in means.index else "–" for t in tasks]
        print(f"| {algorithm} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
