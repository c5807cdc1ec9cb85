"""Steps `n_envs` environments in `n_processes` spawned processes.

Each process owns a contiguous slice of the environments and steps them one after another.
Observations travel through shared memory; per step the main process sends one message (the
actions of its slice) to every process and then collects one reply (rewards, flags, finished
episodes) from each, so the processes step in parallel and there is no per-env round trip.
Messages are typed records (worker_messages.py): a Command to a process, a Reply or a Failure
back.

This module must not import torch: the worker processes import it, and they should start fast.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from multiprocessing import resource_tracker, shared_memory
from multiprocessing.connection import Connection
from typing import Any, Optional

import numpy as np

from config import STEP_TIMEOUT_SECONDS
from env_backends.base import EnvBackend, EnvState, ReplayMismatch, StepResult
from env_backends.env_slice import EnvSlice, SliceStep
from env_backends.replay import EpisodeRecord
from environments import SpaceSpec
from worker_messages import (Attach, Close, Command, Failure, Reply, Reset, Restore, Step,
                             shared_array)

# How often a waiting side checks that the other side is still alive.
POLL_SECONDS = 1.0
# How long close() waits for the processes to exit before terminating them.
JOIN_SECONDS = 5.0


# --------------------------------------------------------------------------------------
# Worker process
# --------------------------------------------------------------------------------------

class _Worker(EnvSlice):
    """The environments of one process and the commands the pool sends them."""

    def __init__(self, conn: Connection, env_config, info_masks: bool, first_env: int,
                 seeds: list[int], episodes: list[int], current):
        self._current = current         # shared with the pool, which names a hung env by it
        super().__init__(seeds, episodes, first_env)
        self.conn = conn
        self.env_config, self.info_masks = env_config, info_masks

    @property
    def current(self) -> Optional[int]:
        """Index (within this slice) of the env being worked on, for error reports."""
        return None if self._current.value < 0 else self._current.value

    @current.setter
    def current(self, j: Optional[int]) -> None:
        self._current.value = -1 if j is None else j

    def serve(self) -> None:
        """Create the envs, report their spec, then answer commands until told to close."""
        try:
            self.conn.send(Reply(self._create_envs()))
            while (command := self._next_command()) is not None and \
                    not isinstance(command, Close):
                self.current = None
                self.conn.send(Reply(self._handle(command)))
        except ReplayMismatch as e:
            self._report(Failure(self.current, traceback.format_exc(), str(e)))
        except Exception:
            self._report(Failure(self.current, traceback.format_exc()))

    def _report(self, message: Failure) -> None:
        try:
            self.conn.send(message)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the pool is gone; there is nobody left to tell

    def _next_command(self) -> Optional[Command]:
        """The next command, or None once the parent process has gone away."""
        parent = mp.parent_process()
        while not self.conn.poll(POLL_SECONDS):
            if parent is not None and not parent.is_alive():
                return None
        try:
            return self.conn.recv()
        except EOFError:
            return None

    def _handle(self, command: Command) -> Any:
        handlers = {Attach: self._attach, Reset: lambda c: self.reset_all(c.seeds),
                    Step: lambda c: self.step(c.actions),
                    Restore: lambda c: self.restore(c.episodes, c.actions)}
        assert type(command) in handlers, f"unknown command {command!r}"
        return handlers[type(command)](command)

    def _create_envs(self) -> dict:
        spec = self.create_envs(self.env_config, self.info_masks)
        # pygame (Memory Gym) lets SDL catch SIGTERM, which would make Process.terminate()
        # unable to stop this process.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return spec.to_dict()

    def _attach(self, command: Attach) -> None:
        mine = slice(self.first_env, self.first_env + len(self.envs))
        obs, final_obs = (
            shared_array(shared_memory.SharedMemory(name=name), command.shape,
                          command.dtype)[mine]
            for name in (command.obs_name, command.final_obs_name))
        masks = None
        if command.mask_name is not None:
            masks = shared_array(shared_memory.SharedMemory(name=command.mask_name),
                                 (command.shape[0], command.mask_size), "bool")[mine]
        self.attach(obs, final_obs, masks)


def _worker_main(conn: Connection, env_config, info_masks: bool, first_env: int,
                 seeds: list[int], episodes: list[int], current) -> None:
    # Ctrl-C and a closed terminal's SIGHUP reach the whole process group; the trainer
    # handles them and closes the pool (a worker also exits when its parent is gone).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    worker = _Worker(conn, env_config, info_masks, first_env, seeds, episodes, current)
    try:
        worker.serve()
    finally:
        worker.close()


# --------------------------------------------------------------------------------------
# Main process
# --------------------------------------------------------------------------------------

class _WorkerFailed(Exception):
    """A process reported an error, died or stopped answering; the message says which and
    why."""


def _check_arguments(n_envs: int, n_processes: int, seeds: list[int]) -> None:
    if n_envs < 1:
        raise ValueError(f"WorkerPool: n_envs = {n_envs}: needs at least one environment.")
    if not 1 <= n_processes <= n_envs:
        raise ValueError(f"WorkerPool: n_processes = {n_processes}: must lie in [1, n_envs = "
                         f"{n_envs}].")
    if len(seeds) != n_envs:
        raise ValueError(f"WorkerPool: got {len(seeds)} seeds for {n_envs} environments; pass "
                         f"one seed per environment.")
    for i, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"WorkerPool: seeds[{i}] = {seed!r}: seeds must be non-negative "
                             f"integers.")


def _contiguous_slices(n_envs: int, n_processes: int) -> list[slice]:
    """Split range(n_envs) into n_processes contiguous slices whose sizes differ by at most 1."""
    base, extra = divmod(n_envs, n_processes)
    slices, start = [], 0
    for p in range(n_processes):
        stop = start + base + (1 if p < extra else 0)
        slices.append(slice(start, stop))
        start = stop
    return slices


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (which frees the shared memory) ignoring
    SIGHUP: a closed terminal sends SIGHUP to the whole process group, and the tracker, dead,
    would print tracebacks while the trainer saves. It ignores SIGINT and SIGTERM itself;
    an ignored signal stays ignored across exec."""
    if threading.current_thread() is not threading.main_thread():
        resource_tracker.ensure_running()
        return
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, previous)


