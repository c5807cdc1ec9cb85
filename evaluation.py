"""Score files (written by evaluate.py) and their statistics, computed with rliable.

rliable's vocabulary, as used here:
- a *run* is one training seed of a configuration (train.py --seeds writes RUN_seedN);
- an *algorithm* is a configuration: the runs whose names agree up to the _seedN suffix;
- a *task* is an environment (the score file's config_name);
- a run's *score* on a task is the mean of the chosen metric over the evaluation episodes
  of one of its checkpoints, divided by the metric's max score when that is known, so that
  tasks share one scale and the optimality gap is defined.

rliable wants {algorithm: array (runs, tasks)} and gives point estimates with stratified
bootstrap confidence intervals (resampling runs within each task). Its bootstrap draws from
numpy's global random generator, so every function here that bootstraps takes a `seed` and
restores the generator's previous state afterwards.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional

import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics as rm
from rliable import plot_utils

# The score file's columns, in order; the environment's own metrics follow them.
EPISODE_COLUMNS = ("run", "config_name", "seed_of_run", "checkpoint", "update", "steps",
                   "env_seed", "repetition", "deterministic", "return", "length", "success")
# Columns that say which episode a row is. Not `deterministic`: a deterministic and a sampled
# evaluation of one checkpoint must not be averaged together.
_ID_COLUMNS = ("run", "config_name", "seed_of_run", "checkpoint", "update", "steps",
               "env_seed", "repetition")
_TEXT_COLUMNS = {"run": str, "config_name": str, "checkpoint": str}
# run_scores.csv, one row per evaluated checkpoint (aggregate.py writes it; --earlier reads it).
RUN_SCORE_COLUMNS = ("algorithm", "run", "task", "seed_of_run", "checkpoint", "update", "steps",
                     "score", "episodes", "metric")

AGGREGATES = ("IQM", "median", "mean", "optimality gap")
# Bootstrap resamples. A performance profile or a probability of improvement costs ~100
# times more per resample than the aggregates; 2,000 is rliable's default for them.
DEFAULT_REPS = 10_000
DEFAULT_PROFILE_REPS = 2_000
DEFAULT_CONFIDENCE = 0.95
# Max scores known without asking: success is a rate, and a solved proof-of-memory episode
# returns 1 (proof_of_memory.py). None stands for any task.
KNOWN_MAX_SCORES = {("success", None): 1.0, ("return", "ProofOfMemory-v0"): 1.0}
PAIR_SEPARATOR = " vs "

_SEED_SUFFIX = re.compile(r"_seed\d+$")


# --------------------------------------------------------------------------------------
# Score files
# --------------------------------------------------------------------------------------

def _read_table(path: str, dtype: dict, columns: Iterable[str], what: str, writer: str,
                missing_fix: str) -> pd.DataFrame:
    """A CSV file of `what`, written by `writer`, with at least `columns`; ValueError naming
    it otherwise."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such {what}. Fix: {missing_fix}")
    try:
        # round_trip: pandas' default float parser can be one ulp off what to_csv wrote, so
        # re-aggregating a committed run_scores.csv changed its last digits.
        frame = pd.read_csv(path, dtype=dtype, float_precision="round_trip")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a CSV {what} ({str(e).strip()}).") from None
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a {what} written by {writer}: it lacks the column(s) "
                         f"{', '.join(missing)}.")
    return frame


def read_score_file(path: str) -> pd.DataFrame:
    """One score file; ValueError naming it when it is missing or not a score file."""
    frame = _read_table(path, _TEXT_COLUMNS, EPISODE_COLUMNS, "score file", "evaluate.py",
                        "run evaluate.py first; it writes models/RUN/scores.csv for each run.")
    if frame.empty:
        raise ValueError(f"{path}: holds no episodes. Fix: evaluate the run again.")
    return frame


