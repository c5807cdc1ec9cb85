"""AGaLiTe and GaLiTe: gated linear transformers with a constant-size recurrent state
(Pramanik, Elelimy, Machado and White, "AGaLiTe: Approximate Gated Linear Transformers for
Online Reinforcement Learning", TMLR 2024).

Shape legend: B batch, T steps of a segment, N layers, D embed dim, H heads, dh head_dim,
F = eta * dh key features per head, r the approximation order.

Attention without a window. Each head keeps, instead of the keys and values of the past,
the gated sum of their outer products (GaLiTe, the exact form):

    C_t = ((1 - beta_t) (x) (1 - gamma_t)) * C_{t-1} + (beta_t * v_t) (x) (gamma_t * phi(k_t))
    s_t = (1 - gamma_t) * s_{t-1} + gamma_t * phi(k_t)                      C_t (dh, F), s_t (F)
    a_t = C_t phi(q_t) / (s_t . phi(q_t))

beta (dh) and gamma (F) are learned sigmoid gates: how much of the current value and key to
write, and how much of the old memory to keep. phi is the paper's parameterised feature map,
phi(k) = vec(relu(W_k x) (x) relu(W_p x)) with W_p giving eta extra features, so F = eta * dh;
gamma is built the same way from sigmoids. One step costs O(dh F) per head whatever the
episode's length, and the state is C and s: H (dh + 1) F numbers per layer.

AGaLiTe replaces the matrix C by r pairs of vectors. Every write is multiplied by cos(w_i t)
(w_i spread over [-pi, pi], t the step's index in its episode) and the values and keys are
summed separately:

    v~_t^i = (1 - beta_t) * v~_{t-1}^i + cos(w_i t) beta_t * v_t              (dh)
    k~_t^i = (1 - gamma_t) * k~_{t-1}^i + cos(w_i t) gamma_t * phi(k_t)       (F)
    a_t    = sum_i v~_t^i (k~_t^i . phi(q_t)) / (2 r  s_t . phi(q_t))

sum_i v~^i (x) k~^i holds every pair (v_t', k_t'') weighted by sum_i cos(w_i t') cos(w_i t''),
which is large for t' = t'' and averages out otherwise: an approximation of C in
H r (dh + F) + H F numbers per layer, linear instead of quadratic in dh. The 1/(2r) scale is
the authors' (their code); the output projection that follows absorbs any constant.
For integer t the cosines repeat every P = 2 (r - 1) steps (2 when r = 1), so the state keeps
t modulo P: exact in float32 however long the episode.

Both recurrences are elementwise linear in the state with input-only gates, so a segment is
computed in parallel by an associative scan (memories.linear_scan), and an episode start is
a decay of 0. Layers are arranged as in the paper (GTrXL's identity-map reordering, Parisotto
et al. 2019): LayerNorm, attention, ReLU, GRU-type gate; LayerNorm, two-layer feed-forward,
ReLU, GRU-type gate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from config import setting
from memories import MemoryKind, register
from memories.layers import GRUGate
from memories.linear import LinearRecurrentMemory
from memories.linear_scan import episode_ticks, linear_scan

# Added to the attention's normaliser s . phi(q), which is 0 when no key feature is active
# (relu features): the authors' value.
NORM_EPS = 1e-5


@dataclass(frozen=True)
class AGaLiTeConfig:
    """The AGaLiTe memory of `memory: agalite` (Pramanik et al., TMLR 2024): gated linear
    attention whose state has a constant size, trained over each segment with its parallel
    form from the state stored at the segment's start. exact: true gives GaLiTe, the exact
    form. The defaults are a small model for the project's vector tasks; the paper's Mystery
    Path model is num_layers 4, embed_dim 128, num_heads 4, head_dim 64, ffn_dim 128, eta 4,
    r 2."""
    num_layers: int = setting("Stacked layers N.", low=1, high=1024, default=2)
    embed_dim: int = setting("Width D of the observation embedding, of every layer and of the "
                             "output.", low=1, default=64)
    num_heads: int = setting("Attention heads H.", low=1, high=4096, default=4)
    head_dim: int = setting("Size dh of each head's values (and of its queries and keys "
                            "before the feature map).", low=1, default=16)
    eta: int = setting("The feature map's expansion: F = eta x head_dim key features per "
                       "head.", low=1, default=4)
    r: int = setting("AGaLiTe's approximation order: oscillators per head; the state holds "
                     "r (dh + F) + F numbers per head and layer instead of GaLiTe's "
                     "(dh + 1) F.", low=1, default=1)
    ffn_dim: int = setting("Hidden width of each layer's feed-forward network.", low=1,
                           default=64)
    gate_bias: float = setting("GRU-type gate bias; > 0 starts every layer near the identity "
                               "(as GTrXL's gtrxl_bias).", default=2.0)
    exact: bool = setting("GaLiTe: keep the exact dh x F matrix per head instead of the r "
                          "oscillators.", default=False)


class AGaLiTeState(NamedTuple):
    """The approximate memory, batch-first, every layer's stacked along dim 1."""
    values: torch.Tensor   # v~ (B, N, r, H, dh)
    keys: torch.Tensor     # k~ (B, N, r, H, F)
    norm: torch.Tensor     # s  (B, N, H, F)
    tick: torch.Tensor     # (B,) the last step's index in its episode, modulo the cosines' period


