"""Any registered gymnasium id; its action space as environments/actions.py supports.

Observations of any supported space are adapted by make_env (environments.adapters): a uint8
(H, W, C) Box stays an image, Discrete / MultiDiscrete become one-hots, Tuple / Dict are
flattened, and so on. environment.reset_params are passed to gym.make as keyword arguments
(e.g. max_episode_steps; envs without one end their episodes themselves). To use an id that a
package registers on import, write it as "package.module:EnvId" and gym.make imports the
module first (also in the worker processes, which start without the parent's registrations).
"""
from __future__ import annotations

import importlib
import inspect

import gymnasium as gym

from environments import Family, register_family


def accepts_render_mode(name: str) -> bool:
    """Whether the constructor behind `name` takes a render_mode argument (POPGym's do not)."""
    module, _, env_id = name.rpartition(":")
    if module:                            # "package.module:EnvId", as gym.make understands it
        importlib.import_module(module)
    entry_point = gym.spec(env_id).entry_point          # a "module:Class" string or a callable
    creator = entry_point if callable(entry_point) else \
        gym.envs.registration.load_env_creator(entry_point)
    try:
        parameters = inspect.signature(creator).parameters.values()
    except (TypeError, ValueError):    # no introspectable signature: assume the standard one
        return True
    return any(p.name == "render_mode" or p.kind is p.VAR_KEYWORD for p in parameters)


def make_registered(name: str, kwargs: dict, render: bool) -> gym.Env:
    """gym.make(name, **kwargs), turning keyword arguments the env rejects into a ValueError.
    render_mode="rgb_array" is passed only with render=True and only to constructors that
    accept it; an env without it has no frames to show (enjoy.py says so)."""
    try:
        extra = {"render_mode": "rgb_array"} if render and accepts_render_mode(name) else {}
        return gym.make(name, **extra, **kwargs)
    except (gym.error.Error, ModuleNotFoundError) as e:
        # An unknown or misspelt id (or a module:Env-v0 whose module is missing): a config
        # value to fix, not a crash.
        raise ValueError(f"gym.make({name!r}): {' '.join(str(e).split())} Fix: check "
                         f"environment.name (gymnasium.pprint_registry() lists the ids; ids "
                         f"that a package registers on import are written "
                         f"'package.module:EnvId').") from None
    except TypeError as e:
        # gym.make reports unexpected constructor arguments as TypeError; the arguments came
        # from the config, so say which config entry to fix.
        raise ValueError(f"gym.make({name!r}) rejected the keyword arguments {kwargs} "
                         f"(from environment.reset_params and the family defaults): {e}. "
                         f"Fix: remove or rename them in environment.reset_params.") from e


def make(env_config, render: bool = False) -> gym.Env:
    return make_registered(env_config.name, env_config.reset_params, render)


register_family(Family(
    name="gymnasium", make=make, open=True, example="CartPole-v1",
    summary="Any registered Gymnasium id; Discrete, MultiDiscrete, Box, MultiBinary, Tuple "
            "and Dict actions and observations."))
