"""Stable Hadamard Memory (Le, Do, Nguyen, Gupta and Venkatesh, "Stable Hadamard Memory:
Revitalizing Memory-Augmented Agents for Reinforcement Learning", ICLR 2025).

Shape legend: B batch, T steps of a segment, N layers, D embed dim, H memory_size (the memory
is an H x H matrix per layer), L num_thetas.

A matrix memory updated by Hadamard (elementwise) products. One layer (paper, section 3):

    x^    = LayerNorm(x_t)
    v, c  = W_v x^, W_c x^                                          values, calibration (H)
    k, q  = relu(W_k x^), relu(W_q x^), each divided by its sum     key, query (H)
    eta   = sigmoid(w_e . x^)                                       how much to write
    C_t   = 1 + tanh(theta_t (x) c)             calibration, every entry in (0, 2)  (H, H)
    M_t   = M_{t-1} * C_t + eta v (x) k         the Hadamard update                 (H, H)
    y_t   = W_o (M_t q + W_s x^)                read-out, with the shortcut of the
                                                authors' POPGym agent               (D)

C_t erases (entries near 0) and strengthens (near 2) each cell of the memory separately. The
paper keeps products of calibrations bounded in expectation by drawing theta_t (H) at each
step from L learned vectors, independently of the input (tanh is odd, so calibrations above
and below 1 balance). PPO needs the acting form and the training form to compute the same
(the first epoch's probability ratios are 1, tests/test_memories.py), so here theta_t is row
t mod L of the learned table, t the step's index in its episode: a fixed sequence that still
changes from step to step and ignores the input, the same in both forms. num_thetas: 1 is
one learned calibration vector for every step (what the authors' code does in effect: its
draw, `uniform_(0, 1).long()`, is always row 0).

Both forms share the recurrence. Acting steps it once per step; training runs a segment at
once from the state stored at its start: M_t = C_t * M_{t-1} + U_t is elementwise linear in M
with decays that depend on the input only, so the associative scan of linear_scan.py computes
it, and an episode start is a decay of 0. The state is M per layer and the index t mod L of
the last step (tick), stored once per segment (memories.linear).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from config import setting
from memories import MemoryKind, register
from memories.linear import LinearRecurrentMemory
from memories.linear_scan import episode_ticks, linear_scan, reset_decay

# Added to the sums that normalise keys and queries (all-zero relu features): the authors'.
SUM_EPS = 1e-5


@dataclass(frozen=True)
class SHMConfig:
    """The Stable Hadamard Memory of `memory: shm` (Le et al., ICLR 2025): an H x H matrix per
    layer, calibrated and written by elementwise products, trained over each segment with its
    parallel form from the state stored at the segment's start."""
    num_layers: int = setting("Stacked SHM layers N (the paper uses one).", low=1, high=1024,
                              default=1)
    embed_dim: int = setting("Width D of the observation embedding, of every layer and of the "
                             "output.", low=1, default=64)
    memory_size: int = setting("H: each layer's memory is an H x H matrix (the state holds "
                               "H^2 + 1 numbers per layer).", low=1, default=32)
    num_thetas: int = setting("L: learned calibration vectors; step t of an episode uses row "
                              "t mod L (the paper draws one at random per step; its L is 128).",
                              low=1, high=2**20, default=128)


class SHMState(NamedTuple):
    memory: torch.Tensor   # M (B, N, H, H)
    tick: torch.Tensor     # (B,) the last step's index in its episode, modulo L