def load_scores(paths: Iterable[str]) -> pd.DataFrame:
    """Every episode of the score files, in one table (columns as in the files)."""
    paths = list(paths)
    if not paths:
        raise ValueError("no score files given. Fix: pass the files evaluate.py wrote, "
                         "e.g. models/*/scores.csv.")
    frame = pd.concat([read_score_file(path) for path in paths], ignore_index=True)
    repeated = frame[frame.duplicated(list(_ID_COLUMNS), keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        raise ValueError(f"episode run {first['run']}, checkpoint {first['checkpoint']}, env seed "
                         f"{first['env_seed']}, repetition {first['repetition']} appears more "
                         f"than once among {', '.join(paths)}. Fix: pass each score file once "
                         f"(an --out file and the per-run files, or a deterministic and a "
                         f"sampled evaluation, hold the same episodes).")
    return frame


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The metrics a score table offers: return, length, success and the environment's own,
    those with at least one value."""
    candidates = ["return", "length", "success"] + [c for c in frame.columns
                                                     if c not in EPISODE_COLUMNS]
    return [c for c in candidates if frame[c].notna().any()]


def check_metric(frame: pd.DataFrame, metric: str, what: str = "metric") -> None:
    """ValueError unless every episode has a value of `metric`; `what` names it (e.g. the
    flag it came from) in the message."""
    available = metric_columns(frame)
    if metric not in available:
        raise ValueError(f"{what} {metric!r}: the score files have no values for it. "
                         f"Available: {', '.join(available)}.")
    lacking = sorted(frame.loc[frame[metric].isna(), "run"].unique())
    if lacking:
        raise ValueError(f"{what} {metric!r}: the episodes of run(s) {', '.join(lacking)} have "
                         f"no value for it (their environment does not report it). Fix: "
                         f"choose another metric or leave those score files out.")


# --------------------------------------------------------------------------------------
# Run scores
# --------------------------------------------------------------------------------------

def algorithm_of(run: str) -> str:
    """The configuration a run belongs to: its name without train.py's _seedN suffix."""
    return _SEED_SUFFIX.sub("", run)


def run_scores(frame: pd.DataFrame, metric: str = "return",
               algorithm: Callable[[str], str] = algorithm_of) -> pd.DataFrame:
    """One row per evaluated checkpoint, RUN_SCORE_COLUMNS: score is the mean of `metric`
    over its episodes."""
    check_metric(frame, metric)
    keys = ["run", "config_name", "seed_of_run", "checkpoint", "update", "steps"]
    table = (frame.groupby(keys, sort=True)[metric]
             .agg(score="mean", episodes="size").reset_index()
             .rename(columns={"config_name": "task"}))
    table.insert(0, "algorithm", table["run"].map(algorithm))
    return table.assign(metric=metric)


def breakdown(frame: pd.DataFrame, metric: str, by: str) -> pd.DataFrame:
    """One row per evaluated checkpoint and value of column `by` (e.g. MiniGrid's
    start_column): run, checkpoint, update, steps, `by`, score (the mean of `metric` over
    those episodes), episodes and standard_error (of that mean, the episodes' standard
    deviation / sqrt(episodes); 0 for one episode). ValueError when an episode lacks
    either column."""
    if by == metric:
        raise ValueError(f"--by {by}: is the metric itself. Fix: break {metric} down by "
                         f"another column, e.g. start_column.")
    check_metric(frame, metric)
    check_metric(frame, by, what="--by")
    keys = ["run", "checkpoint", "update", "steps", by]
    grouped = frame.groupby(keys, sort=True)[metric]
    table = grouped.agg(score="mean", episodes="size",
                        deviation=lambda values: values.std(ddof=0)).reset_index()
    table["standard_error"] = table.pop("deviation") / np.sqrt(table["episodes"])
    # In training order: checkpoint names sort the final model before its update_* files.
    return table.sort_values(["run", "steps", by], ignore_index=True)


def read_run_scores(path: str, metric: str) -> pd.DataFrame:
    """An earlier aggregation's run_scores.csv, for runs whose score files are gone (models/
    is not committed; results/TASK/run_scores.csv is). ValueError naming the file when it is
    not one, or holds another metric's scores."""
    text = {"algorithm": str, "run": str, "task": str, "checkpoint": str, "metric": str}
    frame = _read_table(path, text, RUN_SCORE_COLUMNS, "run_scores.csv", "aggregate.py",
                        "pass one that aggregate.py wrote, e.g. results/TASK/run_scores.csv.")
    other = sorted(set(frame["metric"]) - {metric})
    if other:
        raise ValueError(f"{path}: holds scores of metric {other[0]!r}, not {metric!r}. Fix: "
                         f"pass --metric {other[0]}, or leave the file out.")
    return frame


def merge_earlier(table: Optional[pd.DataFrame], earlier: pd.DataFrame,
                  algorithm: Callable[[str], str] = algorithm_of) -> pd.DataFrame:
    """`table`'s checkpoints plus those of `earlier`'s runs that `table` lacks: a run
    evaluated again replaces its earlier rows whole. Algorithms are named anew from the run
    names, so renames apply to earlier runs too."""
    if table is not None:
        earlier = earlier[~earlier["run"].isin(table["run"])]
    kept = earlier.assign(algorithm=earlier["run"].map(algorithm))[list(RUN_SCORE_COLUMNS)]
    return pd.concat([t for t in (table, kept) if t is not None], ignore_index=True)


def final_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Each run's latest evaluated checkpoint (most steps) on each task."""
    latest = table.groupby(["run", "task"])["steps"].idxmax()
    return table.loc[sorted(latest)].reset_index(drop=True)


def _parse_task_values(values: Iterable[str], tasks: Iterable[str], what: str,
                       positive: bool) -> dict[str, float]:
    """`--max-score` / `--min-score` values: VALUE for every task, or TASK=VALUE for one."""
    tasks = list(tasks)
    result: dict[str, float] = {}
    for value in values:
        task, _, number = value.rpartition("=")
        try:
            score = float(number)
        except ValueError:
            raise ValueError(f"{what} {value!r}: expected a number or TASK=NUMBER, e.g. 1.0 "
                             f"or {tasks[0] if tasks else 'TASK'}=1.0.") from None
        if not math.isfinite(score) or (positive and score <= 0):
            raise ValueError(f"{what} {value!r}: must be a "
                             f"{'positive' if positive else 'finite'} number.")
        if task and task not in tasks:
            raise ValueError(f"{what} {value!r}: no task {task!r} in the score files; "
                             f"tasks: {', '.join(tasks)}.")
        result.update({task: score} if task else dict.fromkeys(tasks, score))
    return result


def parse_max_scores(values: Iterable[str], tasks: Iterable[str]) -> dict[str, float]:
    """`--max-score` values: VALUE for every task, or TASK=VALUE for one."""
    return _parse_task_values(values, tasks, "max score", positive=True)


def parse_min_scores(values: Iterable[str], tasks: Iterable[str]) -> dict[str, float]:
    """`--min-score` values (a task's worst score; 0 where not given), as parse_max_scores."""
    return _parse_task_values(values, tasks, "min score", positive=False)


def known_max_scores(metric: str, tasks: Iterable[str]) -> dict[str, float]:
    """The max scores of `metric` that need not be given (KNOWN_MAX_SCORES), by task."""
    result = {}
    for task in tasks:
        for key in ((metric, task), (metric, None)):
            if key in KNOWN_MAX_SCORES:
                result[task] = KNOWN_MAX_SCORES[key]
                break
    return result


def normalise(table: pd.DataFrame, max_scores: dict[str, float],
              min_scores: Optional[dict[str, float]] = None) -> tuple[pd.DataFrame, bool]:
    """Scores mapped to (score - min) / (max - min) of their task (min 0 where not given, as
    POPGym normalises its MMER by each task's return range), and whether they were. Without
    max scores only a single task can be aggregated: raw scores of different tasks share no
    scale."""
    tasks = sorted(table["task"].unique())
    unknown = [task for task in tasks if task not in max_scores]
    if not unknown:
        low = {task: (min_scores or {}).get(task, 0.0) for task in tasks}
        flat = [task for task in tasks if max_scores[task] <= low[task]]
        if flat:
            raise ValueError(f"max score <= min score for {', '.join(flat)}. Fix: pass the "
                             f"task's best score as --max-score and its worst as --min-score.")
        lows, highs = table["task"].map(low), table["task"].map(max_scores)
        return table.assign(score=(table["score"] - lows) / (highs - lows)), True
    if len(tasks) > 1:
        raise ValueError(f"aggregating over the tasks {', '.join(tasks)} needs each task's max "
                         f"score, to put them on one scale; unknown for {', '.join(unknown)}. "
                         f"Fix: pass --max-score TASK=VALUE for each.")
    return table, False


@dataclass(frozen=True)
class ScoreMatrices:
    """rliable's input: for each algorithm an array (runs, tasks) of run scores, runs in
    the order of their training seeds."""
    scores: dict[str, np.ndarray]
    seeds: dict[str, tuple[int, ...]]
    tasks: tuple[str, ...]
    metric: str
    normalised: bool

    @property
    def algorithms(self) -> list[str]:
        return list(self.scores)


def _check_one_run_per_seed(table: pd.DataFrame) -> None:
    keys = ["algorithm", "task", "seed_of_run"]
    clash = table[table.duplicated(keys, keep=False)]
    if len(clash):
        first = clash.iloc[0]
        runs = sorted(clash.loc[(clash[keys] == first[keys]).all(axis=1), "run"])
        raise ValueError(f"runs {', '.join(runs)} are all training seed {first['seed_of_run']} "
                         f"of algorithm {first['algorithm']} on {first['task']}; an algorithm "
                         f"needs one run per seed. Fix: leave one score file out, or name the "
                         f"runs apart.")


def score_matrices(table: pd.DataFrame, metric: str, max_scores: dict[str, float],
                   min_scores: Optional[dict[str, float]] = None) -> ScoreMatrices:
    """rliable's score dict from final run scores (final_scores(run_scores(...)))."""
    _check_one_run_per_seed(table)
    table, normalised = normalise(table, max_scores, min_scores)
    tasks = tuple(sorted(table["task"].unique()))
    scores, seeds = {}, {}
    for algorithm, rows in table.groupby("algorithm", sort=True):
        matrix = rows.pivot(index="seed_of_run", columns="task", values="score")
        matrix = matrix.reindex(columns=list(tasks))
        missing = matrix.isna()
        gaps = [f"seed {seed} on {task}" for seed in matrix.index for task in tasks
                if missing.loc[seed, task]]
        if gaps:
            raise ValueError(f"algorithm {algorithm}: no scores for {', '.join(gaps[:5])}; "
                             f"rliable needs every run on every task. Fix: evaluate those runs "
                             f"or leave the algorithm's other tasks out.")
        scores[algorithm] = matrix.to_numpy(dtype=np.float64)
        seeds[algorithm] = tuple(int(s) for s in matrix.index)
    return ScoreMatrices(scores, seeds, tasks, metric, normalised)


# --------------------------------------------------------------------------------------
# Interval estimates
# --------------------------------------------------------------------------------------

@contextlib.contextmanager
def seeded_numpy(seed: int) -> Iterator[None]:
    """numpy's global generator seeded (rliable's bootstrap draws from it), then restored."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def aggregate_function(normalised: bool) -> Callable[[np.ndarray], np.ndarray]:
    """scores (runs, tasks) -> [IQM, median, mean(, optimality gap)]. The gap is measured
    to the max score, 1 after normalisation; without it there is none."""
    def aggregates(scores: np.ndarray) -> np.ndarray:
        values = [rm.aggregate_iqm(scores), rm.aggregate_median(scores),
                  rm.aggregate_mean(scores)]
        if normalised:
            values.append(rm.aggregate_optimality_gap(scores, 1.0))
        return np.array(values)
    return aggregates


@dataclass(frozen=True)
class Estimate:
    point: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.point:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass(frozen=True)
class AggregateTable:
    """Point estimates and confidence intervals of the aggregates, by algorithm."""
    estimates: dict[str, dict[str, Estimate]]   # algorithm -> aggregate name -> estimate
    runs: dict[str, int]
    tasks: tuple[str, ...]
    metric: str
    normalised: bool
    reps: int
    confidence: float

    @property
    def aggregates(self) -> list[str]:
        return list(next(iter(self.estimates.values())))


def aggregate_estimates(matrices: ScoreMatrices, reps: int = DEFAULT_REPS, seed: int = 0,
                        confidence: float = DEFAULT_CONFIDENCE) -> AggregateTable:
    """IQM, median, mean and (normalised scores only) optimality gap, each with a stratified
    bootstrap confidence interval (rliable.library.get_interval_estimates)."""
    names = AGGREGATES if matrices.normalised else AGGREGATES[:3]
    with seeded_numpy(seed):
        points, intervals = rly.get_interval_estimates(
            matrices.scores, aggregate_function(matrices.normalised), reps=reps,
            confidence_interval_size=confidence)
    estimates = {algorithm: {name: Estimate(float(points[algorithm][i]),
                                            float(intervals[algorithm][0, i]),
                                            float(intervals[algorithm][1, i]))
                             for i, name in enumerate(names)}
                 for algorithm in matrices.scores}
    runs = {algorithm: len(s) for algorithm, s in matrices.scores.items()}
    return AggregateTable(estimates, runs, matrices.tasks, matrices.metric, matrices.normalised,
                          reps, confidence)


def describe(table: AggregateTable) -> str:
    """A caption: what the numbers are."""
    # (score - min) / (max - min) per task; min is 0 unless given, i.e. score / max score.
    scale = " normalised to its task's [min, max] score range" if table.normalised else ""
    tasks = f"{len(table.tasks)} task(s): {', '.join(table.tasks)}"
    return (f"{table.metric}{scale} of each run's latest checkpoint on {tasks}; point estimate "
            f"[{table.confidence:.0%} CI], stratified bootstrap over runs, {table.reps:,} "
            f"resamples")


def table_frame(table: AggregateTable) -> pd.DataFrame:
    """The table with one column per number: algorithm, runs, IQM, IQM_low, IQM_high, ..."""
    rows = []
    for algorithm, estimates in table.estimates.items():
        row = {"algorithm": algorithm, "runs": table.runs[algorithm]}
        for name, e in estimates.items():
            row.update({name: e.point, f"{name}_low": e.low, f"{name}_high": e.high})
        rows.append(row)
    return pd.DataFrame(rows)


def _cells(table: AggregateTable) -> tuple[list[str], list[list[str]]]:
    header = ["algorithm", "runs", *table.aggregates]
    rows = [[algorithm, str(table.runs[algorithm]), *(str(e) for e in estimates.values())]
            for algorithm, estimates in table.estimates.items()]
    return header, rows


def table_text(table: AggregateTable) -> str:
    """The table in aligned columns, for a terminal."""
    header, rows = _cells(table)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    return "\n".join([describe(table), *lines])


def table_markdown(table: AggregateTable) -> str:
    header, rows = _cells(table)
    lines = ["| " + " | ".join(row) + " |" for row in [header, ["---"] * len(header), *rows]]
    return "\n".join([*lines, "", describe(table) + "."])


# --------------------------------------------------------------------------------------
# Performance profiles, probability of improvement, sample efficiency
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PerformanceProfile:
    """Fraction of runs with score > tau, for each tau, with confidence bands."""
    taus: np.ndarray
    profiles: dict[str, np.ndarray]
    intervals: dict[str, np.ndarray]        # (2, taus): lower and upper bounds
    metric: str
    normalised: bool


def tau_grid(matrices: ScoreMatrices, points: int = 101) -> np.ndarray:
    """Thresholds from below the lowest score to the max score (1 when normalised) or the
    highest score, whichever is larger."""
    everything = np.concatenate([s.ravel() for s in matrices.scores.values()])
    top = max(1.0, everything.max()) if matrices.normalised else everything.max()
    low = min(0.0, everything.min())
    if top <= low:                          # every score equal (and 0)
        top = low + 1.0
    return np.linspace(low, top, points)


def performance_profile(matrices: ScoreMatrices, reps: int = DEFAULT_PROFILE_REPS, seed: int = 0,
                        taus: Optional[np.ndarray] = None) -> PerformanceProfile:
    """rliable.library.create_performance_profile over run scores."""
    taus = tau_grid(matrices) if taus is None else np.asarray(taus, dtype=np.float64)
    with seeded_numpy(seed):
        profiles, intervals = rly.create_performance_profile(matrices.scores, taus, reps=reps)
    return PerformanceProfile(taus, profiles, intervals, matrices.metric, matrices.normalised)


@dataclass(frozen=True)
class Improvement:
    """P(a run of x scores higher than a run of y), averaged over tasks."""
    x: str
    y: str
    estimate: Estimate


def check_pairs(matrices: ScoreMatrices, pairs: Iterable[tuple[str, str]]) -> None:
    """ValueError unless each pair names two different algorithms of `matrices`."""
    for x, y in pairs:
        for name in (x, y):
            if name not in matrices.scores:
                raise ValueError(f"comparing {x} with {y}: no algorithm {name!r} in the score "
                                 f"files; algorithms: {', '.join(matrices.algorithms)}.")
        if x == y:
            raise ValueError(f"comparing {x} with {y}: name two different algorithms.")


def probability_of_improvement(matrices: ScoreMatrices, pairs: Iterable[tuple[str, str]],
                               reps: int = DEFAULT_PROFILE_REPS, seed: int = 0
                               ) -> list[Improvement]:
    """rliable.metrics.probability_of_improvement with independent stratified bootstrap CIs
    (the two algorithms' runs are resampled separately)."""
    pairs = [tuple(pair) for pair in pairs]
    check_pairs(matrices, pairs)
    data = {f"{x}{PAIR_SEPARATOR}{y}": [matrices.scores[x], matrices.scores[y]]
            for x, y in pairs}
    with seeded_numpy(seed):
        points, intervals = rly.get_interval_estimates(data, rm.probability_of_improvement,
                                                       reps=reps)
    return [Improvement(x, y, Estimate(float(points[key]), float(np.ravel(intervals[key][0])[0]),
                                       float(np.ravel(intervals[key][1])[0])))
            for (x, y), key in zip(pairs, data)]


@dataclass(frozen=True)
class SampleEfficiency:
    """IQM of run scores against environment steps, one curve per algorithm."""
    steps: dict[str, np.ndarray]
    iqm: dict[str, np.ndarray]
    intervals: dict[str, np.ndarray]        # (2, points)
    metric: str
    normalised: bool


def curve_arrays(table: pd.DataFrame, max_scores: dict[str, float],
                 min_scores: Optional[dict[str, float]] = None
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], bool]:
    """For each algorithm, the step counts at which every run was evaluated on every task,
    and its scores there as an array (runs, tasks, steps); and whether they are normalised.
    Algorithms with fewer than two such step counts have no curve and are left out."""
    table, normalised = normalise(table, max_scores, min_scores)
    tasks = sorted(table["task"].unique())
    steps, arrays = {}, {}
    for algorithm, rows in table.groupby("algorithm", sort=True):
        grid = rows.pivot_table(index=["seed_of_run", "task"], columns="steps", values="score",
                                aggfunc="mean")
        seeds = sorted(rows["seed_of_run"].unique())
        grid = grid.reindex(pd.MultiIndex.from_product([seeds, tasks])).dropna(axis=1)
        if grid.shape[1] >= 2:
            steps[algorithm] = grid.columns.to_numpy(dtype=np.int64)
            arrays[algorithm] = grid.to_numpy(np.float64).reshape(len(seeds), len(tasks), -1)
    return steps, arrays, normalised


def iqm_per_point(scores: np.ndarray) -> np.ndarray:
    """scores (runs, tasks, points) -> the IQM at each point."""
    return np.array([rm.aggregate_iqm(scores[..., i]) for i in range(scores.shape[-1])])


def sample_efficiency(table: pd.DataFrame, metric: str, max_scores: dict[str, float],
                      reps: int = DEFAULT_REPS, seed: int = 0,
                      min_scores: Optional[dict[str, float]] = None) -> Optional[SampleEfficiency]:
    """IQM curves with CIs from the periodic checkpoints of run_scores(...); None when no
    algorithm was evaluated at two step counts or more."""
    steps, arrays, normalised = curve_arrays(table, max_scores, min_scores)
    if not arrays:
        return None
    with seeded_numpy(seed):
        points, intervals = rly.get_interval_estimates(arrays, iqm_per_point, reps=reps)
    return SampleEfficiency(steps, points, intervals, metric, normalised)


# --------------------------------------------------------------------------------------
# Plots: each returns a matplotlib Figure; the caller shows or saves it
# --------------------------------------------------------------------------------------

def algorithm_colors(algorithms: Iterable[str]) -> dict[str, tuple]:
    """One colour per algorithm, the same in every plot."""
    names = sorted(set(algorithms))
    return dict(zip(names, _palette(len(names))))


def _palette(n: int) -> list[tuple]:
    import seaborn as sns
    return sns.color_palette("colorblind", n_colors=max(n, 1))


def _score_label(metric: str, normalised: bool) -> str:
    return f"{metric} (normalised)" if normalised else metric


def _set_score_range(ax, low: float, high: float, normalised: bool) -> None:
    """Normalised scores are shown on at least [0, 1], so that a narrow interval near 1 looks
    narrow and near 1 rather than filling the axis; raw ones get wide margins. Fewer, smaller
    tick labels than rliable's, which collide when the values need several digits."""
    from matplotlib.ticker import MaxNLocator
    if normalised:
        low, high = min(0.0, low), max(1.0, high)
    pad = (0.05 if normalised else 0.25) * (high - low) if high > low else 0.5
    ax.set_xlim(low - pad, high + pad)
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.tick_params(axis="x", labelsize="large")


def plot_aggregates(table: AggregateTable, colors: Optional[dict] = None):
    algorithms = list(table.estimates)
    points = {a: np.array([e.point for e in table.estimates[a].values()]) for a in algorithms}
    intervals = {a: np.array([[e.low for e in table.estimates[a].values()],
                              [e.high for e in table.estimates[a].values()]])
                 for a in algorithms}
    fig, axes = plot_utils.plot_interval_estimates(
        points, intervals, metric_names=table.aggregates, algorithms=algorithms,
        colors=colors or algorithm_colors(algorithms),
        xlabel=_score_label(table.metric, table.normalised),
        # rliable sizes the figure by rows; one or two algorithms need taller rows
        row_height=max(0.45, 1.6 / len(algorithms)), xlabel_y_coordinate=-0.25)
    for i, ax in enumerate(np.atleast_1d(axes)):
        lows = [intervals[a][0, i] for a in algorithms]
        highs = [intervals[a][1, i] for a in algorithms]
        _set_score_range(ax, min(lows), max(highs), table.normalised)
    height = fig.get_size_inches()[1]   # above the subplot titles, whatever the height
    fig.suptitle(f"Final {table.metric}: point estimate and {table.confidence:.0%} "
                 f"bootstrap CI ({', '.join(table.tasks)})", y=1 + 0.5 / height,
                 fontsize="xx-large")
    return fig


def plot_performance_profile(profile: PerformanceProfile, colors: Optional[dict] = None):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_performance_profiles(
        profile.profiles, profile.taus, performance_profile_cis=profile.intervals,
        colors=colors or algorithm_colors(profile.profiles), ax=ax,
        xlabel=rf"{_score_label(profile.metric, profile.normalised)} ($\tau$)",
        ylabel=r"fraction of runs with score > $\tau$", labelsize="large",
        ticklabelsize="large", legend=True, legendsize="large")
    ax.set_title(f"Performance profile of the final {profile.metric}", fontsize="x-large")
    return fig


def plot_sample_efficiency(curves: SampleEfficiency, colors: Optional[dict] = None):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter
    colors = colors or algorithm_colors(curves.iqm)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for algorithm in curves.iqm:   # one call each: the algorithms may have other step counts
        plot_utils.plot_sample_efficiency_curve(
            curves.steps[algorithm], curves.iqm, curves.intervals, algorithms=[algorithm],
            colors=colors, ax=ax, xlabel="environment steps",
            ylabel=f"IQM of {_score_label(curves.metric, curves.normalised)}",
            labelsize="large", ticklabelsize="large")
    ax.xaxis.set_major_formatter(EngFormatter())
    # Below the axes, not inside: inside, the legend hid a checkpoint of the Mystery Path
    # curve, and no corner is free for every task's curves.
    ax.legend(fontsize="large", loc="upper center", bbox_to_anchor=(0.5, -0.2),
              ncol=min(3, len(curves.iqm)), frameon=False)
    ax.set_title(f"Sample efficiency: IQM of {curves.metric} with 95% CIs", fontsize="x-large")
    return fig


def plot_breakdown(table: pd.DataFrame, metric: str, by: str):
    """One panel per run: `metric` against environment steps, a line per value of `by`, with
    +-1 standard error bars (the table of breakdown())."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter
    runs = sorted(table["run"].unique())
    fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 4.5), sharey=True,
                             squeeze=False)
    values = sorted(table[by].unique())
    colors = dict(zip(values, _palette(len(values))))
    for ax, run in zip(axes[0], runs):
        for value, group in table[table["run"] == run].groupby(by):
            ax.errorbar(group["steps"], group["score"], yerr=group["standard_error"],
                        marker="o", capsize=3, color=colors[value], label=f"{by} {value:g}")
        ax.set_title(run, fontsize="x-large")
        ax.set_xlabel("environment steps", fontsize="large")
        ax.xaxis.set_major_formatter(EngFormatter())
    axes[0][0].set_ylabel(metric, fontsize="large")
    axes[0][0].legend(fontsize="medium", loc="upper center", bbox_to_anchor=(0.5, -0.2),
                      ncol=min(3, len(values)), frameon=False)
    fig.suptitle(f"{metric} by {by}, +-1 standard error", fontsize="xx-large", y=1.02)
    return fig


def plot_probability_of_improvement(improvements: list[Improvement]):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 1.2 + 0.6 * len(improvements)))
    plot_utils.plot_probability_of_improvement(
        {f"{i.x}{PAIR_SEPARATOR}{i.y}": i.estimate.point for i in improvements},
        {f"{i.x}{PAIR_SEPARATOR}{i.y}": np.array([i.estimate.low, i.estimate.high])
         for i in improvements},
        pair_separator=PAIR_SEPARATOR, ax=ax, xticks=[0.0, 0.25, 0.5, 0.75, 1.0],
        xlabel="P(X > Y)")
    ax.set_xlim(0.0, 1.0)
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_title("Probability of improvement, with 95% CIs", fontsize="x-large", pad=30)
    return fig
