"""One trial, in a Ray worker: train.py (resuming from the run's last checkpoint when it has
one), then evaluate.py on the run, as child processes whose output goes to the trial's log.
A child killed or interrupted makes the trial raise TrialInterrupted, which Ray retries."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Optional

from runs.paths import latest_model_file
from sweeps.layout import Layout
from sweeps.plan import Trial

# train.py's exit status after it saved on SIGINT/SIGTERM (a drained or preempted node).
INTERRUPTED = 130


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
    node: str = ""                # where the last attempt ran; "" when Ray lost the task


class TrialInterrupted(RuntimeError):
    """The trial's process was killed or interrupted: Ray retries the trial, which resumes."""


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
        # No checkpoint: an attempt killed before its first one left at most its TensorBoard
        # folder, which train.py would refuse to start over without --overwrite.
        training = [python, train, "--config", layout.point_config(t.point), "--run-id", t.run,
                    "--seed", str(t.seed), "--overwrite"]
    evaluation = [python, os.path.join(job.code_dir, "evaluate.py"), t.run,
                  "--models-dir", layout.models, "--processes", str(job.cpus)]
    return ([training + folders] if t.train else []) + [evaluation]


def log_tail(path: str, lines: int = 5) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(f.readlines()[-lines:]).rstrip()


def node_name() -> str:
    """The Ray node running this task: its host and the start of its node id, since several
    nodes can share a host (`ray list nodes` shows the whole id)."""
    import ray
    return f"{socket.gethostname()} (node {ray.get_runtime_context().get_node_id()[:8]})"


def run_trial(job: TrialJob, board) -> TrialOutcome:
    """The Ray task. Raises TrialInterrupted (which Ray retries) when a child was killed."""
    start, trial, node = time.time(), job.trial, node_name()
    board.started.remote(trial.run)
    checkpoint = latest_model_file(job.layout.models, trial.run) if trial.train else None
    resume = checkpoint is not None
    log_path = job.layout.log(trial.run)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        what = ("evaluating" if not trial.train else
                f"resuming from {checkpoint}:" if resume else "starting")
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {node}: {what} {trial.run}\n")
        for command in trial_commands(job, checkpoint):
            status = run_child(command, log, job)
            if status < 0 or status == INTERRUPTED:
                raise TrialInterrupted(f"{trial.run}: {os.path.basename(command[1])} was "
                                       f"stopped (exit status {status})")
            if status:
                log.flush()
                return TrialOutcome(trial.run, time.time() - start, resume,
                                    f"{os.path.basename(command[1])} exited with {status}; "
                                    f"{log_path} ends:\n{log_tail(log_path)}", node)
    return TrialOutcome(trial.run, time.time() - start, resume, node=node)


class Board:
    """A Ray actor the trials report their starts to: which run, how many attempts."""

    def __init__(self):
        self.attempts: dict[str, int] = {}

    def started(self, run: str) -> None:
        self.attempts[run] = self.attempts.get(run, 0) + 1

    def snapshot(self) -> dict[str, int]:
        return dict(self.attempts)
