"""The in-process vector backend: every environment stepped in a plain loop in the trainer's
process, for families whose step costs microseconds (proof-of-memory, masked CartPole,
POPGym). A process pool spends most of such a step on waking processes and moving messages
(docs/performance.md); here a step is the envs' own work plus a loop.

A plain loop rather than gymnasium's SyncVectorEnv: SyncVectorEnv resets an ended env
without a seed, so episodes would stop being functions of (seed, actions) and a resumed run
could no longer replay them; the loop is also the faster of the two
(benchmarks/vector_loop.py).

This module must not import torch.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from env_backends.base import EnvBackend, EnvState, StepResult
from env_backends.env_slice import EnvSlice
from env_backends.replay import EpisodeRecord


class VectorBackend(EnvBackend):
    """`len(seeds)` environments of `env_config` in this process. Env i's k-th episode is
    seeded with episode_seed(seeds[i], k), as in the worker pool, so both backends play the
    same episodes and a checkpoint of one resumes on the other. Without `autoreset` an ended
    env keeps its last observation until reset() (for playing single episodes)."""

    def __init__(self, env_config, seeds: Sequence[int], info_masks: bool = False,
                 render: bool = False, autoreset: bool = True):
        if not seeds:
            raise ValueError("VectorBackend: needs at least one environment (seed).")
        envs = EnvSlice(seeds, [0] * len(seeds), autoreset=autoreset)
        try:
            spec = envs.create_envs(env_config, info_masks, render)
        except BaseException:
            envs.close()
            raise
        self._setup(envs, spec, owns_envs=True)

    @classmethod
    def around(cls, envs: list, seeds: Optional[Sequence[int]] = None,
               autoreset: bool = False) -> "VectorBackend":
        """A backend over environments already built (make_env's), which the caller closes."""
        envs_slice = EnvSlice(seeds or [0] * len(envs), [0] * len(envs), autoreset=autoreset)
        self = cls.__new__(cls)
        self._setup(envs_slice, envs_slice.adopt(envs), owns_envs=False)
        return self

    def _setup(self, envs: EnvSlice, spec, owns_envs: bool) -> None:
        self.envs, self.spec, self.n_envs = envs, spec, len(envs.seeds)
        self._closed = not owns_envs             # closing leaves others' envs alone
        self._in_flight: Optional[np.ndarray] = None
        shape, dtype = (self.n_envs, *spec.obs_shape), spec.obs_dtype
        self.obs, self.final_obs = np.zeros(shape, dtype), np.zeros(shape, dtype)
        self._masks = np.ones((self.n_envs, spec.mask_size), bool) if spec.action_mask else None
        envs.attach(self.obs, self.final_obs, self._masks)
        self.record = EpisodeRecord(spec, self.n_envs)

    @property
    def action_masks(self) -> Optional[np.ndarray]:
        return self._masks

    def reset(self, seeds: Optional[Sequence[int]] = None) -> np.ndarray:
        self._check_idle()
        self.envs.reset_all(seeds)
        self.record.started()
        return self.obs

    def step_async(self, actions: np.ndarray) -> None:
        self._check_idle()
        self._in_flight = self.spec.checked_actions(actions, self.n_envs, "VectorBackend.step")

    def step_wait(self) -> StepResult:
        """Steps the envs now: in one process nothing could run beside them, and this way the
        sampler's time in waiting is the envs' own."""
        if self._in_flight is None:
            raise RuntimeError("VectorBackend.step_wait: no step is in flight. Fix: call "
                               "step_async(actions) first, or step(actions) for both.")
        actions, self._in_flight = self._in_flight, None
        part = self.envs.step(actions)
        self.record.track(actions, part.terminated | part.truncated)
        return StepResult(self.obs, part.rewards, part.terminated, part.truncated,
                          part.episodes, self.final_obs, self._masks)

    def state(self) -> EnvState:
        return self.record.state()

    def restore(self, state: EnvState) -> np.ndarray:
        self._check_idle()
        episodes, actions = self.record.checked(state)
        self.envs.restore(episodes, actions)
        self.record.restored(episodes, actions)
        return self.obs

    def render(self, env: int = 0) -> Optional[np.ndarray]:
        return self.envs.render(env)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.envs.close()

    def _check_idle(self) -> None:
        if self._in_flight is not None:
            raise RuntimeError("VectorBackend: a step is in flight. Fix: call step_wait() "
                               "before anything else.")
