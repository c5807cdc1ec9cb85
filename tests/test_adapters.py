"""Observation adapters, previous action/reward, and environments that set their own limits:
each adapter against hand-built spaces with known one-hot positions and order."""
import multiprocessing as mp
import os
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from config import EnvironmentConfig, config_from_dict  # noqa: E402
from environments import SpaceSpec, make_env, space_spec  # noqa: E402
from environments.adapters import (AdaptObservation, PreviousActionReward,  # noqa: E402
                                   observation_layout)
from gymnasium.spaces import (Box, Dict, Discrete, Graph, MultiBinary,  # noqa: E402
                               MultiDiscrete, Sequence, Text, Tuple)

CUE = "tests.spaces_env:CueDiscrete-v0"
TEXT = "tests.spaces_env:TextObs-v0"
IMAGE = Box(0, 255, (84, 84, 3), dtype=np.uint8)


def adapt(space, value):
    layout = observation_layout(space)
    out = layout.adapt(value)
    assert layout.space.contains(out) and out.shape == layout.space.shape
    return out


# ----- each leaf -----

def test_discrete_becomes_one_hot_of_value_minus_start():
    out = adapt(Discrete(5, start=2), 4)
    assert out.dtype == np.float32 and out.tolist() == [0, 0, 1, 0, 0]


def test_multi_discrete_becomes_one_one_hot_per_dimension():
    out = adapt(MultiDiscrete([3, 2, 4]), np.array([2, 0, 1]))
    assert out.tolist() == [0, 0, 1,  1, 0,  0, 1, 0, 0]


def test_multi_discrete_with_start():
    out = adapt(MultiDiscrete([2, 2], start=[1, -1]), np.array([2, -1]))
    assert out.tolist() == [0, 1,  1, 0]


def test_box_and_multi_binary_are_flattened_to_float32():
    assert adapt(Box(-1, 1, (2, 2)), np.array([[1, 2], [3, 4]])).tolist() == [1, 2, 3, 4]
    assert adapt(MultiBinary(3), np.array([1, 0, 1], np.int8)).tolist() == [1, 0, 1]


# ----- composites -----

def test_tuple_is_concatenated_in_index_order():
    space = Tuple((Discrete(2), Box(-5, 5, (2,)), MultiDiscrete([2, 3])))
    out = adapt(space, (1, np.array([3.5, -2.0], np.float32), np.array([0, 2])))
    assert out.tolist() == [0, 1,  3.5, -2.0,  1, 0,  0, 0, 1]


def test_nested_dict_and_tuple_follow_the_space_order():
    space = Dict({"b": Discrete(3), "a": Tuple((Discrete(2), Discrete(2)))})
    order = list(space.spaces)                              # gymnasium's key order
    parts = {"b": [0, 0, 1], "a": [1, 0, 0, 1]}
    out = adapt(space, {"a": (0, 1), "b": 2})
    assert out.tolist() == [v for key in order for v in parts[key]]


def test_dict_of_one_image_and_vectors_is_packed_and_unpacked_by_the_mixed_encoder():
    from model import MixedEncoder
    space = Dict({"image": IMAGE, "cue": Discrete(3), "pos": Box(-1, 1, (2,))})
    layout = observation_layout(space)
    assert layout.image_shape == (84, 84, 3) and layout.vector_size == 5
    image = np.random.default_rng(0).integers(0, 256, (84, 84, 3), dtype=np.uint8)
    out = layout.adapt({"image": image, "cue": 1, "pos": np.array([0.25, -0.5], np.float32)})
    assert out.dtype == np.uint8 and out.shape == (84 * 84 * 3 + 4 * 5,)
    encoder = MixedEncoder(layout.image_shape, layout.vector_size, embed_dim=8)
    seen = {}

    def keep(name):
        def hook(module, args, output) -> None:      # None: the output stays as it is
            seen[name] = args[0]
        return hook
    encoder.image.register_forward_hook(keep("image"))
    encoder.project.register_forward_hook(keep("joint"))
    obs = torch.as_tensor(np.stack([out, out]))[None]                   # (1, 2, bytes)
    assert encoder(obs).shape == (1, 2, 8)
    assert torch.equal(seen["image"][0, 0], torch.as_tensor(image))
    vector = seen["joint"][0, 0, -5:]
    expected = [v for key in space.spaces for v in
                {"image": [], "cue": [0, 1, 0], "pos": [0.25, -0.5]}[key]]
    assert vector.tolist() == expected


def test_a_lone_image_and_a_float32_vector_need_no_adapter():
    from environments.adapters import needs_adapting
    assert not needs_adapting(IMAGE) and not needs_adapting(Box(0, 1, (3,)))
    assert needs_adapting(Box(0, 1, (3,), dtype=np.float64)) and needs_adapting(Discrete(2))


