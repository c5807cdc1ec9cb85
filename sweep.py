"""Train seeds x configurations as Ray tasks, on this machine or on a Ray cluster, then
evaluate every run and aggregate the sweep with rliable.

    python sweep.py --config configs/proof_of_memory.yaml --seeds 0-4
    python sweep.py --config configs/proof_of_memory.yaml --seeds 0-4 \\
        --grid transformer.gtrxl=true,false transformer.memory_length=8,16
    python sweep.py --config configs/X.yaml --seeds 0,2,5 --address auto \\
        --cpus-per-run 4 --gpus-per-run 0.5

A trial is one grid point and one seed: `train.py` (resuming from the run's last checkpoint
when it has one), then `evaluate.py` on the run. Run ids are POINT_seedN, POINT being the
grid values (`gtrxl-true`), or the sweep name without a grid, so aggregate.py groups the seeds
of a point. A --grid key with a single value sets it for every trial and names no run.

Files: models/SWEEP/RUN.nn, models/SWEEP/RUN/update_*.nn and scores.csv (as train.py and
evaluate.py write them), models/SWEEP/configs/POINT.yaml (each point's config),
models/SWEEP/logs/RUN.log (the trial's console output), summaries/SWEEP/RUN/<timestamp>/
(`tensorboard --logdir summaries/SWEEP`), results/SWEEP/ (aggregate.py's tables and plots).

Starting the same sweep again skips the finished trials and resumes the others. A trial whose
process or node dies is retried (--max-retries) from its last checkpoint: set
checkpoint_interval in the config, or it starts over.
"""
from __future__ import annotations

import preflight.process_setup  # noqa: F401  (before torch)

import argparse
import math
import os
import re
import sys

from preflight.overrides import repeated_key
from preflight.refusal import EXIT_REFUSED, RefusedInput, error_line
from sweeps.grid import (UNSAFE_NAME_CHARS, Point, grid_points, parse_grid_entry, point_config,
                         write_point_configs)
from sweeps.layout import Layout
from sweeps.lock import sweep_lock
from sweeps.plan import plan_trial, sweep_runs
from sweeps.progress import PROGRESS_SECONDS, Progress
from sweeps.trial import INTERRUPTED

ROOT = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def parse_seeds(text: str) -> list[int]:
    """`0-4` or `0,2,5` (or both: `0-2,7`) -> distinct non-negative seeds, in order."""
    seeds: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected seeds like 0-4 or 0,2,5 (non-negative integers)")
        low, high = int(match[1]), int(match[2] or match[1])
        if high < low:
            raise argparse.ArgumentTypeError(f"{text!r}: the range {part.strip()} is empty; "
                                             f"write it low-high, e.g. {high}-{low}")
        seeds += range(low, high + 1)
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: a seed is given twice")
    return seeds


def plain_name(flag: str, name: str, parser: argparse.ArgumentParser) -> None:
    if not name or name.startswith(".") or UNSAFE_NAME_CHARS.search(name):
        parser.error(f"{flag} {name!r}: must be a plain name (letters, digits, . _ + -)")


