"""Ray: joining a cluster (--address) or starting Ray on this machine, checking that a trial
can run anywhere at all, submitting every trial as a task, following them to the end, and
cancelling them on Ctrl-C (each trial's train.py saves its last update)."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
from typing import Optional

from preflight.refusal import RefusedInput
from sweeps.layout import Layout
from sweeps.plan import Trial
from sweeps.progress import Progress, report
from sweeps.trial import INTERRUPTED, Board, TrialInterrupted, TrialJob, TrialOutcome, run_trial

RAY_MISSING = ("sweep.py runs its trials with Ray, an optional dependency that is not "
               "installed. Fix: pip install -r requirements-ray.txt")
# How long --address may take to accept a connection before the sweep says nothing answers.
CONNECT_SECONDS = 10.0
# How long an interrupted sweep waits for its trials to save their last update.
CANCEL_SECONDS = 60.0


def import_ray():
    """Ray, or RefusedInput saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RefusedInput(RAY_MISSING) from None
    return ray


def ray_auth_problem(address: str) -> str:
    """What to do when the cluster refused this machine's token (or its lack of one)."""
    mode = os.environ.get("RAY_AUTH_MODE")
    if (mode or "").lower() == "token":
        problem = ("the cluster refused this machine's token (RAY_AUTH_TOKEN, else the file "
                   "RAY_AUTH_TOKEN_PATH names, else ~/.ray/auth_token)")
    else:
        problem = (f"the cluster asks for a token, and RAY_AUTH_MODE is "
                   f"{mode or 'unset'} here, so none was sent")
    return (f"--address {address}: {problem}. Fix: export RAY_AUTH_MODE=token and the head "
            f"node's token, RAY_AUTH_TOKEN=... as `ray get-auth-token` prints it there (or "
            f"copy its ~/.ray/auth_token here), then start sweep.py again; docs/sweeps.md "
            f"shows the commands for every node.")


@contextlib.contextmanager
def quiet_stderr():
    """Ray's C++ core logs each refused connection on file descriptor 2; the sweep says it
    once, in its own message."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def check_address(ray, address: str) -> None:
    """RefusedInput, at once, where ray.init(address=...) would fail badly: with nothing
    listening there it waits without end, and a refused token looks like a lost connection
    after 20 s of retries (Ray 2.60)."""
    from ray._private import services
    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available)
    if address == "auto":
        # What ray.init does for "auto" (never for HOST:PORT): with RAY_AUTH_MODE unset, use
        # the token of this machine when it has one. Quietly: Ray's note that it did so says
        # "for this Ray cluster", which a sweep does not start.
        setup = logging.getLogger(maybe_enable_token_auth_if_token_available.__module__)
        level = setup.level
        setup.setLevel(logging.ERROR)
        try:
            maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
        finally:
            setup.setLevel(level)
    start = ("Fix: start the head node with `ray start --head --port PORT` and pass "
             "--address HEAD:PORT, as `ray start --head` prints it")
    try:
        gcs = services.canonicalize_bootstrap_address_or_die(address)
    except (ConnectionError, ValueError) as e:
        raise RefusedInput(f"--address {address}: {e} {start}.") from None
    host, port = gcs.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as e:
        raise RefusedInput(f"--address {address}: nothing answers at {gcs} "
                         f"({e.strerror or type(e).__name__}). {start}.") from None
    try:
        with quiet_stderr():
            ray._raylet.GcsClient(address=gcs)      # what ray.init connects to first
    except ray.exceptions.AuthenticationError:
        raise RefusedInput(ray_auth_problem(address)) from None
    except ray.exceptions.RpcError as e:
        raise RefusedInput(f"--address {address}: {gcs} answers, but not as a Ray head node "
                         f"({e}). {start}.") from None


def start_ray(ray, address: Optional[str]) -> None:
    # Trial output goes to models/SWEEP/logs/; the console keeps the progress lines.
    if not address:
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
        return
    check_address(ray, address)
    try:
        ray.init(address=address, log_to_driver=False)
    except ray.exceptions.AuthenticationError:
        raise RefusedInput(ray_auth_problem(address)) from None
    except ConnectionError as e:
        raise RefusedInput(f"--address {address}: cannot join a Ray cluster there ({e}). "
                         f"Fix: start one with `ray start --head` on the head node, or pass "
                         f"its HOST:PORT.") from None


def check_some_node_fits(ray, args: argparse.Namespace) -> None:
    """Stop when no node can ever run a trial: its tasks would wait forever."""
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    if any(r.get("CPU", 0) >= args.cpus_per_run and r.get("GPU", 0) >= args.gpus_per_run
           for r in nodes):
        return
    have = "; ".join(f"{r.get('CPU', 0):g} CPU, {r.get('GPU', 0):g} GPU" for r in nodes)
    problem = (f"--cpus-per-run {args.cpus_per_run} --gpus-per-run {args.gpus_per_run:g}: no "
               f"Ray node has that much ({have})")
    if not args.address:
        raise RefusedInput(f"{problem}. Fix: ask for less, or join a cluster with "
                         f"--address.")
    print(f"note: {problem}; the trials wait until such a node joins.", file=sys.stderr)


def collect(ray, ref, run: str) -> TrialOutcome:
    """The outcome of a finished task; a task that failed for good becomes a failed trial."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        return TrialOutcome(run, 0.0, False, f"{type(e).__name__}: {reason}")


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
               progress: Progress, code_dir: str) -> int:
    """Every trial as a Ray task running the code of `code_dir` (the same path on every node);
    0 when all finished, 1 when some failed, 130 when interrupted."""
    start_ray(ray, args.address)
    try:
        check_some_node_fits(ray, args)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        # On this node: anywhere else, losing that node would lose the board and the sweep.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(),
                                              soft=False)
        board = ray.remote(num_cpus=0, scheduling_strategy=here)(Board).remote()
        task = ray.remote(run_trial).options(
            num_cpus=args.cpus_per_run, num_gpus=args.gpus_per_run,
            max_retries=args.max_retries, retry_exceptions=[TrialInterrupted])
        refs = {task.remote(TrialJob(trial, layout, code_dir, args.cpus_per_run,
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
