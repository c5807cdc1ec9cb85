"""Collects rollouts: batched inference over all workers, one step of every env at a time.

The sampler is the agent (agent.MemoryAgent) plus a buffer: the agent carries each worker's
memory state and the sampler stores what the memory's layout asks for (memories.StoreLayout,
shape legend in memories/window.py). TrXL's state caches projected keys and values, so a step
costs O(L x D) attention plus O(D^2) projections instead of re-projecting the whole window
(the original implementation's main sampling cost).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from agent import MemoryAgent
from buffer import RolloutBuffer
from config import Config
from env_backends import EnvBackend, EpisodeInfo
from model import ActorCritic
from normalization import RewardScaler


@dataclass
class SamplingTimes:
    """Seconds of one rollout by phase (benchmarks/throughput.py prints them per step). The
    envs step during `recording`; only what is left of their step shows as `waiting`."""
    acting: float = 0.0       # the network's step and action sampling
    sending: float = 0.0      # handing the actions to the env backend
    recording: float = 0.0    # log-probabilities, buffer writes, bookkeeping, observation copies
    waiting: float = 0.0      # waiting for the env backend's step (in-process: the step itself)

    def __post_init__(self) -> None:
        # Not a field: dataclasses.asdict(times) is the phases alone.
        self._mark = time.perf_counter()

    def lap(self, phase: str) -> None:
        """Add the time since the previous lap (or creation) to `phase`."""
        now = time.perf_counter()
        setattr(self, phase, getattr(self, phase) + now - self._mark)
        self._mark = now


def to_tensors(tree):
    """An env backend's state (arrays, lists and dicts of them) as tensors, which a
    checkpoint holds (torch.load with weights_only reads tensors, not arrays)."""
    if isinstance(tree, dict):
        return {k: to_tensors(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [to_tensors(v) for v in tree]
    return torch.from_numpy(np.array(tree))


def to_arrays(tree):
    """Undo to_tensors."""
    if isinstance(tree, dict):
        return {k: to_arrays(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [to_arrays(v) for v in tree]
    return tree.numpy()


class Sampler:
    """Steps the env backend for one rollout of `model` and fills the buffer."""

    def __init__(self, pool: EnvBackend, buffer: RolloutBuffer, config: Config,
                 device: torch.device, model: ActorCritic):
        self.pool, self.buffer, self.device = pool, buffer, device
        self.agent = MemoryAgent(model, buffer.workers, device, config.compile_acting)
        # Episode ids only need to differ between consecutive episodes of one worker.
        self.episode = torch.zeros(buffer.workers, dtype=torch.long, device=device)
        self.reward_scaler = RewardScaler(buffer.workers, config.gamma, config.normalization_clip,
                                          device) if config.scale_rewards else None
        self.next_obs = self._to_device(pool.reset())
        self.next_mask = self._mask(pool.action_masks)
        self.times = SamplingTimes()          # of the latest rollout

    def state(self) -> dict:
        """What a resumed run needs to continue the running episodes exactly (at an update
        boundary): episode bookkeeping, the carried memory slots, and the env backend's state
        (its entries are named env_*: a replay record, or a JAX backend's env state)."""
        state = {"episode": self.episode.cpu().clone(),
                 "episode_step": self.agent.episode_step.cpu().clone(),
                 "memory_state": {k: v.cpu().clone() for k, v in self.agent.state._asdict().items()},
                 "carried": self.buffer.carried(),
                 **to_tensors(self.pool.state())}
        if self.reward_scaler is not None:
            state["reward_scaler"] = self.reward_scaler.state()
        return state

    def restore(self, state: dict) -> None:
        """Undo state(): the envs continue their running episodes; memory slots come back."""
        obs = self.pool.restore(to_arrays({k: v for k, v in state.items()
                                           if k.startswith("env_")}))
        self.next_obs = self._to_device(obs)
        self.next_mask = self._mask(self.pool.action_masks)
        if self.reward_scaler is not None:
            self.reward_scaler.restore(state["reward_scaler"])
        self.episode = state["episode"].to(self.device)
        self.agent.episode_step = state["episode_step"].to(self.device)
        self.agent.state = type(self.agent.state)(
            **{k: v.to(self.device) for k, v in state["memory_state"].items()})
        self.buffer.restore_carried(state["carried"])

    def _to_device(self, array) -> torch.Tensor:
        """A numpy array: one host-to-device copy per step; on CPU a copy too, since the
        backend overwrites its array at the next step. Another array (JAX's) is read through
        DLPack without a copy where it already lies on the device: it is immutable."""
        if isinstance(array, np.ndarray):
            return torch.from_numpy(array).to(self.device, copy=True)
        return torch.from_dlpack(array).to(self.device)

    def _mask(self, masks: Optional[np.ndarray]) -> Optional[torch.Tensor]:
        """The action masks (W, sum(nvec)) of the observations to act on next, or None."""
        return None if masks is None else self._to_device(masks)

    def collect(self) -> tuple[list[EpisodeInfo], torch.Tensor]:
        """One rollout of T steps per worker with the model's current weights. Returns the
        finished episodes' statistics and the bootstrap value (W,) of the observation after
        the rollout."""
        buf = self.buffer
        self.times = SamplingTimes()
        buf.carry_over()
        self.agent.refresh(buf.stored[:, :buf.memory_slots])
        self.times.lap("recording")
        episodes: list[EpisodeInfo] = []
        for t in range(buf.steps):
            episodes += self._step(t)
        # The observation after the rollout: its memory is exactly what step 0 of the next
        # rollout sees.
        policy = self.agent.step(self.agent.normalize(self.next_obs), advance=False).policy
        self.times.lap("acting")
        return episodes, policy.value

    def _step(self, t: int) -> list[EpisodeInfo]:
        buf = self.buffer
        slot = buf.memory_slots + t
        obs = self.agent.normalize(self.next_obs, update=True)
        mask = self.next_mask
        episode_step = self.agent.episode_step
        out = self.agent.step(obs)
        distribution = out.policy.distribution
        actions = distribution.sample(mask)                                 # (W, A)
        self.times.lap("acting")
        self.pool.step_async(actions.cpu().numpy())                         # the one device-to-host copy
        self.times.lap("sending")
        # The envs step while the buffer takes this step's records (forward above reads only
        # the slots before `slot`).
        buf.obs[:, t] = obs
        buf.store(t, out.to_store)
        buf.slot_episode[:, slot] = self.episode
        buf.slot_step[:, slot] = episode_step
        buf.actions[:, t] = actions
        if mask is not None:
            buf.action_masks[:, t] = mask
        buf.log_probs[:, t] = distribution.log_prob(actions, mask)
        buf.values[:, t] = out.policy.value
        self.times.lap("recording")
        result = self.pool.step_wait()
        self.times.lap("waiting")
        # Rewards and episode ends travel together: one host-to-device copy.
        outcome = torch.from_numpy(np.stack([result.rewards, result.terminated,
                                             result.truncated]).astype(np.float32))
        rewards, terminated, truncated = outcome.to(self.device)             # each (W,)
        terminated, truncated = terminated.bool(), truncated.bool()
        if self.reward_scaler is not None:
            rewards = self.reward_scaler(rewards, terminated | truncated)
        buf.rewards[:, t] = rewards
        buf.terminated[:, t], buf.truncated[:, t] = terminated, truncated
        if result.truncated.any():       # checked on the host: no device sync per step
            self.times.lap("recording")
            buf.truncation_values[:, t] = self._truncation_values(result.final_obs, truncated)
            self.times.lap("acting")
        else:
            buf.truncation_values[:, t] = 0.0
        ended = terminated | truncated
        self.agent.episodes_ended(ended)
        self.episode = self.episode + ended.long()
        self.next_obs = self._to_device(result.obs)
        self.next_mask = self._mask(result.action_masks)
        self.times.lap("recording")
        return result.episodes

    def _truncation_values(self, final_obs, truncated: torch.Tensor) -> torch.Tensor:
        """Value of the observation a time limit cut off, seen with its own episode's memory
        (the state after the step that led to it): truncation is not termination (Pardo et
        al. 2018)."""
        final_obs = self.agent.normalize(self._to_device(final_obs))
        policy = self.agent.step(final_obs, advance=False).policy
        return torch.where(truncated, policy.value, 0.0)
