"""Aggregate evaluate.py's score files with rliable, over training seeds.

    python aggregate.py models/pom_seed*/scores.csv --out results/proof_of_memory
    python aggregate.py models/*/scores.csv --metric success --compare pom pom_nomem
    python aggregate.py models/minigrid*/scores.csv --metric success \
        --earlier results/minigrid_memory/run_scores.csv --out results/minigrid_memory

Runs are grouped into algorithms by name (RUN_seedN -> RUN; --rename merges or renames
groups). Each run scores the mean of --metric over its latest checkpoint's episodes, divided by
the metric's max score when known (success: 1; proof-of-memory return: 1; else --max-score).

Prints IQM, median, mean and optimality gap with stratified bootstrap confidence intervals,
and writes into --out: table.csv, table.md, run_scores.csv, aggregate.png,
performance_profile.png, sample_efficiency.png (when runs were evaluated at two step counts
or more, i.e. trained with checkpoint_interval and evaluated by run name), and with --compare
probability_of_improvement.png and improvement.csv.

run_scores.csv holds each evaluated checkpoint's score: --earlier adds the runs of an earlier
aggregation whose score files are gone, so seeds trained in different sessions aggregate as one.
"""
from __future__ import annotations

import preflight.process_setup  # noqa: F401  (the entry-point convention; no torch here)

import argparse
import os
import sys
import time

DEFAULT_OUT = "results"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scores", nargs="*", metavar="SCORES_CSV",
                        help="score files written by evaluate.py (models/RUN/scores.csv)")
    parser.add_argument("--earlier", action="append", default=[], metavar="RUN_SCORES_CSV",
                        help="an earlier aggregation's run_scores.csv (repeatable): its runs "
                             "join the score files' runs, so seeds trained in another session "
                             "need not be evaluated again; a run in both is taken from the "
                             "score files")
    parser.add_argument("--metric", default="return",
                        help="return, length, success or an environment metric such as "
                             "commands_completed (default: %(default)s)")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help="folder for the tables and plots (default: %(default)s)")
    parser.add_argument("--compare", nargs=2, action="append", metavar=("X", "Y"), default=[],
                        help="probability that algorithm X improves on Y (repeatable)")
    parser.add_argument("--max-score", nargs="+", default=[], metavar="VALUE|TASK=VALUE",
                        help="the metric's best score, for every task or per task: scores are "
                             "divided by it and the optimality gap is measured to it")
    parser.add_argument("--min-score", nargs="+", default=[], metavar="VALUE|TASK=VALUE",
                        help="the metric's worst score, for every task or per task (default 0): "
                             "with --max-score, scores become (score - min) / (max - min), as "
                             "POPGym normalises returns in [-1, 1]")
    parser.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                        help="call algorithm OLD (a run name without _seedN) NEW; give two "
                             "groups one NEW name to aggregate them as one (repeatable)")
    parser.add_argument("--complete-only", action="store_true",
                        help="leave out of the statistics (not out of run_scores.csv) the "
                             "training seeds an algorithm lacks on some task, and the --compare "
                             "pairs that name an algorithm without runs left, instead of "
                             "refusing: for a table whose cells are still training")
    parser.add_argument("--reps", type=int, default=10_000,
                        help="bootstrap resamples for the table and the sample-efficiency "
                             "curves (default: %(default)s)")
    parser.add_argument("--profile-reps", type=int, default=2_000,
                        help="bootstrap resamples for the performance profile and the "
                             "probability of improvement, ~100x dearer each (default: "
                             "%(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    args = parser.parse_args(argv)
    if not args.scores and not args.earlier:
        parser.error("no scores: pass the score files evaluate.py wrote (models/*/scores.csv), "
                     "--earlier results/TASK/run_scores.csv, or both")
    for flag, reps in (("--reps", args.reps), ("--profile-reps", args.profile_reps)):
        if reps < 100:
            parser.error(f"{flag} {reps}: use at least 100 resamples (rliable uses 2,000 "
                         f"to 50,000)")
    for rename in args.rename:
        old, sep, new = rename.partition("=")
        if not (sep and old and new):
            parser.error(f"--rename {rename!r}: expected OLD=NEW, e.g. pom_gtrxl=GTrXL")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out}: exists and is not a folder")
    return args


def algorithm_namer(renames: list[str]):
    from evaluation import algorithm_of
    table = dict(rename.split("=", 1) for rename in renames)

    def name(run: str) -> str:
        group = algorithm_of(run)
        return table.get(group, group)
    return name


def save(fig, path: str, written: list[str]) -> None:
    import matplotlib.pyplot as plt
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    written.append(path)


def warn_uneven_steps(finals) -> None:
    """Final scores of runs trained for different lengths are not comparable as one sample."""
    for algorithm, rows in finals.groupby("algorithm"):
        low, high = rows["steps"].min(), rows["steps"].max()
        if low != high:
            print(f"note: the latest checkpoints of {algorithm}'s runs lie between {low:,} and "
                  f"{high:,} steps; see run_scores.csv", file=sys.stderr)


def complete_algorithms(table, pairs: list) -> tuple:
    """`table` with only the runs of training seeds that an algorithm has on every task
    (rliable needs every run on every task), and the pairs whose algorithms both remain."""
    import evaluation as ev
    finals = ev.final_scores(table)
    tasks = finals["task"].nunique()
    covered = finals.groupby(["algorithm", "seed_of_run"])["task"].nunique()
    full = set(covered[covered == tasks].index)
    keep = [(a, s) in full for a, s in zip(table["algorithm"], table["seed_of_run"])]
    kept = table[keep]
    for algorithm in sorted(set(table["algorithm"])):
        left = sorted(s for a, s in set(covered.index) - full if a == algorithm)
        if left:
            print(f"note: {algorithm}'s seed(s) {left} lack a task; left out of the statistics, "
                  f"kept in run_scores.csv", file=sys.stderr)
    names = set(kept["algorithm"])
    return kept, [p for p in pairs if set(p) <= names]


