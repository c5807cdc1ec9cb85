"""What a JAX family's constructor returns: an environment with gymnax's API and the
functions the JAX backend (env_backends/jax_backend.py) needs around it.

gymnax's API (Lange 2022): `reset(key, params) -> (obs, state)` and `step(key, state, action,
params)`, pure functions of a state pytree that jit(vmap(...)) runs for every environment at
once. `step` here returns (obs, state, reward, terminated, truncated), truncated meaning a
time limit (bootstrapped from the final observation's value), and must not reset an ended
episode (gymnax's `step_env`, Craftax's no-auto-reset variants): the backend resets ended
environments itself, with each episode's own seed, and only those.

This module imports no jax: a family's module imports jax when one of its envs is built, so
that nothing outside the JAX families and backend loads it.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

JAX_INSTALL = "pip install --no-deps -r requirements-jax.txt (or make setup)"


class JaxEnv(NamedTuple):
    env: Any                 # the environment object (gymnax.environments.environment.Environment)
    params: Any              # its EnvParams
    reset: Callable          # (key, params) -> (obs, state)
    # (key, state, action, params) -> (obs, state, reward, terminated, truncated)
    step: Callable
    # state of one env -> an RGB frame (H, W, 3), uint8 or float in [0, 1]; None: no frames.
    render: Optional[Callable] = None


def import_jax(family: str):
    """jax, or a ValueError that says how to install the optional JAX requirements."""
    try:
        import jax
    except ImportError:
        raise ValueError(f"environment.type = {family!r} needs the optional JAX packages. "
                         f"Fix: {JAX_INSTALL}") from None
    return jax


def gymnax_step(env) -> Callable:
    """The step of a gymnax 1.x environment without its auto-reset: `step_env` says whether
    the episode terminated, `is_truncated` whether its time limit ended it."""
    def step(key, state, action, params):
        obs, state, reward, terminated, _ = env.step_env(key, state, action, params)
        truncated = env.is_truncated(state, params) & ~terminated
        return obs, state, reward, terminated, truncated
    return step
