"""A selective state-space memory in the manner of Mamba-2 (Dao and Gu, "Transformers are SSMs:
Generalized Models and Efficient Algorithms Through Structured State Space Duality", ICML
2024), in plain PyTorch: no custom kernels.

Shape legend: B batch, T steps of a segment, N layers, D embed dim, I = expand x D inner
width, K heads of P = head_dim channels (K = I / P), S state_size, W conv_width, C = I + 2 S
convolved channels, Q chunk_size, n = T / Q chunks.

One layer, a residual block x + mixer(RMSNorm(x)) as in Mamba's models:

    z, u, b, c, dt = W_in x                      gate (I), input (I), B (S), C (S), dt (K)
    u, b, c        = silu(conv([u, b, c]))       causal depthwise convolution over W steps
    dt             = softplus(dt + dt_bias)      each head's step size (K)
    a_t            = exp(dt A),  A = -exp(A_log) each head's decay in (0, 1), selective:
                                                 it depends on the input through dt
    h_t            = a_t h_{t-1} + dt u_t (x) b_t    per head (P, S)
    y_t            = h_t c_t + D_skip u_t            per head (P)
    out            = W_out RMSNorm(y * silu(z))      Mamba-2's gated norm (D)

The decay is one scalar per head and step (Mamba-2's restriction of Mamba's diagonal A),
which gives the recurrence a matrix form over a chunk of Q steps:

    y_i = sum_{j <= i} (c_i . b_j) exp(sum_{j<r<=i} log a_r) dt_j u_j  +  c_i exp(sum_{r<=i}
          log a_r) h_(chunk start),   i, j steps of one chunk

    steps        0 1 2 3 | 4 5 6 7 | 8 ...       (Q = 4)
    1. inside    every chunk at once: the Q x Q matrix of (c_i . b_j) times the decays from
       chunks    j to i, masked to j <= i (attention-like), and each chunk's own final state
    2. across    the state entering chunk k + 1 = chunk k's total decay x the state entering
       chunks    chunk k + chunk k's own final state: n sequential steps on (K, P, S)
    3. combine   the inside output plus c_i times the decayed entering state

That is the chunked ("SSD") algorithm of the paper's section 6: O(T Q) work inside the
chunks and n sequential steps across them. Acting runs the recurrence one step at a time;
its state is h and the convolution's last W - 1 inputs, stored once per segment
(memories.linear).

An episode start at step s is a decay of 0: nothing before s reaches y_s or any later step.
In the matrix form the decays between two steps are summed as logs, so a start between them
is a mask applied before exp (exp(-inf) = 0, with a zero gradient), never a log of 0. The
convolution at step t sees only inputs of t's episode: acting zeroes its window at an
episode start, training masks the taps that reach across one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from config import Invalid, setting
from memories import MemoryKind, register
from memories.linear import LinearRecurrentMemory


@dataclass(frozen=True)
class SSMConfig:
    """The selective state-space memory of `memory: ssm` (Mamba-2, Dao and Gu, ICML 2024):
    a decay per head and step chosen by the input, trained over each segment with its
    chunked parallel form from the state stored at the segment's start."""
    num_layers: int = setting("Stacked layers N.", low=1, high=1024, default=2)
    embed_dim: int = setting("Width D of the observation embedding, of every layer and of the "
                             "output.", low=1, default=64)
    expand: int = setting("E: the inner width is E x embed_dim (Mamba's 2).", low=1,
                          default=2)
    head_dim: int = setting("P: channels per head, each head with its own decay; must divide "
                            "expand x embed_dim.", low=1, default=16)
    state_size: int = setting("S: the state's size per channel (Mamba-2's d_state); the state "
                              "holds K P S + (W - 1)(E D + 2 S) numbers per layer.", low=1,
                              default=16)
    conv_width: int = setting("W: steps the causal depthwise convolution spans, the current "
                              "one included (1 = none; Mamba's 4).", low=1, high=64, default=4)
    chunk_size: int = setting("Q: steps per chunk of the training form; speed and memory "
                              "depend on it, the result does not.", low=1, default=16)
    dt_min: float = setting("Smallest initial step size dt (Mamba's 0.001).", default=0.001)
    dt_max: float = setting("Largest initial step size dt (Mamba's 0.1).", default=0.1)


