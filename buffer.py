"""Rollout storage, the cached memory stream, GAE and segment minibatches.

Shape legend and the picture of the stream are in memory.py. Per worker the buffer holds
S = M + T slots of cached block inputs: its memory is bounded by memory_length + worker_steps
whatever the episode length (tests/test_transformer.py checks it for 10,000-step episodes).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator

import torch

from config import Config
from environments import SpaceSpec
from memory import INVALID_EPISODE
from recurrent import state_width


@dataclass
class Minibatch:
    """B whole segments of G consecutive steps each."""
    obs: torch.Tensor            # (B, G, *obs_shape)
    actions: torch.Tensor        # (B, G, A) long
    log_probs: torch.Tensor      # (B, G) rollout log-probabilities
    values: torch.Tensor         # (B, G) rollout values
    advantages: torch.Tensor     # (B, G)
    returns: torch.Tensor        # (B, G)
    memory: torch.Tensor         # TrXL (N, B, M, D) cached block inputs before each segment
                                 # (M+G with a gradient window); recurrent (N, B, 1, S)
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
            fields = {f.name: getattr(self, f.name)[part] for f in dataclasses.fields(self)}
            fields["memory"] = self.memory[:, part]                         # (N, b, M, D)
            parts.append(Minibatch(**fields))
        return parts


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


def stream_layout(config: Config) -> tuple[int, int, int, int]:
    """(N, M, width, memory_keys) of the cached stream for config.memory: N layers of width
    `width` per slot, M memory slots carried between rollouts, and how many slots a training
    segment gathers as its memory."""
    t = config.transformer
    if config.memory == "trxl":
        M = t.memory_length - 1
        window = t.gradient_window or config.segment_len
        # With a gradient window the segment's own cached inputs are needed too (memory.py).
        return t.num_blocks, M, t.embed_dim, M + (config.segment_len if window < config.segment_len else 0)
    if config.memory == "none":
        return 0, 0, 0, 1
    r = config.recurrent
    # A recurrent slot t holds the state before step t: a segment gathers its first one.
    return r.num_layers, 0, state_width(config.memory, r), 1


class RolloutBuffer:
    def __init__(self, config: Config, spec: SpaceSpec, device: torch.device):
        W, T = config.n_workers, config.worker_steps
        self.workers, self.steps = W, T
        N, M, width, self.memory_keys = stream_layout(config)
        self.memory_slots = M
        self.segment = config.segment_len
        obs_dtype = torch.uint8 if spec.obs_dtype == "uint8" else torch.float32
        f32 = dict(dtype=torch.float32, device=device)
        self.obs = torch.zeros((W, T, *spec.obs_shape), dtype=obs_dtype, device=device)
        self.actions = torch.zeros((W, T, len(spec.action_nvec)), dtype=torch.long, device=device)
        self.log_probs = torch.zeros((W, T), **f32)
        self.values = torch.zeros((W, T), **f32)
        self.rewards = torch.zeros((W, T), **f32)
        self.terminated = torch.zeros((W, T), dtype=torch.bool, device=device)
        self.truncated = torch.zeros((W, T), dtype=torch.bool, device=device)
        self.truncation_values = torch.zeros((W, T), **f32)
        self.advantages = torch.zeros((W, T), **f32)
        self.returns = torch.zeros((W, T), **f32)
        # The stream (see memory.py): slot M + t holds rollout step t.
        self.stream = torch.zeros((N, W, M + T, width), device=device,
                                  dtype=getattr(torch, config.transformer.memory_dtype))  # (N, W, S, D)
        self.slot_episode = torch.full((W, M + T), INVALID_EPISODE, dtype=torch.long, device=device)
        self.slot_step = torch.zeros((W, M + T), dtype=torch.long, device=device)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in vars(self).values()
                   if isinstance(t, torch.Tensor))

    def carry_over(self) -> None:
        """Before a rollout: the last M slots become the memory slots of the next stream."""
        M, T = self.memory_slots, self.steps
        if M == 0:
            return
        self.stream[:, :, :M] = self.stream[:, :, T:T + M].clone()
        self.slot_episode[:, :M] = self.slot_episode[:, T:T + M].clone()
        self.slot_step[:, :M] = self.slot_step[:, T:T + M].clone()

    def compute_advantages(self, last_value: torch.Tensor, gamma: float, lam: float) -> None:
        self.advantages = gae(self.rewards, self.values, self.terminated, self.truncated,
                              self.truncation_values, last_value, gamma, lam)
        self.returns = self.advantages + self.values

    def minibatches(self, n_mini_batch: int, generator: torch.Generator) -> Iterator[Minibatch]:
        """Shuffled whole segments, split into n_mini_batch nearly equal groups."""
        W, T, G = self.workers, self.steps, self.segment
        per_worker = T // G
        order = torch.randperm(W * per_worker, generator=generator)
        for chunk in torch.tensor_split(order, n_mini_batch):
            yield self._segments(chunk // per_worker, (chunk % per_worker) * G)

    def _segments(self, worker: torch.Tensor, start: torch.Tensor) -> Minibatch:
        """Gather segments beginning at rollout step `start` of `worker` (both (B,))."""
        G, M = self.segment, self.memory_slots
        device = self.obs.device
        worker, start = worker.to(device), start.to(device)
        steps = start.unsqueeze(1) + torch.arange(G, device=device)          # (B, G)
        w = worker.unsqueeze(1)                                             # (B, 1)
        # Stream slots of the segment's keys: the M before it, then its own G (memory.py).
        key_slots = start.unsqueeze(1) + torch.arange(M + G, device=device)  # (B, M+G)
        memory = self.stream[:, w, key_slots[:, :self.memory_keys]]         # (N, B, keys, D)
        return Minibatch(
            obs=self.obs[w, steps], actions=self.actions[w, steps],
            log_probs=self.log_probs[w, steps], values=self.values[w, steps],
            advantages=self.advantages[w, steps], returns=self.returns[w, steps],
            memory=memory, key_episode=self.slot_episode[w, key_slots],
            query_step=self.slot_step[w, steps + M])
