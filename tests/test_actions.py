"""Every action space: the flat layout and its way back to the env, the distributions against
torch.distributions, training's recomputation with every memory, and whole runs."""
import dataclasses
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from gymnasium.spaces import Box, Dict, Discrete, MultiBinary, MultiDiscrete, Text, Tuple  # noqa: E402

from action_heads import ActionDistribution, ActionHead  # noqa: E402
from config import config_from_dict  # noqa: E402
from environments import SpaceSpec, make_env, space_spec  # noqa: E402
from environments.actions import ActionLayout  # noqa: E402
from tests.fakes import assert_training_recomputes_rollout, tiny_config  # noqa: E402

MIXED = "tests.spaces_env:MixedActions-v0"
MEMORIES = ["trxl", "gru", "lstm", "agalite", "ffm", "none"]


# ----- the flat layout -----

def test_discrete_and_multi_discrete_keep_their_starts_and_shapes():
    layout = ActionLayout(Discrete(4, start=2))
    assert layout.nvec == (4,) and layout.to_env(np.array([1])) == 3
    space = MultiDiscrete([[2, 3], [4, 5]], start=[[1, 0], [0, -2]])
    layout = ActionLayout(space)
    assert layout.nvec == (2, 3, 4, 5) and (layout.continuous, layout.binary) == (0, 0)
    action = layout.to_env(np.array([1, 2, 3, 4]))
    assert action.tolist() == [[2, 2], [3, 2]] and space.contains(action)


def test_box_is_clipped_to_its_bounds_and_reshaped():
    space = Box(np.array([[-1, 0, 0]], np.float32), np.array([[1, 2, 0.5]], np.float32))
    layout = ActionLayout(space)
    assert layout.continuous == 3 and layout.nvec == ()
    action = layout.to_env(np.array([-3.0, 1.5, 9.0], np.float32))
    assert action.shape == (1, 3) and action.tolist() == [[-1.0, 1.5, 0.5]]
    assert space.contains(action)


def test_composite_actions_are_grouped_and_rebuilt_in_order():
    """Categorical, then continuous, then binary entries; Tuple in index order, Dict in its
    (sorted) key order."""
    space = Tuple((Discrete(3), Box(-1, 1, (2,)), Dict(b=MultiBinary(2), a=Discrete(2, start=5))))
    layout = ActionLayout(space)
    assert (layout.nvec, layout.continuous, layout.binary, layout.width) == ((3, 2), 2, 2, 6)
    first, box, rest = layout.to_env(np.array([2, 1, 0.25, -7.0, 1, 0], np.float32))
    assert first == 2 and box.tolist() == [0.25, -1.0]
    assert rest["a"] == 6 and rest["b"].tolist() == [1, 0] and rest["b"].dtype == np.int8
    assert space.contains((first, box, rest))


@pytest.mark.parametrize("space,name", [(Box(0, 5, (2,), dtype=np.int64), "Box"),
                                        (Text(4), "Text"), (Tuple(()), "Tuple")])
def test_unsupported_action_spaces_are_refused_with_what_is_supported(space, name):
    with pytest.raises(ValueError, match=f"{name}.*supported are Discrete"):
        ActionLayout(space)


def test_spec_of_continuous_and_binary_actions_round_trips_and_old_files_match():
    spec = SpaceSpec((3,), "float32", (), action_continuous=2, action_binary=1)
    assert (spec.action_width, spec.action_dtype) == (3, "float32")
    assert SpaceSpec.from_dict(spec.to_dict()) == spec
    assert SpaceSpec((3,), "float32", (2,)).to_dict() == \
        {"obs_shape": [3], "obs_dtype": "float32", "action_nvec": [2]}
    with pytest.raises(ValueError, match="at least one action"):
        SpaceSpec((3,), "float32", ())


# ----- the distributions -----

def distribution(seed: int = 0, n=(3, 4), continuous: int = 2, binary: int = 3, batch=(5, 6)):
    g = torch.Generator().manual_seed(seed)
    logits = tuple(torch.randn(*batch, k, generator=g) for k in n)
    mean = torch.randn(*batch, continuous, generator=g) if continuous else None
    log_std = 0.3 * torch.randn(*batch, continuous, generator=g) if continuous else None
    bits = torch.randn(*batch, binary, generator=g) if binary else None
    return ActionDistribution(logits, mean, log_std, bits)


