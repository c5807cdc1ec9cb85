"""Memories: what sits between the observation encoder and the policy/value heads.

Every memory is an `nn.Module` with the `Memory` interface below, built by `make_memory` from
the config's `memory` key and its section. The sampler (training) and the agent (enjoy,
evaluate) act through the same calls; the buffer stores what `layout()` asks for; training
calls `segments`. Nothing else in the project branches on the kind of memory, so a new
memory is one file here plus its config section (docs/extending.md).

Shape legend (also window.py): B batch (workers while acting, segments in training),
G steps per segment, N layers, D widths, K stored entries a segment receives.

    acting, per step:      out, next_state, to_store = memory.step(x, state, episode_step)
    buffer, per step       stored[w, history + t] = to_store        (layout.per_segment False)
      or per segment:      stored[w, t // G]      = to_store at t % G == 0   (True)
    training, per segment: out = memory.segments(x, stored (B, K, *shape), key_episode,
                                                 query_step)
"""
from __future__ import annotations

from typing import NamedTuple, Protocol

import torch

from config import Config


class StoreLayout(NamedTuple):
    """What the rollout buffer keeps for training, per worker.

    per_segment False: one entry per step (and `history` entries from before the rollout,
    carried over); a segment starting at rollout step s receives stream slots s .. s+K-1,
    where stream slot `history + t` holds step t. per_segment True: one entry before each
    segment's first step, and the segment receives it (K = 1). A memory whose state is large
    (a matrix per head) asks for per_segment, so the buffer holds T / G entries, not T."""
    shape: tuple[int, ...]      # of one entry
    dtype: torch.dtype          # as stored (bfloat16 halves it, config memory_dtype)
    per_segment: bool
    history: int                # M: entries carried over from the previous rollout
    keys: int                   # K: entries a training segment receives


class Memory(Protocol):
    """The interface every memory implements (an nn.Module; its state a NamedTuple of
    batch-first tensors, so torch.compile takes the acting step as one graph and a
    checkpoint stores it for an exact resume)."""
    input_dim: int              # width of the embedding it receives
    output_dim: int             # width of what it gives the heads

    def layout(self) -> StoreLayout: ...

    def initial_state(self, batch: int, device: torch.device) -> NamedTuple:
        """The state before anything was seen, for `batch` environments."""

    def refresh(self, state: NamedTuple, history: torch.Tensor) -> NamedTuple:
        """The state with whatever it derives from the weights recomputed from history
        (B, layout().history, *shape), the stored entries of the steps before the rollout:
        called at each rollout's start, since the weights changed since the state was built."""

    def step(self, x: torch.Tensor, state: NamedTuple, episode_step: torch.Tensor
             ) -> tuple[torch.Tensor, NamedTuple, torch.Tensor]:
        """One step of every environment: x (B, input_dim), episode_step (B,) long (0 starts
        an episode: nothing from before it may be used). Returns the output
        (B, output_dim), the next state and the entry (B, *layout().shape) for the buffer."""

    def segments(self, x: torch.Tensor, stored: torch.Tensor, key_episode: torch.Tensor,
                 query_step: torch.Tensor) -> torch.Tensor:
        """Training: x (B, G, input_dim) embeddings of B segments; stored (B, K, *shape) float32
        entries the buffer kept; key_episode (B, history + G) episode id of each step slot;
        query_step (B, G) each step's index in its episode. Returns (B, G, output_dim): what
        `step` gave for the same steps."""


def make_memory(config: Config) -> Memory:
    """The memory `config.memory` names, built from its config section."""
    from memories.linear import agalite_memory, ffm_memory
    from memories.recurrent import NoMemory, RecurrentMemory
    from memories.trxl import TransformerMemory
    builders = {
        "agalite": lambda: agalite_memory(config.agalite),
        "ffm": lambda: ffm_memory(config.ffm),
        "trxl": lambda: TransformerMemory(config.transformer, config.segment_len),
        "gru": lambda: RecurrentMemory("gru", config.recurrent, config.transformer.memory_dtype),
        "lstm": lambda: RecurrentMemory("lstm", config.recurrent, config.transformer.memory_dtype),
        "none": lambda: NoMemory(config.transformer.embed_dim),
    }
    return builders[config.memory]()


def memory_layout(config: Config) -> StoreLayout:
    """The layout of config's memory, without allocating its weights."""
    with torch.device("meta"):
        return make_memory(config).layout()


def memory_widths(config: Config) -> tuple[int, int]:
    """(input_dim, output_dim) of config's memory, without allocating its weights or drawing
    random numbers (the network builds its encoder first, as seeded runs always did)."""
    with torch.device("meta"):
        memory = make_memory(config)
    return memory.input_dim, memory.output_dim


def state_nbytes(state: NamedTuple) -> int:
    """Bytes held by a memory state's tensors."""
    return sum(t.numel() * t.element_size() for t in state)
