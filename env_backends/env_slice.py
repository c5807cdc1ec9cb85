"""Gymnasium environments stepped one after another: what an env process of the worker pool
runs for its slice, and what the in-process vector backend runs for all its environments.

Each environment's episodes are seeded (environments.episodes.episode_seed), so an episode
is a function of its seed and actions; observations, final observations and action masks
are written into arrays the owner provides (shared memory for the pool, plain arrays
in-process).

This module must not import torch: the env processes import it.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import numpy as np

from env_backends.base import EpisodeInfo, ReplayMismatch
from environments import ActionLayout, make_env, space_spec
from environments.actions import MASK_KEY
from environments.episodes import episode_seed, final_metrics
from environments.spec import SpaceSpec


class SliceStep(NamedTuple):
    """One slice's part of a step: its environments' rewards, flags and finished episodes."""
    rewards: np.ndarray      # float32 (envs of the slice,)
    terminated: np.ndarray   # bool (envs of the slice,)
    truncated: np.ndarray    # bool (envs of the slice,)
    episodes: list[EpisodeInfo]


def _success(info: dict) -> Optional[float]:
    return float(info["success"]) if "success" in info else None


class EnvSlice:
    """Environments first_env .. first_env + len(seeds) - 1 of a backend. With `autoreset`
    an ended episode is followed at once by the next (training); without, the env keeps its
    last observation in `obs` until the next reset (playing single episodes, where the
    final frame is still to be rendered)."""

    def __init__(self, seeds: Sequence[int], episodes: Sequence[int], first_env: int = 0,
                 autoreset: bool = True):
        self.first_env, self.autoreset = first_env, autoreset
        self.seeds = [int(seed) for seed in seeds]
        self.envs: list = []
        self.layouts: list[ActionLayout] = []
        self.current: Optional[int] = None   # the env being worked on, for error reports
        self.episode = np.array(episodes, dtype=np.int64)     # resets so far, per env
        self.episode_reward = np.zeros(len(seeds), dtype=np.float64)
        self.episode_length = np.zeros(len(seeds), dtype=np.int64)
        self.obs: Optional[np.ndarray] = None
        self.final_obs: Optional[np.ndarray] = None
        self.masks: Optional[np.ndarray] = None

    def create_envs(self, env_config, info_masks: bool, render: bool = False) -> SpaceSpec:
        """Build one env per seed; returns their common spec (RuntimeError if they differ)."""
        for j in range(len(self.seeds)):
            self.current = j
            self.envs.append(make_env(env_config, render=render, info_masks=info_masks))
        self.current = None
        return self.adopt(self.envs)

    def adopt(self, envs: list) -> SpaceSpec:
        """Step these envs (make_env's, one per seed); returns their common spec
        (RuntimeError if they differ)."""
        assert len(envs) == len(self.seeds), "one environment per seed"
        self.envs = list(envs)
        self.layouts = [ActionLayout(env.action_space) for env in self.envs]
        specs = {space_spec(env) for env in self.envs}
        if len(specs) != 1:
            raise RuntimeError(f"the environments of one config have different spaces: {specs}")
        return specs.pop()

    def attach(self, obs: np.ndarray, final_obs: np.ndarray,
               masks: Optional[np.ndarray]) -> None:
        """The arrays (this slice's rows) that observations and masks are written to."""
        self.obs, self.final_obs, self.masks = obs, final_obs, masks

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []

    def _keep_mask(self, j: int, info: dict) -> None:
        """Env j's action mask for the observation it just gave, where masks are kept."""
        if self.masks is not None:
            self.masks[j] = info[MASK_KEY]

    def reset_all(self, seeds: Optional[Sequence[int]] = None) -> None:
        """Every env's next episode: seeded with seeds[j] where given, else its own next
        training seed."""
        for j in range(len(self.envs)):
            self.obs[j] = self.reset_env(j, None if seeds is None else int(seeds[j]))

    def reset_env(self, j: int, seed: Optional[int] = None) -> np.ndarray:
        """Start env j's next episode with that episode's own seed (or `seed`)."""
        self.current = j
        if seed is None:
            seed = episode_seed(self.seeds[j], self.episode[j])
        observation, info = self.envs[j].reset(seed=seed)
        self._keep_mask(j, info)
        self.episode[j] += 1
        self.episode_reward[j] = 0.0
        self.episode_length[j] = 0
        return observation

    def restore(self, episodes: Sequence[int], actions: Sequence[np.ndarray]) -> None:
        """Rebuild each env's running episode: reset with that episode's seed, replay its
        actions. episodes[j] is the number of resets env j had done (its episode's index + 1)."""
        for j, env in enumerate(self.envs):
            self.episode[j] = episodes[j] - 1
            self.obs[j] = self.reset_env(j)
            for k, action in enumerate(actions[j]):
                observation, reward, terminated, truncated, info = env.step(
                    self.layouts[j].to_env(action))
                self._keep_mask(j, info)
                if terminated or truncated:
                    raise ReplayMismatch(f"its recorded episode ended after {k + 1} of "
                                         f"{len(actions[j])} recorded actions")
                self.episode_reward[j] += reward
                self.episode_length[j] += 1
                self.obs[j] = observation

    def step(self, actions: np.ndarray) -> SliceStep:
        n = len(self.envs)
        rewards = np.zeros(n, dtype=np.float64)     # as the envs give them, for the returns
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        ended = []                                  # (env, its last observation and info)
        for j, env in enumerate(self.envs):
            self.current = j
            observation, rewards[j], terminated[j], truncated[j], info = env.step(
                self.layouts[j].to_env(actions[j]))
            self._keep_mask(j, info)
            if terminated[j] or truncated[j]:
                ended.append((j, observation, info))
            else:
                self.obs[j] = observation
        self.episode_reward += rewards
        self.episode_length += 1
        episodes = []
        for j, observation, info in ended:
            self.final_obs[j] = observation
            episodes.append(self._episode_info(j, info))
            self.obs[j] = self.reset_env(j) if self.autoreset else observation
        self.current = None
        return SliceStep(rewards.astype(np.float32), terminated, truncated, episodes)

    def render(self, j: int) -> Optional[np.ndarray]:
        """Env j's RGB frame, or None where it cannot render (POPGym's envs mostly cannot)."""
        try:
            frame = self.envs[j].render()
        except NotImplementedError:
            return None
        return frame if isinstance(frame, np.ndarray) and frame.ndim == 3 else None

    def _episode_info(self, j: int, info: dict) -> EpisodeInfo:
        return EpisodeInfo(worker=self.first_env + j, reward=float(self.episode_reward[j]),
                           length=int(self.episode_length[j]), success=_success(info),
                           metrics=final_metrics(info))
