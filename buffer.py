"""Rollout storage, the memory's stored entries, GAE and segment minibatches.

Shape legend and the picture of the stream are in memories/window.py. The memory decides
what is stored (memories.StoreLayout): per step, a stream of S = M + T slots per worker (TrXL
block inputs with M carried over, or a recurrent state), or one entry per segment (a large
state). Either way the buffer is bounded by memory_length + worker_steps whatever the
episode length (tests/test_transformer.py checks it for 10,000-step episodes).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator

import torch

from config import Config
from environments import SpaceSpec
from memories import memory_layout
from memories.window import INVALID_EPISODE


@dataclass
class Minibatch:
    """B whole segments of G consecutive steps each."""
    obs: torch.Tensor            # (B, G, *obs_shape), normalised if the run normalises
    actions: torch.Tensor        # (B, G, A) flat actions (environments/actions.py)
    action_masks: torch.Tensor   # (B, G, sum(nvec)) bool; (B, G, 0) without masks
    log_probs: torch.Tensor      # (B, G) rollout log-probabilities
    values: torch.Tensor         # (B, G) rollout values
    advantages: torch.Tensor     # (B, G)
    returns: torch.Tensor        # (B, G)
    memory: torch.Tensor         # (B, K, *shape) the memory's stored entries for each
                                 # segment (memories.StoreLayout), e.g. TrXL (B, M, N, D)
    key_episode: torch.Tensor    # (B, M + G) episode id of every key slot
    query_step: torch.Tensor     # (B, G) index of each step in its episode

    @property
    def steps(self) -> int:
        return self.obs.shape[0] * self.obs.shape[1]

    def split(self, segments: int) -> list["Minibatch"]:
        """Parts of at most `segments` segments each, for gradient accumulation."""
        parts = []
        for start in range(0, self.obs.shape[0], segments):
            part = slice(start, start + segments)
            parts.append(Minibatch(**{f.name: getattr(self, f.name)[part]
                                      for f in dataclasses.fields(self)}))
        return parts


@dataclass
class MinibatchShare:
    """One rank's segments of a minibatch drawn from the whole run's workers."""
    batch: Minibatch             # this rank's segments (possibly none)
    run_steps: int               # steps of the whole minibatch, on all ranks together


def gae(rewards: torch.Tensor, values: torch.Tensor, terminated: torch.Tensor,
        truncated: torch.Tensor, truncation_values: torch.Tensor, last_value: torch.Tensor,
        gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantage estimation (Schulman et al. 2016) over (W, T) tensors.

    A termination bootstraps with 0; a time-limit truncation is not a termination, so it
    bootstraps with the value of the observation it cut off (truncation_values); the
    rollout end bootstraps with last_value (W,). Either way the recursion stops at the
    episode boundary."""
    W, T = rewards.shape
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(T)):
        ended = terminated[:, t] | truncated[:, t]
        next_value = torch.where(truncated[:, t], truncation_values[:, t], next_value)
        delta = rewards[:, t] + gamma * next_value * (~terminated[:, t]) - values[:, t]
        running = delta + gamma * lam * running * (~ended)
        advantages[:, t] = running
        next_value = values[:, t]
    return advantages


