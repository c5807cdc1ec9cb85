"""Transformer-XL / GTrXL over the episodic memory window (legend and pictures in window.py).

Two ways through the same weights:
  * `TransformerMemory.segments` for training: G queries per segment attend to M cached
    block inputs (no gradient, as in Transformer-XL) plus their own recomputed steps.
  * `TransformerMemory.step` for acting: one query per worker attends to the M keys and
    values its state caches per block (the KV cache), so a step costs O(L x D) attention
    plus O(D^2) projections instead of re-projecting the whole window.
Both give the same result for the same inputs (tests/test_transformer.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from config import Invalid, setting
from memories import MemoryKind, StoreLayout, register
from memories.layers import GRUGate
from memories.window import gradient_window_mask, relative_offsets, segment_mask, sinusoid

RELATIVE = ("relative", "learned")


@dataclass(frozen=True)
class TransformerConfig:
    """The episodic memory of `memory: trxl`: (G)TrXL attention over the cached states of the
    episode's last memory_length steps."""
    num_blocks: int = setting("Number of transformer blocks.", low=1, high=1024, default=2)
    embed_dim: int = setting("Width D of the embedding and of every cached hidden state.",
                             low=1, default=64)
    num_heads: int = setting("Attention heads H; embed_dim must be divisible by num_heads.",
                             low=1, high=4096, default=4)
    memory_length: int = setting(
        "Steps each query attends to, the current step included: 1 means no memory, L means "
        "the current step and the L-1 steps before it of the same episode.", low=1, default=16)
    positional_encoding: Literal["none", "absolute", "learned", "relative"] = setting(
        "none; absolute = sinusoid of the step's index in its episode added to the "
        "observation embedding; learned = a learned vector per distance in the window used as "
        "a relative position term; relative = Transformer-XL relative attention (sinusoid "
        "per distance, content and position terms with u/v biases, Dai et al. 2019).",
        default="relative")
    layer_norm: Literal["none", "pre", "post"] = setting(
        "Where LayerNorm goes: pre = before attention and feed-forward (identity-map "
        "reordering, Parisotto et al. 2019); post = after each residual; none.", default="pre")
    gtrxl: bool = setting("Replace both residual connections by GRU-type gates (GTrXL).",
                          default=False)
    gtrxl_bias: float = setting("Gate bias b_g; larger starts the gates closer to the identity "
                                "map (the GTrXL paper uses 2).", default=2.0)
    gradient_window: Optional[int] = setting(
        "Steps of a segment recomputed with gradient as keys: in every block query t attends "
        "to the recomputed steps t-K+1 .. t and to the rollout's cached states before them "
        "(through N blocks the gradient reaches N(K-1) steps back). 1 = the original "
        "TrXL-PPO (only the step itself is recomputed); K as the JAX TrXL-PPO did for "
        "Craftax; null = the whole segment (Transformer-XL).", low=1, default=None)
    memory_dtype: Literal["float32", "bfloat16"] = setting(
        "dtype of the cached hidden states (rollout stream, key/value cache, the agent's "
        "window): bfloat16 halves their memory (benchmarks/throughput.py prints it); the "
        "network itself computes in float32.", default="float32")


def check(t: TransformerConfig, config) -> None:
    """What the field bounds cannot say: widths that fit the heads and encodings, gates with
    their norm placement, a gradient window inside the segment."""
    if t.embed_dim % t.num_heads:
        raise Invalid("transformer.embed_dim", t.embed_dim,
                      f"not divisible by transformer.num_heads = {t.num_heads}",
                      f"use an embed_dim that is a multiple of {t.num_heads}, e.g. "
                      f"{t.num_heads * max(1, round(t.embed_dim / t.num_heads))}")
    if t.positional_encoding in ("relative", "absolute") and t.embed_dim % 2:
        raise Invalid("transformer.embed_dim", t.embed_dim,
                      "sinusoidal encodings need an even width",
                      "use an even embed_dim or positional_encoding: learned")
    if t.gtrxl and t.layer_norm == "post":
        raise Invalid("transformer.layer_norm", t.layer_norm,
                      "GTrXL gates need the identity-map reordering (Parisotto et al. 2019)",
                      "set layer_norm: pre (or none), or gtrxl: false")
    if t.gradient_window is not None and t.gradient_window > config.segment_len:
        raise Invalid("transformer.gradient_window", t.gradient_window,
                      f"must lie in [1, segment length = {config.segment_len}]",
                      "use 1 for the original TrXL-PPO, or null for the whole segment")