def test_log_prob_and_entropy_are_the_sums_of_torch_distributions():
    d = distribution()
    torch.manual_seed(0)
    actions = d.sample()
    assert actions.dtype == torch.float32 and actions.shape == (5, 6, 2 + 2 + 3)
    parts = [torch.distributions.Categorical(logits=lg) for lg in d.logits]
    normal = torch.distributions.Normal(d.mean, d.log_std.exp())
    bernoulli = torch.distributions.Bernoulli(logits=d.binary_logits)
    expected = parts[0].log_prob(actions[..., 0].long()) + parts[1].log_prob(actions[..., 1].long()) \
        + normal.log_prob(actions[..., 2:4]).sum(-1) + bernoulli.log_prob(actions[..., 4:]).sum(-1)
    entropy = parts[0].entropy() + parts[1].entropy() + normal.entropy().sum(-1) \
        + bernoulli.entropy().sum(-1)
    log_prob, found_entropy = d.log_prob_entropy(actions)
    torch.testing.assert_close(log_prob, expected)
    torch.testing.assert_close(found_entropy, entropy)
    torch.testing.assert_close(d.log_prob(actions), log_prob, rtol=0, atol=0)


def test_deterministic_actions_are_modes_and_the_mean():
    d = distribution()
    actions = d.sample(deterministic=True)
    assert torch.equal(actions[..., 0], d.logits[0].argmax(-1).float())
    assert torch.equal(actions[..., 2:4], d.mean)
    assert torch.equal(actions[..., 4:], (d.binary_logits > 0).float())


def test_gaussian_samples_follow_mean_and_std():
    d = distribution(n=(), continuous=1, binary=0, batch=(200_000,))
    d = d._replace(mean=torch.full_like(d.mean, 0.5), log_std=torch.full_like(d.log_std, -1.0))
    torch.manual_seed(0)
    x = d.sample()
    assert abs(float(x.mean()) - 0.5) < 0.01 and abs(float(x.std()) - np.exp(-1.0)) < 0.01


def test_discrete_only_actions_stay_long():
    actions = distribution(continuous=0, binary=2).sample()
    assert actions.dtype == torch.long and actions.shape == (5, 6, 4)


def test_state_independent_log_std_is_a_parameter_and_state_dependent_a_clamped_head():
    spec = SpaceSpec((3,), "float32", (), action_continuous=2)
    head = ActionHead(spec, 8, dataclasses.replace(tiny_config(), initial_log_std=-0.5))
    assert torch.equal(head.log_std.data, torch.full((2,), -0.5))
    assert torch.equal(head(torch.randn(4, 8), nn.Identity()).log_std, torch.full((4, 2), -0.5))
    config = dataclasses.replace(tiny_config(), log_std="state_dependent")
    head = ActionHead(spec, 8, config)
    assert head.log_std is None and head.log_std_head is not None
    with torch.no_grad():
        head.log_std_head.weight.fill_(100.0)
        log_std = head(torch.ones(4, 8), nn.Identity()).log_std
    assert float(log_std.max()) == 2.0 and log_std.shape == (4, 2)


def test_discrete_heads_keep_the_names_of_model_files_written_before():
    head = ActionHead(SpaceSpec((3,), "float32", (3, 2)), 8, tiny_config())
    assert sorted(head.state_dict()) == ["0.bias", "0.weight", "1.bias", "1.weight"]


# ----- training recomputes the rollout, with every memory -----

@pytest.mark.parametrize("memory", MEMORIES)
def test_training_recomputes_box_and_binary_actions_with_every_memory(memory):
    assert_training_recomputes_rollout(tiny_config(memory), action_nvec=(3,),
                                       action_continuous=2, action_binary=2)


def test_training_recomputes_box_actions_with_a_state_dependent_std():
    config = dataclasses.replace(tiny_config(), log_std="state_dependent")
    assert_training_recomputes_rollout(config, action_nvec=(), action_continuous=3)


# ----- whole runs -----

