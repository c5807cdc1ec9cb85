"""Recurrent memories (GRU, LSTM) and the memoryless control, with one interface.

Shape legend in memory.py, plus: N recurrent layers, S state width per layer (hidden size,
twice that for an LSTM's (h, c)). A recurrent memory's "cached state" per step is its state
*before* the step, (N, B, S), already reset when the step starts an episode. Training runs
truncated BPTT over a segment of G steps from the state stored at its first step.

    step        t0   t1   t2 | t3   t4   t5       (G = 3; an episode starts at t4)
    state in    s0 ─ ... ───── s3 ─ 0 ── ...      stored s3 starts segment 2; the state is
    gradient    └── segment 1 ─┘ └─ segment 2 ─┘  zeroed at t4, so nothing leaks across
"""
from __future__ import annotations

import torch
from torch import nn

from config import RecurrentConfig


def state_width(kind: str, cfg: RecurrentConfig) -> int:
    """S, the width of one layer's state: the hidden size, twice it for an LSTM's (h, c)."""
    return cfg.hidden_size * (2 if kind == "lstm" else 1)


def reset_at_episode_start(state: torch.Tensor, episode_step: torch.Tensor) -> torch.Tensor:
    """state (N, B, S) with the columns whose step starts an episode (episode_step 0) zeroed."""
    return torch.where((episode_step == 0).view(1, -1, 1), 0.0, state)


class RecurrentMemory(nn.Module):
    """A GRU or LSTM core. The state travels as one tensor (N, B, S); an LSTM packs (h, c)."""

    def __init__(self, kind: str, cfg: RecurrentConfig, input_dim: int):
        super().__init__()
        self.lstm = kind == "lstm"
        self.rnn = (nn.LSTM if self.lstm else nn.GRU)(input_dim, cfg.hidden_size,
                                                      cfg.num_layers, batch_first=True)
        self.num_layers = cfg.num_layers
        self.state_width = state_width(kind, cfg)
        # Orthogonal weights and zero biases: the recurrent PPO initialisation of
        # Andrychowicz et al. 2021 and CleanRL's ppo_atari_lstm.
        for name, p in self.rnn.named_parameters():
            if "weight" in name:
                nn.init.orthogonal_(p, 1.0)
            else:
                nn.init.zeros_(p)

    def _run(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D), state (N, B, S) -> outputs (B, T, hidden), final state (N, B, S)."""
        if self.lstm:
            h, c = state.chunk(2, dim=-1)                                  # each (N, B, hidden)
            out, (h, c) = self.rnn(x, (h.contiguous(), c.contiguous()))
            return out, torch.cat([h, c], dim=-1)
        out, h = self.rnn(x, state.contiguous())
        return out, h

    def segments(self, x: torch.Tensor, state: torch.Tensor, query_step: torch.Tensor) -> torch.Tensor:
        """Training path (truncated BPTT). x (B, G, D); state (N, B, S) stored before each
        segment's first step; query_step (B, G). Returns (B, G, hidden)."""
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

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Acting path. x (B, D); state (N, B, S), already reset where an episode starts.
        Returns the output (B, hidden) and the next state (N, B, S)."""
        out, state = self._run(x.unsqueeze(1), state)                      # (B, 1, hidden)
        return out.squeeze(1), state


class NoMemory(nn.Module):
    """The memoryless control: the embedding goes straight to the heads. It has the recurrent
    interface with an empty state (0, B, 0), so the same sampler and buffer serve it."""
    num_layers = 0
    state_width = 0

    def segments(self, x: torch.Tensor, state: torch.Tensor, query_step: torch.Tensor) -> torch.Tensor:
        return x

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, state
