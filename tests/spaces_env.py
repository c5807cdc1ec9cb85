"""Environments with the observation spaces POPGym-like suites use, for the adapter tests.

Importing this module registers "CueDiscrete-v0" (Discrete observations, no time limit: it
ends its episodes itself), "TextObs-v0" (a Text observation no model can take),
"IntegerActions-v0" (a Box of integer actions, refused), and for the
action tests "MaskedChoice-v0" and "MaskedDict-v0" (action masks in the info, or in a Dict
observation; both raise on a masked action) and "MixedActions-v0" (a Dict of Box, Discrete
and MultiBinary actions, checked on arrival). The tests use the ids
"tests.spaces_env:CueDiscrete-v0" etc., which make gym.make import this module inside the
spawned worker processes too.
"""
from __future__ import annotations

from typing import Optional

import gymnasium as gym
import numpy as np


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


class IntegerActions(gym.Env):
    """Acts in a Box of integers, which no action head takes."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(-1, 1, (2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(0, 5, (2,), dtype=np.int64)

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, True, False, {}


class MaskedAction(RuntimeError):
    """An env of this module received an action its mask forbade."""


class MaskedChoice(gym.Env):
    """Discrete(5) actions, a fresh random mask each step in info["action_mask"] (each
    choice allowed with probability 1/2, at least one); the observation shows the mask.
    Pays 1 for the highest allowed choice, raises MaskedAction on a forbidden one. Episodes
    last `length` steps."""

    def __init__(self, length: int = 8):
        self.observation_space = gym.spaces.Box(0, 1, (5,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(5)
        self.length = length

    def _new_mask(self) -> np.ndarray:
        mask = self.np_random.integers(0, 2, 5).astype(np.int8)
        mask[self.np_random.integers(5)] = 1
        self.mask = mask
        return mask

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        self.t = 0
        mask = self._new_mask()
        return mask.astype(np.float32), {"action_mask": mask}

    def step(self, action):
        if not self.mask[int(action)]:
            raise MaskedAction(f"action {action} is masked by {self.mask.tolist()}")
        reward = float(int(action) == int(np.flatnonzero(self.mask)[-1]))
        self.t += 1
        mask = self._new_mask()
        return mask.astype(np.float32), reward, self.t >= self.length, False, \
            {"action_mask": mask}


class MaskedDict(gym.Env):
    """MultiDiscrete([2, 3]) actions, the mask (2 + 3 values) in the observation's
    "action_mask" entry, PettingZoo's convention; raises MaskedAction on a forbidden one."""

    def __init__(self, length: int = 6):
        self.observation_space = gym.spaces.Dict({
            "observation": gym.spaces.Box(-1, 1, (3,), dtype=np.float32),
            "action_mask": gym.spaces.MultiBinary(5)})
        self.action_space = gym.spaces.MultiDiscrete([2, 3])
        self.length = length

    def _observation(self) -> dict:
        mask = self.np_random.integers(0, 2, 5).astype(np.int8)
        mask[self.np_random.integers(2)] = 1
        mask[2 + self.np_random.integers(3)] = 1
        self.mask = mask
        return {"observation": self.np_random.uniform(-1, 1, 3).astype(np.float32),
                "action_mask": mask}

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        self.t = 0
        return self._observation(), {}

    def step(self, action):
        first, second = (int(a) for a in action)
        if not (self.mask[first] and self.mask[2 + second]):
            raise MaskedAction(f"action {list(action)} is masked by {self.mask.tolist()}")
        self.t += 1
        return self._observation(), 0.0, self.t >= self.length, False, {}


class MixedActions(gym.Env):
    """Dict actions {"flags": MultiBinary(2), "move": Box(-1, 1, (2,)), "pick":
    Discrete(3, start=1)}; raises ValueError for an action outside the space. Pays
    -|move - target| for a target shown in the observation."""

    def __init__(self, length: int = 10):
        self.observation_space = gym.spaces.Box(-1, 1, (2,), dtype=np.float32)
        self.action_space = gym.spaces.Dict({
            "move": gym.spaces.Box(-1, 1, (2,), dtype=np.float32),
            "pick": gym.spaces.Discrete(3, start=1), "flags": gym.spaces.MultiBinary(2)})
        self.length = length

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        self.t = 0
        self.target = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self.target.copy(), {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action {action} is outside {self.action_space}")
        self.t += 1
        reward = -float(np.abs(action["move"] - self.target).sum())
        return self.target.copy(), reward, self.t >= self.length, False, {}


gym.register("CueDiscrete-v0", entry_point=CueDiscrete)
gym.register("TextObs-v0", entry_point=TextObs)
gym.register("IntegerActions-v0", entry_point=IntegerActions)
gym.register("MaskedChoice-v0", entry_point=MaskedChoice)
gym.register("MaskedDict-v0", entry_point=MaskedDict)
gym.register("MixedActions-v0", entry_point=MixedActions)