@pytest.mark.parametrize("space, name", [
    (Text(5), "Text"),
    (Graph(node_space=Discrete(2), edge_space=None), "Graph"),
    (Sequence(Discrete(2)), "Sequence"),
    (Tuple((Discrete(2), Text(5))), "Text"),
], ids=["text", "graph", "sequence", "text-in-tuple"])
def test_unsupported_spaces_are_refused_naming_the_space_and_what_is_supported(space, name):
    with pytest.raises(ValueError, match=f"{name}.*supported are Box"):
        observation_layout(space)


def test_two_images_are_refused():
    with pytest.raises(ValueError, match="at most one image"):
        observation_layout(Tuple((IMAGE, IMAGE)))


# ----- SpaceSpec of a packed observation -----

def test_packed_spec_round_trips_and_old_dicts_still_load():
    spec = SpaceSpec((84 * 84 * 3 + 8,), "uint8", (3,), image_shape=(84, 84, 3))
    assert spec.vector_size == 2 and not spec.is_image
    assert SpaceSpec.from_dict(spec.to_dict()) == spec
    old = {"obs_shape": [4], "obs_dtype": "float32", "action_nvec": [2]}
    assert SpaceSpec.from_dict(old).to_dict() == old        # model files written before it
    with pytest.raises(ValueError, match="packed"):
        SpaceSpec((84 * 84 * 3 + 3,), "uint8", (3,), image_shape=(84, 84, 3))
    with pytest.raises(ValueError, match="action_nvec"):
        SpaceSpec((84 * 84 * 3 + 8,), "uint8", (), image_shape=(84, 84, 3))


# ----- previous action and reward -----

class Scripted(gym.Env):
    observation_space = Box(0, 1, (1,))
    action_space = MultiDiscrete([3, 2])

    def reset(self, *, seed=None, options=None):
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.ones(1, np.float32), 0.5, False, False, {}


def test_previous_action_and_reward_are_one_hots_and_a_scalar_zero_at_episode_start():
    env = AdaptObservation(PreviousActionReward(Scripted(), action=True, reward=True))
    first, _ = env.reset()
    assert first.tolist() == [0,  0, 0, 0, 0, 0,  0]      # observation, action, reward
    second, *_ = env.step(np.array([2, 1]))
    assert second.tolist() == [1,  0, 0, 1, 0, 1,  0.5]
    again, _ = env.reset()
    assert again.tolist() == first.tolist()


def test_previous_action_and_reward_from_the_config_on_an_image_env_feed_both_encoders():
    config = EnvironmentConfig(type="minigrid", name="MiniGrid-MemoryS9-v0",
                               previous_action=True, previous_reward=True)
    env = make_env(config)
    try:
        assert space_spec(env) == SpaceSpec((84 * 84 * 3 + 4 * 4,), "uint8", (3,),
                                            image_shape=(84, 84, 3))
        env.reset(seed=0)
        obs, *_ = env.step(2)
        assert obs[-16:].view(np.float32).tolist() == [0, 0, 1, 0]
    finally:
        env.close()


# ----- environments that set their own limits; refusal before workers start -----

def tiny_config(**environment):
    return config_from_dict({
        "environment": environment, "n_workers": 2, "worker_steps": 8, "segment_length": 4,
        "n_mini_batch": 2, "updates": 2, "epochs": 1, "env_processes": 1,
        "hidden_layer_size": 16, "transformer": {"num_blocks": 1, "embed_dim": 16,
                                                  "num_heads": 2, "memory_length": 4}})


def test_discrete_observations_without_a_time_limit_train_two_updates(tmp_path):
    from trainer import Trainer
    config = tiny_config(type="gymnasium", name=CUE, previous_action=True)
    import tests.spaces_env  # noqa: F401  (registers the id, as gym.make will in the workers)
    assert gym.spec(CUE.split(":")[1]).max_episode_steps is None
    trainer = Trainer(config, "cue", str(tmp_path / "m"), str(tmp_path / "s"))
    try:
        assert trainer.spec == SpaceSpec((4 + 3,), "float32", (3,))
        trainer.run()
    finally:
        trainer.close()
    assert trainer.update == 2 and trainer.steps == 2 * 2 * 8


def test_unsupported_space_is_refused_in_the_parent_before_any_worker_starts(tmp_path):
    from trainer import Trainer
    config = tiny_config(type="gymnasium", name=TEXT)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="Text.*supported are"):
        Trainer(config, "text", str(tmp_path / "m"), str(tmp_path / "s"))
    assert time.perf_counter() - start < 2.0
    assert mp.active_children() == []


def test_integer_box_actions_are_refused_naming_what_is_supported():
    with pytest.raises(ValueError, match="action space Box.*int64.*supported are Discrete"):
        make_env(EnvironmentConfig(type="gymnasium", name="tests.spaces_env:IntegerActions-v0"))


def test_render_mode_is_passed_only_to_constructors_that_take_it():
    from environments.gym_env import accepts_render_mode
    assert not accepts_render_mode(CUE) and accepts_render_mode("CartPole-v1")
    env = make_env(EnvironmentConfig(type="gymnasium", name=CUE), render=True)  # no TypeError
    env.close()
