"""The PPO loss against hand-computed values; statistics are named, never positional."""
import dataclasses
import math

import pytest
import torch

from buffer import RolloutBuffer
from losses import normalize_advantages, ppo_loss
from model import ActorCritic
from sampler import Sampler
from tests.fakes import ScriptedPool, tiny_config
from trainer import Schedules, accumulate_gradients, minibatch_loss


def test_loss_terms_and_statistics_known_answers():
    # Two samples: ratio e^0.5 (clipped at 1.2, positive advantage) and e^-0.1 (inside).
    log_ratio = torch.tensor([0.5, -0.1])
    old = torch.tensor([-1.0, -2.0])
    advantages = torch.tensor([1.0, -1.0])
    values, old_values, returns = torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.0]), torch.tensor([2.0, 1.0])
    entropy = torch.tensor([0.3, 0.5])
    terms = ppo_loss(old + log_ratio, old, advantages, values, old_values, returns, entropy,
                     clip_range=0.2, value_coefficient=0.5, entropy_coefficient=0.01)
    r = [math.exp(0.5), math.exp(-0.1)]
    surrogate = [min(r[0] * 1.0, 1.2 * 1.0), min(r[1] * -1.0, max(0.8, min(1.2, r[1])) * -1.0)]
    policy = -sum(surrogate) / 2
    # Sample 0: value moved 0.5 > clip 0.2, so the clipped value 0.7 counts if worse.
    value = (max((1.0 - 2.0) ** 2, (0.7 - 2.0) ** 2) + (0.0 - 1.0) ** 2) / 2
    assert math.isclose(terms.policy.item(), policy, rel_tol=1e-6)
    assert math.isclose(terms.value.item(), value, rel_tol=1e-6)
    assert math.isclose(terms.entropy.item(), 0.4, rel_tol=1e-6)
    assert math.isclose(terms.total.item(), policy + 0.5 * value - 0.01 * 0.4, rel_tol=1e-6)
    # The statistics the original swapped in its plots: each by its own formula.
    assert math.isclose(terms.clip_fraction.item(), 0.5)
    assert math.isclose(terms.approx_kl_old.item(), -(0.5 - 0.1) / 2, rel_tol=1e-6)
    kl = ((r[0] - 1 - 0.5) + (r[1] - 1 + 0.1)) / 2
    assert math.isclose(terms.approx_kl.item(), kl, rel_tol=1e-6)
    assert set(terms.detached()) == {"total", "policy", "value", "entropy", "reconstruction",
                                     "approx_kl", "approx_kl_old", "clip_fraction"}


def test_reconstruction_term_is_weighted_into_the_total():
    zeros = torch.zeros(3)
    terms = ppo_loss(zeros, zeros, zeros, zeros, zeros, zeros, zeros, 0.2, 0.5, 0.0,
                     reconstruction_loss=torch.tensor(2.0), reconstruction_coefficient=0.1)
    assert math.isclose(terms.total.item(), 0.2, rel_tol=1e-6)
    assert math.isclose(terms.reconstruction.item(), 2.0)


def test_advantage_normalisation():
    a = normalize_advantages(torch.tensor([1.0, 2.0, 3.0, 6.0]))
    assert abs(a.mean().item()) < 1e-6 and abs(a.std(unbiased=False).item() - 1) < 1e-4


def test_micro_batches_give_the_same_gradient_as_the_whole_minibatch():
    """Gradient accumulation over parts equals one pass over the minibatch."""
    cfg = tiny_config()
    pool = ScriptedPool(cfg.n_workers, [4, 9, 30])
    torch.manual_seed(0)
    model = ActorCritic(cfg, pool.spec)
    buffer = RolloutBuffer(cfg, pool.spec, torch.device("cpu"))
    _, last = Sampler(pool, buffer, cfg, torch.device("cpu"), model).collect()
    buffer.compute_advantages(last, 0.99, 0.95)
    batch = next(buffer.minibatches(1, torch.Generator().manual_seed(0)))
    grads = []
    for micro in (None, cfg.segment_len):     # whole minibatch, then one segment at a time
        model.zero_grad(set_to_none=True)
        accumulate_gradients(model, batch, dataclasses.replace(cfg, micro_batch_size=micro),
                             Schedules.at(cfg, 0))
        grads.append([p.grad.clone() for p in model.parameters()])
    for whole, parts in zip(*grads):
        torch.testing.assert_close(parts, whole, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("image", [(84, 84, 3), (36, 36, 3), (39, 47, 1)])
def test_reconstruction_decoder_on_image_observations(image):
    """With a reconstruction coefficient, image models decode the observation at its own size
    (Memory Gym's 84x84, MiniGrid's 36x36 view at 12 pixels a tile, sizes the strides do not
    divide) and the loss includes the reconstruction error."""
    from buffer import Minibatch
    from environments import SpaceSpec
    cfg = dataclasses.replace(tiny_config(), reconstruction_loss_coefficient=0.5)
    spec = SpaceSpec(image, "uint8", (3,))
    torch.manual_seed(0)
    model = ActorCritic(cfg, spec)
    B, G, M = 2, 4, cfg.transformer.memory_length - 1
    N, D = cfg.transformer.num_blocks, cfg.transformer.embed_dim
    batch = Minibatch(obs=torch.randint(0, 256, (B, G, *image), dtype=torch.uint8),
                      actions=torch.zeros(B, G, 1, dtype=torch.long),
                      action_masks=torch.zeros(B, G, 0, dtype=torch.bool),
                      log_probs=torch.zeros(B, G), values=torch.zeros(B, G),
                      advantages=torch.randn(B, G), returns=torch.zeros(B, G),
                      memory=torch.zeros(B, M, N, D), key_episode=torch.zeros(B, M + G, dtype=torch.long),
                      query_step=torch.zeros(B, G, dtype=torch.long))
    out = model(batch.obs, batch.memory, batch.key_episode, batch.query_step)
    assert out.reconstruction.shape == (B, G, *image)
    terms = minibatch_loss(model, batch, cfg, Schedules.at(cfg, 0))
    assert terms.reconstruction.item() > 0
    terms.total.backward()
    assert model.decoder.deconv[0].weight.grad.abs().sum() > 0


def test_log_prob_and_entropy_of_multi_discrete_actions_match_torch_distributions():
    """The joint log-probability and entropy of independent action dimensions are the sums
    of each dimension's Categorical ones; log_prob (the sampler's) equals the loss's."""
    from action_heads import ActionDistribution
    generator = torch.Generator().manual_seed(0)
    logits = [torch.randn(4, 6, 3, generator=generator), torch.randn(4, 6, 5, generator=generator)]
    actions = torch.stack([torch.randint(3, (4, 6), generator=generator),
                           torch.randint(5, (4, 6), generator=generator)], dim=-1)   # (4, 6, 2)
    dists = [torch.distributions.Categorical(logits=lg) for lg in logits]
    expected_log_prob = dists[0].log_prob(actions[..., 0]) + dists[1].log_prob(actions[..., 1])
    expected_entropy = dists[0].entropy() + dists[1].entropy()
    distribution = ActionDistribution(tuple(logits), None, None, None)
    joint, entropy = distribution.log_prob_entropy(actions)
    torch.testing.assert_close(joint, expected_log_prob)
    torch.testing.assert_close(entropy, expected_entropy)
    torch.testing.assert_close(distribution.log_prob(actions), joint, rtol=0, atol=0)
