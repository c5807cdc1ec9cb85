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

import process_setup  # noqa: F401  (before torch)

import argparse
import dataclasses
import fcntl
import itertools
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Optional

from train import latest_model_file

ROOT = os.path.dirname(os.path.abspath(__file__))
RAY_MISSING = ("sweep.py runs its trials with Ray, an optional dependency that is not "
               "installed. Fix: pip install -r requirements-ray.txt")
# Seconds between two progress lines when nothing changes.
PROGRESS_SECONDS = 30.0
# How long an interrupted sweep waits for its trials to save their last update.
CANCEL_SECONDS = 60.0
# Settings that change where and how fast a run trains, not what it learns: an existing run
# may differ from its point's config in these (a longer `updates` extends it).
RUNTIME_KEYS = ("updates", "device", "env_processes", "torch_threads")
# train.py's exit status after it saved on SIGINT/SIGTERM (a drained or preempted node).
INTERRUPTED = 130
GRID_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
# Run names keep to these characters; not "=", which aggregate.py --rename splits on.
UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._+-]")


# --------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GridAxis:
    """One --grid entry: a dotted config key and the values it takes."""
    key: str
    values: tuple


@dataclass(frozen=True)
class Point:
    """One combination of grid values; `label` names its runs (LABEL_seedN)."""
    label: str
    settings: tuple[tuple[str, Any], ...]   # (dotted key, value), every --grid key
    algorithm: str                          # the label without environment keys (rliable)


@dataclass(frozen=True)
class Layout:
    """Where a sweep's files go; absolute paths, since Ray workers run elsewhere."""
    name: str
    models: str
    summaries: str
    results: str

    def model(self, run: str) -> str:
        return os.path.join(self.models, f"{run}.nn")

    def scores(self, run: str) -> str:
        return os.path.join(self.models, run, "scores.csv")

    def log(self, run: str) -> str:
        return os.path.join(self.models, "logs", f"{run}.log")

    def point_config(self, label: str) -> str:
        return os.path.join(self.models, "configs", f"{label}.yaml")


@dataclass(frozen=True)
class Trial:
    run: str
    point: str
    seed: int
    updates: int
    train: bool        # False: trained already, only its evaluation is missing or stale


@dataclass(frozen=True)
class TrialJob:
    """What one Ray task gets: the trial, where its files go, and its resources."""
    trial: Trial
    layout: Layout
    code_dir: str       # the repository; the same path on every node
    cpus: int
    gpus: float


@dataclass(frozen=True)
class TrialOutcome:
    run: str
    seconds: float
    resumed: bool                 # the last attempt continued a saved model file
    error: Optional[str] = None   # why it failed; None when it finished


class SweepError(RuntimeError):
    """The sweep cannot start as asked: main() prints it and exits with status 2."""


class TrialInterrupted(RuntimeError):
    """The trial's process was killed or interrupted: Ray retries the trial, which resumes."""


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


def parse_grid_entry(text: str) -> GridAxis:
    """`KEY=V1,V2,...`: the values are YAML (true, 3, 1.0e-3, null, gru)."""
    import yaml
    key, sep, values = text.partition("=")
    if not sep or not GRID_KEY.fullmatch(key):
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE,VALUE,... with a dotted "
                                         f"config key, e.g. transformer.gtrxl=true,false")
    if key == "seed":
        raise argparse.ArgumentTypeError(f"{text!r}: give the seeds with --seeds, e.g. 0-4")
    try:
        parsed = yaml.safe_load(f"[{values}]")
    except yaml.YAMLError:
        parsed = None
    if not isinstance(parsed, list) or not parsed:
        raise argparse.ArgumentTypeError(f"{text!r}: the values must be a comma-separated YAML "
                                         f"list, e.g. {key}=true,false or {key}=8,16")
    if len({repr(v) for v in parsed}) != len(parsed):
        raise argparse.ArgumentTypeError(f"{text!r}: a value is given twice")
    return GridAxis(key, tuple(parsed))


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
    keys = [axis.key for axis in args.grid]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        parser.error(f"--grid {repeated[0]}: the key is given twice; list its values once, "
                     f"comma-separated")
    return args


