"""Environment families behind one constructor, `make_env(env_config, render, info_masks)`.

Every env made here observes a Box, a uint8 (H, W, C) image, a float32 (N,) vector or both
packed into one uint8 array (environments.adapters turns Discrete, MultiDiscrete, Tuple and
Dict observations into these), and acts in a Discrete, MultiDiscrete, Box or MultiBinary
space or a Tuple or Dict of those (environments.actions); `space_spec(env)` summarises that
for the model. An env that supplies action masks (info["action_mask"] or an `action_mask`
entry of a Dict observation) is wrapped so that its info always carries the checked mask. With render=True, env.render() returns an RGB uint8 (H, W, 3)
frame for videos where the env can render (POPGym's envs mostly cannot; enjoy.py says so).

A family is one module that registers a `Family` (`register_family`): its name (the config's
environment.type), its constructor and its checks. `families()` finds this package's modules
and any installed package's entry points in the group `trxl_ppo.environments`; nothing else
lists the families (docs/extending.md).

This package must not import torch: it runs in the spawned environment worker processes,
which should start fast. A family's heavy imports (pygame, MiniGrid, Memory Gym) happen when
one of its envs is built, for the same reason.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

# Before anything imports pygame: no window on headless machines, no greeting on stdout.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from environments.actions import (MASK_KEY, ActionLayout, ActionMasks,  # noqa: E402
                                  find_wrapper, mask_in_observation)
from environments.adapters import (AdaptObservation, PreviousActionReward,  # noqa: E402
                                   needs_adapting)
from environments.spec import SpaceSpec, space_spec  # noqa: E402
from plugins import Registry  # noqa: E402

__all__ = ["ActionLayout", "Family", "SpaceSpec", "check_in_parent", "families", "make_env",
           "register_family", "space_spec"]

# Installed packages add families by declaring entry points (each a module that calls
# `register_family`) in this group.
ENTRY_POINT_GROUP = "trxl_ppo.environments"


@dataclass(frozen=True)
class Family:
    """Everything the project knows about one environment family, registered by its module."""
    name: str                   # the value of environment.type that selects it
    summary: str                # one sentence for the configuration reference
    make: Callable[[Any, bool], Any]    # (the environment section, render) -> gymnasium.Env
    # The environment section's constraints, checked when a config loads: raises ValueError
    # (config.Invalid) naming key, value and fix.
    check: Optional[Callable[[Any], None]] = None
    # Its spaces are known only once an env is built (third-party ids): one is built and
    # closed in the parent before any worker starts, so unsupported spaces fail there.
    open: bool = False
    # An environment.name the shared tests build, step and render (tests/test_environments.py).
    example: str = ""
    # The env backends that can run it (env_backends: processes, vector, jax), its default
    # (environment.backend: auto) first.
    backends: tuple[str, ...] = ("processes", "vector")


_FAMILIES: Registry[Family] = Registry(__name__, __path__, ENTRY_POINT_GROUP,
                                       "environment family", lambda f: f.make.__module__)


def register_family(family: Family) -> Family:
    """Add `family` to those a config may name; a module imported again replaces its own."""
    return _FAMILIES.add(family.name, family)


def families() -> dict[str, Family]:
    """Every registered family by name: this package's modules, then the entry points of
    ENTRY_POINT_GROUP (imported on the first call)."""
    return _FAMILIES.all()


def make_env(env_config, render: bool = False, info_masks: Optional[bool] = None):
    """Build the env that `env_config` (a config.EnvironmentConfig) describes.

    `info_masks` says whether the env puts action masks into its info (a model file's spec
    says so, or check_in_parent found out); None finds out with one reset, for the open
    families. That reset is visible to an env that keeps state across episodes, so an env
    whose episodes are part of a run is told (masks in a Dict observation need neither).

    Raises ValueError when the family, name or reset_params cannot be used, or when the env's
    spaces are outside what the models support.
    """
    registered = families()
    if env_config.type not in registered:
        raise ValueError(f"environment.type = {env_config.type!r} is unknown; known types are "
                         f"{', '.join(registered)}.")
    if "jax" in registered[env_config.type].backends:
        raise ValueError(f"environment.type = {env_config.type!r}: a JAX family, whose "
                         f"environments run on the jax backend, not as gymnasium envs. Fix: "
                         f"build them with env_backends.player_backend or make_backend.")
    env = registered[env_config.type].make(env_config, render)
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
        info_masks = families()[env_config.type].open and MASK_KEY in env.reset(seed=0)[1]
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
    if not families()[env_config.type].open:
        return False
    env = make_env(env_config)
    try:
        masks = find_wrapper(env, ActionMasks)
        return masks is not None and not masks.in_observation
    finally:
        env.close()