def tiny(**overrides) -> dict:
    return {"n_workers": 2, "worker_steps": 16, "segment_length": 8, "n_mini_batch": 2,
            "updates": 2, "epochs": 1, "env_processes": 1, "hidden_layer_size": 16,
            "transformer": {"num_blocks": 1, "embed_dim": 16, "num_heads": 2,
                            "memory_length": 4},
            "recurrent": {"hidden_size": 16}, **overrides}


def test_mixed_actions_reach_the_env_inside_their_space(tmp_path):
    """MixedActions raises on any action outside its Dict space, its Box of [-1, 1]
    included: two updates and a played episode go through the worker processes and the
    agent without one, while the buffer holds the Gaussian's unclipped samples (about a
    third beyond the bounds, at standard deviation 1)."""
    import tests.spaces_env  # noqa: F401  (registers the id, as gym.make will in the workers)
    from agent import MemoryAgent, play_episode
    from trainer import Trainer
    config = config_from_dict(tiny(environment={"type": "gymnasium", "name": MIXED}))
    trainer = Trainer(config, "mixed", str(tmp_path / "m"), str(tmp_path / "s"))
    try:
        assert trainer.spec == SpaceSpec((2,), "float32", (3,), action_continuous=2,
                                         action_binary=2)
        trainer.run()
        actions = trainer.buffer.actions
        assert actions.dtype == torch.float32 and float(actions[..., 1:3].abs().max()) > 1.0
        env = make_env(config.environment)
        episode = play_episode(MemoryAgent(trainer.model, 1, trainer.device), env, 0, False)
        assert episode.length == 10
        env.close()
    finally:
        trainer.close()


def test_previous_box_action_is_what_the_env_received():
    import tests.spaces_env  # noqa: F401
    env = make_env(config_from_dict({"environment": {"type": "gymnasium", "name": MIXED,
                                                     "previous_action": True}}).environment)
    try:
        assert space_spec(env).obs_shape == (2 + 2 + 2 + 3,)
        first, _ = env.reset(seed=0)
        assert first[2:].tolist() == [0.0] * 7
        action = ActionLayout(env.action_space).to_env(np.array([1, 5.0, -0.5, 1, 0], np.float32))
        second, *_ = env.step(action)
        # flags (bits), move (clipped), pick (one-hot of 2 - start 1), in the Dict's key order
        assert second[2:].tolist() == [1, 0, 1.0, -0.5, 0, 1, 0]
    finally:
        env.close()


def test_pendulum_trains_with_every_memory_from_a_five_line_yaml(tmp_path):
    """A Box-action task needs nothing beyond naming it and the memory."""
    from config import load_config
    from trainer import Trainer
    for memory in MEMORIES:
        path = tmp_path / f"{memory}.yaml"
        path.write_text(f"environment:\n  type: gymnasium\n  name: Pendulum-v1\n"
                        f"memory: {memory}\nupdates: 1\n", encoding="utf-8")
        config = load_config(str(path), {"n_workers": 2, "worker_steps": 16,
                                         "n_mini_batch": 1, "env_processes": 1})
        trainer = Trainer(config, memory, str(tmp_path / "m"), str(tmp_path / "s"))
        try:
            trainer.run()
        finally:
            trainer.close()
        assert trainer.spec.action_continuous == 1 and trainer.update == 1
        assert np.isfinite(trainer.last_stats.losses["total"])


def test_pool_refuses_actions_outside_the_groups():
    import tests.spaces_env  # noqa: F401
    from worker_pool import WorkerPool
    with WorkerPool(config_from_dict(tiny(environment={"type": "gymnasium", "name": MIXED}))
                    .environment, 2, 1, [3, 4]) as pool:
        pool.reset()
        good = np.array([[2, 0.5, 9.0, 1, 0], [0, -3.0, 0.0, 0, 1]], np.float32)
        assert pool.step(good).rewards.shape == (2,)
        # a fractional choice, a choice beyond Discrete(3), a NaN movement, a bit of 2
        for column, value in ((0, 1.5), (0, 3), (1, np.nan), (4, 2)):
            actions = good.copy()
            actions[1, column] = value
            with pytest.raises(ValueError, match=r"actions\[1\] = .* is outside the action"):
                pool.step(actions)
