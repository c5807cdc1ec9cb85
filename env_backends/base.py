"""The interface every env backend implements, and the records a step produces.

A backend steps `n_envs` environments of one family for the sampler, enjoy.py and
evaluate.py: the worker pool in spawned processes (worker_pool.py), an in-process loop
(env_backends/vector.py) or jit(vmap(...)) over a JAX environment (env_backends/jax_backend.py).
They agree on episodes: env i's k-th episode of a training run is seeded with
episode_seed(seeds[i], k) (environments/episodes.py); an ended episode is followed at once by
the next one (its first observation replaces the last in `obs`, the last goes to `final_obs`
for the truncation value); the statistics of every finished episode come back as an
EpisodeInfo; `state()` is what a checkpoint needs to put the running episodes back exactly.

This module must not import torch or jax: the env processes import it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np

from environments.spec import SpaceSpec


@dataclass(frozen=True)
class EpisodeInfo:
    """One finished episode. `worker` is the environment's index in the backend; reward and
    length are counted by the backend; success comes from info["success"] when the env
    reports it; metrics are the other numeric scalars of the env's final info (e.g. Memory
    Gym's)."""
    worker: int
    reward: float
    length: int
    success: Optional[float]
    metrics: dict[str, float] = field(default_factory=dict)


class StepResult(NamedTuple):
    """One step of every environment. `obs` and `final_obs` are (n_envs, *obs_shape): numpy
    arrays, or arrays torch reads through DLPack (the JAX backend's). final_obs[i] is meaningful
    only where terminated[i] or truncated[i]."""
    obs: Any                 # the observations to act on next
    rewards: np.ndarray      # float32 (n_envs,)
    terminated: np.ndarray   # bool (n_envs,)
    truncated: np.ndarray    # bool (n_envs,)
    episodes: list[EpisodeInfo]
    final_obs: Any           # the last observation of the episodes that ended
    action_masks: Optional[np.ndarray]   # bool (n_envs, sum(nvec)) of `obs`, or None


# What a backend's state() holds: arrays, lists of arrays, dicts of those. Its keys start with
# "env_" (the sampler keeps them beside its own entries in the checkpoint).
EnvState = dict[str, Any]


class EnvBackend(ABC):
    """`n_envs` environments stepped together; use as a context manager or call close()."""
    spec: SpaceSpec
    n_envs: int
    # Env processes restarted after failures so far (only the process backend restarts any).
    restarts: int = 0

    @abstractmethod
    def reset(self, seeds: Optional[Sequence[int]] = None) -> Any:
        """Start every environment's next episode and return the observations (n_envs, ...).
        With `seeds`, env i's episode is seeded with seeds[i] itself (evaluation's held-out
        seeds) instead of its next training seed. Running episodes are dropped unreported."""

    @abstractmethod
    def step_async(self, actions: np.ndarray) -> None:
        """Hand over one step's actions (n_envs, spec.action_width): the envs may step while
        the caller does other work, until step_wait()."""

    @abstractmethod
    def step_wait(self) -> StepResult:
        """The result of the step that step_async() started."""

    def step(self, actions: np.ndarray) -> StepResult:
        self.step_async(actions)
        return self.step_wait()

    @property
    @abstractmethod
    def action_masks(self) -> Optional[np.ndarray]:
        """The masks (n_envs, sum(nvec)) of the observations to act on next, or None when the
        envs supply none."""

    @abstractmethod
    def state(self) -> EnvState:
        """What restore() needs to continue the running episodes exactly."""

    @abstractmethod
    def restore(self, state: EnvState) -> Any:
        """Put every environment back into the episode `state` recorded; returns obs.
        ReplayMismatch (a ValueError) when the record does not fit."""

    def render(self, env: int = 0) -> Optional[np.ndarray]:
        """An RGB uint8 (H, W, 3) frame of environment `env`, or None where the family cannot
        render (or the backend was built without rendering)."""
        return None

    @abstractmethod
    def close(self) -> None:
        """Free the environments; idempotent."""

    def __enter__(self) -> "EnvBackend":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class ReplayMismatch(ValueError):
    """A recorded episode did not replay (restore): the record is not this environment's
    (an altered or foreign checkpoint) or the environment is not deterministic."""
