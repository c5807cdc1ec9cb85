"""Any registered gymnasium id with Box observations and Discrete or MultiDiscrete actions.

uint8 observations with three dimensions are used as (H, W, C) images unchanged; every other
Box observation is flattened to a float32 vector. environment.reset_params are passed to
gym.make as keyword arguments (e.g. max_episode_steps). To use an id that a package registers
on import, write it as "package.module:EnvId" and gym.make imports the module first (also in
the worker processes, which start without the parent's registrations).
"""
from __future__ import annotations

from typing import Optional

import gymnasium as gym
import numpy as np

from environments.spec import action_nvec


def make_registered(name: str, kwargs: dict, render: bool) -> gym.Env:
    """gym.make(name, **kwargs), turning keyword arguments the env rejects into a ValueError."""
    render_mode: Optional[str] = "rgb_array" if render else None
    try:
        return gym.make(name, render_mode=render_mode, **kwargs)
    except (gym.error.Error, ModuleNotFoundError) as e:
        # An unknown or misspelt id (or a module:Env-v0 whose module is missing): a config
        # value to fix, not a crash.
        raise ValueError(f"gym.make({name!r}): {' '.join(str(e).split())} Fix: check "
                         f"environment.name (gymnasium.pprint_registry() lists the ids).") from None
    except TypeError as e:
        # gym.make reports unexpected constructor arguments as TypeError; the arguments came
        # from the config, so say which config entry to fix.
        raise ValueError(f"gym.make({name!r}) rejected the keyword arguments {kwargs} "
                         f"(from environment.reset_params and the family defaults): {e}. "
                         f"Fix: remove or rename them in environment.reset_params.") from e


def is_image_space(space: gym.spaces.Box) -> bool:
    return space.dtype == np.uint8 and len(space.shape) == 3


class FlattenToFloat32(gym.ObservationWrapper):
    """Presents any Box observation as a flat float32 vector."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(
            low=np.asarray(space.low, dtype=np.float32).reshape(-1),
            high=np.asarray(space.high, dtype=np.float32).reshape(-1), dtype=np.float32)

    def observation(self, observation) -> np.ndarray:
        return np.asarray(observation, dtype=np.float32).reshape(-1)


def _check_spaces(name: str, env: gym.Env) -> None:
    if not isinstance(env.observation_space, gym.spaces.Box):
        raise ValueError(f"environment {name!r} has observation space {env.observation_space}; "
                         f"the gymnasium family supports Box observations only (uint8 (H, W, C) "
                         f"images or anything that flattens to a vector). Fix: choose another "
                         f"id or wrap the env so that it observes a single Box.")
    try:
        action_nvec(env.action_space)
    except ValueError as e:
        raise ValueError(f"environment {name!r}: {e} Fix: choose an environment with discrete "
                         f"actions.") from None


def make(env_config, render: bool = False) -> gym.Env:
    env = make_registered(env_config.name, env_config.reset_params, render)
    try:
        _check_spaces(env_config.name, env)
    except ValueError:
        env.close()
        raise
    if is_image_space(env.observation_space):
        return env
    return FlattenToFloat32(env)
