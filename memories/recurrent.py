"""Recurrent memories (GRU, LSTM) and the memoryless control, behind the Memory interface.

Shape legend in window.py, plus: N recurrent layers, S state width per layer (hidden size,
twice that for an LSTM's (h, c)). The buffer keeps a recurrent memory's state *before* every
step, (N, S), already reset when the step starts an episode (small enough to keep per step).
Training runs truncated BPTT over a segment of G steps from the state stored at its first step.

    step        t0   t1   t2 | t3   t4   t5       (G = 3; an episode starts at t4)
    state in    s0 ─ ... ───── s3 ─ 0 ── ...      stored s3 starts segment 2; the state is
    gradient    └── segment 1 ─┘ └─ segment 2 ─┘  zeroed at t4, so nothing leaks across
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn

from config import setting
from memories import MemoryKind, StoreLayout, register


@dataclass(frozen=True)
class RecurrentConfig:
    """The GRU or LSTM core of `memory: gru | lstm`, trained with truncated backpropagation
    through time over sequences of segment_length steps from the stored hidden state."""
    hidden_size: int = setting("Width of the recurrent state, and of the observation embedding "
                               "that feeds it.", low=1, default=128)
    num_layers: int = setting("Stacked recurrent layers.", low=1, high=1024, default=1)
    memory_dtype: Literal["float32", "bfloat16"] = setting(
        "dtype of the states the buffer stores (one per step); bfloat16 halves them, the "
        "network itself computes in float32.", default="float32")


@dataclass(frozen=True)
class NoMemoryConfig:
    """The memoryless control of `memory: none`: the embedding goes straight to the heads."""
    embed_dim: int = setting("Width D of the observation embedding the heads receive.",
                             low=1, default=64)


class RecurrentState(NamedTuple):
    h: torch.Tensor             # (B, N, S) float32; an LSTM packs (h, c) as S = 2 x hidden


def reset_at_episode_start(state: torch.Tensor, episode_step: torch.Tensor) -> torch.Tensor:
    """state (B, ...) with the rows whose step starts an episode (episode_step 0) zeroed."""
    starts = (episode_step == 0).view(-1, *[1] * (state.dim() - 1))
    return torch.where(starts, 0.0, state)


class RecurrentMemory(nn.Module):
    """A GRU or LSTM core. The state travels as one tensor (B, N, S); an LSTM packs (h, c)."""

    def __init__(self, kind: str, cfg: RecurrentConfig):
        super().__init__()
        self.lstm = kind == "lstm"
        self.input_dim = self.output_dim = cfg.hidden_size
        self.rnn = (nn.LSTM if self.lstm else nn.GRU)(cfg.hidden_size, cfg.hidden_size,
                                                      cfg.num_layers, batch_first=True)
        self.num_layers = cfg.num_layers
        self.state_width = cfg.hidden_size * (2 if self.lstm else 1)
        self.dtype = getattr(torch, cfg.memory_dtype)
        # Orthogonal weights and zero biases: the recurrent PPO initialisation of
        # Andrychowicz et al. 2021 and CleanRL's ppo_atari_lstm.
        for name, p in self.rnn.named_parameters():
            if "weight" in name:
                nn.init.orthogonal_(p, 1.0)
            else:
                nn.init.zeros_(p)

    def layout(self) -> StoreLayout:
        return StoreLayout((self.num_layers, self.state_width), self.dtype, per_segment=False,
                           history=0, keys=1)

    def initial_state(self, batch: int, device: torch.device) -> RecurrentState:
        return RecurrentState(torch.zeros(batch, self.num_layers, self.state_width, device=device))

    def activation_bytes(self, segments: int, length: int) -> int:
        """What torch's fused kernel keeps per layer, step and hidden unit: its gates,
        inputs, states and workspace, 8 numbers for a GRU and 18 for an LSTM (measured,
        tests/test_estimates.py)."""
        per_unit = 18 if self.lstm else 8
        return 4 * segments * length * self.num_layers * per_unit * self.rnn.hidden_size

    def refresh(self, state: RecurrentState, history: torch.Tensor) -> RecurrentState:
        return state

    def _run(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D), state (B, N, S) -> outputs (B, T, hidden), final state (B, N, S)."""
        state = state.transpose(0, 1)                                      # (N, B, S) for torch
        if self.lstm:
            h, c = state.chunk(2, dim=-1)                                  # each (N, B, hidden)
            out, (h, c) = self.rnn(x, (h.contiguous(), c.contiguous()))
            return out, torch.cat([h, c], dim=-1).transpose(0, 1)
        out, h = self.rnn(x, state.contiguous())
        return out, h.transpose(0, 1)

    def segments(self, x: torch.Tensor, stored: torch.Tensor, key_episode: torch.Tensor,
                 query_step: torch.Tensor) -> torch.Tensor:
        """Training path (truncated BPTT). x (B, G, D); stored (B, 1, N, S) the state before
        each segment's first step; query_step (B, G). Returns (B, G, hidden)."""
        state = stored[:, 0]                                               # (B, N, S)
        starts = query_step == 0                                           # (B, G)
        # One fused RNN call per stretch without an episode start in any segment: exact,
        # and far faster than a Python loop over single steps.
        inner = torch.nonzero(starts[:, 1:].any(dim=0)).flatten() + 1
        cuts = [0, *inner.tolist(), x.shape[1]]
        outputs = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            state = reset_at_episode_start(state, query_step[:, a])
            out, state = self._run(x[:, a:b], state)                       # (B, b-a, hidden)
            outputs.append(out)
        return torch.cat(outputs, dim=1)                                   # (B, G, hidden)

    def step(self, x: torch.Tensor, state: RecurrentState, episode_step: torch.Tensor
             ) -> tuple[torch.Tensor, RecurrentState, torch.Tensor]:
        """Acting path. x (B, D); state.h (B, N, S). Returns the output (B, hidden), the next
        state and the state the step started from (reset at an episode start) to store."""
        before = reset_at_episode_start(state.h, episode_step)             # (B, N, S)
        out, after = self._run(x.unsqueeze(1), before)                     # (B, 1, hidden)
        return out.squeeze(1), RecurrentState(after), before


