"""A deliberately failing environment for the worker pool tests.

Importing this module registers "Faulty-v0". The tests use the id "tests.faulty_env:Faulty-v0",
which makes gym.make import this module inside the spawned worker processes too (they start
with gymnasium's built-in registry only).

The env behaves like a trivial counter until its step number `fail_at_step`; then, if it was
first reset with `fail_seed` (or fail_seed is None), it raises (mode "raise"), kills its
own process with SIGSEGV (mode "crash"), as a segfaulting native library would, or loops
for ever (mode "hang"). With
`step_seconds` every step first sleeps that long: a slow environment.
"""
from __future__ import annotations

import os
import signal
import time
from typing import Optional

import gymnasium as gym
import numpy as np

FAILURE_TEXT = "deliberate failure of FaultyEnv"


class FaultyEnv(gym.Env):
    def __init__(self, render_mode: Optional[str] = None, fail_at_step: int = 3,
                 fail_seed: Optional[int] = None, mode: str = "raise", step_seconds: float = 0.0):
        if mode not in ("raise", "crash", "hang"):
            raise ValueError(f"FaultyEnv: mode = {mode!r}: use 'raise', 'crash' or 'hang'.")
        self.render_mode = render_mode
        self.fail_at_step = fail_at_step
        self.fail_seed = fail_seed
        self.mode = mode
        self.step_seconds = step_seconds
        self.observation_space = gym.spaces.Box(0.0, np.inf, (1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self._first_seed: Optional[int] = None
        self._t = 0

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        if self._first_seed is None:
            self._first_seed = seed
        self._t = 0
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        time.sleep(self.step_seconds)
        self._t += 1
        if self._t == self.fail_at_step and self.fail_seed in (None, self._first_seed):
            self._fail()
        return np.full(1, self._t, dtype=np.float32), 0.0, False, False, {}

    def _fail(self) -> None:
        if self.mode == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        while self.mode == "hang":
            pass
        raise RuntimeError(f"{FAILURE_TEXT} at step {self._t} (first seed {self._first_seed})")


gym.register(id="Faulty-v0", entry_point="tests.faulty_env:FaultyEnv")
