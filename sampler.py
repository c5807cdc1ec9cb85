"""Collects rollouts: batched inference over all workers, one step of every env at a time.

Shape legend and stream picture in memory.py. The buffer's stream holds what training needs
per step: TrXL block inputs, or a recurrent memory's state before the step. For TrXL the KV
cache here holds the projected keys and values with the current weights, so that one step
costs O(L x D) attention plus O(D^2) projections instead of re-projecting the whole window
(the original implementation's main sampling cost).
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from buffer import RolloutBuffer
from config import Config
from model import ActorCritic, PolicyOutput, log_prob, sample_actions
from recurrent import reset_at_episode_start
from transformer import KV
from worker_pool import EpisodeInfo, WorkerPool


def cpp_compiler() -> Optional[str]:
    """The C++ compiler inductor will use on CPU ($CXX, else g++), or None if absent."""
    return shutil.which(os.environ.get("CXX", "g++"))


def acting_step(step: Callable, compiled: bool, device: torch.device) -> Callable:
    """The model's acting step (an ActorCritic method, called with the model first), or its
    torch.compile'd version. Shapes never change within a run, so one graph serves it. On CPU
    the C++ wrapper calls the kernels without Python in between: that is where a small
    model's step spends most of its time eagerly (benchmarks/acting_step.py)."""
    if not compiled:
        return step
    if device.type == "cpu" and cpp_compiler() is None:
        raise RuntimeError(f"compile_acting: true needs a C++ compiler on CPU (inductor builds "
                           f"the step with {os.environ.get('CXX', 'g++')!r}), and none was found. "
                           f"Fix: install one (e.g. apt install g++, or set CXX), or set "
                           f"compile_acting: false.")
    options = {"cpp_wrapper": True} if device.type == "cpu" else None
    return torch.compile(step, dynamic=False, fullgraph=True, options=options)


