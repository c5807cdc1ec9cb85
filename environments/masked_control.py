"""Continuous control with half of the state hidden: positions only or velocities only.

The "-P" and "-V" tasks of Ni et al. (ICML 2022, "Recurrent model-free RL can be a strong
baseline for many POMDPs"), built on Gymnasium's MuJoCo v5 envs and Pendulum-v1. environment.name
is the Gymnasium id with P (positions and angles kept) or V (linear and angular velocities
kept) before the version: HalfCheetah-P-v5, Hopper-V-v5, Walker2d-P-v5, Ant-V-v5,
Pendulum-P-v1 (cos and sin of the angle, without the angular velocity). A memory must infer
what is hidden: velocities from consecutive positions, or positions by integrating velocities.

Ni et al. masked PyBullet's robots, whose observations differ; the index sets here apply
their rule to v5's layouts (Gymnasium's documentation of each env, with the default
exclude_current_positions_from_observation=True: the x (and Ant's y) coordinate is never
observed):

    HalfCheetah-v5 (17)  0-7 root z, root angle, 6 joint angles | 8-16 their velocities
    Hopper-v5 (11)       0-4 root z, root angle, 3 joint angles | 5-10 their velocities
    Walker2d-v5 (17)     0-7 root z, root angle, 6 joint angles | 8-16 their velocities
    Ant-v5 (27)          0-12 torso z, orientation quaternion, 8 joint angles
                         | 13-26 torso linear and angular velocity, 8 joint velocities
    Pendulum-v1 (3)      0-1 cos and sin of the angle | 2 angular velocity

Ant is built with include_cfrc_ext_in_observation=False: its 78 contact-force values are
neither positions nor velocities (PyBullet's Ant gave four foot-contact flags, which Ni et
al. kept with the positions). Observations become float32. The MuJoCo tasks need the optional
package mujoco (requirements-mujoco.txt); Pendulum needs none. environment.reset_params go
to gym.make (e.g. max_episode_steps); ones that change the observation's layout are refused.
MuJoCo renders through OpenGL, which needs a display or an off-screen context: without a
display, rendering (enjoy.py's videos) uses EGL unless MUJOCO_GL says otherwise.
"""
from __future__ import annotations

import os
import re

import gymnasium as gym
import numpy as np

from environments import Family, register_family
from environments.gym_env import make_registered

# Gymnasium id without its version -> (observation size, kept indices of P, of V).
TASKS = {
    "HalfCheetah": (17, tuple(range(0, 8)), tuple(range(8, 17))),
    "Hopper": (11, tuple(range(0, 5)), tuple(range(5, 11))),
    "Walker2d": (17, tuple(range(0, 8)), tuple(range(8, 17))),
    "Ant": (27, tuple(range(0, 13)), tuple(range(13, 27))),
    "Pendulum": (3, (0, 1), (2,)),
}
MUJOCO = ("HalfCheetah", "Hopper", "Walker2d", "Ant")
FAMILY_DEFAULTS = {"Ant": {"include_cfrc_ext_in_observation": False}}
NAME = re.compile(r"(?P<task>[A-Za-z0-9]+)-(?P<kept>[PV])-(?P<version>v\d+)")


class KeepEntries(gym.ObservationWrapper):
    """Observations cut to the entries at `index`, as float32."""

    def __init__(self, env: gym.Env, index: tuple[int, ...]):
        super().__init__(env)
        self.index = list(index)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(space.low[self.index].astype(np.float32),
                                                space.high[self.index].astype(np.float32),
                                                dtype=np.float32)

    def observation(self, observation) -> np.ndarray:
        return np.asarray(observation, dtype=np.float32)[self.index]


def parse(name: str) -> tuple[str, str, str]:
    """(task, "P" or "V", the Gymnasium id) of a name such as HalfCheetah-V-v5."""
    match = NAME.fullmatch(name)
    if match is None or match["task"] not in TASKS:
        known = ", ".join(f"{t}-P-{v}, {t}-V-{v}" for t, v in
                          [(t, "v1" if t == "Pendulum" else "v5") for t in TASKS])
        raise ValueError(f"masked_control: environment.name = {name!r} is not a masked task; "
                         f"known are {known}.")
    return match["task"], match["kept"], f"{match['task']}-{match['version']}"


def headless_rendering() -> None:
    """Without a display, MuJoCo's default GLFW context fails ("an OpenGL platform library
    has not been loaded"); EGL renders off-screen (Mesa's or the GPU driver's). MUJOCO_GL is
    read when mujoco is first imported, so this runs before that import; a user's own
    MUJOCO_GL (osmesa, glfw) stands."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("MUJOCO_GL", "egl")


def make(env_config, render: bool = False) -> gym.Env:
    task, kept, env_id = parse(env_config.name)
    if task in MUJOCO:
        try:
            import mujoco  # noqa: F401
        except ImportError:
            raise ValueError(f"masked_control: {env_config.name} needs the optional package "
                             f"mujoco. Fix: pip install -r requirements-mujoco.txt") from None
    if task in MUJOCO and render:
        headless_rendering()
    kwargs = {**FAMILY_DEFAULTS.get(task, {}), **env_config.reset_params}
    env = make_registered(env_id, kwargs, render)
    size, positions, velocities = TASKS[task]
    if env.observation_space.shape != (size,):
        shape = env.observation_space.shape
        env.close()
        raise ValueError(f"masked_control: {env_id} observes {shape}, but the index sets are "
                         f"those of its ({size},) layout. Fix: remove the reset_params that "
                         f"change the observation (e.g. "
                         f"exclude_current_positions_from_observation).")
    return KeepEntries(env, positions if kept == "P" else velocities)


register_family(Family(
    name="masked_control", make=make, example="Pendulum-P-v1",
    check=lambda env_config: parse(env_config.name),
    summary="MuJoCo and Pendulum with positions only or velocities only (Ni et al. 2022), "
            "e.g. HalfCheetah-V-v5; the MuJoCo tasks need requirements-mujoco.txt."))