class NoMemory(nn.Module):
    """The memoryless control: the embedding goes straight to the heads. Its state and what
    it stores are empty, (B, 0, 0), so the same sampler and buffer serve it."""

    def __init__(self, embed_dim: int):
        super().__init__()
        self.input_dim = self.output_dim = embed_dim

    def layout(self) -> StoreLayout:
        return StoreLayout((0, 0), torch.float32, per_segment=False, history=0, keys=1)

    def initial_state(self, batch: int, device: torch.device) -> RecurrentState:
        return RecurrentState(torch.zeros(batch, 0, 0, device=device))

    def refresh(self, state: RecurrentState, history: torch.Tensor) -> RecurrentState:
        return state

    def activation_bytes(self, segments: int, length: int) -> int:
        return 0

    def segments(self, x: torch.Tensor, stored: torch.Tensor, key_episode: torch.Tensor,
                 query_step: torch.Tensor) -> torch.Tensor:
        return x

    def step(self, x: torch.Tensor, state: RecurrentState, episode_step: torch.Tensor
             ) -> tuple[torch.Tensor, RecurrentState, torch.Tensor]:
        return x, state, state.h


def _recurrent(name: str, summary: str) -> MemoryKind:
    return MemoryKind(
        name=name, section="recurrent", settings=RecurrentConfig, compiles=False,
        summary=summary, build=lambda cfg, config: RecurrentMemory(name, cfg),
        examples={name: {"hidden_size": 16, "num_layers": 2}},
        sized={name.upper(): lambda width, L: {"hidden_size": width}})


# torch.compile cannot trace nn.GRU / nn.LSTM (each step is one fused kernel already).
register(_recurrent("gru", "A GRU core (Cho et al. 2014), trained by truncated BPTT over "
                           "each segment from the state stored before it."))
register(_recurrent("lstm", "An LSTM core (Hochreiter and Schmidhuber 1997), trained by "
                            "truncated BPTT over each segment from the state stored before it."))
register(MemoryKind(
    name="none", section="none", settings=NoMemoryConfig,
    summary="The memoryless control: the same network without a memory.",
    build=lambda cfg, config: NoMemory(cfg.embed_dim),
    examples={"none": {"embed_dim": 16}}))
