"""Environment families behind one constructor, `make_env(env_config, render)`.

Every env made here observes a Box, either a uint8 (H, W, C) image or a float32 (N,) vector,
and acts in a Discrete or MultiDiscrete space; `space_spec(env)` summarises that for the
model. With render=True, env.render() returns an RGB uint8 (H, W, 3) frame for videos.

This package must not import torch: it runs in the spawned environment worker processes,
which should start fast. Each family's module (and with it pygame, MiniGrid or Memory Gym) is
imported only when that family is built, for the same reason.
"""
from __future__ import annotations

import importlib
import os

# Before anything imports pygame: no window on headless machines, no greeting on stdout.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from environments.spec import SpaceSpec, space_spec  # noqa: E402

__all__ = ["FAMILY_MODULES", "SpaceSpec", "make_env", "space_spec"]

FAMILY_MODULES = {
    "proof_of_memory": "environments.proof_of_memory",
    "cartpole_masked": "environments.cartpole_masked",
    "minigrid": "environments.minigrid_env",
    "memory_gym": "environments.memory_gym_env",
    "gymnasium": "environments.gym_env",
}


def make_env(env_config, render: bool = False):
    """Build the env that `env_config` (a config.EnvironmentConfig) describes.

    Raises ValueError when the family, name or reset_params cannot be used, or when the env's
    spaces are outside what the models support.
    """
    if env_config.type not in FAMILY_MODULES:
        raise ValueError(f"environment.type = {env_config.type!r} is unknown; known types are "
                         f"{', '.join(FAMILY_MODULES)}.")
    family = importlib.import_module(FAMILY_MODULES[env_config.type])
    env = family.make(env_config, render=render)
    try:
        space_spec(env)
    except ValueError as e:
        env.close()
        raise ValueError(f"environment {env_config.type}/{env_config.name}: {e}") from None
    return env
