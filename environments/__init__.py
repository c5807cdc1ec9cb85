"""Environment families behind one constructor, `make_env(env_config, render, info_masks)`.

Every env made here observes a Box, a uint8 (H, W, C) image, a float32 (N,) vector or both
packed into one uint8 array (environments.adapters turns Discrete, MultiDiscrete, Tuple and
Dict observations into these), and acts in a Discrete, MultiDiscrete, Box or MultiBinary
space or a Tuple or Dict of those (environments.actions); `space_spec(env)` summarises that
for the model. An env that supplies action masks (info["action_mask"] or an `action_mask`
entry of a Dict observation) is wrapped so that its info always carries the checked mask. With render=True, env.render() returns an RGB uint8 (H, W, 3)
frame for videos where the env can render (POPGym's envs mostly cannot; enjoy.py says so).

This package must not import torch: it runs in the spawned environment worker processes,
which should start fast. Each family's module (and with it pygame, MiniGrid or Memory Gym) is
imported only when that family is built, for the same reason.
"""
from __future__ import annotations

import importlib
import os
from typing import Optional

# Before anything imports pygame: no window on headless machines, no greeting on stdout.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from environments.actions import (MASK_KEY, ActionLayout, ActionMasks,  # noqa: E402
                                  find_wrapper, mask_in_observation)
from environments.adapters import (AdaptObservation, PreviousActionReward,  # noqa: E402
                                   needs_adapting)
from environments.spec import SpaceSpec, space_spec  # noqa: E402

__all__ = ["FAMILY_MODULES", "ActionLayout", "SpaceSpec", "check_in_parent", "make_env",
           "space_spec"]

FAMILY_MODULES = {
    "proof_of_memory": "environments.proof_of_memory",
    "cartpole_masked": "environments.cartpole_masked",
    "minigrid": "environments.minigrid_env",
    "memory_gym": "environments.memory_gym_env",
    "gymnasium": "environments.gym_env",
    "popgym": "environments.popgym_env",
    "masked_control": "environments.masked_control",
}
# Families that build third-party envs whose spaces are known only once one is built; the
# others' spaces are fixed by this package.
OPEN_FAMILIES = ("gymnasium", "popgym")


def make_env(env_config, render: bool = False, info_masks: Optional[bool] = None):
    """Build the env that `env_config` (a config.EnvironmentConfig) describes.

    `info_masks` says whether the env puts action masks into its info (a model file's spec
    says so, or check_in_parent found out); None finds out with one reset, for the open
    families. That reset is visible to an env that keeps state across episodes, so an env
    whose episodes are part of a run is told (masks in a Dict observation need neither).

    Raises ValueError when the family, name or reset_params cannot be used, or when the env's
    spaces are outside what the models support.
    """
    if env_config.type not in FAMILY_MODULES:
        raise ValueError(f"environment.type = {env_config.type!r} is unknown; known types are "
                         f"{', '.join(FAMILY_MODULES)}.")
    family = importlib.import_module(FAMILY_MODULES[env_config.type])
    env = family.make(env_config, render=render)
    try:
        env = _adapted(env, env_config, info_masks)
        space_spec(env)
    except ValueError as e:
        env.close()
        raise ValueError(f"environment {env_config.type}/{env_config.name}: {e}") from None
    return env


def _adapted(env, env_config, info_masks: Optional[bool]):
    """The env with its action masks in info if it supplies them, the previous action/reward
    added if asked for, its observations in a layout the models take."""
    actions = ActionLayout(env.action_space)      # refuses unsupported actions before the rest
    if info_masks is None:      # only third-party envs may put masks into their info
        info_masks = env_config.type in OPEN_FAMILIES and MASK_KEY in env.reset(seed=0)[1]
    if info_masks or mask_in_observation(env.observation_space):
        env = ActionMasks(env, actions.nvec)
    if env_config.previous_action or env_config.previous_reward:
        env = PreviousActionReward(env, env_config.previous_action, env_config.previous_reward)
    return AdaptObservation(env) if needs_adapting(env.observation_space) else env


def check_in_parent(env_config) -> bool:
    """Build and close one env of an open family here, so that unsupported spaces are refused
    with a ValueError before any worker process starts; returns whether it puts action masks
    into its info (make_env's info_masks for the workers). The other families' envs never do:
    False without building one."""
    if env_config.type not in OPEN_FAMILIES:
        return False
    env = make_env(env_config)
    try:
        masks = find_wrapper(env, ActionMasks)
        return masks is not None and not masks.in_observation
    finally:
        env.close()
