"""The popgym family: skipped cleanly when the optional popgym package is not installed."""
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import pytest  # noqa: E402

pytest.importorskip("popgym")

import glob  # noqa: E402

import numpy as np  # noqa: E402

from config import EnvironmentConfig, load_config  # noqa: E402
from environments import SpaceSpec, make_env, space_spec  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (observation size after the adapters, action nvec); POPGym's own spaces in comments
TASKS = {
    "RepeatPreviousEasy": (4, (4,)),            # Discrete(4)
    "RepeatFirstEasy": (4, (4,)),               # Discrete(4)
    "CountRecallEasy": (4, (27,)),              # MultiDiscrete([2, 2])
    "AutoencodeEasy": (6, (4,)),                # Tuple(Discrete(2), Discrete(4))
    "PositionOnlyCartPoleEasy": (2, (2,)),      # Box(2,)
    "MineSweeperEasy": (3, (4, 4)),             # Discrete(3), MultiDiscrete actions
}


def popgym(name: str, **fields) -> EnvironmentConfig:
    return EnvironmentConfig(type="popgym", name=name, **fields)


@pytest.mark.parametrize("name", TASKS)
def test_popgym_tasks_build_by_short_name_and_play_to_their_own_end(name):
    size, nvec = TASKS[name]
    env = make_env(popgym(name))
    try:
        assert space_spec(env) == SpaceSpec((size,), "float32", nvec)
        assert env.spec.max_episode_steps is None           # they end their episodes themselves
        obs, _ = env.reset(seed=0)
        for _ in range(1000):
            assert obs.shape == (size,) and obs.dtype == np.float32
            obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                break
        assert terminated or truncated
    finally:
        env.close()


def test_registered_id_works_too_and_unknown_names_get_suggestions():
    make_env(popgym("popgym-RepeatFirstEasy-v0")).close()
    with pytest.raises(ValueError, match="RepeatPreviousEasy"):
        make_env(popgym("RepeatPrevousEasy"))


def test_pendulum_variants_act_in_a_box():
    env = make_env(popgym("PositionOnlyPendulumEasy"))
    try:
        spec = space_spec(env)
        assert spec.action_continuous == 1 and not spec.action_nvec
    finally:
        env.close()


def test_render_mode_is_not_passed_and_enjoy_sees_no_frames():
    from env_backends import player_backend
    # No TypeError about a render_mode; enjoy.py's backend has no frame to show.
    with player_backend(popgym("RepeatPreviousEasy"), render=True) as envs:
        envs.reset([0])
        assert envs.render() is None


def test_previous_action_and_reward_on_a_popgym_task():
    env = make_env(popgym("RepeatPreviousEasy", previous_action=True, previous_reward=True))
    try:
        first, _ = env.reset(seed=0)
        assert first.shape == (4 + 4 + 1,) and first[4:].tolist() == [0] * 5
        second, reward, *_ = env.step(3)
        assert second[4:8].tolist() == [0, 0, 0, 1] and second[8] == np.float32(reward)
    finally:
        env.close()


def test_every_shipped_popgym_config_loads_and_builds():
    paths = sorted(glob.glob(os.path.join(REPO_ROOT, "configs", "popgym", "*.yaml")))
    assert len(paths) == 20                             # 5 tasks x TrXL, GTrXL, GRU, none
    for path in paths:
        config = load_config(path)
        make_env(config.environment).close()


def test_every_registered_popgym_env_builds_and_steps():
    """The 36 with Discrete or MultiDiscrete actions and the 6 Pendulum variants (Box), each
    stepped with an action made from a flat vector, as the workers make them."""
    import gymnasium as gym

    from environments import ActionLayout
    ids = [i for i in gym.registry if i.startswith("popgym-")]
    pendulums = 0
    for env_id in ids:
        env = make_env(popgym(env_id))
        spec = space_spec(env)
        pendulums += spec.action_continuous == 1
        env.reset(seed=0)
        env.step(ActionLayout(env.action_space).to_env(np.zeros(spec.action_width)))
        env.close()
    assert pendulums == 6 and len(ids) >= 42
