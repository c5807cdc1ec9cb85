"""The policy's heads and action distribution for every supported action space.

An action is one flat vector per step (environments/actions.py): the categorical entries,
then the continuous ones, then the binary ones. `ActionHead` maps the policy branch's
features to the parameters of one distribution per group, and `ActionDistribution` samples
it and scores actions; acting (sampler, agent) and training (trainer) use the same calls, so
the PPO ratio compares like with like. Log-probabilities and entropies of the groups and of
their entries add: the entries are drawn independently given the features.

    categorical  one linear head per entry, a softmax over its n choices; an action mask
                 (B, sum(nvec)) sets the logits of forbidden choices to the lowest float, so
                 they are never drawn and the log-probabilities and entropy are those of the
                 distribution renormalised over the allowed choices (Huang & Ontanon 2022,
                 "A Closer Look at Invalid Action Masking in Policy Gradient Algorithms")
    continuous   a diagonal Gaussian: a linear head for the mean; the log standard deviation
                 one learned value per entry (state_independent, CleanRL's and SB3's PPO)
                 or a second linear head (state_dependent), clamped to [-5, 2]
    binary       a Bernoulli per entry from a linear head's logits

The sampler stores the Gaussian's unclipped sample and its log-probability; the env receives
it clipped to the Box's bounds (environments.actions). Deterministic play takes each
categorical's most probable choice, the Gaussian's mean and each bit whose probability
exceeds one half. Sampling draws from torch's global RNG, which seeded runs and resumes
restore.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import nn
from torch.nn import functional as F

from config import LOG_STD_MAX, LOG_STD_MIN, Config
from environments import SpaceSpec

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def orthogonal(layer: nn.Module, gain: float = math.sqrt(2)) -> nn.Module:
    """Orthogonal weights with `gain`, zero biases (the PPO initialisation, Andrychowicz et
    al. 2021)."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class ActionDistribution(NamedTuple):
    """The parameters of the policy's distribution over flat actions, with its operations.
    Tensors only, so that the compiled acting step can return it. Leading dims (...) are the
    batch: (B,) while acting, (B, G) in training."""
    logits: tuple[torch.Tensor, ...]          # per categorical entry (..., n_i)
    mean: Optional[torch.Tensor]              # (..., C) of the Gaussian, C continuous entries
    log_std: Optional[torch.Tensor]           # (..., C)
    binary_logits: Optional[torch.Tensor]     # (..., K) of the Bernoullis

    def _log_softmaxes(self, mask: Optional[torch.Tensor]) -> list[torch.Tensor]:
        return [F.log_softmax(lg, dim=-1) for lg in self._masked(mask)]

    def _masked(self, mask: Optional[torch.Tensor]) -> list[torch.Tensor]:
        """Each categorical entry's logits with its forbidden choices at the lowest float;
        mask (..., sum(n_i)) bool, or None for no mask."""
        if mask is None:
            return list(self.logits)
        parts = torch.split(mask, [lg.shape[-1] for lg in self.logits], dim=-1)
        return [lg.masked_fill(~allowed, torch.finfo(lg.dtype).min)
                for lg, allowed in zip(self.logits, parts)]

    def sample(self, mask: Optional[torch.Tensor] = None,
               deterministic: bool = False) -> torch.Tensor:
        """One flat action per batch entry (..., A): long, or float32 with continuous
        entries (their unclipped values)."""
        parts = []
        if self.logits:
            logits = self._masked(mask)
            if deterministic:
                parts.append(torch.stack([lg.argmax(-1) for lg in logits], dim=-1))
            else:
                parts.append(torch.stack([_categorical_sample(lg) for lg in logits], dim=-1))
        if self.mean is not None:
            parts.append(self.mean if deterministic else
                         self.mean + self.log_std.exp() * torch.randn_like(self.mean))
        if self.binary_logits is not None:
            parts.append((self.binary_logits > 0).long() if deterministic else
                         torch.bernoulli(torch.sigmoid(self.binary_logits)).long())
        if len(parts) == 1:
            return parts[0]
        dtype = torch.float32 if self.mean is not None else torch.long
        return torch.cat([p.to(dtype) for p in parts], dim=-1)

    def log_prob(self, actions: torch.Tensor, mask: Optional[torch.Tensor] = None
                 ) -> torch.Tensor:
        """Joint log-probability (...) of flat actions (..., A). What the sampler records;
        it needs no entropy."""
        return self._log_prob(self._log_softmaxes(mask), actions)

    def log_prob_entropy(self, actions: torch.Tensor, mask: Optional[torch.Tensor] = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """Joint log-probability and entropy (each (...)), from one log_softmax per
        categorical entry."""
        log_softmaxes = self._log_softmaxes(mask)                       # each (..., n_i)
        terms = []
        if log_softmaxes:
            terms.append(-sum((logp.exp() * logp).sum(-1) for logp in log_softmaxes))
        if self.mean is not None:
            terms.append((0.5 + HALF_LOG_2PI + self.log_std).sum(-1))
        if self.binary_logits is not None:
            p = torch.sigmoid(self.binary_logits)
            terms.append(F.binary_cross_entropy_with_logits(self.binary_logits, p,
                                                            reduction="none").sum(-1))
        return self._log_prob(log_softmaxes, actions), _total(terms)

    def _log_prob(self, log_softmaxes: list[torch.Tensor], actions: torch.Tensor
                  ) -> torch.Tensor:
        n = len(log_softmaxes)
        terms = []
        if n:
            index = actions[..., :n].long()                             # (..., n)
            terms.append(sum(logp.gather(-1, index[..., i:i + 1]).squeeze(-1)
                             for i, logp in enumerate(log_softmaxes)))
        c = 0
        if self.mean is not None:
            c = self.mean.shape[-1]
            x = actions[..., n:n + c]                                   # (..., C)
            z = (x - self.mean) * torch.exp(-self.log_std)
            terms.append((-0.5 * z * z - self.log_std - HALF_LOG_2PI).sum(-1))
        if self.binary_logits is not None:
            bits = actions[..., n + c:].to(self.binary_logits.dtype)    # (..., K)
            terms.append(-F.binary_cross_entropy_with_logits(self.binary_logits, bits,
                                                             reduction="none").sum(-1))
        return _total(terms)


def _categorical_sample(logits: torch.Tensor) -> torch.Tensor:
    """One draw per row of logits (..., n) -> (...) long."""
    probs = F.softmax(logits, -1).reshape(-1, logits.shape[-1])            # (B*, n)
    return torch.multinomial(probs, 1).reshape(logits.shape[:-1])


def _total(terms: list[torch.Tensor]) -> torch.Tensor:
    """The sum of the groups' terms; a single group's term unchanged (bit for bit)."""
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


class ActionHead(nn.Module):
    """Features (..., hidden) -> ActionDistribution for spec's action groups, through the
    network's policy branch."""

    def __init__(self, spec: SpaceSpec, hidden: int, config: Config):
        super().__init__()
        # The categorical heads are registered by index ("0", "1", ...) and first, as the
        # network's policy_heads list always was: model files from before the other groups
        # load unchanged, and seeded runs draw the same initial weights. Small initial
        # outputs: near-uniform actions, a Gaussian centred on 0 (Andrychowicz et al. 2021).
        self.categorical = len(spec.action_nvec)
        for i, n in enumerate(spec.action_nvec):
            self.add_module(str(i), orthogonal(nn.Linear(hidden, n), gain=0.01))
        C = spec.action_continuous
        self.mean = orthogonal(nn.Linear(hidden, C), gain=0.01) if C else None
        self.log_std_head = self.log_std = None
        if C and config.log_std == "state_dependent":
            self.log_std_head = orthogonal(nn.Linear(hidden, C), gain=0.01)
            nn.init.constant_(self.log_std_head.bias, config.initial_log_std)
        elif C:
            self.log_std = nn.Parameter(torch.full((C,), config.initial_log_std))
        K = spec.action_binary
        self.binary = orthogonal(nn.Linear(hidden, K), gain=0.01) if K else None

    def forward(self, z: torch.Tensor, branch: nn.Module) -> ActionDistribution:
        """z (..., hidden) the network's features, `branch` the policy branch over them."""
        # Each categorical head applies the branch anew, as the network always has: one
        # shared evaluation would add up the branch's gradients in another order, and seeded
        # runs of MultiDiscrete tasks would change in their last bits.
        logits = tuple(self._modules[str(i)](branch(z)) for i in range(self.categorical))
        if self.mean is None and self.binary is None:
            return ActionDistribution(logits, None, None, None)
        x = branch(z)                                                   # (..., hidden)
        mean = log_std = None
        if self.mean is not None:
            mean = self.mean(x)                                         # (..., C)
            # A copy, not a view: a view of the parameter would keep requires_grad even
            # inside the acting step's no_grad, and the sampler's records would join a graph.
            log_std = self.log_std.expand_as(mean).clone() if self.log_std_head is None \
                else self.log_std_head(x).clamp(LOG_STD_MIN, LOG_STD_MAX)
        binary = self.binary(x) if self.binary is not None else None
        return ActionDistribution(logits, mean, log_std, binary)
