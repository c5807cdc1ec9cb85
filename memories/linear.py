"""The linear-recurrent memories (AGaLiTe / GaLiTe in agalite.py, FFM in ffm.py) behind the
Memory interface.

Each core offers `initial_state(batch, device)`, `step(x, state, reset)` (acting) and
`parallel(x, state, resets)` (a whole segment at once, equal to the steps). Their states can
be large (GaLiTe keeps a dh x F matrix per head and layer), and training needs a state only
where a segment starts, since the parallel form runs the rest of the segment from it. So the
buffer keeps one flattened state per segment, not one per step:

    steps          t0 t1 t2 t3 | t4 t5 t6 t7 | ...     (G = 4)
    stored          s0          | s4          |         s_t = the state before step t
    training       parallel(x[t0..t3], s0)   parallel(x[t4..t7], s4)

An episode start inside a segment is a reset of the recurrence there (decay 0), so nothing
crosses it, in acting and in training alike.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from memories import StoreLayout


class LinearRecurrentMemory(nn.Module):
    """A linear-recurrent core as a Memory: its state stored flattened, once per segment."""

    def __init__(self, core: nn.Module, width: int):
        super().__init__()
        self.core = core
        self.input_dim = self.output_dim = width
        example = core.initial_state(1, torch.device("meta"))
        self.state_type = type(example)
        self.shapes = [tuple(part.shape[1:]) for part in example]       # per part, without B
        self.sizes = [math.prod(shape) for shape in self.shapes]

    def layout(self) -> StoreLayout:
        # float32: the tick of AGaLiTe's oscillators must stay an exact integer.
        return StoreLayout((sum(self.sizes),), torch.float32, per_segment=True, history=0,
                           keys=1)

    def initial_state(self, batch: int, device: torch.device) -> NamedTuple:
        return self.core.initial_state(batch, device)

    def refresh(self, state: NamedTuple, history: torch.Tensor) -> NamedTuple:
        return state

    def activation_bytes(self, segments: int, length: int) -> int:
        return self.core.activation_bytes(segments, length)

    def flatten(self, state: NamedTuple) -> torch.Tensor:
        """state -> (B, sum of part sizes), in the state's dtype (the buffer stores it in
        the layout's)."""
        return torch.cat([part.reshape(part.shape[0], -1) for part in state], dim=1)

    def unflatten(self, flat: torch.Tensor) -> NamedTuple:
        """(B, sum of part sizes) -> a state."""
        parts = flat.split(self.sizes, dim=1)
        return self.state_type(*(p.reshape(flat.shape[0], *s) for p, s in zip(parts, self.shapes)))

    def step(self, x: torch.Tensor, state: NamedTuple, episode_step: torch.Tensor
             ) -> tuple[torch.Tensor, NamedTuple, torch.Tensor]:
        """x (B, D); the entry to store is the state before the step (the buffer keeps it at
        segment starts; the reset at an episode start is the core's, in both forms)."""
        out, next_state = self.core.step(x, state, episode_step == 0)
        return out, next_state, self.flatten(state)

    def segments(self, x: torch.Tensor, stored: torch.Tensor, key_episode: torch.Tensor,
                 query_step: torch.Tensor) -> torch.Tensor:
        """x (B, G, D); stored (B, 1, size) the state before each segment's first step."""
        out, _ = self.core.parallel(x, self.unflatten(stored[:, 0]), query_step == 0)
        return out

