"""rliable's statistics of run scores: point estimates with stratified bootstrap confidence
intervals (resampling runs within each task) of the aggregates, performance profiles, the
probability of improvement and sample-efficiency curves.

rliable's bootstrap draws from numpy's global random generator, so every function here that
bootstraps takes a `seed` and restores the generator's previous state afterwards.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional

import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics as rm

from evaluation.matrices import ScoreMatrices, normalise

AGGREGATES = ("IQM", "median", "mean", "optimality gap")
# Bootstrap resamples. A performance profile or a probability of improvement costs ~100
# times more per resample than the aggregates; 2,000 is rliable's default for them.
DEFAULT_REPS = 10_000
DEFAULT_PROFILE_REPS = 2_000
DEFAULT_CONFIDENCE = 0.95
PAIR_SEPARATOR = " vs "


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