class KV(NamedTuple):
    """Projected keys and values, each (B, H, K, dh)."""
    k: torch.Tensor
    v: torch.Tensor


class MultiHeadAttention(nn.Module):
    """Multi-head attention; with a relative encoding it adds the Transformer-XL position
    term (q + v_bias) . W_r R[distance] to the content term (q + u_bias) . k."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        D, H = cfg.embed_dim, cfg.num_heads
        self.heads, self.head_dim = H, D // H
        self.query = nn.Linear(D, D)
        self.key_value = nn.Linear(D, 2 * D)
        self.out = nn.Linear(D, D)
        self.relative = cfg.positional_encoding in RELATIVE
        if self.relative:
            L = cfg.memory_length
            if cfg.positional_encoding == "learned":
                self.distance_embedding = nn.Parameter(torch.randn(L, D) * 0.02)   # (L, D)
            else:
                self.register_buffer("distance_embedding", sinusoid(torch.arange(L), D),
                                     persistent=False)                             # (L, D)
            self.position_proj = nn.Linear(D, D, bias=False)
            self.u_bias = nn.Parameter(torch.zeros(H, self.head_dim))
            self.v_bias = nn.Parameter(torch.zeros(H, self.head_dim))

    def project_kv(self, x: torch.Tensor) -> KV:
        B, K, D = x.shape
        kv = self.key_value(x).view(B, K, 2, self.heads, self.head_dim)    # (B, K, 2, H, dh)
        kv = kv.permute(2, 0, 3, 1, 4)                                     # (2, B, H, K, dh)
        return KV(kv[0], kv[1])

    def forward(self, x: torch.Tensor, kv: KV, mask: torch.Tensor,
                offsets: Optional[torch.Tensor]) -> torch.Tensor:
        """x (B, G, D) queries; kv each (B, H, K, dh); mask bool (B, G, K);
        offsets long (G, K) distances for the relative term. Returns (B, G, D)."""
        B, G, D = x.shape
        q = self.query(x).view(B, G, self.heads, self.head_dim).transpose(1, 2)  # (B, H, G, dh)
        bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device)
        bias = bias.masked_fill(~mask, float("-inf")).unsqueeze(1)         # (B, 1, G, K)
        if self.relative:
            bias = bias + self._position_scores(q, offsets)                 # (B, H, G, K)
            q = q + self.u_bias.unsqueeze(1)                                # (B, H, G, dh)
        y = F.scaled_dot_product_attention(q, kv.k, kv.v, attn_mask=bias)  # (B, H, G, dh)
        return self.out(y.transpose(1, 2).reshape(B, G, D))                # (B, G, D)

    def train(self, mode: bool = True) -> "MultiHeadAttention":
        # A fused optimiser writes the weights without bumping `_version` (torch's fused AdamW
        # does not), so the version key alone would keep a stale W_r R; weights change in
        # training mode, and acting follows a switch to evaluation mode.
        self._distance_cache_key = None
        return super().train(mode)

    def _distance_keys(self) -> torch.Tensor:
        """W_r R: (L, D). It depends on the weights only, so while acting (no gradient) it is
        computed once per weight version instead of at every step (a third of the matrix
        work of a MiniGrid rollout step). Loads and unfused optimiser steps bump `_version`;
        every mode switch drops the cache too (`train`)."""
        # Under torch.compile the projection is part of the graph: the weight-version test
        # below would break the graph, and a compiled projection of L rows is cheap.
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return self.position_proj(self.distance_embedding)
        w, e = self.position_proj.weight, self.distance_embedding
        key = (w.data_ptr(), w._version, e.data_ptr(), e._version)
        if getattr(self, "_distance_cache_key", None) != key:
            self._distance_cache = self.position_proj(e)
            self._distance_cache_key = key
        return self._distance_cache

    def _position_scores(self, q: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """(q + v) . W_r R[d], scaled like the content term, for each (query, key) distance."""
        B, H, G, dh = q.shape
        r = self._distance_keys().view(-1, H, dh).transpose(0, 1)          # (H, L, dh)
        scores = (q + self.v_bias.unsqueeze(1)) @ r.transpose(1, 2)        # (B, H, G, L)
        index = offsets.expand(B, H, *offsets.shape)                       # (B, H, G, K)
        return scores.gather(-1, index) / math.sqrt(dh)                    # (B, H, G, K)


class TransformerBlock(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        D = cfg.embed_dim
        self.layer_norm = cfg.layer_norm
        self.attention = MultiHeadAttention(cfg)
        self.norm1 = nn.LayerNorm(D) if cfg.layer_norm != "none" else nn.Identity()
        self.norm2 = nn.LayerNorm(D) if cfg.layer_norm != "none" else nn.Identity()
        # A single layer, as the original TrXL-PPO and CleanRL's ppo_trxl use.
        self.feed_forward = nn.Sequential(nn.Linear(D, D), nn.ReLU())
        self.gates = nn.ModuleList([GRUGate(D, cfg.gtrxl_bias), GRUGate(D, cfg.gtrxl_bias)]) \
            if cfg.gtrxl else None

    def _attention_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm1(x) if self.layer_norm == "pre" else x

    def project_kv(self, x: torch.Tensor) -> KV:
        """Block inputs (B, K, D) -> keys and values, each (B, H, K, dh)."""
        return self.attention.project_kv(self._attention_input(x))

    def _combine(self, which: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.gates is None:
            return x + y
        # GTrXL applies a ReLU to the submodule output before gating.
        return self.gates[which](x, F.relu(y))

    def forward(self, x: torch.Tensor, past: KV, mask: torch.Tensor,
                offsets: Optional[torch.Tensor]) -> torch.Tensor:
        """x (B, G, D) block inputs of the queries; past each (B, H, M, dh) the keys and
        values before them. The queries attend to [past | their own] (B, H, M+G, dh) under
        mask (B, G, M+G). Returns (B, G, D)."""
        return self.attend(x, window(past, self.project_kv(x)), mask, offsets)

    def attend(self, x: torch.Tensor, kv: KV, mask: torch.Tensor,
               offsets: Optional[torch.Tensor]) -> torch.Tensor:
        """x (B, G, D) attending to the whole window kv, each (B, H, K, dh). Returns (B, G, D)."""
        a = self.attention(self._attention_input(x), kv, mask, offsets)     # (B, G, D)
        if self.layer_norm == "post":
            h = self.norm1(x + a)
            return self.norm2(h + self.feed_forward(h))
        h = self._combine(0, x, a)
        f = self.feed_forward(self.norm2(h) if self.layer_norm == "pre" else h)
        return self._combine(1, h, f)


def window(past: KV, own: KV) -> KV:
    """The keys and values a query attends to: past (B, H, M, dh), then own (B, H, G, dh)."""
    return KV(torch.cat([past.k, own.k], dim=2), torch.cat([past.v, own.v], dim=2))


def trxl_state_type(num_blocks: int) -> type:
    """The acting state of N blocks: a NamedTuple (k0, v0, k1, v1, ...) holding each block's
    keys and values of the last M steps, projected with the current weights (the KV cache),
    in memory_dtype, each (B, H, M, dh). Which slots belong to the current episode follows
    from episode_step: slot j (oldest first) holds the episode's step episode_step - M + j,
    valid when that is >= 0.

    One tensor per block, not one (B, N, H, M, dh): a step concatenates each block's M cached
    slots with its own into the window (B, H, L, dh) it attends to, and the next state is that
    window without its oldest slot, a view. A stacked tensor would cost a second copy of every
    window per step. Every state, the first included, is such a view of an L-slot tensor, so
    a compiled step always sees the same strides (one graph)."""
    return NamedTuple("TrXLState", [(f"{kv}{b}", torch.Tensor)
                                    for b in range(num_blocks) for kv in "kv"])


def without_oldest(window: torch.Tensor) -> torch.Tensor:
    """(B, H, L, dh) -> the view (B, H, M, dh) of its newest M = L - 1 slots."""
    return window.narrow(2, 1, window.shape[2] - 1)


class TransformerMemory(nn.Module):
    """N blocks attending over the episodic memory window."""

    def __init__(self, cfg: TransformerConfig, segment_length: int):
        super().__init__()
        self.cfg = cfg
        self.input_dim = self.output_dim = cfg.embed_dim
        self.memory_slots = cfg.memory_length - 1
        self.segment_length = segment_length
        self.dtype = getattr(torch, cfg.memory_dtype)
        self.state_type = trxl_state_type(cfg.num_blocks)
        self.blocks = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.num_blocks))
        self.final_norm = nn.LayerNorm(cfg.embed_dim) if cfg.layer_norm == "pre" else nn.Identity()
        self.register_buffer("step_offsets", relative_offsets(1, self.memory_slots),
                             persistent=False)                            # (1, L)

    def layout(self) -> StoreLayout:
        """Every step's block inputs (N, D), and the M steps before the rollout: a segment
        attends to the M before it, and with a gradient window also reads its own steps'
        cached inputs (window.py)."""
        M, G = self.memory_slots, self.segment_length
        window = self.cfg.gradient_window or G
        return StoreLayout((self.cfg.num_blocks, self.cfg.embed_dim), self.dtype,
                           per_segment=False, history=M, keys=M + (G if window < G else 0))

    def activation_bytes(self, segments: int, length: int) -> int:
        """Per block: the normalised inputs and keys/values of the M cached and G recomputed
        steps, the attention probabilities (B, H, G, K) and its query-side terms, the
        feed-forward's and the gates' inputs."""
        c, B, G, M = self.cfg, segments, length, self.memory_slots
        window = c.gradient_window or G
        K = M + G + (G if window < G else 0)                          # keys per query window
        per_query = 24 if c.gtrxl else 8                              # (B, G, D) tensors kept
        per_block = 2 * M * c.embed_dim + 2 * K * c.embed_dim + 2 * c.num_heads * G * K + \
            per_query * G * c.embed_dim
        return 4 * c.num_blocks * B * per_block

    def _windows(self, batch: int, device: torch.device) -> list[torch.Tensor]:
        """Zeroed windows (B, H, L, dh), two per block (keys, values)."""
        c = self.cfg
        shape = (batch, c.num_heads, self.memory_slots + 1, c.embed_dim // c.num_heads)
        return [torch.zeros(shape, device=device, dtype=self.dtype)
                for _ in range(2 * c.num_blocks)]

    def initial_state(self, batch: int, device: torch.device) -> NamedTuple:
        return self.state_type(*map(without_oldest, self._windows(batch, device)))

    @torch.no_grad()
    def refresh(self, state: NamedTuple, history: torch.Tensor) -> NamedTuple:
        """Re-project the M carried block inputs history (B, M, N, D) with the current
        weights, exactly as training will (segments projects the stored block inputs)."""
        windows = self._windows(history.shape[0], history.device)
        for b, block in enumerate(self.blocks):
            kv = block.project_kv(history[:, :, b].float())                 # (B, H, M, dh)
            without_oldest(windows[2 * b]).copy_(kv.k)
            without_oldest(windows[2 * b + 1]).copy_(kv.v)
        return self.state_type(*map(without_oldest, windows))

    def add_position(self, x: torch.Tensor, episode_step: torch.Tensor) -> torch.Tensor:
        """Absolute encoding: the step's index in its episode, added to its embedding."""
        if self.cfg.positional_encoding != "absolute":
            return x
        return x + sinusoid(episode_step, x.shape[-1]).to(x.dtype)

    def segments(self, x: torch.Tensor, stored: torch.Tensor, key_episode: torch.Tensor,
                 query_step: torch.Tensor) -> torch.Tensor:
        """Training path. x (B, G, D) embeddings; stored (B, M, N, D) cached block inputs
        (treated as constants, as in Transformer-XL), or (B, M+G, N, D) with a gradient
        window (the segment's own cached inputs too, window.py); key_episode (B, M+G);
        query_step (B, G). Returns (B, G, D)."""
        G, M = x.shape[1], self.memory_slots
        if stored.shape[1] == M:
            mask = segment_mask(key_episode, M)                             # (B, G, M+G)
            offsets = relative_offsets(G, M, x.device)                      # (G, M+G)
        else:
            assert stored.shape[1] == M + G, "stored must be M or M + G slots"
            mask, offsets = gradient_window_mask(key_episode, M, self.cfg.gradient_window)
        h = self.add_position(x, query_step)
        stored = stored.detach()
        for b, block in enumerate(self.blocks):
            h = block(h, block.project_kv(stored[:, :, b]), mask, offsets)  # (B, G, D)
        return self.final_norm(h)

    def step(self, x: torch.Tensor, state: NamedTuple, episode_step: torch.Tensor
             ) -> tuple[torch.Tensor, NamedTuple, torch.Tensor]:
        """Acting path, one step per environment: x (B, D), episode_step (B,). The step
        attends to its state's valid slots and itself; the window then slides by one.
        Returns the output (B, D), the next state and the block inputs (B, N, D) to store."""
        M = self.memory_slots
        # Window slot j (oldest first; the step itself is slot M) is the episode's step
        # episode_step - M + j: valid when that is >= 0.
        slot = torch.arange(M + 1, device=x.device)
        mask = (slot.unsqueeze(0) >= M - episode_step.unsqueeze(1)).unsqueeze(1)  # (B, 1, L)
        h = self.add_position(x.unsqueeze(1), episode_step.unsqueeze(1))  # (B, 1, D)
        inputs, cached = [], []
        for b, block in enumerate(self.blocks):
            past = KV(state[2 * b].float(), state[2 * b + 1].float())       # (B, H, M, dh)
            inputs.append(h[:, 0])
            kv = window(past, block.project_kv(h))                          # (B, H, L, dh)
            h = block.attend(h, kv, mask, self.step_offsets)                # (B, 1, D)
            # Rounded to memory_dtype only for the cache: this step attended in float32.
            cached += [without_oldest(kv.k.to(self.dtype)), without_oldest(kv.v.to(self.dtype))]
        return self.final_norm(h.squeeze(1)), self.state_type(*cached), \
            torch.stack(inputs, dim=1)                                      # (B, N, D)


register(MemoryKind(
    name="trxl", section="transformer", settings=TransformerConfig, check=check,
    summary="Transformer-XL attention over the cached states of the episode's last "
            "memory_length steps (gtrxl: true for GTrXL, Parisotto et al. 2019).",
    build=lambda t, config: TransformerMemory(t, config.segment_len),
    examples={"trxl": {"num_blocks": 2, "embed_dim": 16, "num_heads": 2, "memory_length": 5}},
    sized={"TrXL": lambda width, L: {"num_blocks": 2, "embed_dim": width, "num_heads": 4,
                                     "memory_length": L},
           "GTrXL": lambda width, L: {"num_blocks": 2, "embed_dim": width, "num_heads": 4,
                                      "memory_length": L, "gtrxl": True}}))
