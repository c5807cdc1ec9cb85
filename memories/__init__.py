"""Memories: what sits between the observation encoder and the policy/value heads.

Every memory is an `nn.Module` with the `Memory` interface below. Its file registers it as a
`MemoryKind` (`register`): its name, its config section (a dataclass whose fields carry their
docs and bounds), its checks, its builder and whether its acting step compiles. The config
schema, `make_memory`, the memory estimate, the configuration reference, the benchmark and
the shared tests find every kind here; nothing else in the project names one, so a new
memory is one file here (docs/extending.md). Kinds come from the files of this package and
from any installed package that declares an entry point in the group `trxl_ppo.memories`.

The sampler (training) and the agent (enjoy, evaluate) act through the same calls; the
buffer stores what `layout()` asks for; training calls `segments`.

Shape legend (also window.py): B batch (workers while acting, segments in training),
G steps per segment, N layers, D widths, K stored entries a segment receives.

    acting, per step:      out, next_state, to_store = memory.step(x, state, episode_step)
    buffer, per step       stored[w, history + t] = to_store        (layout.per_segment False)
      or per segment:      stored[w, t // G]      = to_store at t % G == 0   (True)
    training, per segment: out = memory.segments(x, stored (B, K, *shape), key_episode,
                                                 query_step)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple, Optional, Protocol

import torch
from torch import nn

from plugins import Registry

if TYPE_CHECKING:
    from config import Config

# The memory of a config that names none.
DEFAULT = "trxl"
# Installed packages add memories by declaring entry points (each a module that calls
# `register`) in this group.
ENTRY_POINT_GROUP = "trxl_ppo.memories"


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

    def activation_bytes(self, segments: int, length: int) -> int:
        """Bytes that `segments` training segments of `length` steps keep for the backward
        pass (what autograd saves, each storage once): the memory refusal's estimate of a
        micro-batch (preflight/memory_estimate.py), compared with a measurement in tests/test_estimates.py."""


# A check's failure: ValueError(f"{key} = {value}: {problem}. Fix: {fix}."), to which the
# config adds the file's name (config.Invalid builds it).
Check = Callable[[Any, "Config"], None]


@dataclass(frozen=True)
class MemoryKind:
    """Everything the project knows about one kind of memory, registered by its file."""
    name: str                   # the value of `memory:` that selects it
    summary: str                # one sentence for the configuration reference
    section: str                # the config key of its settings (kinds may share one)
    settings: type              # that section: a frozen dataclass of config.setting fields
    build: Callable[[Any, "Config"], nn.Module]   # (its section, the whole config) -> Memory
    check: Optional[Check] = None   # constraints between fields, beyond each one's bounds
    compiles: bool = True       # torch.compile takes its acting step as one graph
    # Small variants the shared known-answer tests run: label -> section values.
    examples: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # benchmarks/memories.py's variants: label -> (width, context length L) -> section values.
    sized: Mapping[str, Callable[[int, int], Mapping[str, Any]]] = field(default_factory=dict)


def _origin(kind: MemoryKind) -> str:
    return f"{kind.settings.__module__}.{kind.settings.__qualname__}"


_KINDS: Registry[MemoryKind] = Registry(__name__, __path__, ENTRY_POINT_GROUP, "memory", _origin)


def register(kind: MemoryKind) -> MemoryKind:
    """Add `kind` to the memories a config may name. A file that is imported again replaces
    its own kinds; two files claiming one name, or one section with two dataclasses, fail."""
    for other in _KINDS.registered().values():
        # A clash of names is the registry's to report.
        if (other.section == kind.section and other.name != kind.name
                and _origin(other) != _origin(kind)):
            raise ValueError(f"config section {kind.section!r} of memory {kind.name!r} "
                             f"({_origin(kind)}) is memory {other.name!r}'s already. Fix: "
                             f"name another section.")
    return _KINDS.add(kind.name, kind)


def kinds() -> dict[str, MemoryKind]:
    """Every registered kind by name: this package's files, then the entry points of
    ENTRY_POINT_GROUP (imported on the first call)."""
    return _KINDS.all()


def kind_of(config: Config) -> MemoryKind:
    """The kind `config.memory` names (the config loader checked that one is registered)."""
    return kinds()[config.memory]


def make_memory(config: Config) -> Memory:
    """The memory `config.memory` names, built from its config section."""
    kind = kind_of(config)
    return kind.build(getattr(config, kind.section), config)


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


class MemoryBytes(NamedTuple):
    """What a memory holds during a run, in bytes (a lower bound, as preflight.memory_estimate.MemoryEstimate)."""
    stored: int          # the buffer's entries of one rollout (its layout), all workers
    state: int           # the acting state of all workers
    activations: int     # one micro-batch's activations kept for the backward pass


def memory_bytes(config: Config) -> MemoryBytes:
    """The bytes of config's memory in training, from its layout, its state and its own
    activation estimate, without allocating anything."""
    with torch.device("meta"):
        memory = make_memory(config)
    layout = memory.layout()
    W, T, G = config.n_workers, config.worker_steps, config.segment_len
    entries = T // G if layout.per_segment else layout.history + T
    stored = W * entries * math.prod(layout.shape) * layout.dtype.itemsize
    state = state_nbytes(memory.initial_state(W, torch.device("meta")))
    return MemoryBytes(stored, state, memory.activation_bytes(micro_batch_segments(config), G))


def micro_batch_segments(config: Config) -> int:
    """Segments forwarded at once while optimising: a minibatch's, or as many as
    micro_batch_size steps hold (at least one), as trainer.accumulate_gradients splits it."""
    per_minibatch = config.n_segments // config.n_mini_batch
    micro = config.micro_batch_size or per_minibatch * config.segment_len
    return min(max(1, micro // config.segment_len), per_minibatch)
