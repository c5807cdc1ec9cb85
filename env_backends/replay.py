"""The record that puts seeded gymnasium environments back into their running episodes:
how many episodes each env has started, and the actions of the one it is in. An episode is
a function of its seed and its actions (environments.episodes.episode_seed), so resetting
with that episode's seed and replaying the actions restores it exactly (EnvSlice.restore).

This module must not import torch: the worker pool imports it.
"""
from __future__ import annotations

import numpy as np

from env_backends.base import EnvState, ReplayMismatch
from environments.spec import SpaceSpec


class EpisodeRecord:
    """Resets per env and the actions of each running episode (compact and growing by
    doubling: endless episodes stay cheap)."""

    def __init__(self, spec: SpaceSpec, n_envs: int):
        self.spec, self.n_envs = spec, n_envs
        self.episodes = np.zeros(n_envs, dtype=np.int64)
        self._steps = np.zeros(n_envs, dtype=np.int64)
        # Integers as int16 where every choice fits, continuous actions exactly as sampled.
        compact = np.int16 if max(spec.action_nvec, default=0) <= 2**15 else np.int64
        self._actions = np.zeros((n_envs, 64, spec.action_width),
                                 dtype=np.float32 if spec.action_continuous else compact)

    def started(self) -> None:
        """Every env started a new episode (a reset)."""
        self.episodes += 1
        self._steps[:] = 0

    def track(self, actions: np.ndarray, ended: np.ndarray) -> None:
        """One step of every env: an ended episode's record is dropped, the others grow."""
        running = np.flatnonzero(~ended)
        if len(running) and self._steps[running].max() == self._actions.shape[1]:
            self._actions = np.concatenate([self._actions, np.zeros_like(self._actions)], axis=1)
        self._actions[running, self._steps[running]] = actions[running]
        self._steps[running] += 1
        self.episodes[ended] += 1
        self._steps[ended] = 0

    def _record(self, i: int, action: np.ndarray) -> None:
        if self._steps[i] == self._actions.shape[1]:
            self._actions = np.concatenate([self._actions, np.zeros_like(self._actions)], axis=1)
        self._actions[i, self._steps[i]] = action
        self._steps[i] += 1

    def state(self) -> EnvState:
        """Resets per env, and each running episode's actions as an (n, A) array of the
        spec's action dtype."""
        return {"env_episodes": self.episodes.copy(),
                "env_actions": [self._actions[i, :n].astype(self.spec.action_dtype)
                                for i, n in enumerate(self._steps)]}

    def checked(self, state: EnvState) -> tuple[np.ndarray, list[np.ndarray]]:
        """state()'s episodes and actions; ReplayMismatch unless it has an episode count >= 1
        and actions within the action space for every env."""
        episodes, actions = np.asarray(state["env_episodes"]), list(state["env_actions"])
        if len(episodes) != self.n_envs or len(actions) != self.n_envs or np.any(episodes < 1):
            raise ReplayMismatch(f"the record of the running episodes does not describe "
                                 f"{self.n_envs} environments that have started an episode")
        for i, a in enumerate(actions):
            a = np.asarray(a)
            if a.size and (a.ndim != 2 or a.shape[1] != self.spec.action_width
                           or self.spec.actions_outside(a).any()):
                raise ReplayMismatch(f"worker {i}'s recorded actions lie outside the action "
                                     f"space ({self.spec.action_space_text()})")
        return episodes, [np.asarray(a) for a in actions]

    def restored(self, episodes: np.ndarray, actions: list[np.ndarray]) -> None:
        """The envs were put back into these episodes."""
        self.episodes = np.asarray(episodes, dtype=np.int64).copy()
        self._steps[:] = 0
        for i, a in enumerate(actions):
            for row in a:
                self._record(i, row)