def import_ray():
    """Ray, or SweepError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SweepError(RAY_MISSING) from None
    return ray


# --------------------------------------------------------------------------------------
# Grid points and their configs
# --------------------------------------------------------------------------------------

def value_text(value: Any) -> str:
    """A grid value as it reads in YAML and in a file name."""
    if isinstance(value, bool) or value is None:
        text = {True: "true", False: "false", None: "null"}[value]
    else:
        text = str(value)
    return UNSAFE_NAME_CHARS.sub("_", text)


def key_names(keys: list[str]) -> dict[str, str]:
    """Each key as it appears in run names: its last part when that is unambiguous."""
    leaves = [key.rsplit(".", 1)[-1] for key in keys]
    unique = len(set(leaves)) == len(leaves)
    return {key: leaf if unique else key for key, leaf in zip(keys, leaves)}


def label(settings: dict[str, Any], names: dict[str, str], fallback: str) -> str:
    parts = [f"{names[key]}-{value_text(value)}" for key, value in settings.items()
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
        points.append(Point(label(settings, names, sweep), tuple(settings.items()),
                            label(settings, methods, sweep)))
    labels = [p.label for p in points]
    if len(set(labels)) != len(labels):
        raise SweepError(f"--grid: two grid points get the same run name "
                         f"({sorted(x for x in labels if labels.count(x) > 1)[0]}) once their "
                         f"values are made file-name safe. Fix: use values that differ in "
                         f"letters or digits.")
    return points


def lookup(tree: dict, dotted: str) -> tuple[bool, Any]:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def point_config(path: str, point: Point, cpus: int, gpus: float):
    """The validated config of a grid point; SweepError naming the --grid value otherwise."""
    from config import ConfigError, load_config
    settings = dict(point.settings)
    where = ", ".join(f"{k}={value_text(v)}" for k, v in point.settings) or "the config"
    try:
        config = load_config(path, settings)
    except ConfigError as e:
        raise SweepError(f"--grid {where}: {e}" if settings else str(e)) from None
    data = config.to_dict()
    for key in settings:
        # load_config skips a key whose parent is not a section (seed.x): that is no setting.
        if not lookup(data, key)[0]:
            raise SweepError(f"--grid {key}: {path} has no setting {key} (the parent "
                             f"is not a section). Fix: use a key from docs/configuration.md, "
                             f"e.g. transformer.gtrxl.")
    if config.device == "cuda" and gpus == 0:
        raise SweepError(f"--gpus-per-run 0, but {where} trains on device cuda. Fix: "
                         f"pass --gpus-per-run 1 (or 0.5 to share a GPU), or use device auto.")
    if config.env_processes is None:
        # Otherwise every trial on a node would start one process per core of the node.
        config = dataclasses.replace(config, env_processes=min(config.n_workers, cpus))
    return config


def write_point_configs(configs: dict, layout: Layout) -> None:
    """Each point's config to models/SWEEP/configs/LABEL.yaml, which train.py reads."""
    import yaml
    from atomic_file import atomic_write
    for label, config in configs.items():
        with atomic_write(layout.point_config(label), "w", encoding="utf-8") as f:
            yaml.safe_dump(config.to_dict(), f, sort_keys=False)


# --------------------------------------------------------------------------------------
# What is left to do: finished runs are skipped, by run id
# --------------------------------------------------------------------------------------

def differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for key in sorted(set(a) | set(b), key=str)
                for d in differences(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".")]