class RolloutBuffer:
    def __init__(self, config: Config, spec: SpaceSpec, device: torch.device):
        W, T = config.n_workers, config.worker_steps
        self.workers, self.steps = W, T
        self.layout = memory_layout(config)
        self.memory_slots = M = self.layout.history
        self.segment = G = config.segment_len
        obs_dtype = torch.uint8 if spec.obs_dtype == "uint8" else torch.float32
        f32 = dict(dtype=torch.float32, device=device)
        self.obs = torch.zeros((W, T, *spec.obs_shape), dtype=obs_dtype, device=device)
        self.actions = torch.zeros((W, T, spec.action_width), device=device,
                                   dtype=getattr(torch, spec.action_dtype))
        self.action_masks = torch.zeros((W, T, spec.mask_size), dtype=torch.bool, device=device)
        self.log_probs = torch.zeros((W, T), **f32)
        self.values = torch.zeros((W, T), **f32)
        self.rewards = torch.zeros((W, T), **f32)
        self.terminated = torch.zeros((W, T), dtype=torch.bool, device=device)
        self.truncated = torch.zeros((W, T), dtype=torch.bool, device=device)
        self.truncation_values = torch.zeros((W, T), **f32)
        self.advantages = torch.zeros((W, T), **f32)
        self.returns = torch.zeros((W, T), **f32)
        # Per step, a stream (memories/window.py): slot M + t holds rollout step t's entry;
        # per segment, entry i is the one before segment i's first step.
        entries = T // G if self.layout.per_segment else M + T
        self.stored = torch.zeros((W, entries, *self.layout.shape), device=device,
                                  dtype=self.layout.dtype)                  # (W, entries, *shape)
        self.slot_episode = torch.full((W, M + T), INVALID_EPISODE, dtype=torch.long, device=device)
        self.slot_step = torch.zeros((W, M + T), dtype=torch.long, device=device)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in vars(self).values()
                   if isinstance(t, torch.Tensor))

    def store(self, t: int, entry: torch.Tensor) -> None:
        """The memory's entry (W, *shape) for rollout step t, where its layout keeps one."""
        if not self.layout.per_segment:
            self.stored[:, self.memory_slots + t] = entry
        elif t % self.segment == 0:
            self.stored[:, t // self.segment] = entry

    def carry_over(self) -> None:
        """Before a rollout: the last M slots become the memory slots of the next stream."""
        M, T = self.memory_slots, self.steps
        if M == 0:
            return
        self.stored[:, :M] = self.stored[:, T:T + M].clone()
        self.slot_episode[:, :M] = self.slot_episode[:, T:T + M].clone()
        self.slot_step[:, :M] = self.slot_step[:, T:T + M].clone()

    def carried(self) -> dict:
        """The slots the next rollout carries over (for a checkpoint): the last M."""
        T = self.steps
        return {"stored": self.stored[:, T:].cpu().clone() if self.memory_slots else None,
                "slot_episode": self.slot_episode[:, T:].cpu().clone(),
                "slot_step": self.slot_step[:, T:].cpu().clone()}

    def restore_carried(self, carried: dict) -> None:
        """Undo carried()."""
        T = self.steps
        if self.memory_slots:
            self.stored[:, T:] = carried["stored"].to(self.stored.device)
        self.slot_episode[:, T:] = carried["slot_episode"].to(self.slot_episode.device)
        self.slot_step[:, T:] = carried["slot_step"].to(self.slot_step.device)

    def compute_advantages(self, last_value: torch.Tensor, gamma: float, lam: float) -> None:
        self.advantages = gae(self.rewards, self.values, self.terminated, self.truncated,
                              self.truncation_values, last_value, gamma, lam)
        self.returns = self.advantages + self.values

    def minibatches(self, n_mini_batch: int, generator: torch.Generator) -> Iterator[Minibatch]:
        """Shuffled whole segments, split into n_mini_batch nearly equal groups."""
        for share in self.shared_minibatches(n_mini_batch, generator, 0, self.workers):
            yield share.batch

    def shared_minibatches(self, n_mini_batch: int, generator: torch.Generator,
                           first_worker: int, run_workers: int) -> Iterator["MinibatchShare"]:
        """The minibatches of a run whose `run_workers` workers are spread over ranks, this
        buffer holding workers first_worker.. of them: every rank draws the same shuffle of
        the whole run's segments (`generator` in the same state on each) and takes its own
        segments of each minibatch, so the ranks together take the 1-rank run's minibatches."""
        W, T, G = self.workers, self.steps, self.segment
        per_worker = T // G
        order = torch.randperm(run_workers * per_worker, generator=generator)
        for chunk in torch.tensor_split(order, n_mini_batch):
            worker = chunk // per_worker - first_worker
            mine = (worker >= 0) & (worker < W)
            yield MinibatchShare(self._segments(worker[mine], (chunk[mine] % per_worker) * G),
                                 chunk.numel() * G)

    def _segments(self, worker: torch.Tensor, start: torch.Tensor) -> Minibatch:
        """Gather segments beginning at rollout step `start` of `worker` (both (B,))."""
        G, M = self.segment, self.memory_slots
        device = self.obs.device
        worker, start = worker.to(device), start.to(device)
        steps = start.unsqueeze(1) + torch.arange(G, device=device)          # (B, G)
        w = worker.unsqueeze(1)                                             # (B, 1)
        # Stream slots of the segment's keys: the M before it, then its own G (window.py).
        key_slots = start.unsqueeze(1) + torch.arange(M + G, device=device)  # (B, M+G)
        if self.layout.per_segment:
            memory = self.stored[w, (start // G).unsqueeze(1)]              # (B, 1, *shape)
        else:
            memory = self.stored[w, key_slots[:, :self.layout.keys]]        # (B, K, *shape)
        return Minibatch(
            obs=self.obs[w, steps], actions=self.actions[w, steps],
            action_masks=self.action_masks[w, steps],
            log_probs=self.log_probs[w, steps], values=self.values[w, steps],
            advantages=self.advantages[w, steps], returns=self.returns[w, steps],
            memory=memory, key_episode=self.slot_episode[w, key_slots],
            query_step=self.slot_step[w, steps + M])