class GaLiTeState(NamedTuple):
    """The exact memory, batch-first, every layer's stacked along dim 1."""
    memory: torch.Tensor   # C (B, N, H, dh, F)
    norm: torch.Tensor     # s (B, N, H, F)


State = Union[AGaLiTeState, GaLiTeState]


class Segment(NamedTuple):
    """What every layer shares about a segment's steps."""
    keep: torch.Tensor               # (B, T, 1, 1): 0 where a step starts an episode, else 1
    ticks: Optional[torch.Tensor]    # (B, T) each step's index in its episode mod P (AGaLiTe)
    cos: Optional[torch.Tensor]      # (B, T, r, 1, 1) cos(w_i t), the writes' factor (AGaLiTe)


class Projections(NamedTuple):
    """One layer's per-step quantities, (B, T, H, ...)."""
    value: torch.Tensor       # beta * v                              (B, T, H, dh)
    keep_value: torch.Tensor  # 1 - beta, 0 at an episode start        (B, T, H, dh)
    key: torch.Tensor         # gamma * phi(k)                        (B, T, H, F)
    keep_key: torch.Tensor    # 1 - gamma, 0 at an episode start       (B, T, H, F)
    query: torch.Tensor       # phi(q)                                (B, T, H, F)


def oscillator_period(r: int) -> int:
    """P: cos(w_i t) with w_i = linspace(-pi, pi, r) repeats every P integer steps, since
    w_i P = -2 pi (r - 1) + 4 pi i for P = 2 (r - 1) (and -2 pi for r = 1)."""
    return 2 * max(r - 1, 1)


