"""CartPole with the velocities hidden: the policy must infer them from consecutive steps.

Observation (float32, 2): [cart position, pole angle]. The gymnasium time limit stays
(CartPole-v1 truncates at 500 steps). environment.reset_params go to gym.make as keyword
arguments (e.g. max_episode_steps).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from environments import Family, register_family
from environments.gym_env import make_registered

DEFAULT_ID = "CartPole-v1"
# Used when the config leaves environment.name at its default, which names proof_of_memory.
_CONFIG_DEFAULT_NAME = "ProofOfMemory-v0"
# CartPole's observation is [position, velocity, angle, angular velocity].
VISIBLE_ENTRIES = (0, 2)


class HideVelocities(gym.ObservationWrapper):
    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        index = list(VISIBLE_ENTRIES)
        self.observation_space = gym.spaces.Box(
            low=space.low[index].astype(np.float32), high=space.high[index].astype(np.float32),
            dtype=np.float32)

    def observation(self, observation) -> np.ndarray:
        return np.asarray(observation, dtype=np.float32)[list(VISIBLE_ENTRIES)]


def cartpole_id(name: str) -> str:
    if name == _CONFIG_DEFAULT_NAME:
        return DEFAULT_ID
    if "CartPole" not in name:
        raise ValueError(f"cartpole_masked: environment.name = {name!r} is not a CartPole id. "
                         f"Fix: use {DEFAULT_ID!r} (or CartPole-v0), or type: gymnasium for "
                         f"other environments.")
    return name


def make(env_config, render: bool = False) -> gym.Env:
    env = make_registered(cartpole_id(env_config.name), env_config.reset_params, render)
    return HideVelocities(env)


register_family(Family(
    name="cartpole_masked", make=make, example="CartPole-v1",
    backends=("vector", "processes"),
    check=lambda env_config: cartpole_id(env_config.name),
    summary="CartPole with the velocities hidden (positions only)."))