def check(cfg: SSMConfig, config) -> None:
    inner = cfg.expand * cfg.embed_dim
    if inner % cfg.head_dim:
        divisor = max(d for d in range(1, cfg.head_dim + 1) if inner % d == 0)
        raise Invalid("ssm.head_dim", cfg.head_dim, f"does not divide expand x embed_dim = "
                      f"{inner}", f"use a divisor of {inner}, e.g. {divisor}")
    if not 0.0 < cfg.dt_min <= cfg.dt_max:
        raise Invalid("ssm.dt_min", cfg.dt_min, f"must lie in (0, ssm.dt_max = {cfg.dt_max}]",
                      "use e.g. dt_min 0.001 and dt_max 0.1")


class SSMState(NamedTuple):
    """Every layer's, batch-first, stacked along dim 1."""
    h: torch.Tensor        # (B, N, K, P, S)
    window: torch.Tensor   # (B, N, W - 1, C) the convolution's last inputs, oldest first


def steps_since_start(resets: torch.Tensor, beyond: int) -> torch.Tensor:
    """(B, T) long: steps since the last episode start at or before each step (0 at one),
    `beyond` where the segment has none before it."""
    t = torch.arange(resets.shape[1], device=resets.device)                # (T,)
    last_start = torch.where(resets, t, -1).cummax(dim=1).values           # (B, T)
    return torch.where(last_start >= 0, t - last_start, beyond)


