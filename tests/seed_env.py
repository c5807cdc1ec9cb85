"""An environment that shows the seed of its episode: for the env backends' tests of which
seeds training and evaluation episodes use.

Importing this module registers "SeedEcho-v0" (the tests use "tests.seed_env:SeedEcho-v0",
so that the env processes import it too). The observation is [seed // 2^16, seed % 2^16,
step] (float32 holds each part exactly); an episode lasts `length` steps and ends by
termination, or by truncation with `truncate`.
"""
from __future__ import annotations

from typing import Optional

import gymnasium as gym
import numpy as np

HALF = 2**16


class SeedEcho(gym.Env):
    def __init__(self, render_mode: Optional[str] = None, length: int = 3,
                 truncate: bool = False):
        self.render_mode, self.length, self.truncate = render_mode, length, truncate
        self.observation_space = gym.spaces.Box(0.0, np.inf, (3,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self._seed, self._t = 0, 0

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        self._seed, self._t = int(seed or 0), 0
        return self._observation(), {}

    def step(self, action):
        self._t += 1
        ended = self._t >= self.length
        return (self._observation(), 1.0, ended and not self.truncate,
                ended and self.truncate, {"success": 1.0} if ended else {})

    def _observation(self) -> np.ndarray:
        return np.array([self._seed // HALF, self._seed % HALF, self._t], dtype=np.float32)


def seed_of(observation: np.ndarray) -> int:
    return int(observation[0]) * HALF + int(observation[1])


gym.register(id="SeedEcho-v0", entry_point="tests.seed_env:SeedEcho")
