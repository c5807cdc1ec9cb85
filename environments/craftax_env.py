"""Craftax (Matthews et al., ICML 2024): Craftax-Classic-Symbolic-v1 and Craftax-Symbolic-v1,
open-ended survival and crafting games whose symbolic observations are flat float vectors
(1345 and 8268 values), 17 and 43 actions.

They run on the jax backend only, built in their no-auto-reset variants: the backend resets
the ended envs itself, where the auto-resetting step would generate a new world for every
env at every step under vmap (~200 against ~3,500 steps/s for 256 envs on 2 CPU cores).
Episodes end at death or at params.max_timesteps (10,000 steps, a truncation).
environment.reset_params replace fields of the EnvParams. enjoy.py draws Craftax's pixel
renderer. Craftax is optional (requirements-jax.txt).
"""
from __future__ import annotations

from environments import Family, register_family
from environments.gymnax_env import with_params
from environments.jax_envs import JAX_INSTALL, JaxEnv, import_jax

NAMES = ("Craftax-Classic-Symbolic-v1", "Craftax-Symbolic-v1")
# Pixels per block of enjoy.py's frames.
BLOCK_PIXELS = 16


def check_name(name: str) -> None:
    if name not in NAMES:
        raise ValueError(f"craftax: environment.name = {name!r} is not supported. Fix: use "
                         f"one of {', '.join(NAMES)}.")


def _step(env):
    """Craftax's step (no auto-reset): the episode ended at the time limit or otherwise."""
    def step(key, state, action, params):
        obs, state, reward, done, _ = env.step(key, state, action, params)
        truncated = done & (state.timestep >= params.max_timesteps)
        return obs, state, reward, done & ~truncated, truncated
    return step


def _renderer(name: str):
    if "Classic" in name:
        from craftax.craftax_classic.renderer import make_craftax_pixel_renderer
    else:
        from craftax.craftax.renderer import make_craftax_pixel_renderer
    draw = make_craftax_pixel_renderer(BLOCK_PIXELS)
    return lambda state: draw(state) / 255.0


def make(env_config, render: bool = False) -> JaxEnv:
    check_name(env_config.name)
    import_jax("craftax")
    try:
        from craftax.craftax_env import make_craftax_env_from_name
    except ImportError:
        raise ValueError(f"environment.type = 'craftax' needs craftax. Fix: {JAX_INSTALL}") \
            from None
    env = make_craftax_env_from_name(env_config.name, auto_reset=False)
    params = with_params(env.default_params, env_config.reset_params, "craftax",
                         env_config.name)
    return JaxEnv(env, params, env.reset, _step(env),
                  _renderer(env_config.name) if render else None)


register_family(Family(
    name="craftax", make=make, backends=("jax",), example="Craftax-Classic-Symbolic-v1",
    check=lambda env_config: check_name(env_config.name),
    summary="Craftax-Classic-Symbolic-v1 and Craftax-Symbolic-v1 (jax backend; optional "
            "requirements-jax.txt)."))