def chunked_scan(v: torch.Tensor, log_a: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
                 resets: torch.Tensor, h: torch.Tensor, Q: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """y_t = h_t c_t with h_t = a_t h_{t-1} + v_t (x) b_t, a_t = exp(log_a_t), and h_{t-1} = 0
    where resets_t; in chunks of Q steps (module docstring). v (B, T, K, P) = dt u;
    log_a (B, T, K) <= 0; b, c (B, T, S); resets (B, T) bool; h (B, K, P, S) before the
    segment. Returns y (B, T, K, P) and h after the segment."""
    B, T, K, P = v.shape
    n = math.ceil(T / Q)
    if n * Q > T:
        # Padding steps at the end (decay 1, no input) change nothing before them.
        def pad(x):
            return torch.cat([x, x.new_zeros(B, n * Q - T, *x.shape[2:])], dim=1)
        v, log_a, b, c, resets = map(pad, (v, log_a, b, c, resets))
    v, log_a = v.reshape(B, n, Q, K, P), log_a.reshape(B, n, Q, K)
    b, c = b.reshape(B, n, Q, -1), c.reshape(B, n, Q, -1)                  # (B, n, Q, S)
    # Episode starts so far in the chunk: steps i and j share an episode where equal.
    starts = resets.reshape(B, n, Q).long().cumsum(dim=2)                  # (B, n, Q)
    cum = log_a.cumsum(dim=2)                                              # (B, n, Q, K)
    i, j = torch.arange(Q, device=v.device).unsqueeze(1), torch.arange(Q, device=v.device)
    # 1. Inside every chunk: the decay from j to i, where j <= i in one episode.
    linked = (starts.unsqueeze(3) == starts.unsqueeze(2)) & (j <= i)       # (B, n, Q, Q)
    gap = cum.unsqueeze(3) - cum.unsqueeze(2)                              # (B, n, Q, Q, K)
    decay = torch.exp(torch.where(linked.unsqueeze(-1), gap, -math.inf))   # (B, n, Q, Q, K)
    scores = torch.einsum("bnis,bnjs->bnij", c, b)                         # (B, n, Q, Q)
    inside = torch.einsum("bnijk,bnij,bnjkp->bnikp", decay, scores, v)     # (B, n, Q, K, P)
    to_end = decay[:, :, -1]                                               # (B, n, Q, K)
    own = torch.einsum("bnjk,bnjkp,bnjs->bnkps", to_end, v, b)             # (B, n, K, P, S)
    # 2. Across chunks: the state entering each one; a start inside a chunk cuts it off.
    untouched = starts == 0                                                # (B, n, Q)
    from_start = torch.where(untouched.unsqueeze(-1), torch.exp(cum), 0.0)  # (B, n, Q, K)
    through = from_start[:, :, -1, :, None, None]                          # (B, n, K, 1, 1)
    entering = [h]                                                         # each (B, K, P, S)
    for k in range(n):
        entering.append(through[:, k] * entering[-1] + own[:, k])
    # 3. What the entering state has become by each step, read out.
    states = torch.stack(entering[:-1], dim=1)                             # (B, n, K, P, S)
    carried = torch.einsum("bnis,bnkps,bnik->bnikp", c, states, from_start)  # (B, n, Q, K, P)
    y = (inside + carried).reshape(B, n * Q, K, P)[:, :T]
    return y, entering[-1]


class SSMLayer(nn.Module):
    def __init__(self, cfg: SSMConfig):
        super().__init__()
        D, S = cfg.embed_dim, cfg.state_size
        inner = cfg.expand * D
        K = inner // cfg.head_dim
        C = inner + 2 * S
        self.sizes = (inner, C, K)                                         # z, [u b c], dt
        self.split = (inner, S, S)
        self.heads, self.head_dim, self.chunk = K, cfg.head_dim, cfg.chunk_size
        self.norm = nn.RMSNorm(D)
        self.inputs = nn.Linear(D, sum(self.sizes), bias=False)
        # Depthwise: one filter of W steps per channel (torch's initialisation of one);
        # applied by hand, so that taps across an episode start can be masked.
        self.conv = nn.Conv1d(C, C, cfg.conv_width, groups=C)
        # Mamba's initialisation: step sizes log-uniform in [dt_min, dt_max] (dt_bias the
        # inverse softplus of one), decay rates A uniform in [1, 16], skip D = 1.
        dt = torch.exp(torch.empty(K).uniform_(math.log(cfg.dt_min), math.log(cfg.dt_max)))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))      # (K,)
        self.A_log = nn.Parameter(torch.log(torch.empty(K).uniform_(1.0, 16.0)))  # (K,)
        self.D_skip = nn.Parameter(torch.ones(K))                           # (K,)
        self.out_norm = nn.RMSNorm(inner)
        self.out = nn.Linear(inner, D, bias=False)

    def _inputs(self, convolved: torch.Tensor, dt: torch.Tensor):
        """convolved (..., C), dt (..., K) raw -> u (..., K, P), b, c (..., S), dt (..., K)
        and log a (..., K)."""
        u, b, c = F.silu(convolved).split(self.split, dim=-1)
        dt = F.softplus(dt + self.dt_bias)
        log_a = -dt * torch.exp(self.A_log)
        return u.unflatten(-1, (self.heads, self.head_dim)), b, c, dt, log_a

    def _output(self, x: torch.Tensor, y: torch.Tensor, u: torch.Tensor,
                z: torch.Tensor) -> torch.Tensor:
        """x (..., D) the block's input; y, u (..., K, P); z (..., I) -> (..., D)."""
        y = y + self.D_skip.unsqueeze(-1) * u
        return x + self.out(self.out_norm((y.flatten(-2) * F.silu(z))))

    def step(self, x: torch.Tensor, reset: torch.Tensor, h: torch.Tensor,
             window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Acting: x (B, D); reset (B,) bool; h (B, K, P, S); window (B, W - 1, C).
        Returns (B, D), the next h and window."""
        keep = (~reset).to(h.dtype)                                        # (B,)
        z, xbc, dt = self.inputs(self.norm(x)).split(self.sizes, dim=-1)
        taps = torch.cat([window * keep.view(-1, 1, 1), xbc.unsqueeze(1)], dim=1)  # (B, W, C)
        convolved = (taps * self.conv.weight[:, 0].T).sum(dim=1) + self.conv.bias  # (B, C)
        u, b, c, dt, log_a = self._inputs(convolved, dt)
        decay = (keep.unsqueeze(1) * torch.exp(log_a))[..., None, None]    # (B, K, 1, 1)
        write = (dt.unsqueeze(-1) * u).unsqueeze(-1) * b[:, None, None]    # (B, K, P, S)
        h = decay * h + write
        y = (h * c[:, None, None]).sum(dim=-1)                             # (B, K, P)
        return self._output(x, y, u, z), h, taps[:, 1:]

    def parallel(self, x: torch.Tensor, resets: torch.Tensor, h: torch.Tensor,
                 window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training: x (B, T, D); resets (B, T) bool; h, window before the segment.
        Returns (B, T, D), h and window after it."""
        z, xbc, dt = self.inputs(self.norm(x)).split(self.sizes, dim=-1)
        convolved, window = self._convolve(xbc, window, resets)
        u, b, c, dt, log_a = self._inputs(convolved, dt)
        y, h = chunked_scan(dt.unsqueeze(-1) * u, log_a, b, c, resets, h, self.chunk)
        return self._output(x, y, u, z), h, window

    def _convolve(self, xbc: torch.Tensor, window: torch.Tensor, resets: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """The causal convolution of a segment, xbc (B, T, C), after window (B, W - 1, C),
        each tap masked where it reaches across an episode start. Returns (B, T, C) and the
        window after the segment, its inputs from before the last start zeroed."""
        T, W = xbc.shape[1], self.conv.weight.shape[-1]
        since = steps_since_start(resets, beyond=T + W)                    # (B, T)
        padded = torch.cat([window, xbc], dim=1)                           # (B, W - 1 + T, C)
        weight = self.conv.weight[:, 0]                                    # (C, W)
        convolved = self.conv.bias
        for k in range(W):                                                 # tap k: t - (W-1-k)
            visible = (since >= W - 1 - k).unsqueeze(-1)                   # (B, T, 1)
            convolved = convolved + weight[:, k] * torch.where(visible, padded[:, k:k + T], 0.0)
        # The window entries are steps T - W + 1 .. T - 1; those before the last start go.
        last = since[:, -1:]                                               # (B, 1)
        age = torch.arange(W - 2, -1, -1, device=xbc.device)               # (W - 1,)
        kept = (age <= last).unsqueeze(-1)                                 # (B, W - 1, 1)
        return convolved, torch.where(kept, padded[:, T:], 0.0)


class SSM(nn.Module):
    """N selective state-space layers and a final RMSNorm. `parallel` trains over a segment;
    `step` acts."""

    def __init__(self, cfg: SSMConfig):
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(SSMLayer(cfg) for _ in range(cfg.num_layers))
        self.final_norm = nn.RMSNorm(cfg.embed_dim)

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> SSMState:
        """The state of a worker before any step: zeros (an episode start resets to it)."""
        c = self.cfg
        inner = c.expand * c.embed_dim
        h = torch.zeros(batch, c.num_layers, inner // c.head_dim, c.head_dim, c.state_size,
                        device=device)
        window = torch.zeros(batch, c.num_layers, c.conv_width - 1, inner + 2 * c.state_size,
                             device=device)
        return SSMState(h, window)

    def activation_bytes(self, segments: int, length: int) -> int:
        """Per layer and step: the projections, the convolution's W masked taps, the decays
        and scores of the step's chunk row (Q K and Q), the chunk states, the gated norm's
        and the output's inputs."""
        c = self.cfg
        inner, Q = c.expand * c.embed_dim, min(c.chunk_size, length)
        K, channels = inner // c.head_dim, inner + 2 * c.state_size
        per_step = 4 * c.embed_dim + (c.conv_width + 3) * channels + 3 * Q * K + Q + \
            8 * inner + 2 * K * c.head_dim * c.state_size // Q
        return 4 * c.num_layers * segments * length * per_step

    def parallel(self, x: torch.Tensor, state: SSMState, resets: torch.Tensor
                 ) -> tuple[torch.Tensor, SSMState]:
        """Training form. x (B, T, D); state before the segment; resets (B, T) bool, True
        where a step starts an episode. Returns (B, T, D) and the state after the segment."""
        finals = []
        for n, layer in enumerate(self.layers):
            x, h, window = layer.parallel(x, resets, state.h[:, n], state.window[:, n])
            finals.append((h, window))
        return self.final_norm(x), self._stack(finals)

    def step(self, x: torch.Tensor, state: SSMState, reset: torch.Tensor
             ) -> tuple[torch.Tensor, SSMState]:
        """Acting form, one step. x (B, D); reset (B,) bool, True where the step starts an
        episode (the state is zeroed before it). Returns (B, D) and the next state."""
        finals = []
        for n, layer in enumerate(self.layers):
            x, h, window = layer.step(x, reset, state.h[:, n], state.window[:, n])
            finals.append((h, window))
        return self.final_norm(x), self._stack(finals)

    @staticmethod
    def _stack(finals: list[tuple[torch.Tensor, torch.Tensor]]) -> SSMState:
        h, window = zip(*finals)
        return SSMState(torch.stack(h, dim=1), torch.stack(window, dim=1))


register(MemoryKind(
    name="ssm", section="ssm", settings=SSMConfig, check=check,
    summary="A selective state-space model in the manner of Mamba-2 (Dao and Gu, ICML 2024): "
            "a decay per head and step chosen by the input, trained in chunks.",
    build=lambda cfg, config: LinearRecurrentMemory(SSM(cfg), cfg.embed_dim),
    examples={"ssm": {"num_layers": 2, "embed_dim": 16, "expand": 2, "head_dim": 8,
                      "state_size": 4, "conv_width": 3, "chunk_size": 3}},
    sized={"SSM": lambda width, L: {"num_layers": 2, "embed_dim": width, "head_dim": 8}}))