class GatedLinearAttention(nn.Module):
    """One layer's attention: input (B, T, D) -> output (B, T, D), its state carried along."""

    def __init__(self, cfg: AGaLiTeConfig):
        super().__init__()
        H, dh = cfg.num_heads, cfg.head_dim
        self.cfg = cfg
        # keys, queries, values, beta, gamma, then the feature map's p1 (keys), p2 (queries),
        # p3 (gamma): one matrix product per step for all of them.
        self.inputs = nn.Linear(cfg.embed_dim, H * (5 * dh + 3 * cfg.eta))
        self.out = nn.Linear(H * dh, cfg.embed_dim)

    def project(self, x: torch.Tensor, keep: torch.Tensor) -> Projections:
        B, T, _ = x.shape
        H, dh, eta = self.cfg.num_heads, self.cfg.head_dim, self.cfg.eta
        z = self.inputs(x).view(B, T, H, 5 * dh + 3 * eta)
        k, q, v, beta, gamma, p1, p2, p3 = z.split([dh] * 5 + [eta] * 3, dim=-1)

        def outer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return (b.unsqueeze(-1) * a.unsqueeze(-2)).flatten(-2)         # (B, T, H, eta*dh)

        beta, gamma = torch.sigmoid(beta), outer(torch.sigmoid(gamma), torch.sigmoid(p3))
        return Projections(value=beta * v, keep_value=(1 - beta) * keep,
                           key=gamma * outer(F.relu(k), F.relu(p1)), keep_key=(1 - gamma) * keep,
                           query=outer(F.relu(q), F.relu(p2)))

    def _output(self, attended: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
        """attended (B, T, H, dh), norm (B, T, H) -> (B, T, D)."""
        a = attended / (norm.unsqueeze(-1) + NORM_EPS)
        return self.out(a.flatten(-2))

    def forward(self, x: torch.Tensor, segment: Segment, state: list[torch.Tensor]
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (B, T, D) normalised layer inputs; state this layer's parts of the memory before
        the segment. Returns (B, T, D) and the new parts."""
        p = self.project(x, segment.keep)
        if self.cfg.exact:
            return self.exact(p, *state)
        return self.approximate(p, segment.cos, *state)

    def exact(self, p: Projections, memory: torch.Tensor, norm: torch.Tensor
              ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """GaLiTe over a segment. memory (B, H, dh, F) and norm (B, H, F) before it.
        Returns the output (B, T, D) and the final memory and norm."""
        decay = p.keep_value.unsqueeze(-1) * p.keep_key.unsqueeze(-2)     # (B, T, H, dh, F)
        write = p.value.unsqueeze(-1) * p.key.unsqueeze(-2)               # (B, T, H, dh, F)
        C = linear_scan(decay, write, memory)                              # (B, T, H, dh, F)
        s = linear_scan(p.keep_key, p.key, norm)                           # (B, T, H, F)
        attended = (C @ p.query.unsqueeze(-1)).squeeze(-1)               # (B, T, H, dh)
        return self._output(attended, (s * p.query).sum(-1)), [C[:, -1], s[:, -1]]

    def approximate(self, p: Projections, cos: torch.Tensor, values: torch.Tensor,
                    keys: torch.Tensor, norm: torch.Tensor
                    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """AGaLiTe over a segment. values (B, r, H, dh), keys (B, r, H, F), norm (B, H, F)
        before it; cos (B, T, r, 1, 1). Returns the output (B, T, D) and the final parts."""
        def scan(keep: torch.Tensor, write: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
            written = cos * write.unsqueeze(2)                             # (B, T, r, H, .)
            return linear_scan(keep.unsqueeze(2), written, start)          # decay (B, T, 1, H, .)

        v = scan(p.keep_value, p.value, values)                            # (B, T, r, H, dh)
        k = scan(p.keep_key, p.key, keys)                                  # (B, T, r, H, F)
        s = linear_scan(p.keep_key, p.key, norm)                           # (B, T, H, F)
        scores = (k * p.query.unsqueeze(2)).sum(-1, keepdim=True)          # (B, T, r, H, 1)
        attended = (v * scores).sum(2)                                     # (B, T, H, dh)
        out = self._output(attended, 2 * self.cfg.r * (s * p.query).sum(-1))
        return out, [v[:, -1], k[:, -1], s[:, -1]]


class AGaLiTeLayer(nn.Module):
    """The paper's layer: gated attention and a gated feed-forward network, pre-LayerNorm."""

    def __init__(self, cfg: AGaLiTeConfig):
        super().__init__()
        D = cfg.embed_dim
        self.norm1, self.norm2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.attention = GatedLinearAttention(cfg)
        self.feed_forward = nn.Sequential(nn.Linear(D, cfg.ffn_dim), nn.ReLU(),
                                          nn.Linear(cfg.ffn_dim, D))
        self.gate1, self.gate2 = GRUGate(D, cfg.gate_bias), GRUGate(D, cfg.gate_bias)

    def forward(self, x: torch.Tensor, segment: Segment, state: list[torch.Tensor]
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (B, T, D) -> (B, T, D), and the layer's new state (see GatedLinearAttention)."""
        a, new = self.attention(self.norm1(x), segment, state)
        h = self.gate1(x, F.relu(a))
        return self.gate2(h, F.relu(self.feed_forward(self.norm2(h)))), new


class AGaLiTe(nn.Module):
    """N AGaLiTe (or GaLiTe) layers. `parallel` trains over a segment; `step` acts."""

    def __init__(self, cfg: AGaLiTeConfig):
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(AGaLiTeLayer(cfg) for _ in range(cfg.num_layers))
        omegas = torch.linspace(-math.pi, math.pi, cfg.r)                  # (r,)
        self.register_buffer("omegas", omegas, persistent=False)

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> State:
        """The state of a worker before any step: zeros (an episode start resets to it)."""
        c, B = self.cfg, batch
        N, H, dh, Fk = c.num_layers, c.num_heads, c.head_dim, c.eta * c.head_dim
        zeros = lambda *shape: torch.zeros(B, *shape, device=device)       # noqa: E731
        if c.exact:
            return GaLiTeState(memory=zeros(N, H, dh, Fk), norm=zeros(N, H, Fk))
        return AGaLiTeState(values=zeros(N, c.r, H, dh), keys=zeros(N, c.r, H, Fk),
                            norm=zeros(N, H, Fk), tick=torch.zeros(B, device=device))

    def activation_bytes(self, segments: int, length: int) -> int:
        """Per layer and step: the projections and feature maps, about three copies of the
        scanned states (linear_scan keeps two, the outputs one), the norms', gates' and
        feed-forward network's inputs."""
        c = self.cfg
        F_, H, dh = c.eta * c.head_dim, c.num_heads, c.head_dim
        memory = H * dh * F_ if c.exact else c.r * H * (dh + F_)
        per_step = H * (5 * dh + 3 * c.eta) + 6 * H * F_ + 3 * (memory + H * F_) + \
            16 * c.embed_dim + 2 * c.ffn_dim
        return 4 * c.num_layers * segments * length * per_step

    def parallel(self, x: torch.Tensor, state: State, resets: torch.Tensor
                 ) -> tuple[torch.Tensor, State]:
        """Training form. x (B, T, D); state before the segment; resets (B, T) bool, True
        where a step starts an episode (nothing before it is visible from it on).
        Returns the outputs (B, T, D) and the state after the segment."""
        keep = (~resets).to(x.dtype).view(*resets.shape, 1, 1)             # (B, T, 1, 1)
        if self.cfg.exact:
            segment, memory = Segment(keep, None, None), state
        else:
            ticks = episode_ticks(resets, state.tick, oscillator_period(self.cfg.r))  # (B, T)
            cos = torch.cos(ticks.unsqueeze(-1) * self.omegas)             # (B, T, r)
            segment, memory = Segment(keep, ticks, cos.view(*cos.shape, 1, 1)), state[:-1]
        finals = []
        for n, layer in enumerate(self.layers):
            x, new = layer(x, segment, [part[:, n] for part in memory])
            finals.append(new)
        parts = [torch.stack(layer_parts, dim=1) for layer_parts in zip(*finals)]
        if self.cfg.exact:
            return x, GaLiTeState(*parts)
        return x, AGaLiTeState(*parts, tick=segment.ticks[:, -1])

    def step(self, x: torch.Tensor, state: State, reset: torch.Tensor
             ) -> tuple[torch.Tensor, State]:
        """Acting form, one step per batch row. x (B, D); reset (B,) bool, True where the
        step starts an episode (the state is zeroed before it). Returns (B, D) and the
        next state. The parallel form over a segment of one step is the same recurrence."""
        out, state = self.parallel(x.unsqueeze(1), state, reset.unsqueeze(1))
        return out.squeeze(1), state



def _at_width(width: int, exact: bool = False) -> dict:
    """The paper's Mystery Path proportions (eta 4, r 2, feed-forward as wide as the model)."""
    return {"num_layers": 2, "embed_dim": width, "num_heads": 4, "head_dim": width // 4,
            "eta": 4, "r": 2, "ffn_dim": width, "exact": exact}


TINY = {"num_layers": 2, "embed_dim": 16, "num_heads": 2, "head_dim": 4, "eta": 2, "r": 2,
        "ffn_dim": 16}
register(MemoryKind(
    name="agalite", section="agalite", settings=AGaLiTeConfig,
    summary="AGaLiTe, gated linear attention with a constant-size state (Pramanik et al., "
            "TMLR 2024); exact: true gives GaLiTe.",
    build=lambda cfg, config: LinearRecurrentMemory(AGaLiTe(cfg), cfg.embed_dim),
    examples={"agalite": TINY, "galite": {**TINY, "exact": True}},
    sized={"AGaLiTe": lambda width, L: _at_width(width),
           "GaLiTe": lambda width, L: _at_width(width, exact=True)}))
