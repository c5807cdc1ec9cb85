"""Action masks: never a masked action, in training, evaluation and replay; the mask stored
and applied in training, so log-probabilities and entropy are the masked distribution's."""
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import tests.spaces_env  # noqa: E402,F401  (registers the ids, as gym.make will in the workers)
from action_heads import ActionDistribution  # noqa: E402
from config import EnvironmentConfig, config_from_dict  # noqa: E402
from environments import SpaceSpec, make_env, space_spec  # noqa: E402
from tests.spaces_env import MaskedAction  # noqa: E402
from runs.checkpoint import load_model_file  # noqa: E402

CHOICE = "tests.spaces_env:MaskedChoice-v0"
DICT = "tests.spaces_env:MaskedDict-v0"


def env_config(name: str) -> EnvironmentConfig:
    return EnvironmentConfig(type="gymnasium", name=name)


def tiny(name: str, **overrides):
    return config_from_dict({
        "environment": {"type": "gymnasium", "name": name}, "n_workers": 3,
        "worker_steps": 16, "segment_length": 8, "n_mini_batch": 2, "updates": 3,
        "epochs": 2, "env_processes": 1, "hidden_layer_size": 16,
        "entropy_coefficient_schedule": {"initial": 0.0, "final": 0.0},
        "transformer": {"num_blocks": 1, "embed_dim": 16, "num_heads": 2, "memory_length": 4},
        **overrides})


# ----- the distribution -----

def test_masked_log_prob_and_entropy_are_those_of_the_allowed_choices():
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(50, 4, generator=g), torch.randn(50, 3, generator=g))
    mask = torch.rand(50, 7, generator=g) > 0.4
    mask[:, 0] = mask[:, 4] = True                          # one allowed choice per entry
    d = ActionDistribution(logits, None, None, None)
    torch.manual_seed(0)
    actions = d.sample(mask)
    expected_log_prob, expected_entropy = 0.0, 0.0
    for lg, allowed, a in zip(logits, mask.split([4, 3], -1), actions.unbind(-1)):
        # The distribution over the allowed choices alone, renormalised.
        probs = torch.softmax(lg, -1) * allowed
        c = torch.distributions.Categorical(probs=probs / probs.sum(-1, keepdim=True))
        assert allowed.gather(-1, a[:, None]).all()
        expected_log_prob = expected_log_prob + c.log_prob(a)
        expected_entropy = expected_entropy + c.entropy()
    log_prob, entropy = d.log_prob_entropy(actions, mask)
    torch.testing.assert_close(log_prob, expected_log_prob)
    torch.testing.assert_close(entropy, expected_entropy)
    assert torch.isfinite(entropy).all()
    # The most probable allowed choice, never a masked one.
    best = d.sample(mask, deterministic=True)
    assert torch.equal(best[:, 0], logits[0].masked_fill(~mask[:, :4], -1e9).argmax(-1))


def test_sampling_never_draws_a_masked_choice():
    logits = (torch.tensor([[10.0, 0.0, 0.0]]).expand(10_000, 3),)
    mask = torch.tensor([[False, True, True]]).expand(10_000, 3)
    torch.manual_seed(0)
    actions = ActionDistribution(logits, None, None, None).sample(mask)
    assert set(actions[:, 0].tolist()) == {1, 2}


# ----- the environments -----

def test_masks_come_from_the_info_or_the_observation_and_are_checked():
    env = make_env(env_config(CHOICE))
    assert space_spec(env) == SpaceSpec((5,), "float32", (5,), action_mask=True)
    _, info = env.reset(seed=0)
    assert info["action_mask"].dtype == bool and info["action_mask"].shape == (5,)
    env.close()
    env = make_env(env_config(DICT))
    assert space_spec(env) == SpaceSpec((3,), "float32", (2, 3), action_mask=True)
    obs, info = env.reset(seed=0)
    assert obs.shape == (3,) and info["action_mask"].shape == (5,)
    env.close()


