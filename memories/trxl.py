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
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from config import TransformerConfig
from memories import StoreLayout
from memories.window import gradient_window_mask, relative_offsets, segment_mask, sinusoid

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

    def forward(self, x: torch.Tensor, past: KV, mask: torch.Tensor,
                offsets: Optional[torch.Tensor], own: Optional[KV] = None) -> torch.Tensor:
        """x (B, G, D) block inputs of the queries; past each (B, H, M, dh) the keys and
        values before them; own the queries' own keys and values (B, H, G, dh) when the
        caller projected them already (acting caches them), else projected here. The queries
        attend to [past | own] (B, H, M+G, dh) under mask (B, G, M+G). Returns (B, G, D)."""
        own = self.project_kv(x) if own is None else own
        kv = KV(torch.cat([past.k, own.k], dim=2), torch.cat([past.v, own.v], dim=2))
        a = self.attention(self._attention_input(x), kv, mask, offsets)     # (B, G, D)
        if self.layer_norm == "post":
            h = self.norm1(x + a)
            return self.norm2(h + self.feed_forward(h))
        h = self._combine(0, x, a)
        f = self.feed_forward(self.norm2(h) if self.layer_norm == "pre" else h)
        return self._combine(1, h, f)


class TrXLState(NamedTuple):
    """The acting window of every environment: its last M steps' keys and values per block,
    projected with the current weights (the KV cache), in memory_dtype. Which slots belong to
    the current episode follows from episode_step: slot j (oldest first) holds the episode's
    step episode_step - M + j, valid when that is >= 0."""
    k: torch.Tensor             # (B, N, H, M, dh)
    v: torch.Tensor             # (B, N, H, M, dh)


class TransformerMemory(nn.Module):
    """N blocks attending over the episodic memory window."""

    def __init__(self, cfg: TransformerConfig, segment_length: int):
        super().__init__()
        self.cfg = cfg
        self.input_dim = self.output_dim = cfg.embed_dim
        self.memory_slots = cfg.memory_length - 1
        self.segment_length = segment_length
        self.dtype = getattr(torch, cfg.memory_dtype)
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

    def initial_state(self, batch: int, device: torch.device) -> TrXLState:
        c, M = self.cfg, self.memory_slots
        like = dict(device=device, dtype=self.dtype)
        kv = (batch, c.num_blocks, c.num_heads, M, c.embed_dim // c.num_heads)
        return TrXLState(torch.zeros(kv, **like), torch.zeros(kv, **like))

    @torch.no_grad()
    def refresh(self, state: TrXLState, history: torch.Tensor) -> TrXLState:
        """Re-project the M carried block inputs history (B, M, N, D) with the current
        weights, exactly as training will (segments projects the stored block inputs)."""
        if self.memory_slots == 0:
            return state
        kvs = [block.project_kv(history[:, :, b].float())                   # (B, H, M, dh)
               for b, block in enumerate(self.blocks)]
        return TrXLState(torch.stack([kv.k for kv in kvs], 1).to(self.dtype),
                         torch.stack([kv.v for kv in kvs], 1).to(self.dtype))  # (B, N, H, M, dh)

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

    def step(self, x: torch.Tensor, state: TrXLState, episode_step: torch.Tensor
             ) -> tuple[torch.Tensor, TrXLState, torch.Tensor]:
        """Acting path, one step per environment: x (B, D), episode_step (B,). The step
        attends to its state's valid slots and itself; the window then slides by one.
        Returns the output (B, D), the next state and the block inputs (B, N, D) to store."""
        B, M = x.shape[0], self.memory_slots
        slot = torch.arange(M, device=x.device)
        cached_valid = slot.unsqueeze(0) >= M - episode_step.unsqueeze(1)   # (B, M)
        own_valid = torch.ones(B, 1, dtype=torch.bool, device=x.device)
        mask = torch.cat([cached_valid, own_valid], dim=1).unsqueeze(1)     # (B, 1, L)
        h = self.add_position(x.unsqueeze(1), episode_step.unsqueeze(1))  # (B, 1, D)
        inputs, keys, values = [], [], []
        for b, block in enumerate(self.blocks):
            own = block.project_kv(h)                                       # (B, H, 1, dh)
            past = KV(state.k[:, b].float(), state.v[:, b].float())         # (B, H, M, dh)
            inputs.append(h[:, 0])
            keys.append(own.k)
            values.append(own.v)
            h = block(h, past, mask, self.step_offsets, own)                # (B, 1, D)
        to_store = torch.stack(inputs, dim=1)                               # (B, N, D)

        def slide(window: torch.Tensor, new: torch.Tensor, dim: int) -> torch.Tensor:
            # Drop the oldest slot, append the newest: a fresh contiguous tensor, so the state
            # keeps the strides a compiled step was built for.
            if M == 0:
                return window
            return torch.cat([window.narrow(dim, 1, M - 1), new.to(self.dtype)], dim=dim)
        next_state = TrXLState(slide(state.k, torch.stack(keys, dim=1), 3),
                               slide(state.v, torch.stack(values, dim=1), 3))
        return self.final_norm(h.squeeze(1)), next_state, to_store
