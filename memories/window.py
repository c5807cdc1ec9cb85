"""The episodic memory window (TrXL): which cached steps a query may attend to.

Shape legend used across the project (as in nanoGPT):
    B batch (workers during a rollout, segments during training)
    G queries per segment (segment length; 1 during a rollout step)
    L memory_length: steps a query attends to, itself included
    M = L - 1: cached steps before the query
    K = M + G keys of a segment
    S = M + T slots of a worker's stream (T = worker_steps)
    N transformer blocks, H heads, D embed dim, dh = D / H

Each worker keeps a *stream* of slots: the M steps before the rollout, then the T rollout steps.
Every slot holds, per block, the block's input at that step, and the id of its episode.

    stream slot:   0 .. M-1        | M ...................... M+T-1
                   carried over    | this rollout
                   from last time  |

The window of the step in slot p is slots p-M .. p, masked to the slots of p's episode:

    slot        p-4  p-3  p-2  p-1   p          (L = 5, M = 4)
    episode      6    6    7    7    7
    attends      .    .    x    x    x          <- never across the episode boundary

A segment of G consecutive steps attends to the M slots before it plus its own steps,
causally: query i (slot M+i of the segment's keys) sees keys j with i <= j <= M+i.

    keys j ->   0 1 2 3 | 4 5 6        (M = 4 memory slots, G = 3 queries)
    query 0     x x x x | x . .
    query 1     . x x x | x x .
    query 2     . . x x | x x x

With a gradient window K < G (config transformer.gradient_window), a query recomputes with
gradient only its last K steps; older steps of its own segment come from the rollout's cache,
as in the original TrXL-PPO (K = 1). The keys are then the M + G cached slots (memory and
the segment as the rollout cached it), followed by the G recomputed ones:

    keys j ->   c0 c1 c2 | c3 c4 c5 | r0 r1 r2      (M = 3, G = 3, K = 2)
    query 0      x  x  x |  .  .  . |  x  .  .      distance < K: recomputed,
    query 1      .  x  x |  .  .  . |  x  x  .      else the cached copy
    query 2      .  .  x |  x  .  . |  .  x  x      (memory slots are only cached)

Slots that hold no step yet (before the first episode of a run) have episode id -1 and are
never attended to. Memory therefore never grows with episode length: an endless episode
costs the same S slots as a short one.
"""
from __future__ import annotations

import torch

INVALID_EPISODE = -1


def segment_mask(key_episode: torch.Tensor, memory_slots: int) -> torch.Tensor:
    """Which keys each query of a segment may attend to.

    key_episode: (B, K) episode id of each key slot; the last G slots are the queries.
    Returns a bool mask (B, G, K): True where query i may attend to key j.
    """
    B, K = key_episode.shape
    G = K - memory_slots
    i = torch.arange(G, device=key_episode.device).unsqueeze(1)            # (G, 1)
    j = torch.arange(K, device=key_episode.device).unsqueeze(0)            # (1, K)
    band = (j >= i) & (j <= i + memory_slots)                              # (G, K)
    query_episode = key_episode[:, memory_slots:]                          # (B, G)
    same = key_episode.unsqueeze(1) == query_episode.unsqueeze(2)          # (B, G, K)
    return band.unsqueeze(0) & same & (key_episode != INVALID_EPISODE).unsqueeze(1)


def gradient_window_mask(key_episode: torch.Tensor, memory_slots: int,
                         window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask and distances for a segment whose queries recompute only their last `window`
    steps (picture above). key_episode (B, M+G) as in segment_mask. Returns a bool mask
    (B, G, M+2G) over [cached M+G slots | recomputed G slots] and distances (G, M+2G)."""
    B, K = key_episode.shape
    M, G = memory_slots, K - memory_slots
    device = key_episode.device
    i = torch.arange(G, device=device).unsqueeze(1)                        # (G, 1)
    j = torch.arange(K, device=device).unsqueeze(0)                        # (1, M+G) cached
    r = torch.arange(G, device=device).unsqueeze(0)                        # (1, G) recomputed
    cached = (j >= i) & (j <= i + M) & ((j < M) | (j <= M + i - window))   # (G, M+G)
    recomputed = (r <= i) & (r > i - window) & (r >= i - M)                # (G, G)
    band = torch.cat([cached, recomputed], dim=1)                          # (G, M+2G)
    episodes = torch.cat([key_episode, key_episode[:, M:]], dim=1)         # (B, M+2G)
    same = episodes.unsqueeze(1) == key_episode[:, M:].unsqueeze(2)        # (B, G, M+2G)
    mask = band.unsqueeze(0) & same & (episodes != INVALID_EPISODE).unsqueeze(1)
    offsets = torch.cat([relative_offsets(G, M, device), (i - r).clamp(0, M)], dim=1)
    return mask, offsets                                                   # (B, G, M+2G), (G, M+2G)


def relative_offsets(queries: int, memory_slots: int, device=None) -> torch.Tensor:
    """Distance from query i to key j, i.e. (M + i) - j, clamped to [0, M] (the out-of-band
    entries are masked anyway). Returns a long tensor (G, K) indexing the L = M + 1
    relative position embeddings."""
    i = torch.arange(queries, device=device).unsqueeze(1)                 # (G, 1)
    j = torch.arange(queries + memory_slots, device=device).unsqueeze(0)  # (1, K)
    return (memory_slots + i - j).clamp(0, memory_slots)                  # (G, K)


def sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal encoding (Vaswani et al. 2017) of integer positions (...,) -> (..., dim)."""
    half = torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32)
    inv_freq = torch.exp(half * (-torch.log(torch.tensor(10000.0)) / dim))  # (dim/2,)
    angles = positions.to(torch.float32).unsqueeze(-1) * inv_freq          # (..., dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)                 # (..., dim)
