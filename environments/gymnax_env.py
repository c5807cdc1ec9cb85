"""gymnax's environments (Lange 2022) by their registered ids: bsuite's memory tasks
(MemoryChain-bsuite, UmbrellaChain-bsuite), MinAtar, classic control and the rest.

They run on the jax backend only (env_backends/jax_backend.py). environment.reset_params
replace fields of the env's EnvParams, e.g. {memory_length: 32} for MemoryChain-bsuite (its
cue is shown at the first step and asked for after memory_length steps). gymnax is optional
(requirements-jax.txt).
"""
from __future__ import annotations

import difflib

from environments import Family, register_family
from environments.jax_envs import JAX_INSTALL, JaxEnv, gymnax_step, import_jax


def with_params(params, reset_params: dict, family: str, name: str):
    """params with the fields reset_params names replaced; ValueError for unknown fields."""
    unknown = sorted(set(reset_params) - set(params.__dataclass_fields__))
    if unknown:
        raise ValueError(f"{family}: environment.reset_params {unknown} are not parameters of "
                         f"{name}. Fix: use some of {sorted(params.__dataclass_fields__)}.")
    return params.replace(**reset_params)


def make(env_config, render: bool = False) -> JaxEnv:
    import_jax("gymnax")
    try:
        import gymnax
    except ImportError:
        raise ValueError(f"environment.type = 'gymnax' needs gymnax. Fix: {JAX_INSTALL}") \
            from None
    name = env_config.name
    if name not in gymnax.registered_envs:
        close = difflib.get_close_matches(name, gymnax.registered_envs, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else \
            f"known are {', '.join(gymnax.registered_envs)}"
        raise ValueError(f"gymnax: environment.name = {name!r} is not a gymnax environment; "
                         f"{hint}")
    env, params = gymnax.make(name)
    params = with_params(params, env_config.reset_params, "gymnax", name)
    return JaxEnv(env, params, env.reset_env, gymnax_step(env))


register_family(Family(
    name="gymnax", make=make, backends=("jax",), example="MemoryChain-bsuite",
    summary="gymnax's environments by id, e.g. MemoryChain-bsuite (jax backend; optional "
            "requirements-jax.txt)."))