def saved_update(path: str, expected) -> int:
    """The update a saved run reached; SweepError when it is not this sweep's run."""
    from config import ConfigError
    from utils import load_model_file
    try:
        payload, saved = load_model_file(path)
    except (ValueError, ConfigError) as e:
        raise SweepError(f"{e} Fix: delete it to train that run again.") from None
    mine, theirs = saved.to_dict(), expected.to_dict()
    for key in RUNTIME_KEYS:
        del mine[key]
        del theirs[key]
    changed = differences(mine, theirs)
    if changed:
        was, now = lookup(mine, changed[0])[1], lookup(theirs, changed[0])[1]
        raise SweepError(f"{path} was trained with {changed[0]} = {was!r}, this sweep "
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


def run_ids(points: list[Point], seeds: list[int]) -> list[tuple[str, Point, int]]:
    return [(f"{point.label}_seed{seed}", point, seed) for point in points for seed in seeds]


# --------------------------------------------------------------------------------------
# One trial, in a Ray worker: train.py then evaluate.py, as child processes
# --------------------------------------------------------------------------------------

def _die_with_parent():
    """Children get SIGKILL when the Ray worker dies (Linux): an orphaned trainer would go on
    writing the run that Ray's retry resumes. Ray's raylet also stops a lost worker's process
    group, but not when the raylet itself is gone. prctl is looked up here, before fork."""
    import ctypes
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):      # not Linux: children outlive a killed worker
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGKILL)


def child_env(gpus: float) -> dict[str, str]:
    env = dict(os.environ)
    if gpus == 0:
        env["CUDA_VISIBLE_DEVICES"] = ""   # a trial uses only the GPUs Ray gave it
    return env


def run_child(command: list[str], log, job: TrialJob) -> int:
    """Run a command with its output in the log; on cancellation, interrupt it (train.py
    then saves its last update) and wait for it."""
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    process = subprocess.Popen(command, cwd=job.code_dir, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=child_env(job.gpus),
                               preexec_fn=_die_with_parent())
    try:
        while True:
            try:   # a short wait, so that Ray's cancellation can interrupt this thread
                return process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        process.wait()
        raise


def trial_commands(job: TrialJob, checkpoint: Optional[str]) -> list[list[str]]:
    """train.py (resuming from `checkpoint` when there is one), then evaluate.py."""
    t, layout, python = job.trial, job.layout, sys.executable
    folders = ["--models-dir", layout.models, "--summaries-dir", layout.summaries]
    train = os.path.join(job.code_dir, "train.py")
    if checkpoint:
        training = [python, train, "--resume", checkpoint, "--run-id", t.run,
                    "--updates", str(t.updates)]
    else:
        training = [python, train, "--config", layout.point_config(t.point), "--run-id", t.run,
                    "--seed", str(t.seed)]
    evaluation = [python, os.path.join(job.code_dir, "evaluate.py"), t.run,
                  "--models-dir", layout.models, "--processes", str(job.cpus)]
    return ([training + folders] if t.train else []) + [evaluation]


def log_tail(path: str, lines: int = 5) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(f.readlines()[-lines:]).rstrip()


def run_trial(job: TrialJob, board) -> TrialOutcome:
    """The Ray task. Raises TrialInterrupted (which Ray retries) when a child was killed."""
    start, trial = time.time(), job.trial
    board.started.remote(trial.run)
    checkpoint = latest_model_file(job.layout.models, trial.run) if trial.train else None
    resume = checkpoint is not None
    log_path = job.layout.log(trial.run)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        what = ("evaluating" if not trial.train else
                f"resuming from {checkpoint}:" if resume else "starting")
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {socket.gethostname()}: "
                  f"{what} {trial.run}\n")
        for command in trial_commands(job, checkpoint):
            status = run_child(command, log, job)
            if status < 0 or status == INTERRUPTED:
                raise TrialInterrupted(f"{trial.run}: {os.path.basename(command[1])} was "
                                       f"stopped (exit status {status})")
            if status:
                log.flush()
                return TrialOutcome(trial.run, time.time() - start, resume,
                                    f"{os.path.basename(command[1])} exited with {status}; "
                                    f"{log_path} ends:\n{log_tail(log_path)}")
    return TrialOutcome(trial.run, time.time() - start, resume)


class Board:
    """A Ray actor the trials report their starts to: which run, how many attempts."""

    def __init__(self):
        self.attempts: dict[str, int] = {}

    def started(self, run: str) -> None:
        self.attempts[run] = self.attempts.get(run, 0) + 1

    def snapshot(self) -> dict[str, int]:
        return dict(self.attempts)


# --------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------