def stage(text: str) -> float:
    print(text, flush=True)
    return time.time()


def run_table(args: argparse.Namespace):
    """One row per evaluated checkpoint, of the score files' runs and the earlier ones."""
    import evaluation as ev
    namer = algorithm_namer(args.rename)
    table = None
    if args.scores:
        frame = ev.load_scores(args.scores)
        table = ev.run_scores(frame, args.metric, namer)
        print(f"read {len(frame):,} episodes from {len(args.scores)} score file(s)")
    for path in args.earlier:
        earlier = ev.read_run_scores(path, args.metric)
        table = ev.merge_earlier(table, earlier, namer)
        print(f"read {earlier['run'].nunique()} earlier runs from {path}")
    return table


def aggregate(args: argparse.Namespace) -> list[str]:
    """Everything the command writes; returns the paths written."""
    import pandas as pd

    import evaluation as ev
    table = everything = run_table(args)
    if args.complete_only:
        table, args.compare = complete_algorithms(table, args.compare)
    finals = ev.final_scores(table)
    tasks = sorted(table["task"].unique())
    print(f"{table['run'].nunique()} runs ({table['algorithm'].nunique()} algorithm(s), "
          f"{len(table)} checkpoints) on {len(tasks)} task(s)", flush=True)
    warn_uneven_steps(finals)
    max_scores = (ev.parse_max_scores(args.max_score, tasks) if args.max_score
                  else ev.known_max_scores(args.metric, tasks))
    min_scores = ev.parse_min_scores(args.min_score, tasks)
    matrices = ev.score_matrices(finals, args.metric, max_scores, min_scores)
    if not matrices.normalised:
        print(f"note: no max score for {args.metric} on {tasks[0]}: raw scores, no optimality "
              f"gap. Pass --max-score VALUE for them.", file=sys.stderr)
    ev.check_pairs(matrices, args.compare)       # before minutes of bootstrapping
    colors = ev.algorithm_colors(matrices.algorithms)
    os.makedirs(args.out, exist_ok=True)
    written: list[str] = []

    start = stage(f"bootstrapping the aggregates ({args.reps:,} resamples)...")
    estimates = ev.aggregate_estimates(matrices, args.reps, args.seed)
    print(f"({time.time() - start:.1f} s)\n\n{ev.table_text(estimates)}\n", flush=True)
    for name, text in (("table.csv", ev.table_frame(estimates).to_csv(index=False)),
                       ("table.md", ev.table_markdown(estimates) + "\n"),
                       ("run_scores.csv", everything.to_csv(index=False))):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            f.write(text)
        written.append(os.path.join(args.out, name))
    save(ev.plot_aggregates(estimates, colors), os.path.join(args.out, "aggregate.png"), written)

    stage(f"bootstrapping the performance profile ({args.profile_reps:,} resamples)...")
    profile = ev.performance_profile(matrices, args.profile_reps, args.seed)
    save(ev.plot_performance_profile(profile, colors),
         os.path.join(args.out, "performance_profile.png"), written)

    stage(f"bootstrapping the sample-efficiency curves ({args.reps:,} resamples)...")
    curves = ev.sample_efficiency(table, args.metric, max_scores, args.reps, args.seed,
                                  min_scores)
    if curves is None:
        print("note: no sample-efficiency curve: no algorithm's runs were evaluated at two step "
              "counts or more. Train with checkpoint_interval > 0 and evaluate the run names "
              "(evaluate.py RUN), not only the final .nn files.", file=sys.stderr)
    else:
        save(ev.plot_sample_efficiency(curves, colors),
             os.path.join(args.out, "sample_efficiency.png"), written)

    if args.compare:
        stage(f"bootstrapping the probabilities of improvement ({args.profile_reps:,} "
              f"resamples)...")
        improvements = ev.probability_of_improvement(matrices, args.compare, args.profile_reps,
                                                     args.seed)
        for i in improvements:
            print(f"P({i.x} > {i.y}) = {i.estimate}")
        pd.DataFrame([{"x": i.x, "y": i.y, "probability": i.estimate.point,
                       "low": i.estimate.low, "high": i.estimate.high} for i in improvements]
                     ).to_csv(os.path.join(args.out, "improvement.csv"), index=False)
        written.append(os.path.join(args.out, "improvement.csv"))
        save(ev.plot_probability_of_improvement(improvements),
             os.path.join(args.out, "probability_of_improvement.png"), written)
    return written


def main(argv=None) -> int:
    args = parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")      # files only: no window, also without a display
    from preflight.outputs import check_writable_file
    from preflight.refusal import EXIT_REFUSED, error_line
    try:
        check_writable_file(os.path.join(args.out, "run_scores.csv"), "--out")
        written = aggregate(args)
    except ValueError as e:
        print(error_line(e), file=sys.stderr)
        return EXIT_REFUSED
    except OSError as e:       # the disk filled up or turned read-only while writing
        where = f" ({e.filename})" if e.filename else ""
        print(error_line(f"writing the results failed: {e.strerror or e}{where}. Fix: free "
                         f"space or choose a writable --out, then aggregate again."),
              file=sys.stderr)
        return 1
    print("wrote " + ", ".join(written), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
