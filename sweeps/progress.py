"""The sweep's progress line: trials done, running, pending, failed and retried, the time
since the start, and the best IQM among the grid points whose every seed is evaluated; and
the line each finished trial gets."""
from __future__ import annotations

import sys
import time
from typing import Optional

from sweeps.layout import Layout
from sweeps.plan import SweepRun
from sweeps.trial import TrialOutcome
from utils import format_duration

# Seconds between two progress lines when nothing changes.
PROGRESS_SECONDS = 30.0


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

    def __init__(self, name: str, runs: list[SweepRun], finished: set[str],
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
        over = self.finished | self.failed
        running = sum(1 for run in attempts if run not in over)
        pending = self.total - len(over) - running
        retried = sum(1 for run, n in attempts.items() if n > 1)
        return (f"sweep {self.name} {format_duration(time.time() - self.start)}: "
                f"{len(self.finished)}/{self.total} trials done ({self.before} before this "
                f"start), {running} running, {pending} pending, {len(self.failed)} failed, "
                f"{retried} retried | {self.best()}")


def report(outcome: TrialOutcome, attempts: int) -> None:
    retries = f", {attempts - 1} retr{'y' if attempts == 2 else 'ies'}" if attempts > 1 else ""
    where = f" on {outcome.node}" if outcome.node else ""
    if outcome.error:
        print(f"FAILED {outcome.run}{retries}{where}: {outcome.error}", file=sys.stderr,
              flush=True)
    else:
        how = "resumed, " if outcome.resumed else ""
        print(f"finished {outcome.run} ({how}{format_duration(outcome.seconds)}{retries})"
              f"{where}", flush=True)
