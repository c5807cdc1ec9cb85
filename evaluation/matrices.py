"""From run scores to rliable's input: scores normalised by each task's known or given
score range, so that tasks share one scale and the optimality gap is defined, then one array
(runs, tasks) per algorithm."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np
import pandas as pd

# Max scores known without asking: success is a rate, and a solved proof-of-memory episode
# returns 1 (proof_of_memory.py). None stands for any task.
KNOWN_MAX_SCORES = {("success", None): 1.0, ("return", "ProofOfMemory-v0"): 1.0}


def _parse_task_values(values: Iterable[str], tasks: Iterable[str],
                       what: str) -> dict[str, float]:
    """`--max-score` / `--min-score` values: VALUE for every task, or TASK=VALUE for one.
    Any finite number: normalise() checks that each task's max lies above its min, so
    tasks whose returns are negative (Pendulum's lie in about [-1600, 0]) normalise too."""
    tasks = list(tasks)
    result: dict[str, float] = {}
    for value in values:
        task, _, number = value.rpartition("=")
        try:
            score = float(number)
        except ValueError:
            raise ValueError(f"{what} {value!r}: expected a number or TASK=NUMBER, e.g. 1.0 "
                             f"or {tasks[0] if tasks else 'TASK'}=1.0.") from None
        if not math.isfinite(score):
            raise ValueError(f"{what} {value!r}: must be a finite number.")
        if task and task not in tasks:
            raise ValueError(f"{what} {value!r}: no task {task!r} in the score files; "
                             f"tasks: {', '.join(tasks)}.")
        result.update({task: score} if task else dict.fromkeys(tasks, score))
    return result


def parse_max_scores(values: Iterable[str], tasks: Iterable[str]) -> dict[str, float]:
    """`--max-score` values: VALUE for every task, or TASK=VALUE for one."""
    return _parse_task_values(values, tasks, "max score")


def parse_min_scores(values: Iterable[str], tasks: Iterable[str]) -> dict[str, float]:
    """`--min-score` values (a task's worst score; 0 where not given), as parse_max_scores."""
    return _parse_task_values(values, tasks, "min score")


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
