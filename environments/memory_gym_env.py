"""Memory Gym tasks (Pleines et al.): Mortar Mayhem, Mystery Path, Searing Spotlights and their
grid and endless variants.

Observations are uint8 (84, 84, 3) images; actions are Discrete(4) for the grid variants and
Endless-MysteryPath-v0, MultiDiscrete([3, 3]) for the others. environment.reset_params are
Memory Gym's reset parameters and are passed as `options` to every reset. At the end of an
episode Memory Gym puts its own metrics into info ("reward", "length", task metrics such as
"commands_completed", "num_fails", "coins_collected", and "success" for the finite tasks
only); they pass through. The endless variants also put a "ground_truth" array into every
step's info.

Two properties of Memory Gym shape this wrapper:
- All its envs in one process draw on pygame's single display surface, so its render()
  returns whatever env of the process drew last, and its close() quits pygame for all of them.
  Here render() returns this env's own last frame, and pygame is quit only when the last
  Memory Gym env of the process closes.
- Its observations index pixels as (x, y) (pygame's surfarray layout). They are transposed to
  the usual (row, column) image layout, which is also what its render() returns.
"""
from __future__ import annotations

from typing import Optional

import gymnasium as gym
import numpy as np

from environments import Family, register_family
from environments.gym_env import make_registered

# The MortarMayhemB ids are left out: they observe a Dict (image and command vector).
SUPPORTED_IDS = ("MortarMayhem-v0", "MortarMayhem-Grid-v0", "Endless-MortarMayhem-v0",
                 "MysteryPath-v0", "MysteryPath-Grid-v0", "Endless-MysteryPath-v0",
                 "SearingSpotlights-v0", "Endless-SearingSpotlights-v0")

# Memory Gym envs of this process that are not closed yet; see the module docstring.
_open_envs = 0


class MemoryGymEnv(gym.Wrapper):
    def __init__(self, env: gym.Env, reset_params: dict):
        super().__init__(env)
        global _open_envs
        _open_envs += 1
        self._closed = False
        self.reset_params = dict(reset_params)
        width, height, channels = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0, 255, (height, width, channels), dtype=np.uint8)
        self._last_frame: Optional[np.ndarray] = None

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        observation, info = self.env.reset(seed=seed,
                                           options={**self.reset_params, **(options or {})})
        return self._remember(observation), info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        return self._remember(observation), reward, terminated, truncated, info

    def render(self) -> np.ndarray:
        if self._last_frame is None:
            raise RuntimeError("Memory Gym env: render() called before reset(); reset it first.")
        return self._last_frame.copy()

    def close(self):
        global _open_envs
        if self._closed:
            return
        self._closed = True
        _open_envs -= 1
        if _open_envs == 0:
            super().close()

    def _remember(self, observation: np.ndarray) -> np.ndarray:
        self._last_frame = np.ascontiguousarray(observation.swapaxes(0, 1))
        return self._last_frame


def _check_name(name: str) -> None:
    if name not in SUPPORTED_IDS or name not in gym.registry:
        raise ValueError(f"memory_gym: environment.name = {name!r} is not supported. Supported "
                         f"ids: {', '.join(SUPPORTED_IDS)}.")


def _check_reset_params(name: str, env_class: type, reset_params: dict) -> None:
    known = env_class.default_reset_parameters
    unknown = sorted(set(reset_params) - set(known))
    if unknown:
        raise ValueError(f"memory_gym {name}: unknown reset_params key(s) {unknown}; known keys "
                         f"are {sorted(known)}.")
    try:
        env_class.process_reset_params(reset_params)
    except AssertionError as e:
        # Memory Gym checks value ranges with assert; report it as a configuration error now
        # rather than as an AssertionError at the first reset inside a worker.
        raise ValueError(f"memory_gym {name}: Memory Gym rejected reset_params {reset_params} "
                         f"({str(e) or 'a value is out of its allowed range'}). Fix: see the "
                         f"defaults {known}.") from e


def make(env_config, render: bool = False) -> gym.Env:
    import memory_gym  # noqa: F401  (importing registers the Memory Gym ids with gymnasium)
    _check_name(env_config.name)
    env = MemoryGymEnv(make_registered(env_config.name, {}, render), env_config.reset_params)
    try:
        _check_reset_params(env_config.name, type(env.unwrapped), env_config.reset_params)
    except ValueError:
        env.close()
        raise
    return env


def check(env_config) -> None:
    if env_config.name not in SUPPORTED_IDS:
        raise ValueError(f"environment.name = {env_config.name!r}: not a supported Memory Gym "
                         f"id. Fix: use one of {', '.join(SUPPORTED_IDS)}.")


register_family(Family(
    name="memory_gym", make=make, check=check, example="MortarMayhem-Grid-v0",
    summary="Memory Gym's Mortar Mayhem, Mystery Path and Searing Spotlights (Pleines et "
            "al.), finite, grid and endless."))