class SHMLayer(nn.Module):
    def __init__(self, cfg: SHMConfig):
        super().__init__()
        D, H = cfg.embed_dim, cfg.memory_size
        self.memory_size = H
        self.norm = nn.LayerNorm(D)
        # v, c, k, q and the write strength from one matrix product, without biases.
        self.inputs = nn.Linear(D, 4 * H + 1, bias=False)
        self.thetas = nn.Parameter(nn.init.xavier_uniform_(torch.empty(cfg.num_thetas, H)))
        self.shortcut = nn.Linear(D, H)
        self.out = nn.Linear(H, D)

    def _terms(self, x: torch.Tensor, ticks: torch.Tensor):
        """x (..., D), ticks (...) -> calibration C and write U (..., H, H), query (..., H),
        normalised input (..., D)."""
        x = self.norm(x)
        H = self.memory_size
        v, c, k, q, eta = self.inputs(x).split([H, H, H, H, 1], dim=-1)
        k, q = F.relu(k), F.relu(q)
        k = k / (SUM_EPS + k.sum(-1, keepdim=True))
        q = q / (SUM_EPS + q.sum(-1, keepdim=True))
        theta = self.thetas[ticks.long()]                                  # (..., H)
        calibration = 1 + torch.tanh(theta.unsqueeze(-1) * c.unsqueeze(-2))  # (..., H, H)
        write = (torch.sigmoid(eta) * v).unsqueeze(-1) * k.unsqueeze(-2)    # (..., H, H)
        return calibration, write, q, x

    def _read(self, memory: torch.Tensor, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """memory (..., H, H), q (..., H), normalised x (..., D) -> y (..., D)."""
        read = (memory @ q.unsqueeze(-1)).squeeze(-1)                      # (..., H)
        return self.out(read + self.shortcut(x))

    def parallel(self, x: torch.Tensor, resets: torch.Tensor, ticks: torch.Tensor,
                 memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D); resets, ticks (B, T); memory (B, H, H) before the segment.
        Returns y (B, T, D) and the memory after the segment."""
        calibration, write, q, x = self._terms(x, ticks)
        M = linear_scan(reset_decay(calibration, resets), write, memory)   # (B, T, H, H)
        return self._read(M, q, x), M[:, -1]

    def step(self, x: torch.Tensor, reset: torch.Tensor, tick: torch.Tensor,
             memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, D); reset, tick (B,); memory (B, H, H) -> y (B, D) and the next memory."""
        calibration, write, q, x = self._terms(x, tick)
        keep = (~reset).to(memory.dtype).view(-1, 1, 1)                   # (B, 1, 1)
        memory = memory * keep * calibration + write
        return self._read(memory, q, x), memory


class SHM(nn.Module):
    """N SHM layers. `parallel` trains over a segment; `step` acts."""

    def __init__(self, cfg: SHMConfig):
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(SHMLayer(cfg) for _ in range(cfg.num_layers))

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> SHMState:
        """The state of a worker before any step: zeros (an episode start resets to it)."""
        H = self.cfg.memory_size
        return SHMState(torch.zeros(batch, self.cfg.num_layers, H, H, device=device),
                        torch.zeros(batch, device=device))

    def activation_bytes(self, segments: int, length: int) -> int:
        """Per layer and step: the calibration before and after its tanh, the write, about
        three copies of the scanned memory (linear_scan keeps two, the read one), and the
        vectors around them."""
        H, D = self.cfg.memory_size, self.cfg.embed_dim
        per_step = 6 * H * H + 8 * H + 4 * D
        return 4 * self.cfg.num_layers * segments * length * per_step

    def parallel(self, x: torch.Tensor, state: SHMState, resets: torch.Tensor
                 ) -> tuple[torch.Tensor, SHMState]:
        """Training form. x (B, T, D); state before the segment; resets (B, T) bool, True
        where a step starts an episode. Returns (B, T, D) and the state after the segment."""
        ticks = episode_ticks(resets, state.tick, self.cfg.num_thetas)    # (B, T)
        finals = []
        for n, layer in enumerate(self.layers):
            x, memory = layer.parallel(x, resets, ticks, state.memory[:, n])
            finals.append(memory)
        return x, SHMState(torch.stack(finals, dim=1), ticks[:, -1])

    def step(self, x: torch.Tensor, state: SHMState, reset: torch.Tensor
             ) -> tuple[torch.Tensor, SHMState]:
        """Acting form, one step. x (B, D); reset (B,) bool, True where the step starts an
        episode (the memory is zeroed before it). Returns (B, D) and the next state."""
        tick = episode_ticks(reset.unsqueeze(1), state.tick, self.cfg.num_thetas)[:, 0]
        finals = []
        for n, layer in enumerate(self.layers):
            x, memory = layer.step(x, reset, tick, state.memory[:, n])
            finals.append(memory)
        return x, SHMState(torch.stack(finals, dim=1), tick)


register(MemoryKind(
    name="shm", section="shm", settings=SHMConfig,
    summary="Stable Hadamard Memory: a matrix memory calibrated and written by elementwise "
            "products (Le et al., ICLR 2025).",
    build=lambda cfg, config: LinearRecurrentMemory(SHM(cfg), cfg.embed_dim),
    examples={"shm": {"num_layers": 2, "embed_dim": 16, "memory_size": 6, "num_thetas": 5}},
    sized={"SHM": lambda width, L: {"num_layers": 1, "embed_dim": width,
                                    "memory_size": width // 2}}))
