"""What a run or an agent would allocate, estimated from its config and its environment's
spaces before anything is allocated, and refused when it exceeds the memory available."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from preflight.refusal import RefusedInput


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run allocates at least, by part (a lower bound: activations of the backward
    pass beyond the attention scores, allocator slack and the environments are left out)."""
    parameters: int      # weights, gradients and AdamW's two moments
    rollout: int         # observations and per-step records of one rollout
    memory: int          # the cached memory stream and the acting step's key/value cache
    activations: int     # one micro-batch's memory window and attention scores

    @property
    def total(self) -> int:
        return self.parameters + self.rollout + self.memory + self.activations

    def describe(self) -> str:
        parts = ", ".join(f"{name} {gib(getattr(self, name))}" for name in
                          ("parameters", "rollout", "memory", "activations"))
        return f"about {gib(self.total)} ({parts})"


def gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"


def available_memory() -> int:
    """MemAvailable of /proc/meminfo (Linux), else the physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def training_memory(config, spec, parameters: int) -> MemoryEstimate:
    """The lower bound of what training `config` on `spec` allocates (bytes). Sizes come
    from buffer.py's layout: the stream holds memory_length + worker_steps slots per worker."""
    W, T = config.n_workers, config.worker_steps
    obs = math.prod(spec.obs_shape) * (1 if spec.is_image else 4)
    rollout = W * T * (obs + 8 * spec.action_width + spec.mask_size + 7 * 4)
    t = config.transformer
    micro = config.micro_batch_size or config.batch_size // config.n_mini_batch
    if config.memory == "trxl":
        width = 2 if t.memory_dtype == "bfloat16" else 4
        L, N, D, H = t.memory_length, t.num_blocks, t.embed_dim, t.num_heads
        memory = W * (L + T) * N * D * width + 2 * W * N * L * D * 4      # stream + K/V cache
        activations = micro * N * L * (3 * D + H) * 4                     # window, K, V, scores
    else:
        layers, width = config.recurrent.num_layers, config.recurrent.hidden_size
        memory = W * (T + 1) * layers * 2 * width * 4
        activations = micro * layers * 2 * width * 4 * 4
    return MemoryEstimate(16 * parameters, rollout, memory, activations)


def playing_memory(model, config, n_envs: int) -> MemoryEstimate:
    """What an agent of `model` (built on the meta device) allocates for `n_envs`
    environments: its parameters and buffers (a sinusoid table per window position), and
    the key/value window of memory_length - 1 steps per block (agent.MemoryAgent)."""
    tensors = [*model.parameters(), *model.buffers()]
    weights = sum(t.numel() * t.element_size() for t in tensors)
    memory = 0
    if config.memory == "trxl":
        t = config.transformer
        width = 2 if t.memory_dtype == "bfloat16" else 4
        memory = 2 * n_envs * t.num_blocks * (t.memory_length - 1) * t.embed_dim * width
    return MemoryEstimate(weights, 0, memory, 0)


def check_fits(estimate: MemoryEstimate, what: str, fix: str) -> None:
    """RefusedInput when `estimate` exceeds the memory available now."""
    free = available_memory()
    if estimate.total > free:
        raise RefusedInput(f"{what} needs {estimate.describe()}, but {gib(free)} are "
                           f"available. Fix: {fix}.")
