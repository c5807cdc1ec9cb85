"""Observation normalisation and reward scaling: the statistics against direct computations,
their round trip through the model file to evaluation, and a bit-identical resume."""
import os

import numpy as np
import pytest
import torch

from config import config_from_dict
from environments import SpaceSpec
from normalization import PRIOR_COUNT, ObservationNormalizer, RewardScaler, combine
from runs.checkpoint import load_model_file


def test_running_statistics_equal_those_of_all_the_data():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (n, 4)) for n in (1, 7, 16, 5)]
    mean, var, count = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64), \
        torch.tensor(PRIOR_COUNT, dtype=torch.float64)
    for batch in batches:
        mean, var, count = combine(mean, var, count, torch.from_numpy(batch))
    data = np.concatenate(batches)
    # The prior (mean 0, variance 1, weight 1e-4) shifts the result by about 1e-4 / 29.
    np.testing.assert_allclose(mean.numpy(), data.mean(0), rtol=1e-4)
    np.testing.assert_allclose(var.numpy(), data.var(0), rtol=1e-4)
    assert float(count) == pytest.approx(len(data) + PRIOR_COUNT)


def test_observations_are_normalised_and_clipped():
    normalizer = ObservationNormalizer((2,), clip=3.0)
    normalizer.update(torch.tensor([[0.0, 10.0], [2.0, 30.0]]))
    out = normalizer(torch.tensor([[1.0, 20.0], [1.0, 1000.0]]))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0], [0.0, 3.0]]), atol=1e-3, rtol=0)


def test_rewards_are_scaled_by_the_std_of_the_discounted_return():
    """Against the recursion written out: returns R <- gamma R + r, restarted after an
    episode's end; each reward divided by the std of every R so far, pooled with the prior
    (PRIOR_COUNT pseudo-samples of mean 0 and variance 1)."""
    rng = np.random.default_rng(1)
    rewards = rng.normal(1.0, 3.0, (30, 2)).astype(np.float32)
    ended = rng.random((30, 2)) < 0.2
    scaler = RewardScaler(2, gamma=0.9, clip=5.0, device=torch.device("cpu"))
    returns, history = np.zeros(2), []
    for r, e in zip(rewards, ended):
        returns = 0.9 * returns + r
        history.extend(returns)
        n, p = len(history), PRIOR_COUNT
        m2 = p + np.var(history) * n + np.mean(history) ** 2 * p * n / (n + p)
        expected = np.clip(r / np.sqrt(m2 / (n + p) + 1e-8), -5.0, 5.0)
        returns = np.where(e, 0.0, returns)
        got = scaler(torch.from_numpy(r), torch.from_numpy(e))
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_normalisation_of_image_observations_is_refused():
    from model import build_model
    config = config_from_dict({"normalize_observations": True})
    with pytest.raises(ValueError, match="normalize_observations = True.*uint8"):
        build_model(config, SpaceSpec((84, 84, 3), "uint8", (3,)), torch.device("cpu"))


# ----- whole runs -----

def pendulum(**overrides):
    return config_from_dict({
        "environment": {"type": "masked_control", "name": "Pendulum-P-v1"},
        "n_workers": 4, "worker_steps": 16, "segment_length": 8, "n_mini_batch": 2,
        "updates": 4, "epochs": 2, "env_processes": 2, "hidden_layer_size": 16,
        "normalize_observations": True, "scale_rewards": True, "gamma": 0.9,
        "transformer": {"num_blocks": 1, "embed_dim": 16, "num_heads": 2, "memory_length": 4},
        **overrides})


def run(trainer, updates):
    try:
        trainer.run(updates)
    finally:
        trainer.close()
    return trainer


@pytest.mark.parametrize("memory", ["trxl", "gru"])
def test_resumed_normalised_box_run_equals_uninterrupted_run(tmp_path, memory):
    """Bit-identical: the observation statistics come back with the weights, the reward
    scaler's returns and statistics with the sampler, the Gaussian's samples with the RNG,
    and the running episodes are replayed with their float actions."""
    from trainer import Trainer
    config = pendulum(memory=memory)
    m, s = str(tmp_path / "m"), str(tmp_path / "s")
    whole = run(Trainer(config, "whole", m, s), 4)
    first = run(Trainer(config, "part", m, s), 2)
    first.save()
    payload, loaded = load_model_file(os.path.join(m, "part.nn"))
    assert "obs_normalizer.mean" in payload["model"] and "reward_scaler" in payload["sampler"]
    second = run(Trainer(loaded, "part", m, s, payload), 4)
    assert second.last_stats.losses == whole.last_stats.losses
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[name]), name
    for key, value in whole.sampler.reward_scaler.state().items():
        assert torch.equal(value, second.sampler.reward_scaler.state()[key]), key
    assert torch.equal(whole.buffer.rewards, second.buffer.rewards)


def test_statistics_reach_evaluation_through_the_model_file(tmp_path):
    """The agent that evaluate.py and enjoy.py load normalises with the run's statistics:
    it plays exactly as the trained network does."""
    from agent import MemoryAgent, load_agent, play_episode
    from environments import make_env
    from trainer import Trainer
    trainer = run(Trainer(pendulum(updates=2), "norm", str(tmp_path / "m"),
                          str(tmp_path / "s")), 2)
    path = trainer.save()
    normalizer = trainer.model.obs_normalizer
    assert float(normalizer.count) > 100 and not torch.equal(normalizer.var,
                                                              torch.ones_like(normalizer.var))
    loaded, config, _ = load_agent(path, 1, torch.device("cpu"))
    for key in ("mean", "var", "count"):
        assert torch.equal(getattr(loaded.model.obs_normalizer, key), getattr(normalizer, key))
    env = make_env(config.environment)
    trained = MemoryAgent(trainer.model, 1, torch.device("cpu"))
    returns = [play_episode(agent, env, 7, deterministic=True).total_return
               for agent in (loaded, trained)]
    env.close()
    assert returns[0] == returns[1]
