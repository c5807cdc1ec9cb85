"""Transformer-XL / GTrXL blocks over the episodic memory (legend in memory.py).

Two ways through the same weights:
  * `TransformerMemory.segments` for training: G queries per segment attend to M cached
    block inputs (no gradient, as in Transformer-XL) plus their own recomputed steps.
  * `TransformerMemory.step` for acting: one query per worker attends to M cached keys and
    values, so a step costs O(L x D) attention plus O(D^2) projections.
Both give the same result for the same inputs (tests/test_transformer.py).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from config import TransformerConfig
from memory import gradient_window_mask, relative_offsets, segment_mask, sinusoid

RELATIVE = ("relative", "learned")


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

    def _distance_keys(self) -> torch.Tensor:
        """W_r R: (L, D). It depends on the weights only, so while acting (no gradient) it is
        computed once per weight version instead of at every step (a third of the matrix
        work of a MiniGrid rollout step). Weight updates and loads bump `_version`."""
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


class GRUGate(nn.Module):
    """GTrXL's GRU-type gate g(x, y) replacing the residual x + y (Parisotto et al. 2019,
    eq. 5-8). The bias b_g > 0 pushes z towards 0, so the block starts near the identity."""

    def __init__(self, dim: int, bias: float):
        super().__init__()
        self.from_y = nn.Linear(dim, 3 * dim, bias=False)   # W_r, W_z, W_g
        self.from_x = nn.Linear(dim, 2 * dim, bias=False)   # U_r, U_z
        self.candidate_x = nn.Linear(dim, dim, bias=False)  # U_g
        self.bias = bias

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        wr, wz, wg = self.from_y(y).chunk(3, dim=-1)
        ur, uz = self.from_x(x).chunk(2, dim=-1)
        r = torch.sigmoid(wr + ur)
        z = torch.sigmoid(wz + uz - self.bias)
        h = torch.tanh(wg + self.candidate_x(r * x))
        return (1 - z) * x + z * h


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

    def forward(self, x: torch.Tensor, keys_for: Callable[[KV], KV], mask: torch.Tensor,
                offsets: Optional[torch.Tensor]) -> torch.Tensor:
        """x (B, G, D) block inputs of the queries. keys_for receives the queries' own keys
        and values (B, H, G, dh) and returns the full key window (B, H, K, dh): the cached
        memory followed by them. Returns the block output (B, G, D)."""
        kv = keys_for(self.project_kv(x))
        a = self.attention(self._attention_input(x), kv, mask, offsets)     # (B, G, D)
        if self.layer_norm == "post":
            h = self.norm1(x + a)
            return self.norm2(h + self.feed_forward(h))
        h = self._combine(0, x, a)
        f = self.feed_forward(self.norm2(h) if self.layer_norm == "pre" else h)
        return self._combine(1, h, f)


def prepend(past: KV) -> Callable[[KV], KV]:
    """keys_for that puts cached keys/values (B, H, M, dh) before the queries' own."""
    return lambda own: KV(torch.cat([past.k, own.k], dim=2), torch.cat([past.v, own.v], dim=2))


class TransformerMemory(nn.Module):
    """N blocks attending over the episodic memory window."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.memory_slots = cfg.memory_length - 1
        self.blocks = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.num_blocks))
        self.final_norm = nn.LayerNorm(cfg.embed_dim) if cfg.layer_norm == "pre" else nn.Identity()
        self.register_buffer("step_offsets", relative_offsets(1, self.memory_slots),
                             persistent=False)                            # (1, L)

    def add_position(self, x: torch.Tensor, episode_step: torch.Tensor) -> torch.Tensor:
        """Absolute encoding: the step's index in its episode, added to its embedding."""
        if self.cfg.positional_encoding != "absolute":
            return x
        return x + sinusoid(episode_step, x.shape[-1]).to(x.dtype)

    def project_memory(self, memory: torch.Tensor) -> list[KV]:
        """Cached block inputs (N, B, M, D) -> per block keys/values (B, H, M, dh)."""
        return [block.project_kv(m) for block, m in zip(self.blocks, memory)]

    def segments(self, x: torch.Tensor, memory: torch.Tensor, key_episode: torch.Tensor,
                 query_step: torch.Tensor) -> torch.Tensor:
        """Training path. x (B, G, D) embeddings; memory (N, B, M, D) cached block inputs
        (treated as constants, as in Transformer-XL), or (N, B, M+G, D) with a gradient
        window (the segment's own cached inputs too, memory.py); key_episode (B, M+G);
        query_step (B, G). Returns (B, G, D)."""
        G, M = x.shape[1], self.memory_slots
        if memory.shape[2] == M:
            mask = segment_mask(key_episode, M)                             # (B, G, M+G)
            offsets = relative_offsets(G, M, x.device)                      # (G, M+G)
        else:
            assert memory.shape[2] == M + G, "memory must be M or M + G slots"
            mask, offsets = gradient_window_mask(key_episode, M, self.cfg.gradient_window)
        h = self.add_position(x, query_step)
        for block, past in zip(self.blocks, self.project_memory(memory.detach())):
            h = block(h, prepend(past), mask, offsets)
        return self.final_norm(h)

    def step(self, x: torch.Tensor, keys_for: list[Callable[[KV], KV]], key_valid: torch.Tensor,
             episode_step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Acting path, one step per worker. x (B, D); keys_for per block, giving the window
        of L keys/values from the step's own (see TransformerBlock.forward and
        sampler.KVCache); key_valid bool (B, L): which window slots (the M cached ones, then
        the current step) belong to the current episode; episode_step (B,).
        Returns the output (B, D) and the block inputs (N, B, D) to cache."""
        h = self.add_position(x.unsqueeze(1), episode_step.unsqueeze(1))  # (B, 1, D)
        mask = key_valid.unsqueeze(1)                                      # (B, 1, L)
        inputs = []
        for block, block_keys in zip(self.blocks, keys_for):
            inputs.append(h.squeeze(1))
            h = block(h, block_keys, mask, self.step_offsets)
        return self.final_norm(h.squeeze(1)), torch.stack(inputs)          # (B, D), (N, B, D)
