"""Running observation normalisation and reward scaling, the standard for PPO on MuJoCo.

As Gymnasium's NormalizeObservation / NormalizeReward and Stable-Baselines3's VecNormalize
compute them, but in the main process over every worker's step at once: one set of
statistics per run, kept where a checkpoint finds them. The observation statistics are
buffers of the network (model.ActorCritic.obs_normalizer), so the model file carries them
to evaluate.py and enjoy.py, which apply them unchanged; the reward scaler's state belongs to
the sampler's checkpoint entry, which a resumed run restores. Statistics are float64, and
updated from the same values in the same order on resume, so a resumed run continues bit
for bit.
"""
from __future__ import annotations

import torch
from torch import nn

# The prior count of the running statistics (Gymnasium's and SB3's epsilon): the first
# update all but replaces the initial mean 0 and variance 1.
PRIOR_COUNT = 1e-4
# Added to the variance before the square root, as Gymnasium and SB3 do.
VARIANCE_EPSILON = 1e-8


def combine(mean: torch.Tensor, var: torch.Tensor, count: torch.Tensor, x: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Running (mean, var, count) updated with the batch x (B, *shape) (float64): the
    parallel variance algorithm of Chan et al. (1979)."""
    x = x.to(torch.float64)
    n = x.shape[0]
    batch_mean, batch_var = x.mean(0), x.var(0, unbiased=False)            # (*shape)
    total = count + n
    delta = batch_mean - mean
    new_mean = mean + delta * (n / total)
    m2 = var * count + batch_var * n + delta * delta * (count * n / total)
    return new_mean, m2 / total, total


class ObservationNormalizer(nn.Module):
    """(obs - mean) / sqrt(var + eps), clipped to +-clip, with running mean and variance."""

    def __init__(self, obs_shape: tuple[int, ...], clip: float):
        super().__init__()
        self.clip = clip
        self.register_buffer("mean", torch.zeros(obs_shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(obs_shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(PRIOR_COUNT, dtype=torch.float64))

    @torch.no_grad()
    def update(self, obs: torch.Tensor) -> None:
        """Fold one step of every worker, obs (W, *obs_shape), into the statistics."""
        mean, var, count = combine(self.mean, self.var, self.count, obs)
        self.mean.copy_(mean)
        self.var.copy_(var)
        self.count.copy_(count)

    @torch.no_grad()
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs (..., *obs_shape) normalised, float32."""
        scaled = (obs.to(torch.float64) - self.mean) / torch.sqrt(self.var + VARIANCE_EPSILON)
        return scaled.clamp(-self.clip, self.clip).to(torch.float32)


class RewardScaler:
    """Rewards divided by the running standard deviation of the discounted return, clipped
    to +-clip. Each worker's return accumulates the episode's rewards discounted by gamma and
    restarts after its episode ends (SB3's VecNormalize; Engstrom et al. 2020, "Implementation
    Matters in Deep Policy Gradients", find PPO's MuJoCo results depend on it)."""

    def __init__(self, n_workers: int, gamma: float, clip: float, device: torch.device):
        self.gamma, self.clip = gamma, clip
        f64 = dict(dtype=torch.float64, device=device)
        self.returns = torch.zeros(n_workers, **f64)
        self.mean = torch.zeros((), **f64)
        self.var = torch.ones((), **f64)
        self.count = torch.tensor(PRIOR_COUNT, **f64)

    def __call__(self, rewards: torch.Tensor, ended: torch.Tensor) -> torch.Tensor:
        """rewards (W,) of one step scaled (float32); ended (W,) bool: episodes that ended
        with this step, whose returns restart."""
        self.returns = self.returns * self.gamma + rewards.to(torch.float64)
        self.mean, self.var, self.count = combine(self.mean, self.var, self.count,
                                                  self.returns)
        scaled = rewards.to(torch.float64) / torch.sqrt(self.var + VARIANCE_EPSILON)
        self.returns = torch.where(ended, 0.0, self.returns)
        return scaled.clamp(-self.clip, self.clip).to(torch.float32)

    def state(self) -> dict:
        return {"returns": self.returns.cpu().clone(), "mean": self.mean.cpu().clone(),
                "var": self.var.cpu().clone(), "count": self.count.cpu().clone()}

    def restore(self, state: dict) -> None:
        device = self.returns.device
        self.returns, self.mean, self.var, self.count = (
            state[key].to(device) for key in ("returns", "mean", "var", "count"))
