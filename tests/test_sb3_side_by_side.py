"""benchmarks/sb3_recurrent_ppo.py, the sb3-contrib side of docs/side-by-side-sb3.md: what it
takes from a config and writes must agree with the trainer and evaluate.py. sb3-contrib
itself lives in a separate environment; these checks need none of it."""
import importlib.util
import os

import numpy as np
import pytest

from config import EnvironmentConfig, ScheduleConfig, load_config
from environments import make_env
from evaluation.scores import EPISODE_COLUMNS, read_score_file
from utils import polynomial_decay

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location(
        "sb3_recurrent_ppo", os.path.join(ROOT, "benchmarks", "sb3_recurrent_ppo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_its_score_file_is_evaluate_pys(runner, tmp_path):
    assert runner.EPISODE_COLUMNS == EPISODE_COLUMNS
    path = str(tmp_path / "scores.csv")
    runner.write_scores(path, "sb3_pendulum_seed2", "Pendulum-P-v1", 2, 100, 204800,
                        [(2**30, -150.5, 200), (2**30 + 1, -99.0, 200)])
    frame = read_score_file(path)
    assert frame["run"].tolist() == ["sb3_pendulum_seed2"] * 2
    assert frame["env_seed"].tolist() == [2**30, 2**30 + 1]
    assert frame["return"].tolist() == [-150.5, -99.0]
    assert frame["deterministic"].all() and (frame["steps"] == 204800).all()


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_each_update_gets_the_trainers_learning_rate(runner, power):
    """sb3 asks for the rate of update k after its rollout (progress remaining 1 - k/U); the
    trainer takes polynomial_decay at k - 1."""
    schedule = dict(initial=1e-3, final=1e-4, power=power, max_decay_steps=60)
    updates = 100
    rate = runner.learning_rate(schedule, updates)
    for k in range(1, updates + 1):
        expected = polynomial_decay(ScheduleConfig(**schedule), k - 1)
        assert rate(1.0 - k / updates) == pytest.approx(expected, rel=1e-12)
    assert rate(1.0) == schedule["initial"]     # sb3's setup call, before any update


def test_it_observes_what_the_trainer_observes(runner):
    """The masked_control family imported, not copied: the same entries after the same seed."""
    config = load_config(os.path.join(ROOT, "configs", "pendulum_velocity_masked.yaml"))
    ours = make_env(EnvironmentConfig(type="masked_control", name=config.environment.name))
    theirs = runner.env_factory(config.environment.name)()
    try:
        for seed in (0, 7):
            obs_ours, _ = ours.reset(seed=seed)
            obs_theirs, _ = theirs.reset(seed=seed)
            assert obs_theirs.shape == (2,) and np.array_equal(obs_ours, obs_theirs)
            for _ in range(5):
                action = np.array([0.7], dtype=np.float32)
                assert np.array_equal(ours.step(action)[0], theirs.step(action)[0])
    finally:
        ours.close()
        theirs.close()
