"""Where the environments run: one interface (env_backends.base.EnvBackend), three backends.

    processes  the worker pool (worker_pool.py): spawned processes, observations in shared
               memory; for environments whose step costs more than a pipe round trip
               (Memory Gym, MiniGrid) or that may crash (a failed process can be restarted)
    vector     an in-process loop (env_backends/vector.py); for cheap vector environments
    jax        jit(vmap(...)) over an environment with gymnax's API in the trainer's process
               (env_backends/jax_backend.py; gymnax, Craftax, POPGym Arcade)

A family lists the backends that can run it (environments.Family.backends, its default
first); config.environment.backend chooses one, `auto` meaning that default, or `processes`
where the config sets env_processes or max_worker_restarts, which only processes honour.
The sampler (training), enjoy.py and evaluate.py (one environment, agent.play_episode) drive
every backend the same way.

This package must not import torch or jax (the env processes import parts of it); the JAX
backend imports jax when it is built.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

from env_backends.base import (EnvBackend, EnvState, EpisodeInfo, ReplayMismatch,
                               StepResult)

__all__ = ["BACKENDS", "EnvBackend", "EnvState", "EpisodeInfo", "ReplayMismatch",
           "StepResult", "backend_problem", "make_backend", "player_backend",
           "resolve_backend"]

BACKENDS = ("processes", "vector", "jax")


def _family(env_config):
    from environments import families
    return families()[env_config.type]


def _process_settings(config) -> list[tuple[str, object]]:
    """The config's settings that only the process backend honours, where set."""
    return [(key, value) for key, value in (("env_processes", config.env_processes),
                                            ("max_worker_restarts", config.max_worker_restarts))
            if value]


def resolve_backend(config) -> str:
    """The backend `config` (a config.Config) runs on: environment.backend, or for `auto`
    the family's default (processes where the config sets a process-only setting)."""
    chosen, family = config.environment.backend, _family(config.environment)
    if chosen != "auto":
        return chosen
    if "processes" in family.backends and _process_settings(config):
        return "processes"
    return family.backends[0]


def backend_problem(config) -> Optional[tuple[str, object, str, str]]:
    """(key, value, problem, fix) when the config asks for a combination no backend can run,
    else None: a backend the family lacks, or process settings without processes."""
    env, family = config.environment, _family(config.environment)
    allowed = ", ".join(family.backends)
    if env.backend != "auto" and env.backend not in family.backends:
        return ("environment.backend", env.backend,
                f"the {env.type} family runs on {allowed}",
                f"use environment.backend: auto (= {family.backends[0]}) or one of {allowed}")
    backend = resolve_backend(config)
    for key, value in _process_settings(config):
        if backend != "processes":
            return (key, value, f"only the processes backend has env processes, and "
                                f"environment.backend resolves to {backend}",
                    f"remove {key} (or set it to null/0), or use environment.backend: "
                    f"processes" + ("" if "processes" in family.backends else
                                    " with a family that runs on it"))
    return None


def make_backend(config, seeds: Sequence[int], cores: Optional[int] = None) -> EnvBackend:
    """The backend that steps len(seeds) environments for training (config.n_workers, or a
    rank's share of them), env i's episodes seeded from seeds[i]; the process backend uses at
    most `cores` processes (default: the cores this process may run on). Unsupported spaces
    fail here, before any env process starts."""
    from environments import check_in_parent
    backend, env = resolve_backend(config), config.environment
    if backend == "jax":
        from env_backends.jax_backend import JaxBackend
        return JaxBackend(env, seeds, device=config.device)
    info_masks = check_in_parent(env)
    if backend == "vector":
        from env_backends.vector import VectorBackend
        return VectorBackend(env, seeds, info_masks)
    from worker_pool import WorkerPool
    n = len(seeds)
    processes = config.env_processes or min(n, cores or len(os.sched_getaffinity(0)))
    return WorkerPool(env, n, processes, seeds, config.max_worker_restarts,
                      info_masks, config.step_timeout)


def player_backend(env_config, info_masks: Optional[bool] = None,
                   render: bool = False) -> EnvBackend:
    """One environment in this process, for playing single episodes (enjoy.py, evaluate.py):
    an ended episode keeps its last observation (and frame) until the next reset(seeds)."""
    if _family(env_config).backends == ("jax",):
        from env_backends.jax_backend import JaxBackend
        return JaxBackend(env_config, [0], render=render, autoreset=False)
    from env_backends.vector import VectorBackend
    return VectorBackend(env_config, [0], info_masks, render=render, autoreset=False)
