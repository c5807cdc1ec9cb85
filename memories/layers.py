"""Building blocks that several memories share.

Shape legend in window.py.
"""
from __future__ import annotations

import torch
from torch import nn


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

