"""What a run or an agent would allocate, estimated from its config and its environment's
spaces before anything is allocated, and refused when it exceeds the memory available."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from preflight.refusal import RefusedInput


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run allocates at least, by part (a lower bound: the encoder's inner
    activations, allocator slack and the environments are left out)."""
    parameters: int      # weights, gradients and AdamW's two moments
    rollout: int         # observations and per-step records of one rollout
    memory: int          # the memory's stored entries and its acting state
    activations: int     # what the network keeps for one micro-batch's backward pass

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
    """The lower bound of what training `config` on `spec` allocates (bytes). The memory's
    part comes from the memory itself: its layout, its state and its activations
    (memories.memory_bytes); the rest of the network keeps at least, per step of a
    micro-batch, its input, the memory's output and four hidden layers' worth."""
    from memories import memory_bytes, memory_widths, micro_batch_segments
    W, T = config.n_workers, config.worker_steps
    obs = math.prod(spec.obs_shape) * (1 if spec.is_image else 4)
    rollout = W * T * (obs + 8 * spec.action_width + spec.mask_size + 7 * 4)
    sizes = memory_bytes(config)
    steps = micro_batch_segments(config) * config.segment_len
    network = 4 * steps * (math.prod(spec.obs_shape) + memory_widths(config)[1] +
                           4 * config.hidden_layer_size)
    return MemoryEstimate(16 * parameters, rollout, sizes.stored + sizes.state,
                          sizes.activations + network)


def playing_memory(model, n_envs: int) -> MemoryEstimate:
    """What an agent of `model` (built on the meta device) allocates for `n_envs`
    environments: its parameters and buffers (a sinusoid table per window position), and
    its memory's state (agent.MemoryAgent)."""
    import torch

    from memories import state_nbytes
    tensors = [*model.parameters(), *model.buffers()]
    weights = sum(t.numel() * t.element_size() for t in tensors)
    state = model.memory.initial_state(n_envs, torch.device("meta"))
    return MemoryEstimate(weights, 0, state_nbytes(state), 0)


def check_fits(estimate: MemoryEstimate, what: str, fix: str) -> None:
    """RefusedInput when `estimate` exceeds the memory available now."""
    free = available_memory()
    if estimate.total > free:
        raise RefusedInput(f"{what} needs {estimate.describe()}, but {gib(free)} are "
                           f"available. Fix: {fix}.")
