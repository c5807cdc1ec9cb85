"""The PPO loss as a pure function of tensors (Schulman et al. 2017).

No module state, no optimiser: the trainer calls it per minibatch and logs the returned
record field by field, so no statistic can be mixed up with another by position.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

import torch


@dataclass
class LossTerms:
    total: torch.Tensor            # what is back-propagated
    policy: torch.Tensor
    value: torch.Tensor
    entropy: torch.Tensor
    reconstruction: torch.Tensor
    approx_kl: torch.Tensor        # mean((r - 1) - log r), unbiased, low variance (Schulman 2020)
    approx_kl_old: torch.Tensor    # mean(-log r), the first-order estimator
    clip_fraction: torch.Tensor    # share of samples with |r - 1| > clip range

    def detached(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name).detach()) for f in fields(self)}


def normalize_advantages(advantages: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance over a whole minibatch (before it is split into parts)."""
    return (advantages - advantages.mean()) / (advantages.std(unbiased=False) + 1e-8)


def ppo_loss(log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor,
             values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
             entropy: torch.Tensor, clip_range: float, value_coefficient: float,
             entropy_coefficient: float, reconstruction_loss: Optional[torch.Tensor] = None,
             reconstruction_coefficient: float = 0.0) -> LossTerms:
    """All inputs share one shape (any); advantages already normalised per minibatch."""
    log_ratio = log_probs - old_log_probs
    ratio = log_ratio.exp()
    surrogate = torch.min(ratio * advantages,
                          ratio.clamp(1.0 - clip_range, 1.0 + clip_range) * advantages)
    policy_loss = -surrogate.mean()
    # Clipped value loss, as the original TrXL-PPO: the value may move at most clip_range.
    clipped_values = old_values + (values - old_values).clamp(-clip_range, clip_range)
    value_loss = torch.max((values - returns) ** 2, (clipped_values - returns) ** 2).mean()
    entropy_mean = entropy.mean()
    reconstruction = reconstruction_loss if reconstruction_loss is not None else \
        torch.zeros((), device=values.device)
    total = (policy_loss + value_coefficient * value_loss - entropy_coefficient * entropy_mean
             + reconstruction_coefficient * reconstruction)
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()
        approx_kl_old = (-log_ratio).mean()
        clip_fraction = ((ratio - 1).abs() > clip_range).float().mean()
    return LossTerms(total, policy_loss, value_loss, entropy_mean, reconstruction,
                     approx_kl, approx_kl_old, clip_fraction)
