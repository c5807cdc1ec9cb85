"""The first-order linear recurrence shared by the linear-recurrent memories, in parallel form.

Both AGaLiTe (Pramanik et al., TMLR 2024) and FFM (Morad et al., NeurIPS 2023) keep states that
evolve as y_t = a_t * y_{t-1} + x_t, elementwise, with a decay a_t that does not depend on y.
The pairs (a, x) compose associatively (Blelloch 1990; the authors of both papers train with
an associative scan), so a segment needs no step-by-step pass. It is split into n chunks of
c ~ sqrt(T) steps and computed in two short passes plus one product:

    steps        0 1 2 | 3 4 5 | 6 7 8          (T = 9, c = 3, n = 3)
    1. inside    every chunk at once, from a zero state: its local sums y~ and the
       chunks    products of the decays since the chunk's start, P (c vectorised steps)
    2. carries   the state entering chunk k: h_k = P_end(k-1) h_{k-1} + y~_end(k-1),
                 h_0 = the carried state (n steps, each on one vector per chunk)
    3. combine   y_t = y~_t + P_t h_chunk(t)

That is 2 sqrt(T) small sequential steps and O(T) work; autograd keeps about two copies of
the segment's states (a log-depth Hillis-Steele scan kept two per round, 2 log2 T). An episode
start at step t is a decay of 0: nothing before t reaches y_t or anything after it. Only
products of decays are formed, never their quotients, so a decay of 0 or a long run of small
decays stays exact, where a cumulative-product closed form would divide by them.
"""
from __future__ import annotations

import math

import torch


def linear_scan(decay: torch.Tensor, x: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
    """y_t = decay_t * y_{t-1} + x_t along dim 1, from y_{-1} = initial.

    x: (B, T, ...), real or complex; decay: the same or broadcastable to it (e.g. a size-1
    dim shared by several states); initial: (B, ...), the state before the segment.
    Returns every y_t, (B, T, ...).
    """
    B, T, *rest = x.shape
    assert decay.dim() == x.dim() and decay.shape[:2] == (B, T)
    assert initial.shape == (B, *rest)
    if T == 1:                                                             # an acting step
        return x + decay * initial.unsqueeze(1)
    c = math.ceil(math.sqrt(T))
    n = math.ceil(T / c)
    if n * c > T:
        # Padding steps at the end (decay 1, input 0) change nothing before them.
        x = torch.cat([x, x.new_zeros(B, n * c - T, *rest)], dim=1)
        decay = torch.cat([decay, decay.new_ones(B, n * c - T, *decay.shape[2:])], dim=1)
    xs = x.reshape(B, n, c, *rest)                                         # (B, n, c, ...)
    decays = decay.reshape(B, n, c, *decay.shape[2:])                      # (B, n, c, ...)
    # 1. Inside every chunk at once, from a zero state.
    local, product = [xs[:, :, 0]], [decays[:, :, 0]]                      # each (B, n, ...)
    for i in range(1, c):
        local.append(decays[:, :, i] * local[-1] + xs[:, :, i])
        product.append(decays[:, :, i] * product[-1])
    # 2. The state entering each chunk.
    carries = [initial]                                                    # each (B, ...)
    for k in range(n - 1):
        carries.append(product[-1][:, k] * carries[-1] + local[-1][:, k])
    # 3. Each step's local sum plus what the chunk's entering state has become by then.
    y = torch.stack(local, dim=2) + torch.stack(product, dim=2) * torch.stack(
        carries, dim=1).unsqueeze(2)                                       # (B, n, c, ...)
    return y.reshape(B, n * c, *rest)[:, :T]


def reset_decay(decay: torch.Tensor, resets: torch.Tensor) -> torch.Tensor:
    """decay (B, T, ...) with the steps that start an episode (resets (B, T) bool) set to 0,
    so that the state before them is dropped, exactly as zeroing it before the step."""
    keep = (~resets).to(decay.real.dtype if decay.is_complex() else decay.dtype)
    return decay * keep.view(*resets.shape, *([1] * (decay.dim() - 2)))


def episode_ticks(resets: torch.Tensor, tick: torch.Tensor, period: int) -> torch.Tensor:
    """Each step's index in its episode (1 at an episode start), modulo period.
    resets (B, T) bool; tick (B,) the index of the step before the segment. (B, T) float."""
    if resets.shape[1] == 1:                                               # an acting step
        return torch.where(resets[:, 0], 1, tick + 1).unsqueeze(1) % period
    t = torch.arange(resets.shape[1], device=resets.device)                # (T,)
    # The last episode start at or before each step, -1 where none in the segment.
    last_start = torch.where(resets, t, -1).cummax(dim=1).values           # (B, T)
    index = torch.where(last_start >= 0, t - last_start + 1, tick.unsqueeze(1) + 1 + t)
    return (index % period).to(tick.dtype)
