"""The first-order linear recurrence shared by the linear-recurrent memories, in parallel form.

Both AGaLiTe (Pramanik et al., TMLR 2024) and FFM (Morad et al., NeurIPS 2023) keep states that
evolve as y_t = a_t * y_{t-1} + x_t, elementwise, with a decay a_t that does not depend on y.
Such a recurrence is associative in the pairs (a, x) (Blelloch 1990; the authors of both
papers train with an associative scan), so a segment of T steps takes log2(T) rounds of
vectorised products instead of T sequential steps. An episode start at step t is a decay of 0:
nothing before t reaches y_t or anything after it.

    round    offset   y_t accumulates                       (T = 8)
    0        -        x_t
    1        1        x_t + a_t x_{t-1}
    2        2        ... + a_t a_{t-1} (x_{t-2} + a_{t-2} x_{t-3})
    3        4        ... every x_s, s <= t, times the product of a over (s, t]

Only products of decays are formed, never their quotients, so a decay of 0 (an episode start)
or a long run of small decays stays exact; a cumulative-product closed form would divide by
them.
"""
from __future__ import annotations

import torch


def linear_scan(decay: torch.Tensor, x: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
    """y_t = decay_t * y_{t-1} + x_t along dim 1, from y_{-1} = initial.

    decay and x: (B, T, ...), the same shape (broadcast decay first); real or complex.
    initial: (B, ...), the state before the segment. Returns every y_t, (B, T, ...).
    """
    assert decay.shape == x.shape and initial.shape == x.shape[:1] + x.shape[2:]
    # The carried state enters as part of step 0's input: y_0 = a_0 y_{-1} + x_0.
    if x.shape[1] == 1:
        return x + decay * initial.unsqueeze(1)                           # an acting step
    y = torch.cat([x[:, :1] + decay[:, :1] * initial.unsqueeze(1), x[:, 1:]], dim=1)
    a = decay
    T, offset = x.shape[1], 1
    while offset < T:
        # Hillis-Steele round: combine each step with the one `offset` before it. Out of
        # place, so autograd sees plain products and sums.
        y = torch.cat([y[:, :offset], y[:, offset:] + a[:, offset:] * y[:, :-offset]], dim=1)
        if 2 * offset < T:                              # the last round needs no products
            a = torch.cat([a[:, :offset], a[:, offset:] * a[:, :-offset]], dim=1)
        offset *= 2
    return y


def reset_decay(decay: torch.Tensor, resets: torch.Tensor) -> torch.Tensor:
    """decay (B, T, ...) with the steps that start an episode (resets (B, T) bool) set to 0,
    so that the state before them is dropped, exactly as zeroing it before the step."""
    keep = (~resets).to(decay.real.dtype if decay.is_complex() else decay.dtype)
    return decay * keep.view(*resets.shape, *([1] * (decay.dim() - 2)))
