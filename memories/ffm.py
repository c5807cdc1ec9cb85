"""Fast and Forgetful Memory (Morad, Kortvelesy, Liwicki and Prorok, "Reinforcement Learning
with Fast and Forgetful Memory", NeurIPS 2023).

What sets FFM apart from the other linear-recurrent memories (AGaLiTe, SHM, the SSM):
  * Its recurrence has a decay that depends on no input (a learned complex number per
    trace and context channel), and an episode start is a decay of 0. SHM's calibrations
    and the SSM's decays depend on the input; all of them train with a parallel form.
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
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from config import Invalid, setting
from memories import MemoryKind, register
from memories.linear import LinearRecurrentMemory
from memories.linear_scan import linear_scan, reset_decay


@dataclass(frozen=True)
class FFMConfig:
    """The Fast and Forgetful Memory of `memory: ffm` (Morad et al., NeurIPS 2023): traces
    that decay and rotate at learned rates, a constant-size complex state, trained over each
    segment with its parallel form from the state stored at the segment's start."""
    num_layers: int = setting("Stacked FFM layers N (the paper uses one).", low=1, high=1024,
                              default=1)
    embed_dim: int = setting("Width D of the observation embedding, of every layer and of the "
                             "output.", low=1, default=64)
    memory_size: int = setting("Traces m.", low=1, default=32)
    context_size: int = setting("Frequencies c per trace; the state holds 2 m c numbers per "
                                "layer (real and imaginary parts).", low=1, default=4)
    min_period: int = setting("Shortest initial time scale of the traces, in steps.", low=1,
                              default=1)
    max_period: int = setting("Longest initial time scale of the traces, in steps.", low=1,
                              default=1024)
    forgotten_at: float = setting("Fraction of a write a trace keeps after its time scale "
                                  "(sets the initial decays); in (0, 1).", default=0.01)


def check(cfg: FFMConfig, config) -> None:
    if cfg.max_period < cfg.min_period:
        raise Invalid("ffm.max_period", cfg.max_period, f"below ffm.min_period = "
                      f"{cfg.min_period}", "use a max_period >= min_period")
    if not 0.0 < cfg.forgotten_at < 1.0:
        raise Invalid("ffm.forgotten_at", cfg.forgotten_at, "must lie in (0, 1)",
                      "use e.g. 0.01")


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

    def activation_bytes(self, segments: int, length: int) -> int:
        """Per layer and step: the complex decays, writes and about three copies of the
        scanned aggregator (8 bytes a number), the read-out's and gates' inputs."""
        c = self.cfg
        traces = c.memory_size * c.context_size
        per_step = 2 * (6 * traces) + 2 * traces + 2 * c.memory_size + 8 * c.embed_dim
        return 4 * c.num_layers * segments * length * per_step

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


register(MemoryKind(
    name="ffm", section="ffm", settings=FFMConfig, check=check,
    summary="Fast and Forgetful Memory: traces that decay and rotate at learned rates "
            "(Morad et al., NeurIPS 2023).",
    build=lambda cfg, config: LinearRecurrentMemory(FFM(cfg), cfg.embed_dim),
    examples={"ffm": {"num_layers": 2, "embed_dim": 16, "memory_size": 6, "context_size": 3,
                      "max_period": 32}},
    sized={"FFM": lambda width, L: {"num_layers": 1, "embed_dim": width,
                                    "memory_size": width // 2, "context_size": 4}}))
