"""The JAX backend beyond the shared contract (tests/test_env_backends.py): a batch steps like
its environments alone, episode keys come from the episode seeds, the env-state pytree goes
through a weights_only checkpoint and back exactly, seeded and resumed runs are bit-identical,
the JAX families refuse other backends, and nothing else imports jax."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("jax", reason="the JAX backend needs requirements-jax.txt")

import jax  # noqa: E402

from config import ConfigError, EnvironmentConfig, config_from_dict, load_config  # noqa: E402
from env_backends.jax_backend import JaxBackend  # noqa: E402
from environments.episodes import HELD_OUT_SEED_START, episode_seed  # noqa: E402
from runs.checkpoint import load_model_file  # noqa: E402
from sampler import to_arrays, to_tensors  # noqa: E402
from tests.test_env_backends import assert_same_weights, train  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Episodes of 4 steps: the cue at the first, the question after 3.
CHAIN = EnvironmentConfig(type="gymnax", name="MemoryChain-bsuite",
                          reset_params={"memory_length": 3})
SEEDS = [10, 11, 12]


def actions(steps: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, (steps, n, 1))


def observations(envs, chosen: np.ndarray) -> np.ndarray:
    return np.array([np.asarray(envs.step(a).obs) for a in chosen])


def key(seed: int) -> np.ndarray:
    return np.asarray(jax.random.PRNGKey(seed))


def test_a_batch_steps_like_each_environment_alone():
    chosen = actions(20, len(SEEDS))
    together = observations(JaxBackend(CHAIN, SEEDS), chosen)
    for i, seed in enumerate(SEEDS):
        alone = observations(JaxBackend(CHAIN, [seed]), chosen[:, i:i + 1])
        np.testing.assert_array_equal(together[:, i], alone[:, 0])


def test_episode_keys_come_from_the_episode_seeds():
    envs = JaxBackend(CHAIN, SEEDS)
    np.testing.assert_array_equal(envs._keys, [key(episode_seed(s, 0)) for s in SEEDS])
    for a in actions(4, 3):
        result = envs.step(a)
    assert result.terminated.all() and not result.truncated.any()
    np.testing.assert_array_equal(envs._keys, [key(episode_seed(s, 1)) for s in SEEDS])
    held_out = [HELD_OUT_SEED_START + i for i in range(3)]
    envs.reset(held_out)
    np.testing.assert_array_equal(envs._keys, [key(s) for s in held_out])


def test_episodes_end_with_their_final_observation_and_statistics():
    envs = JaxBackend(CHAIN, SEEDS)
    for a in actions(4, 3):
        result = envs.step(a)
    assert [(e.worker, e.length) for e in result.episodes] == [(0, 4), (1, 4), (2, 4)]
    assert all(e.reward in (-1.0, 1.0) for e in result.episodes)
    np.testing.assert_array_equal(np.asarray(result.obs)[:, 0], [1.0] * 3)   # time left: all
    assert np.asarray(result.final_obs)[:, 0].max() < 1.0


def test_the_env_state_goes_through_a_weights_only_checkpoint_exactly(tmp_path):
    chosen = actions(30, 3)
    envs = JaxBackend(CHAIN, SEEDS)
    observations(envs, chosen[:7])
    torch.save(to_tensors(envs.state()), tmp_path / "state.pt")
    before, after = np.asarray(envs.obs), observations(envs, chosen[7:])
    saved = to_arrays(torch.load(tmp_path / "state.pt", weights_only=True))
    again = JaxBackend(CHAIN, SEEDS)
    np.testing.assert_array_equal(np.asarray(again.restore(saved)), before)
    np.testing.assert_array_equal(observations(again, chosen[7:]), after)


def tiny(**overrides):
    return load_config(os.path.join(ROOT, "configs", "gymnax", "memory_chain.yaml"),
                       {"n_workers": 4, "worker_steps": 16, "segment_length": 8,
                        "n_mini_batch": 2, **overrides})


def test_seeded_and_resumed_runs_are_bit_identical(tmp_path):
    config = tiny()
    whole, again = train(config, "whole", tmp_path, 3), train(config, "again", tmp_path, 3)
    train(config, "part", tmp_path, 1).save()
    payload, _ = load_model_file(str(tmp_path / "m" / "part.nn"))
    resumed = train(config, "part", tmp_path, 3, payload)
    for other in (again, resumed):
        assert other.last_stats.losses == whole.last_stats.losses
        assert_same_weights(whole, other)


def test_jax_families_run_only_on_the_jax_backend():
    assert config_from_dict({"environment": {"type": "gymnax", "name": "MemoryChain-bsuite"}}
                            ).environment.backend == "auto"
    with pytest.raises(ConfigError, match=r"environment.backend = 'vector': the gymnax family "
                                          r"runs on jax\. Fix"):
        config_from_dict({"environment": {"type": "gymnax", "name": "MemoryChain-bsuite",
                                          "backend": "vector"}})
    with pytest.raises(ConfigError, match=r"env_processes = 2: only the processes backend"):
        config_from_dict({"environment": {"type": "craftax",
                                          "name": "Craftax-Classic-Symbolic-v1"},
                          "env_processes": 2})
    with pytest.raises(ConfigError, match="Craftax-Classic-Symbolic-v1, Craftax-Symbolic-v1"):
        config_from_dict({"environment": {"type": "craftax", "name": "Craftax-v1"}})


def test_popgym_arcade_observes_images_and_enjoy_shows_them():
    from env_backends import player_backend
    envs = player_backend(EnvironmentConfig(type="popgym_arcade", name="CountRecallEasy"),
                          render=True)
    assert envs.spec.obs_shape == (128, 128, 3) and envs.spec.obs_dtype == "uint8"
    obs = envs.reset([HELD_OUT_SEED_START])
    np.testing.assert_array_equal(envs.render(), np.asarray(obs)[0])


def test_nothing_outside_the_jax_backend_and_families_imports_jax():
    """Training, playing and evaluating a non-JAX family, with every family registered, loads
    no jax."""
    script = (
        "import sys; sys.path.insert(0, '.')\n"
        "import train, enjoy, evaluate, trainer, sampler, agent, worker_pool, config\n"
        "from environments import families; families()\n"
        "from env_backends import player_backend\n"
        "from config import EnvironmentConfig\n"
        "player_backend(EnvironmentConfig()).close()\n"
        "assert 'jax' not in sys.modules, sorted(m for m in sys.modules if 'jax' in m)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