def test_the_parent_finds_masks_in_the_info_and_tells_the_workers():
    """check_in_parent's throwaway env answers for the workers, whose envs are then built
    without a look-ahead reset (an env that keeps state across episodes would see it)."""
    from environments import check_in_parent
    assert check_in_parent(env_config(CHOICE))
    assert not check_in_parent(env_config(DICT))         # in the observation: no reset needed
    assert not check_in_parent(env_config("CartPole-v1"))
    env = make_env(env_config(CHOICE), info_masks=False)
    assert not space_spec(env).action_mask
    env.close()


def test_the_test_env_fails_on_a_masked_action():
    """Without masks a uniform policy soon takes a masked action, and the env raises: the
    runs below would fail if any masked action reached it."""
    env = make_env(env_config(CHOICE))
    env.reset(seed=0)
    with pytest.raises(MaskedAction):
        for _ in range(100):
            env.step(int(env.np_random.integers(5)))
            env.reset()
    env.close()


def test_a_mask_that_allows_nothing_is_refused():
    from environments.actions import ActionMasks
    env = ActionMasks(make_env(env_config("CartPole-v1")), (2,))
    with pytest.raises(ValueError, match="allows no choice of action entry 0"):
        env._checked(np.array([0, 0]))
    with pytest.raises(ValueError, match="not 2 values of 0 or 1"):
        env._checked(np.array([1, 0, 1]))
    env.close()


@pytest.mark.parametrize("name", [CHOICE, DICT])
def test_training_never_takes_a_masked_action_and_learns_with_the_mask(tmp_path, name):
    """Three updates of two epochs, through the worker processes: no masked action reaches
    the env; the buffer holds the masks; and the stored log-probabilities are the masked
    distribution's, which training recomputes."""
    from trainer import Trainer
    trainer = Trainer(tiny(name), "masked", str(tmp_path / "m"), str(tmp_path / "s"))
    try:
        assert trainer.spec.action_mask
        trainer.run(2)
        buffer = trainer.buffer
        masks, actions = buffer.action_masks, buffer.actions
        assert masks.shape[-1] == sum(trainer.spec.action_nvec) and not masks.all()
        offsets = np.concatenate([[0], np.cumsum(trainer.spec.action_nvec)[:-1]])
        taken = masks.gather(-1, actions + torch.as_tensor(offsets))
        assert taken.all()
        # Before the third update's optimisation, training sees the rollout's log-probs.
        trainer.model.eval()
        trainer.sampler.collect()
        batch = next(buffer.minibatches(1, torch.Generator().manual_seed(0)))
        with torch.no_grad():
            out = trainer.model(batch.obs, batch.memory, batch.key_episode, batch.query_step)
        masked = out.distribution.log_prob(batch.actions, batch.action_masks)
        torch.testing.assert_close(masked, batch.log_probs, atol=2e-5, rtol=1e-5)
        assert not torch.allclose(out.distribution.log_prob(batch.actions), batch.log_probs)
    finally:
        trainer.close()


def test_a_resumed_masked_run_replays_its_episodes_and_evaluation_obeys_the_mask(
        tmp_path, monkeypatch):
    from agent import load_agent, play_episode
    from runs import integrity
    from trainer import Trainer
    monkeypatch.setattr(integrity, "_allowed_env_ids", {CHOICE})   # as --allow-env-id would
    config = tiny(CHOICE, updates=2)
    first = Trainer(config, "masked", str(tmp_path / "m"), str(tmp_path / "s"))
    try:
        first.run()
    finally:
        first.close()
    path = first.save()
    payload, loaded = load_model_file(path)
    second = Trainer(loaded, "masked", str(tmp_path / "m"), str(tmp_path / "s"), payload)
    try:
        second.run(3)                         # the replayed episodes obey their masks too
    finally:
        second.close()
    agent, config, _ = load_agent(path, 1, torch.device("cpu"))
    env = make_env(config.environment)
    for seed in range(3):
        for deterministic in (False, True):
            assert play_episode(agent, env, seed, deterministic).length == 8
    env.close()
