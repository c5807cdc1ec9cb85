"""Fast and Forgetful Memory (Morad, Kortvelesy, Liwicki and Prorok, "Reinforcement Learning
with Fast and Forgetful Memory", NeurIPS 2023).

Why FFM rather than SHM (Le et al., ICLR 2025) as the second linear-recurrent memory:
  * Its recurrence has a decay that depends on no input (a learned complex number per
    trace and context channel), so a segment trains with the same associative scan as
    AGaLiTe, exactly, and an episode start is a decay of 0. SHM's Hadamard memory
    M_t = M_{t-1} * C_t + U_t has input-dependent calibration matrices C_t, sampled at
    random during training; it parallelises too, but its state is a matrix per layer, like
    GaLiTe's, and the random calibration makes the training form differ from the acting
    form by design.
  * Its state is tiny (memory_size x context_size complex numbers per layer: 32 x 4 by
    default, 1 KiB), the other end of the state-size range from GaLiTe's matrix per head,
    which is what a comparison of memories wants.
  * Its paper reports it ahead of GRU (the strongest memory of the POPGym benchmark) on
    POPGym under PPO, and its complex decay (an exponential trace times a rotation)
    encodes relative time without positional encodings.

Shape legend: B batch, T steps of a segment, N layers, D embed dim, m memory_size (traces),
c context_size (frequencies per trace).

One layer (paper, section 4):

    x~_t = W_1 x_t * sigmoid(W_2 x_t)                                   input gate   (m)
    S_t  = gamma * S_{t-1} + x~_t 1_c^T,  gamma = exp(-|alpha| + i omega)  aggregator (m, c)
    z_t  = W_3 [Re S_t, Im S_t]                                           (D)
    y_t  = LayerNorm(z_t) * g + W_4 x_t * (1 - g),  g = sigmoid(W_5 x_t)  output gate  (D)

alpha (m) sets how fast each trace forgets, omega (c) how fast it rotates. They start spread
over the time scales min_period .. max_period: trace j has decayed to `forgotten_at` of a
write after tau_j steps (tau evenly spaced over min_period .. max_period; the authors spread
their decays over the same period bounds, by a different rule), and frequency k turns once
every tau_k steps, as in the authors' initialisation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import NamedTuple

import torch
from torch import nn

from memories.linear_scan import linear_scan, reset_decay


@dataclass(frozen=True)
class FFMConfig:
    """Sizes of an FFM memory."""
    num_layers: int = 1          # N stacked FFM layers (the paper uses one)
    embed_dim: int = 64          # D, the width of the input, of every layer and of the output
    memory_size: int = 32        # m, traces
    context_size: int = 4        # c, frequencies per trace
    min_period: int = 1          # shortest initial time scale, in steps
    max_period: int = 1024       # longest initial time scale, in steps
    forgotten_at: float = 0.01   # the fraction of a write left after a trace's time scale

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", int) and (isinstance(value, bool) or not isinstance(value, int)
                                            or value < 1):
                raise ValueError(f"ffm.{f.name} = {value!r}: must be a positive integer")
        if self.max_period < self.min_period:
            raise ValueError(f"ffm.max_period = {self.max_period} < min_period = "
                             f"{self.min_period}: set max_period >= min_period")
        if not 0 < self.forgotten_at < 1:
            raise ValueError(f"ffm.forgotten_at = {self.forgotten_at!r}: must be in (0, 1)")


class FFMState(NamedTuple):
    """The aggregator S of every layer, batch-first, as real and imaginary parts (real
    tensors store, compile and checkpoint like every other state)."""
    real: torch.Tensor   # (B, N, m, c)
    imag: torch.Tensor   # (B, N, m, c)


class FFMLayer(nn.Module):
    def __init__(self, cfg: FFMConfig):
        super().__init__()
        D, m, c = cfg.embed_dim, cfg.memory_size, cfg.context_size
        self.input_gate = nn.Linear(D, 2 * m)                      # W_1, W_2
        self.mix = nn.Linear(2 * m * c, D)                         # W_3
        self.output_gate = nn.Linear(D, 2 * D)                     # W_4, W_5
        self.norm = nn.LayerNorm(D)
        horizons = torch.linspace(cfg.min_period, cfg.max_period, m)           # (m,)
        self.alpha = nn.Parameter(-math.log(cfg.forgotten_at) / horizons)      # (m,)
        periods = torch.linspace(cfg.min_period, cfg.max_period, c)            # (c,)
        self.omega = nn.Parameter(2 * math.pi / periods)                       # (c,)

    def decay(self) -> tuple[torch.Tensor, torch.Tensor]:
        """gamma's real and imaginary parts, each (m, c); |gamma| < 1 for alpha != 0."""
        magnitude = torch.exp(-self.alpha.abs()).unsqueeze(1)                  # (m, 1)
        return magnitude * torch.cos(self.omega), magnitude * torch.sin(self.omega)

    def _write(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., D) -> the gated input x~ (..., m)."""
        value, gate = self.input_gate(x).chunk(2, dim=-1)
        return value * torch.sigmoid(gate)

    def _read(self, x: torch.Tensor, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        """x (..., D), S's parts (..., m, c) -> y (..., D)."""
        z = self.mix(torch.cat([real.flatten(-2), imag.flatten(-2)], dim=-1))  # (..., D)
        skip, gate = self.output_gate(x).chunk(2, dim=-1)
        g = torch.sigmoid(gate)
        return self.norm(z) * g + skip * (1 - g)

    def parallel(self, x: torch.Tensor, resets: torch.Tensor, real: torch.Tensor,
                 imag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, T, D); resets (B, T) bool; S's parts (B, m, c) before the segment.
        Returns y (B, T, D) and S's parts after the segment."""
        B, T, _ = x.shape
        written = self._write(x).unsqueeze(-1)                                 # (B, T, m, 1)
        gamma = torch.complex(*self.decay()).expand(B, T, -1, -1)              # (B, T, m, c)
        written = torch.complex(written, torch.zeros_like(written)).expand_as(gamma)
        S = linear_scan(reset_decay(gamma, resets), written.contiguous(),
                        torch.complex(real, imag))                             # (B, T, m, c)
        return self._read(x, S.real, S.imag), S.real[:, -1], S.imag[:, -1]

    def step(self, x: torch.Tensor, reset: torch.Tensor, real: torch.Tensor,
             imag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, D); reset (B,) bool; S's parts (B, m, c) -> y (B, D) and S's new parts.
        Real arithmetic: one complex product written out, so the acting step compiles."""
        keep = (~reset).to(real.dtype).view(-1, 1, 1)                          # (B, 1, 1)
        real, imag = real * keep, imag * keep
        g_re, g_im = self.decay()                                              # (m, c)
        written = self._write(x).unsqueeze(-1)                                 # (B, m, 1)
        real, imag = g_re * real - g_im * imag + written, g_re * imag + g_im * real
        return self._read(x, real, imag), real, imag


class FFM(nn.Module):
    """N FFM layers. `parallel` trains over a segment; `step` acts."""

    def __init__(self, cfg: FFMConfig):
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(FFMLayer(cfg) for _ in range(cfg.num_layers))

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> FFMState:
        """The state of a worker before any step: zeros (an episode start resets to it)."""
        shape = (batch, self.cfg.num_layers, self.cfg.memory_size, self.cfg.context_size)
        return FFMState(torch.zeros(shape, device=device), torch.zeros(shape, device=device))

    def parallel(self, x: torch.Tensor, state: FFMState, resets: torch.Tensor
                 ) -> tuple[torch.Tensor, FFMState]:
        """Training form. x (B, T, D); state before the segment; resets (B, T) bool, True
        where a step starts an episode. Returns (B, T, D) and the state after the segment."""
        finals = []
        for n, layer in enumerate(self.layers):
            x, real, imag = layer.parallel(x, resets, state.real[:, n], state.imag[:, n])
            finals.append((real, imag))
        return x, self._stack(finals)

    def step(self, x: torch.Tensor, state: FFMState, reset: torch.Tensor
             ) -> tuple[torch.Tensor, FFMState]:
        """Acting form. x (B, D); reset (B,) bool, True where the step starts an episode
        (the state is zeroed before it). Returns (B, D) and the next state."""
        finals = []
        for n, layer in enumerate(self.layers):
            x, real, imag = layer.step(x, reset, state.real[:, n], state.imag[:, n])
            finals.append((real, imag))
        return x, self._stack(finals)

    @staticmethod
    def _stack(finals: list[tuple[torch.Tensor, torch.Tensor]]) -> FFMState:
        real, imag = zip(*finals)
        return FFMState(torch.stack(real, dim=1), torch.stack(imag, dim=1))