def check_resources(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.cpus_per_run < 1:
        parser.error(f"--cpus-per-run {args.cpus_per_run}: must be at least 1")
    gpus = args.gpus_per_run
    if not math.isfinite(gpus) or gpus < 0 or (gpus > 1 and not gpus.is_integer()):
        parser.error(f"--gpus-per-run {gpus}: must be a fraction of one GPU (e.g. 0.5, to "
                     f"share one) or a whole number of GPUs")
    if args.max_retries < 0:
        parser.error(f"--max-retries {args.max_retries}: must be 0 or more")
    if args.reps is not None and args.reps < 100:
        parser.error(f"--reps {args.reps}: use at least 100 bootstrap resamples")
    if args.progress_seconds <= 0:
        parser.error(f"--progress-seconds {args.progress_seconds}: must be positive")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the YAML config every trial starts from")
    parser.add_argument("--seeds", type=parse_seeds, required=True,
                        help="training seeds of every grid point: 0-4 or 0,2,5")
    parser.add_argument("--grid", type=parse_grid_entry, nargs="+", default=[],
                        metavar="KEY=V1,V2", help="config values to cross, e.g. "
                        "transformer.gtrxl=true,false transformer.memory_length=8,16")
    parser.add_argument("--address", help="join this Ray cluster (auto, or HOST:PORT of the "
                                          "head node); default: start Ray on this machine")
    parser.add_argument("--cpus-per-run", type=int, default=1,
                        help="CPU cores Ray reserves for each trial; also its environment "
                             "processes when the config leaves env_processes null "
                             "(default: %(default)s)")
    parser.add_argument("--gpus-per-run", type=float, default=0.0,
                        help="GPUs Ray reserves for each trial: 0.5 puts two trials on one "
                             "GPU; 0 hides the GPUs from the trials (default: %(default)s)")
    parser.add_argument("--name", help="the sweep's name: models/NAME/, summaries/NAME/, "
                                       "results/NAME/ (default: the config file's name)")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--summaries-dir", default="summaries")
    parser.add_argument("--results-dir", default="results",
                        help="aggregate.py's tables and plots go to RESULTS_DIR/NAME/")
    parser.add_argument("--max-retries", type=int, default=3,
                        help="how often a trial whose process or node died is started again, "
                             "from its last checkpoint (default: %(default)s)")
    parser.add_argument("--metric", default="return",
                        help="what the progress line and aggregate.py rank by: return, "
                             "success, ... (default: %(default)s)")
    parser.add_argument("--max-score", nargs="+", default=[], metavar="VALUE|TASK=VALUE",
                        help="the metric's best possible value per task, for normalised "
                             "scores (passed to aggregate.py; e.g. CartPole-v1=500)")
    parser.add_argument("--reps", type=int,
                        help="bootstrap resamples of aggregate.py (default: its own)")
    parser.add_argument("--progress-seconds", type=float, default=PROGRESS_SECONDS,
                        help="seconds between progress lines (default: %(default)s)")
    args = parser.parse_args(argv)
    flag = "--name"
    if args.name is None:
        flag, args.name = "--name (the config's file name)", \
            os.path.splitext(os.path.basename(args.config))[0]
    plain_name(flag, args.name, parser)
    check_resources(args, parser)
    repeated = repeated_key(axis.key for axis in args.grid)
    if repeated:
        parser.error(f"--grid {repeated}: the key is given twice; list its values once, "
                     f"comma-separated")
    return args


# --------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------

def aggregate_sweep(args: argparse.Namespace, layout: Layout, points: list[Point],
                    runs: list[str]) -> int:
    """aggregate.py over the evaluated runs of this grid; its exit status."""
    import aggregate
    scores = [layout.scores(run) for run in runs if os.path.isfile(layout.scores(run))]
    if not scores:
        print("error: no run of the sweep was evaluated: nothing to aggregate", file=sys.stderr)
        return 1
    argv = [*scores, "--out", layout.results, "--metric", args.metric]
    for point in points:
        if point.algorithm != point.label:
            argv += ["--rename", f"{point.label}={point.algorithm}"]
    if args.reps:
        argv += ["--reps", str(args.reps), "--profile-reps", str(args.reps)]
    if args.max_score:
        argv += ["--max-score", *args.max_score]
    print(f"aggregating {len(scores)} run(s) into {layout.results}/", flush=True)
    status = aggregate.main(argv)
    if status:
        print(f"note: the trials are done; aggregate them with other options, e.g. python "
              f"aggregate.py {layout.models}/*/scores.csv --out {layout.results} --max-score "
              f"..., or rerun this sweep with --max-score (finished trials are skipped)",
              file=sys.stderr)
    return status


def make_layout(args: argparse.Namespace) -> Layout:
    from preflight.outputs import check_output_folders
    folders = [os.path.abspath(os.path.join(d, args.name))
               for d in (args.models_dir, args.summaries_dir, args.results_dir)]
    check_output_folders(*folders)
    return Layout(args.name, *folders)


def warn_without_checkpoints(configs: dict) -> None:
    plain = sorted(label for label, config in configs.items() if not config.checkpoint_interval)
    if plain:
        print(f"note: checkpoint_interval is 0 for {', '.join(plain)}: a trial whose process "
              f"dies starts over. Set checkpoint_interval in the config (or --grid "
              f"checkpoint_interval=N) to resume it from its last checkpoint.", file=sys.stderr)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run_sweep(args)
    except RefusedInput as e:
        print(error_line(e), file=sys.stderr)
        return EXIT_REFUSED


def run_sweep(args: argparse.Namespace) -> int:
    """The exit status: 0 when every trial finished and was aggregated, 1 when some failed,
    130 when interrupted."""
    from sweeps.cluster import import_ray, run_trials
    ray = import_ray()
    points = grid_points(args.grid, args.name)
    configs = {p.label: point_config(args.config, p, args.cpus_per_run, args.gpus_per_run)
               for p in points}
    layout = make_layout(args)
    with sweep_lock(layout):
        # Every saved run is checked against its point's config before any file is written.
        runs = sweep_runs(points, args.seeds)
        trials = [trial for run, point, seed in runs
                  if (trial := plan_trial(layout, run, point, seed, configs[point.label]))]
        todo = {trial.run for trial in trials}
        write_point_configs(configs, layout)
        print(f"sweep {args.name}: {len(points)} grid point(s) x {len(args.seeds)} seed(s) = "
              f"{len(runs)} trials; {len(runs) - len(trials)} finished before, {len(trials)} "
              f"to run", flush=True)
        warn_without_checkpoints({t.point: configs[t.point] for t in trials if t.train})
        progress = Progress(args.name, runs, {run for run, _, _ in runs if run not in todo},
                            layout, args.metric)
        if trials:
            status = run_trials(ray, args, layout, trials, progress, ROOT)
        else:
            status = 0
            print(progress.line({}), flush=True)
        if status == INTERRUPTED:
            return status
        aggregated = aggregate_sweep(args, layout, points, [run for run, _, _ in runs])
    return 1 if status or aggregated else 0


if __name__ == "__main__":
    sys.exit(main())
