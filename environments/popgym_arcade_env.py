"""POPGym Arcade (Wang et al. 2025): POPGym's memory tasks as pixel games, e.g.
CountRecallEasy, NavigatorEasy, MineSweeperEasy, each (128, 128, 3) uint8 images.

They run on the jax backend only; enjoy.py shows the observations. environment.reset_params
go to the env's constructor (partial_obs: true, the default here, shows only what the task
hides; obs_size: 128 or 256). POPGym Arcade is optional (requirements-jax.txt).
"""
from __future__ import annotations

import difflib

from environments import Family, register_family
from environments.jax_envs import JAX_INSTALL, JaxEnv, import_jax


def make(env_config, render: bool = False) -> JaxEnv:
    import_jax("popgym_arcade")
    try:
        import popgym_arcade
        from popgym_arcade.registration import REGISTERED_ENVIRONMENTS
    except ImportError:
        raise ValueError(f"environment.type = 'popgym_arcade' needs popgym-arcade. Fix: "
                         f"{JAX_INSTALL}") from None
    if env_config.name not in REGISTERED_ENVIRONMENTS:
        close = difflib.get_close_matches(env_config.name, REGISTERED_ENVIRONMENTS, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else \
            f"known are {', '.join(REGISTERED_ENVIRONMENTS)}"
        raise ValueError(f"popgym_arcade: environment.name = {env_config.name!r} is not a "
                         f"POPGym Arcade environment; {hint}")
    try:
        env, params = popgym_arcade.make(env_config.name,
                                         **{"partial_obs": True, **env_config.reset_params})
    except TypeError as e:
        raise ValueError(f"popgym_arcade: {env_config.name} rejected environment.reset_params "
                         f"{env_config.reset_params}: {e}. Fix: remove or rename them.") \
            from None
    return JaxEnv(env, params, env.reset_env, _step(env))


def _step(env):
    """POPGym Arcade's step without auto-reset; its episodes end by their own rules (all
    cards played, ...), which its step counts as terminations."""
    def step(key, state, action, params):
        obs, state, reward, terminated, _ = env.step_env(key, state, action, params)
        return obs, state, reward, terminated, False
    return step


register_family(Family(
    name="popgym_arcade", make=make, backends=("jax",), example="CountRecallEasy",
    summary="POPGym Arcade's pixel memory tasks, e.g. CountRecallEasy (jax backend; optional "
            "requirements-jax.txt)."))