class KVCache:
    """Keys and values of the most recent stream slots, per block: k, v each (N, W, H, C, dh).

    It holds C = 2M + 1 slots, not the whole stream: a step needs only the M slots before it.
    When full, the newest M slots are moved to the front (once every M + 1 steps), so windows
    stay contiguous views and the cache is ~3x smaller than the stream for long rollouts.

        cache index   0 ....... M-1 | M ........ 2M
        stream slot   base ...      |      ... base + 2M       (then base += M + 1)
    """

    def __init__(self, buffer: RolloutBuffer, num_heads: int):
        N, W, _, D = buffer.stream.shape
        self.memory_slots = M = buffer.memory_slots
        shape = (N, W, num_heads, 2 * M + 1, D // num_heads)
        # The stream's dtype: bfloat16 when config.transformer.memory_dtype asks for it.
        like = dict(device=buffer.stream.device, dtype=buffer.stream.dtype)
        self.k = torch.zeros(shape, **like)
        self.v = torch.zeros(shape, **like)
        self.base = 0          # stream slot held at cache index 0

    def refresh(self, model: ActorCritic, stream: torch.Tensor) -> None:
        """Re-project the carried-over slots (N, W, M, D) with the current weights, exactly as
        training will (TransformerMemory.segments projects the cached block inputs)."""
        M = self.memory_slots
        self.base = 0
        if M == 0:
            return
        with torch.no_grad():
            for b, kv in enumerate(model.memory.project_memory(stream[:, :, :M].float())):
                self.k[b, :, :, :M] = kv.k                                 # (W, H, M, dh)
                self.v[b, :, :, :M] = kv.v

    def _index(self, slot: int) -> int:
        """Cache index of stream slot `slot`, sliding the newest M slots to the front first
        when `slot` would fall past the end."""
        M, C = self.memory_slots, self.k.shape[3]
        if slot - self.base >= C:
            keep = slice(slot - self.base - M, slot - self.base)
            self.k[:, :, :, :M] = self.k[:, :, :, keep].clone()
            self.v[:, :, :, :M] = self.v[:, :, :, keep].clone()
            self.base = slot - M
        return slot - self.base

    def window(self, first: int, write: bool) -> tuple[KV, int]:
        """The M cached slots first .. first+M-1 of every block, as views (N, W, H, M, dh), and
        the cache index of the step's own slot first + M. With `write` that index is inside
        the cache (sliding it first if needed), for store(); without, the step gets no slot
        (the observation after the rollout, or one a time limit cut off)."""
        M = self.memory_slots
        own_index = self._index(first + M) if write else first + M - self.base
        start = own_index - M
        assert 0 <= start and own_index <= self.k.shape[3] - write, "window left the cache"
        return KV(self.k[:, :, :, start:own_index], self.v[:, :, :, start:own_index]), own_index

    def store(self, index: int, own: KV) -> None:
        """The step's own keys and values, own.k and own.v (N, W, H, dh), at cache index."""
        self.k[:, :, :, index] = own.k
        self.v[:, :, :, index] = own.v

    def nbytes(self) -> int:
        return 2 * self.k.numel() * self.k.element_size()


class TransformerRollout:
    """TrXL acting during a rollout: windows from the KV cache, block inputs into the stream."""

    def __init__(self, buffer: RolloutBuffer, num_heads: int, compiled: bool):
        self.buffer = buffer
        self.cache = KVCache(buffer, num_heads)
        self.act = acting_step(ActorCritic.step_window, compiled, buffer.stream.device)
        # A step always sees itself: the last column of every key mask.
        self.own_valid = torch.ones(buffer.workers, 1, dtype=torch.bool,
                                    device=buffer.stream.device)                       # (W, 1)

    def begin(self, model: ActorCritic) -> None:
        self.cache.refresh(model, self.buffer.stream)

    def forward(self, model: ActorCritic, obs: torch.Tensor, first: int, write: bool,
                episode: torch.Tensor, episode_step: torch.Tensor) -> PolicyOutput:
        """The policy for obs, whose window starts at stream slot `first`; with `write` the
        step's block inputs go to slot first + M."""
        buf, M = self.buffer, self.buffer.memory_slots
        cached_valid = buf.slot_episode[:, first:first + M] == episode.unsqueeze(1)       # (W, M)
        key_valid = torch.cat([cached_valid, self.own_valid], dim=1)                     # (W, L)
        past, own_index = self.cache.window(first, write)
        out, own = self.act(model, obs, past, key_valid, episode_step)
        if write:
            self.cache.store(own_index, own)
            buf.stream[:, :, first + M] = out.block_inputs                               # (N, W, D)
        return out.policy

    def state(self) -> dict:
        return {}            # the cache is re-projected from the stream every rollout

    def restore(self, state: dict) -> None:
        pass

    def nbytes(self) -> int:
        return self.cache.nbytes()


class RecurrentRollout:
    """GRU/LSTM (or no memory) acting during a rollout: one running state per worker, and
    the state before every step into the stream, for truncated BPTT."""

    def __init__(self, buffer: RolloutBuffer, compiled: bool):
        self.buffer = buffer
        self.act = acting_step(ActorCritic.step_recurrent, compiled, buffer.stream.device)
        N, W, _, S = buffer.stream.shape
        self.running = torch.zeros(N, W, S, device=buffer.stream.device)    # (N, W, S) float32

    def begin(self, model: ActorCritic) -> None:
        pass

    def forward(self, model: ActorCritic, obs: torch.Tensor, first: int, write: bool,
                episode: torch.Tensor, episode_step: torch.Tensor) -> PolicyOutput:
        """The policy for obs after the steps so far (slot `first` of the stream is its own,
        M = 0); with `write` the state is stored there and advanced."""
        state = reset_at_episode_start(self.running, episode_step)          # (N, W, S)
        policy, after = self.act(model, obs, state)
        if write:
            self.buffer.stream[:, :, first] = state
            self.running = after
        return policy

    def state(self) -> dict:
        return {"running": self.running.cpu().clone()}

    def restore(self, state: dict) -> None:
        self.running = state["running"].to(self.running.device)

    def nbytes(self) -> int:
        return self.running.numel() * self.running.element_size()


@dataclass
class SamplingTimes:
    """Seconds of one rollout by phase (benchmarks/throughput.py prints them per step). The
    envs step during `recording`; only what is left of their step shows as `waiting`."""
    acting: float = 0.0       # the network's step and action sampling
    sending: float = 0.0      # handing the actions to the env processes
    recording: float = 0.0    # log-probabilities, buffer writes, bookkeeping, observation copies
    waiting: float = 0.0      # waiting for the env processes' replies

    def __post_init__(self) -> None:
        # Not a field: dataclasses.asdict(times) is the phases alone.
        self._mark = time.perf_counter()

    def lap(self, phase: str) -> None:
        """Add the time since the previous lap (or creation) to `phase`."""
        now = time.perf_counter()
        setattr(self, phase, getattr(self, phase) + now - self._mark)
        self._mark = now


class Sampler:
    """Steps the worker pool for one rollout and fills the buffer."""

    def __init__(self, pool: WorkerPool, buffer: RolloutBuffer, config: Config,
                 device: torch.device):
        self.pool, self.buffer, self.device = pool, buffer, device
        W = buffer.workers
        self.memory = TransformerRollout(buffer, config.transformer.num_heads, config.compile_acting) \
            if config.memory == "trxl" else RecurrentRollout(buffer, config.compile_acting)
        # Episode ids only need to differ between consecutive episodes of one worker.
        self.episode = torch.zeros(W, dtype=torch.long, device=device)
        self.episode_step = torch.zeros(W, dtype=torch.long, device=device)
        self.next_obs = self._to_device(pool.reset())
        self.times = SamplingTimes()          # of the latest rollout

    def state(self) -> dict:
        """What a resumed run needs to continue the running episodes exactly (at an update
        boundary): episode bookkeeping, the carried memory slots, the envs' replay record."""
        episodes, actions = self.pool.running_episodes()
        T = self.buffer.steps
        return {"episode": self.episode.cpu().clone(), "episode_step": self.episode_step.cpu().clone(),
                "stream": self.buffer.stream[:, :, T:].cpu().clone(),
                "slot_episode": self.buffer.slot_episode[:, T:].cpu().clone(),
                "slot_step": self.buffer.slot_step[:, T:].cpu().clone(),
                "memory": self.memory.state(),
                "env_episodes": torch.from_numpy(episodes),
                "env_actions": [torch.from_numpy(a) for a in actions]}

    def restore(self, state: dict) -> None:
        """Undo state(): envs replay their running episodes; memory slots come back."""
        obs = self.pool.restore(state["env_episodes"].numpy(),
                                [a.numpy() for a in state["env_actions"]])
        self.next_obs = self._to_device(obs)
        self.episode = state["episode"].to(self.device)
        self.episode_step = state["episode_step"].to(self.device)
        T = self.buffer.steps
        self.buffer.stream[:, :, T:] = state["stream"].to(self.device)
        self.buffer.slot_episode[:, T:] = state["slot_episode"].to(self.device)
        self.buffer.slot_step[:, T:] = state["slot_step"].to(self.device)
        self.memory.restore(state.get("memory", {}))

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        # One host-to-device copy per step; on CPU a copy too, since the shared array is
        # overwritten by the next step.
        return torch.from_numpy(array).to(self.device, copy=True)

    def collect(self, model: ActorCritic) -> tuple[list[EpisodeInfo], torch.Tensor]:
        """One rollout of T steps per worker. Returns the finished episodes' statistics and the
        bootstrap value (W,) of the observation after the rollout."""
        buf = self.buffer
        self.times = SamplingTimes()
        buf.carry_over()
        self.memory.begin(model)
        self.times.lap("recording")
        episodes: list[EpisodeInfo] = []
        for t in range(buf.steps):
            episodes += self._step(model, t)
        # The observation after the rollout sits in slot T + M, just past the stream; its
        # window is the stream's last M slots: exactly what step 0 of the next rollout sees.
        policy = self.memory.forward(model, self.next_obs, buf.steps, False, self.episode,
                                     self.episode_step)
        self.times.lap("acting")
        return episodes, policy.value

    def _step(self, model: ActorCritic, t: int) -> list[EpisodeInfo]:
        buf, M = self.buffer, self.buffer.memory_slots
        slot = M + t
        obs = self.next_obs
        policy = self.memory.forward(model, obs, t, True, self.episode, self.episode_step)
        actions = sample_actions(policy.logits)                             # (W, A)
        self.times.lap("acting")
        self.pool.step_async(actions.cpu().numpy())                         # the one device-to-host copy
        self.times.lap("sending")
        # The envs step while the buffer takes this step's records (forward above reads only
        # the slots before `slot`).
        buf.obs[:, t] = obs
        buf.slot_episode[:, slot] = self.episode
        buf.slot_step[:, slot] = self.episode_step
        buf.actions[:, t] = actions
        buf.log_probs[:, t] = log_prob(policy.logits, actions)
        buf.values[:, t] = policy.value
        self.times.lap("recording")
        result = self.pool.step_wait()
        self.times.lap("waiting")
        # Rewards and episode ends travel together: one host-to-device copy.
        outcome = torch.from_numpy(np.stack([result.rewards, result.terminated,
                                             result.truncated]).astype(np.float32))
        rewards, terminated, truncated = outcome.to(self.device)             # each (W,)
        terminated, truncated = terminated.bool(), truncated.bool()
        buf.rewards[:, t] = rewards
        buf.terminated[:, t], buf.truncated[:, t] = terminated, truncated
        if result.truncated.any():       # checked on the host: no device sync per step
            self.times.lap("recording")
            buf.truncation_values[:, t] = self._truncation_values(model, t, truncated)
            self.times.lap("acting")
        else:
            buf.truncation_values[:, t] = 0.0
        ended = terminated | truncated
        self.episode_step = torch.where(ended, 0, self.episode_step + 1)
        self.episode = self.episode + ended.long()
        self.next_obs = self._to_device(result.obs)
        self.times.lap("recording")
        return result.episodes

    def _truncation_values(self, model: ActorCritic, t: int, truncated: torch.Tensor) -> torch.Tensor:
        """Value of the observation a time limit cut off, seen with its own episode's window
        (slots t+1 .. t+M, then itself): truncation is not termination (Pardo et al. 2018)."""
        final_obs = self._to_device(self.pool.final_obs)
        policy = self.memory.forward(model, final_obs, t + 1, False, self.episode,
                                     self.episode_step + 1)
        return torch.where(truncated, policy.value, 0.0)
