"""Score files and run scores: evaluate.py writes one row per evaluation episode
(models/RUN/scores.csv); a run's score at a checkpoint is the mean of a metric over that
checkpoint's episodes (aggregate.py writes them to run_scores.csv).

rliable's vocabulary, as used here and in the rest of the package:
- a *run* is one training seed of a configuration (train.py --seeds writes RUN_seedN);
- an *algorithm* is a configuration: the runs whose names agree up to the _seedN suffix;
- a *task* is an environment (the score file's config_name);
- a run's *score* on a task is the mean of the chosen metric over the evaluation episodes
  of one of its checkpoints.
"""
from __future__ import annotations

import os
import re
from typing import Callable, Iterable, Optional

import numpy as np
import pandas as pd

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

_SEED_SUFFIX = re.compile(r"_seed\d+$")


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
    check_score_values(frame, path)
    return frame


# Columns that count (a negative or fractional value is no count), and the other numbers.
_COUNT_COLUMNS = ("seed_of_run", "update", "steps", "env_seed", "repetition", "length")


def _bad_value(path: str, frame: pd.DataFrame, row: int, column: str, need: str) -> ValueError:
    value = frame[column].iloc[row]
    shown = repr(value if isinstance(value, str) else str(value))[:60]
    return ValueError(f"{path}: row {row + 1} (line {row + 2}), column {column!r}: {shown} is "
                      f"not {need}. Fix: evaluate the run again; evaluate.py writes only "
                      f"valid rows.")


def check_score_values(frame: pd.DataFrame, path: str) -> None:
    """ValueError naming the file, the row and the column of the first value evaluate.py
    would not have written: an empty name, a count that is not a non-negative integer, a
    return or metric that is not a finite number, a success outside [0, 1]."""
    for column in _TEXT_COLUMNS:
        empty = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if empty.any():
            raise _bad_value(path, frame, int(np.argmax(empty.to_numpy())), column, "a name")
    metrics = [c for c in frame.columns if c not in EPISODE_COLUMNS]
    for column in (*_COUNT_COLUMNS, "return", "success", *metrics):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        given = frame[column].notna().to_numpy()
        if column in ("success", *metrics):       # empty where the env does not report it
            bad = given & ~np.isfinite(values)
        else:
            bad = ~np.isfinite(values)
        need = "a finite number"
        if column in _COUNT_COLUMNS:
            bad |= np.isfinite(values) & ((values < 0) | (values != np.round(values)))
            need = "a non-negative integer"
        elif column == "success":
            bad |= given & np.isfinite(values) & ((values < 0) | (values > 1))
            need = "empty or a number in [0, 1]"
        if bad.any():
            raise _bad_value(path, frame, int(np.argmax(bad)), column, need)
    for column in (*_COUNT_COLUMNS, "return", "success", *metrics):
        frame[column] = pd.to_numeric(frame[column])


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