def point_iqm(score_files: list[str], metric: str) -> Optional[float]:
    """IQM over the runs of the last checkpoints' mean `metric`; None when not computable
    (e.g. the environment reports no such metric)."""
    import evaluation as ev
    from rliable import metrics
    try:
        finals = ev.final_scores(ev.run_scores(ev.load_scores(score_files), metric))
    except ValueError:
        return None
    return float(metrics.aggregate_iqm(finals["score"].to_numpy()))


class Progress:
    """The sweep's console line: trials done / running / pending / failed, elapsed time, and
    the best IQM among the grid points whose every seed is evaluated."""

    def __init__(self, name: str, runs: list[tuple[str, Point, int]], finished: set[str],
                 layout: Layout, metric: str):
        self.name, self.layout, self.metric = name, layout, metric
        self.points: dict[str, list[str]] = {}
        for run, point, _ in runs:
            self.points.setdefault(point.label, []).append(run)
        self.total, self.before = len(runs), len(finished)
        self.finished, self.failed = set(finished), set()
        self.iqm: dict[str, Optional[float]] = {}
        self.start = time.time()
        for label in self.points:
            self._score_if_complete(label)

    def record(self, outcome: TrialOutcome, point: str) -> None:
        (self.failed if outcome.error else self.finished).add(outcome.run)
        self._score_if_complete(point)

    def _score_if_complete(self, label: str) -> None:
        runs = self.points[label]
        if all(run in self.finished for run in runs):
            self.iqm[label] = point_iqm([self.layout.scores(run) for run in runs], self.metric)

    def best(self) -> str:
        scored = {label: value for label, value in self.iqm.items() if value is not None}
        what = f"best IQM of {self.metric} (last checkpoints, points with every seed evaluated)"
        if not scored:
            return f"{what}: none yet"
        label = max(scored, key=scored.get)
        return f"{what}: {label} {scored[label]:.3f}"

    def line(self, attempts: dict[str, int]) -> str:
        from utils import format_duration
        over = self.finished | self.failed
        running = sum(1 for run in attempts if run not in over)
        pending = self.total - len(over) - running
        retried = sum(1 for run, n in attempts.items() if n > 1)
        return (f"sweep {self.name} {format_duration(time.time() - self.start)}: "
                f"{len(self.finished)}/{self.total} trials done ({self.before} before this "
                f"start), {running} running, {pending} pending, {len(self.failed)} failed, "
                f"{retried} retried | {self.best()}")


# --------------------------------------------------------------------------------------
# Ray
# --------------------------------------------------------------------------------------

def start_ray(ray, address: Optional[str]) -> None:
    # Trial output goes to models/SWEEP/logs/; the console keeps the progress lines.
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(address="local", include_dashboard=False, log_to_driver=False)
    except ConnectionError as e:
        raise SweepError(f"--address {address}: cannot join a Ray cluster there ({e}). "
                         f"Fix: start one with `ray start --head` on the head node, or pass "
                         f"its HOST:PORT.") from None


def check_fits(ray, args: argparse.Namespace) -> None:
    """Stop when no node can ever run a trial: its tasks would wait forever."""
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    if any(r.get("CPU", 0) >= args.cpus_per_run and r.get("GPU", 0) >= args.gpus_per_run
           for r in nodes):
        return
    have = "; ".join(f"{r.get('CPU', 0):g} CPU, {r.get('GPU', 0):g} GPU" for r in nodes)
    problem = (f"--cpus-per-run {args.cpus_per_run} --gpus-per-run {args.gpus_per_run:g}: no "
               f"Ray node has that much ({have})")
    if not args.address:
        raise SweepError(f"{problem}. Fix: ask for less, or join a cluster with "
                         f"--address.")
    print(f"note: {problem}; the trials wait until such a node joins.", file=sys.stderr)


