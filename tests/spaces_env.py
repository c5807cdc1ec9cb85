"""Environments with the observation spaces POPGym-like suites use, for the adapter tests.

Importing this module registers "CueDiscrete-v0" (Discrete observations, no time limit: it
ends its episodes itself) and "TextObs-v0" (a Text observation no model can take). The tests
use the ids "tests.spaces_env:CueDiscrete-v0" etc., which make gym.make import this module
inside the spawned worker processes too.
"""
from __future__ import annotations

from typing import Optional

import gymnasium as gym


class CueDiscrete(gym.Env):
    """Shows a cue in Discrete(n_cues) at the first step and 0 afterwards; the action at the
    last step earns 1 if it names the cue. Terminates after `length` steps, with no
    max_episode_steps registered. Its constructor takes no render_mode, as POPGym's do not."""

    def __init__(self, n_cues: int = 3, length: int = 5):
        self.observation_space = gym.spaces.Discrete(n_cues + 1)
        self.action_space = gym.spaces.Discrete(n_cues)
        self.length, self.n_cues = length, n_cues

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        self.cue, self.t = int(self.np_random.integers(self.n_cues)), 0
        return self.cue + 1, {}

    def step(self, action):
        self.t += 1
        done = self.t >= self.length
        reward = float(done and int(action) == self.cue)
        return 0, reward, done, False, {}


class TextObs(gym.Env):
    def __init__(self, render_mode: Optional[str] = None):
        self.observation_space = gym.spaces.Text(8)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        return "a", {}

    def step(self, action):
        return "a", 0.0, True, False, {}


gym.register("CueDiscrete-v0", entry_point=CueDiscrete)
gym.register("TextObs-v0", entry_point=TextObs)