def _describe_exit(exitcode: Optional[int]) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"was killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


class WorkerPool(EnvBackend):
    """`n_envs` environments stepped in `n_processes` processes; see the module docstring.

    Env i's k-th episode is seeded with episode_seed(seeds[i], k). `obs` is the
    shared (n_envs, *obs_shape) array of observations to act on next. When an episode ends,
    `final_obs[i]` receives its last observation and `obs[i]` the first of the next episode;
    final_obs[i] is meaningful only where terminated[i] or truncated[i] of that step.
    `action_masks` is the shared (n_envs, sum(nvec)) bool array of the masks of `obs` when
    the envs supply masks, else None. Use as a context manager or call close().
    """
    spec: SpaceSpec
    obs: np.ndarray
    final_obs: np.ndarray

    def __init__(self, env_config, n_envs: int, n_processes: int, seeds: list[int],
                 max_restarts: int = 0, info_masks: bool = False,
                 step_timeout: float = STEP_TIMEOUT_SECONDS):
        _check_arguments(n_envs, n_processes, seeds)
        # A process that has not answered a command within step_timeout seconds per step of
        # each of its envs hangs (or was stopped): it is killed and reported like a crash.
        self.step_timeout = step_timeout
        # A failed env process is restarted up to max_restarts times in all (0 = never).
        self.max_restarts, self.restarts = max_restarts, 0
        # Whether the envs put action masks into their info (environments.check_in_parent
        # finds out); masks in a Dict observation are found without it.
        self.env_config, self.info_masks = env_config, info_masks
        self.n_envs = n_envs
        self.seeds = [int(seed) for seed in seeds]
        self._slices = _contiguous_slices(n_envs, n_processes)
        self._processes: list[mp.process.BaseProcess] = []
        self._conns: list[Connection] = []
        self._current: list = []       # per process: the env it works on (shared int)
        self._shared: list[shared_memory.SharedMemory] = []
        self._closed = False
        self._failure: Optional[str] = None
        self._in_flight: Optional[np.ndarray] = None      # actions of a started step
        self._masks: Optional[np.ndarray] = None
        self.record: Optional[EpisodeRecord] = None        # once the spec is known
        try:
            _start_resource_tracker()
            self._start_processes()
            self.spec = self._agreed_spec(self._collect())
            self.obs, self.final_obs = self._create_shared_arrays()
            self._send_all(self._attach_command())
            self._collect()
            self.record = EpisodeRecord(self.spec, n_envs)
        except BaseException:
            self.close()
            raise

    @property
    def n_processes(self) -> int:
        return len(self._slices)

    @property
    def action_masks(self) -> Optional[np.ndarray]:
        return self._masks

    def reset(self, seeds=None) -> np.ndarray:
        """Reset every environment; returns the shared observation array. Episodes still
        running are dropped without an EpisodeInfo."""
        self._check_usable()
        for p, envs in enumerate(self._slices):
            self._send(p, Reset(None if seeds is None else [int(s) for s in seeds[envs]]))
        self._collect()
        self.record.started()
        return self.obs

    def state(self) -> EnvState:
        return self.record.state()

    def restore(self, state: EnvState) -> np.ndarray:
        """Put every env back into the episode a checkpoint recorded (state()): env i's
        episodes[i]-th episode after its recorded actions (shape (n, action dims)). Returns
        obs."""
        self._check_usable()
        episodes, actions = self.record.checked(state)
        for p, envs in enumerate(self._slices):
            self._send(p, Restore([int(e) for e in episodes[envs]], actions[envs]))
        self._collect(steps=1 + max((len(a) for a in actions), default=0))
        self.record.restored(episodes, actions)
        return self.obs

    def step_async(self, actions: np.ndarray) -> None:
        """Start a step and return at once: the envs run while the caller does other work
        (the sampler fills its buffer). step_wait() finishes it; until then `obs` and
        `final_obs` are being overwritten and no other call may be made."""
        self._check_usable()
        actions = self.spec.checked_actions(actions, self.n_envs, "WorkerPool.step")
        for p, envs in enumerate(self._slices):
            self._send(p, Step(actions[envs]))
        self._in_flight = actions

    def step_wait(self) -> StepResult:
        """The result of the step that step_async() started."""
        if self._in_flight is None:
            raise RuntimeError("WorkerPool.step_wait: no step is in flight. Fix: call "
                               "step_async(actions) first, or step(actions) for both.")
        actions, self._in_flight = self._in_flight, None
        parts: list[SliceStep] = self._collect(restartable=True)
        terminated = np.concatenate([part.terminated for part in parts])
        truncated = np.concatenate([part.truncated for part in parts])
        self.record.track(actions, terminated | truncated)
        return StepResult(obs=self.obs,
                          rewards=np.concatenate([part.rewards for part in parts]),
                          terminated=terminated, truncated=truncated,
                          episodes=[episode for part in parts for episode in part.episodes],
                          final_obs=self.final_obs, action_masks=self._masks)

    def close(self) -> None:
        """Stop the processes (terminating those that do not exit) and free the shared memory."""
        if self._closed:
            return
        self._closed = True
        self._send_all(Close())
        deadline = time.monotonic() + JOIN_SECONDS
        for process in self._processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self._processes:
            if process.is_alive():
                process.terminate()
                process.join(JOIN_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
        for conn in self._conns:
            conn.close()
        for shm in self._shared:
            # The mapping itself goes away with the last array that uses it (_SharedArray).
            shm.unlink()
        self._shared = []

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ----- setup -----

    def _start_processes(self) -> None:
        for p in range(len(self._slices)):
            self._current.append(None)
            process, conn = self._spawn(p)
            self._processes.append(process)
            self._conns.append(conn)

    def _spawn(self, p: int) -> tuple[mp.process.BaseProcess, Connection]:
        context = mp.get_context("spawn")
        envs = self._slices[p]
        parent_end, child_end = context.Pipe()
        self._current[p] = context.RawValue("q", -1)
        process = context.Process(
            target=_worker_main, name=f"env-process-{p}", daemon=True,
            args=(child_end, self.env_config, self.info_masks, envs.start, self.seeds[envs],
                  self._episode_counts(envs), self._current[p]))
        process.start()
        child_end.close()
        return process, parent_end

    def _episode_counts(self, envs: slice) -> list[int]:
        """Resets so far of the envs of a slice (a restarted process continues from them)."""
        if self.record is None:
            return [0] * (envs.stop - envs.start)
        return [int(e) for e in self.record.episodes[envs]]

    def _restart(self, p: int, failure: str) -> SliceStep:
        """Replace failed process p by a fresh one whose envs start new episodes (with the
        next seeds). Returns the step reply for its slice: every episode cut as a time-limit
        truncation, bootstrapped from the last observation the pool holds."""
        envs = self._slices[p]
        self.restarts += 1
        print(f"WorkerPool: restarting env process {p} (restart {self.restarts} of at most "
              f"{self.max_restarts}) after:\n{failure}", file=sys.stderr, flush=True)
        old = self._processes[p]
        if old.is_alive():
            old.kill()
        old.join()
        self._conns[p].close()
        self._processes[p], self._conns[p] = self._spawn(p)
        self._receive(p)                                             # its spec
        self._send(p, self._attach_command())
        self._receive(p)
        self.final_obs[envs] = self.obs[envs]
        self._send(p, Reset())
        self._receive(p)
        n = envs.stop - envs.start
        return SliceStep(np.zeros(n, np.float32), np.zeros(n, bool), np.ones(n, bool), [])

    def _attach_command(self) -> Attach:
        """Tells an env process the shared blocks to write its observations and masks to."""
        mask_name = self._shared[2].name if self.spec.action_mask else None
        return Attach(self._shared[0].name, self._shared[1].name, self.obs.shape,
                      self.spec.obs_dtype, mask_name, self.spec.mask_size)

    def _agreed_spec(self, spec_dicts: list[dict]) -> SpaceSpec:
        specs = [SpaceSpec.from_dict(d) for d in spec_dicts]
        if any(spec != specs[0] for spec in specs):
            raise RuntimeError(f"WorkerPool: the env processes of {self._env_name()} report "
                               f"different spaces: {specs}. The environment's spaces must not "
                               f"depend on its seed or process.")
        return specs[0]

    def _create_shared_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """obs and final_obs; and action_masks, when the envs supply masks."""
        arrays = [self._shared_block((self.n_envs, *self.spec.obs_shape), self.spec.obs_dtype)
                  for _ in range(2)]
        if self.spec.action_mask:
            self._masks = self._shared_block((self.n_envs, self.spec.mask_size), "bool")
        return arrays[0], arrays[1]

    def _shared_block(self, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        shm = shared_memory.SharedMemory(create=True, size=max(nbytes, 1))
        self._shared.append(shm)
        return shared_array(shm, shape, dtype)

    # ----- messaging -----

    def _send(self, p: int, message: Command) -> None:
        try:
            self._conns[p].send(message)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the process is dead; _receive reports that with its exit code

    def _send_all(self, message: Command) -> None:
        for p in range(len(self._conns)):
            self._send(p, message)

    def _collect(self, restartable: bool = False, steps: int = 1) -> list:
        """One reply from every process, each within `steps` step timeouts per env of its
        slice; RuntimeError if any of them failed (unless it may be restarted: then its reply
        is the one _restart makes up)."""
        replies, failures = [], []
        start = time.monotonic()
        for p in range(len(self._conns)):
            envs = self._slices[p]
            deadline = start + self.step_timeout * steps * (envs.stop - envs.start)
            try:
                replies.append(self._receive(p, deadline))
            except _WorkerFailed as failure:
                if restartable and self.restarts < self.max_restarts:
                    replies.append(self._restart(p, str(failure)))
                else:
                    failures.append(str(failure))
        if failures:
            self._failure = failures[0]
            others = f"\n({len(failures) - 1} more env process(es) failed as well.)" \
                if len(failures) > 1 else ""
            raise RuntimeError(failures[0] + others)
        return replies

    def _receive(self, p: int, deadline: Optional[float] = None) -> Any:
        conn, process = self._conns[p], self._processes[p]
        if deadline is None:
            envs = self._slices[p]
            deadline = time.monotonic() + self.step_timeout * (envs.stop - envs.start)
        # Poll with a timeout so that a process that died or hangs cannot hang us.
        while not conn.poll(max(0.0, min(POLL_SECONDS, deadline - time.monotonic()))):
            if not process.is_alive() and not conn.poll(0):
                raise _WorkerFailed(self._death_message(p))
            if time.monotonic() >= deadline:
                message = self._timeout_message(p)
                process.kill()          # stopped or looping: it will never answer
                raise _WorkerFailed(message)
        try:
            message = conn.recv()
        except EOFError:
            raise _WorkerFailed(self._death_message(p)) from None
        if isinstance(message, Failure) and message.replay is not None:
            self._failure = message.replay
            raise ReplayMismatch(f"{self._where(p, message.env_in_slice)}: {message.replay}")
        if isinstance(message, Failure):
            raise _WorkerFailed(self._error_message(p, message.env_in_slice, message.traceback))
        return message.value

    # ----- errors -----

    def _env_name(self) -> str:
        return f"{self.env_config.type}/{self.env_config.name}"

    def _process_description(self, p: int) -> str:
        envs = self._slices[p]
        return (f"env process {p} (pid {self._processes[p].pid}, workers {envs.start}.."
                f"{envs.stop - 1}, seeds {self.seeds[envs]})")

    def _where(self, p: int, env_in_slice: Optional[int]) -> str:
        """The environment (worker and seed) that failed, or its process when unknown."""
        if env_in_slice is None:
            return f"{self._process_description(p)} of environment {self._env_name()}"
        i = self._slices[p].start + env_in_slice
        return (f"environment {self._env_name()}, worker {i} (seed {self.seeds[i]}), in "
                f"env process {p} (pid {self._processes[p].pid})")

    def _error_message(self, p: int, env_in_slice: Optional[int], traceback_text: str) -> str:
        return f"WorkerPool: {self._where(p, env_in_slice)} raised an exception:\n{traceback_text}"

    def _timeout_message(self, p: int) -> str:
        j = self._current[p].value
        return (f"WorkerPool: {self._where(p, None if j < 0 else j)} has not answered within step_timeout = "
                f"{self.step_timeout:g} s per step (it hangs, or the process was stopped); "
                f"the process was killed. Fix: find why the environment hangs, or raise "
                f"step_timeout if its steps are that slow.")

    def _death_message(self, p: int) -> str:
        process = self._processes[p]
        process.join(POLL_SECONDS)  # let the exit code arrive
        return (f"WorkerPool: {self._process_description(p)} of environment {self._env_name()} "
                f"{_describe_exit(process.exitcode)} without replying (a crash in the "
                f"environment's native code, a kill, or running out of memory).")

    def _check_usable(self) -> None:
        if self._closed:
            raise RuntimeError("WorkerPool: used after close(); create a new pool.")
        if self._failure is not None:
            first_line = self._failure.splitlines()[0]
            raise RuntimeError(f"WorkerPool: unusable after an earlier failure ({first_line}). "
                               f"Fix: close it and create a new pool.")
        if self._in_flight is not None:
            raise RuntimeError("WorkerPool: a step is in flight. Fix: call step_wait() before "
                               "anything else.")