def collect(ray, ref, run: str) -> TrialOutcome:
    """The outcome of a finished task; a task that failed for good becomes a failed trial."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        return TrialOutcome(run, 0.0, False, f"{type(e).__name__}: {reason}")


def report(outcome: TrialOutcome, attempts: int) -> None:
    from utils import format_duration
    retries = f", {attempts - 1} retr{'y' if attempts == 2 else 'ies'}" if attempts > 1 else ""
    if outcome.error:
        print(f"FAILED {outcome.run}{retries}: {outcome.error}", file=sys.stderr, flush=True)
    else:
        how = "resumed, " if outcome.resumed else ""
        print(f"finished {outcome.run} ({how}{format_duration(outcome.seconds)}{retries})",
              flush=True)


def follow(ray, refs: dict, board, progress: Progress, every: float) -> None:
    """Wait for the tasks, printing each outcome and a progress line on every change and at
    least every `every` seconds. Removes finished tasks from `refs` (trial by ref)."""
    print(progress.line({}), flush=True)
    while refs:
        ready, _ = ray.wait(list(refs), num_returns=1, timeout=every)
        attempts = ray.get(board.snapshot.remote())
        for ref in ready:
            trial = refs.pop(ref)
            outcome = collect(ray, ref, trial.run)
            progress.record(outcome, trial.point)
            report(outcome, attempts.get(trial.run, 1))
        print(progress.line(attempts), flush=True)


def cancel(ray, refs: dict) -> None:
    """Interrupt the running trials (train.py saves its last update) and wait for them."""
    print(f"\ninterrupted: stopping {len(refs)} trial(s); each saves its last completed "
          f"update", file=sys.stderr, flush=True)
    for ref in refs:
        ray.cancel(ref)
    ray.wait(list(refs), num_returns=len(refs), timeout=CANCEL_SECONDS)


def run_trials(ray, args: argparse.Namespace, layout: Layout, trials: list[Trial],
               progress: Progress) -> int:
    """Every trial as a Ray task; 0 when all finished, 1 when some failed, 130 when
    interrupted."""
    start_ray(ray, args.address)
    try:
        check_fits(ray, args)
        board = ray.remote(num_cpus=0)(Board).remote()
        task = ray.remote(run_trial).options(
            num_cpus=args.cpus_per_run, num_gpus=args.gpus_per_run,
            max_retries=args.max_retries, retry_exceptions=[TrialInterrupted])
        refs = {task.remote(TrialJob(trial, layout, ROOT, args.cpus_per_run,
                                     args.gpus_per_run), board): trial for trial in trials}
        try:
            follow(ray, refs, board, progress, args.progress_seconds)
        except KeyboardInterrupt:
            cancel(ray, refs)
            print("Run the same command again to continue: finished trials are skipped, the "
                  "others resume from their last checkpoint.", file=sys.stderr)
            return INTERRUPTED
    finally:
        ray.shutdown()
    return 1 if progress.failed else 0


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


class SweepLock:
    """One sweep.py at a time per sweep folder: two would train the same runs."""

    def __init__(self, layout: Layout):
        self.layout = layout

    def __enter__(self) -> "SweepLock":
        os.makedirs(self.layout.models, exist_ok=True)
        self.file = open(os.path.join(self.layout.models, ".sweep.lock"), "w")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            raise SweepError(f"another sweep.py is running sweep {self.layout.name} "
                             f"({self.layout.models}/). Fix: wait for it to end, or pass "
                             f"another --name.") from None
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()


def make_layout(args: argparse.Namespace) -> Layout:
    from train import check_output_folders
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
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run_sweep(args: argparse.Namespace) -> int:
    """The exit status: 0 when every trial finished and was aggregated, 1 when some failed,
    130 when interrupted."""
    ray = import_ray()
    points = grid_points(args.grid, args.name)
    configs = {p.label: point_config(args.config, p, args.cpus_per_run, args.gpus_per_run)
               for p in points}
    layout = make_layout(args)
    with SweepLock(layout):
        # Every saved run is checked against its point's config before any file is written.
        runs = run_ids(points, args.seeds)
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
            status = run_trials(ray, args, layout, trials, progress)
        else:
            status = 0
            print(progress.line({}), flush=True)
        if status == INTERRUPTED:
            return status
        aggregated = aggregate_sweep(args, layout, points, [run for run, _, _ in runs])
    return 1 if status or aggregated else 0


if __name__ == "__main__":
    sys.exit(main())
