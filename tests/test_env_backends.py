"""The env backends' shared contract, for every backend: seeded episodes (the same on every
backend), training seeds below the held-out ones, final observations and episode statistics,
exact restore (across backends too), truncation values that see their own episode's memory,
seeded and resumed runs bit-identical; and the config's choice of backend. The JAX backend
runs the contract on gymnax's MemoryChain (tests/test_jax_backend.py adds its own)."""
import importlib.util
import os

import numpy as np
import pytest
import torch

from agent import play_episode
from buffer import RolloutBuffer
from config import ConfigError, EnvironmentConfig, config_from_dict, load_config
from env_backends import player_backend, resolve_backend
from env_backends.vector import VectorBackend
from environments import make_env
from environments.episodes import HELD_OUT_SEED_START, episode_seed
from memories import memory_layout
from runs.checkpoint import load_model_file
from sampler import Sampler
from tests.fakes import randomised_model, tiny_config
from tests.seed_env import seed_of
from trainer import Trainer
from worker_pool import WorkerPool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ["processes", "vector"]
SEEDS = [10, 11, 12, 13]
POM = EnvironmentConfig(type="proof_of_memory")
# CartPole's pole cannot fall within 5 steps, MemoryChain's episode asks after 10: every
# episode is cut by the time limit.
TRUNCATING = {"vector": EnvironmentConfig(type="cartpole_masked", name="CartPole-v1",
                                          reset_params={"max_episode_steps": 5}),
              "jax": EnvironmentConfig(type="gymnax", name="MemoryChain-bsuite", reset_params={
                  "memory_length": 10, "max_steps_in_episode": 5})}
TRUNCATING["processes"] = TRUNCATING["vector"]
HAS_JAX = importlib.util.find_spec("jax") is not None
WITH_JAX = BACKENDS + [pytest.param("jax", marks=pytest.mark.skipif(
    not HAS_JAX, reason="needs requirements-jax.txt"))]


def seed_echo(**params) -> EnvironmentConfig:
    return EnvironmentConfig(type="gymnasium", name="tests.seed_env:SeedEcho-v0",
                             reset_params=params)


def build(backend: str, env_config, seeds):
    if backend == "processes":
        return WorkerPool(env_config, len(seeds), 2, seeds)
    if backend == "jax":
        from env_backends.jax_backend import JaxBackend
        return JaxBackend(env_config, seeds)
    return VectorBackend(env_config, seeds)


def random_actions(n_steps: int, n_envs: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, size=(n_steps, n_envs, 1))


def observations(envs, actions: np.ndarray) -> np.ndarray:
    return np.array([envs.step(a).obs.copy() for a in actions])


@pytest.mark.parametrize("backend", BACKENDS)
def test_episodes_are_the_seeded_single_env_episodes(backend):
    """Env i's k-th episode is seeded with episode_seed(seeds[i], k) on every backend: the
    same observations as one env stepped by hand."""
    actions = random_actions(40, len(SEEDS))
    with build(backend, POM, SEEDS) as envs:
        first = np.concatenate([envs.reset().copy()[None], observations(envs, actions)])
    for i, seed in enumerate(SEEDS):
        env, episode = make_env(POM), 0
        expected = [env.reset(seed=episode_seed(seed, 0))[0]]
        for action in actions[:, i]:
            observation, _, terminated, truncated, _ = env.step(int(action[0]))
            if terminated or truncated:
                episode += 1
                observation, _ = env.reset(seed=episode_seed(seed, episode))
            expected.append(observation)
        np.testing.assert_array_equal(first[:, i], expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_seeds_lie_below_the_held_out_seeds(backend):
    """Training episodes use episode_seed(seed, k) < HELD_OUT_SEED_START; reset(seeds) plays
    exactly the seeds it is given (evaluation's held-out ones)."""
    with build(backend, seed_echo(length=2), SEEDS) as envs:
        seen = [[seed_of(o) for o in envs.reset()]]
        for _ in range(6):
            result = envs.step(np.zeros((4, 1), np.int64))
            if result.terminated.any():
                seen.append([seed_of(o) for o in result.obs])
        assert seen == [[episode_seed(s, k) for s in SEEDS] for k in range(4)]
        assert max(map(max, seen)) < HELD_OUT_SEED_START
        held_out = [HELD_OUT_SEED_START + i for i in range(4)]
        assert [seed_of(o) for o in envs.reset(held_out)] == held_out


@pytest.mark.parametrize("backend", BACKENDS)
def test_final_observations_and_episode_statistics(backend):
    with build(backend, seed_echo(length=3, truncate=True), SEEDS[:2]) as envs:
        envs.reset()
        for _ in range(2):
            assert not envs.step(np.ones((2, 1), np.int64)).episodes
        result = envs.step(np.ones((2, 1), np.int64))
        assert result.truncated.all() and not result.terminated.any()
        np.testing.assert_array_equal(result.final_obs[:, 2], [3, 3])   # the cut-off step
        np.testing.assert_array_equal(result.obs[:, 2], [0, 0])         # the next episode
        assert [(e.worker, e.reward, e.length, e.success) for e in result.episodes] == \
            [(0, 3.0, 3, 1.0), (1, 3.0, 3, 1.0)]
        assert result.rewards.dtype == np.float32 and result.action_masks is None


@pytest.mark.parametrize("source, target", [("processes", "vector"), ("vector", "processes"),
                                            ("vector", "vector")])
def test_state_restores_the_running_episodes_on_any_backend(source, target):
    actions = random_actions(40, len(SEEDS))
    with build(source, POM, SEEDS) as envs:
        envs.reset()
        observations(envs, actions[:13])
        state, before = envs.state(), envs.obs.copy()
        after = observations(envs, actions[13:])
    with build(target, POM, SEEDS) as envs:
        envs.reset()
        np.testing.assert_array_equal(envs.restore(state), before)
        np.testing.assert_array_equal(observations(envs, actions[13:]), after)


def test_player_backend_keeps_the_final_observation_and_renders():
    """One env without autoreset: the episode's last observation (and frame) stay."""
    with player_backend(seed_echo(length=3)) as envs:
        assert seed_of(envs.reset([HELD_OUT_SEED_START])[0]) == HELD_OUT_SEED_START
        for _ in range(3):
            result = envs.step(np.zeros((1, 1), np.int64))
        assert result.terminated[0] and result.obs[0, 2] == 3 == result.final_obs[0, 2]
    with player_backend(POM, render=True) as envs:
        envs.reset([HELD_OUT_SEED_START])
        assert envs.render().ndim == 3


@pytest.mark.parametrize("backend", WITH_JAX)
@pytest.mark.parametrize("memory", ["gru", "trxl"])
def test_truncation_value_sees_the_final_observation_with_its_episodes_memory(backend, memory):
    """The value bootstrapped at a time limit is the network's value of the cut-off
    observation after the whole episode before it: recomputed here from the episode's
    stored observations."""
    cfg = tiny_config(memory)
    with build(backend, TRUNCATING[backend], [0, 1, 2]) as envs:
        model = randomised_model(cfg, envs.spec)
        buffer = RolloutBuffer(cfg, envs.spec, torch.device("cpu"))
        sampler = Sampler(envs, buffer, cfg, torch.device("cpu"), model)
        cut_off, step_wait, steps_done = [], envs.step_wait, [0]

        def spy():                                   # (rollout step, worker, final obs)
            result = step_wait()
            cut_off.extend((steps_done[0], w, np.array(result.final_obs[w]))
                           for w in np.flatnonzero(result.truncated))
            steps_done[0] += 1
            return result
        envs.step_wait = spy
        sampler.collect()
    assert len(cut_off) == 6                          # steps 4 and 9 of 3 workers
    for t, w, final_obs in cut_off:
        start = t - int(buffer.slot_step[w, buffer.memory_slots + t])
        obs = torch.cat([buffer.obs[w, start:t + 1],
                         torch.from_numpy(np.asarray(final_obs)).view(1, -1)])
        steps = torch.arange(len(obs)).view(1, -1)                          # (1, episode + 1)
        with torch.no_grad():
            if memory_layout(cfg).history == 0:
                state = torch.zeros(1, 1, *buffer.stored.shape[2:])
                value = model(obs.unsqueeze(0), state, steps, steps).value[0, -1]
            else:             # the whole episode as one segment with no memory before it
                value = _value_after(model, cfg, obs)
        torch.testing.assert_close(buffer.truncation_values[w, t], value, atol=1e-5, rtol=1e-5)


def _value_after(model, cfg, obs: torch.Tensor) -> torch.Tensor:
    """The value of obs[-1] after stepping the acting path through obs[:-1] from a fresh
    memory (one env)."""
    from agent import MemoryAgent
    agent = MemoryAgent(model, 1, torch.device("cpu"))
    for o in obs[:-1]:
        agent.step(o.view(1, -1))
    return agent.step(obs[-1].view(1, -1), advance=False).policy.value[0]


TINY = {"n_workers": 4, "worker_steps": 16, "segment_length": 8, "n_mini_batch": 2}


def tiny_run(backend: str, **overrides):
    return load_config(os.path.join(ROOT, "configs", "proof_of_memory.yaml"),
                       {**TINY, "environment.backend": backend, **overrides})


def train(config, run_id: str, folder, updates: int, resume=None) -> Trainer:
    trainer = Trainer(config, run_id, str(folder / "m"), str(folder / "s"), resume)
    try:
        trainer.run(updates)
    finally:
        trainer.close()
    return trainer


def assert_same_weights(a: Trainer, b: Trainer) -> None:
    for name, tensor in a.model.state_dict().items():
        assert torch.equal(tensor, b.model.state_dict()[name]), name


@pytest.mark.parametrize("source, target", [("vector", "vector"), ("processes", "vector"),
                                            ("vector", "processes")])
def test_seeded_and_resumed_runs_are_bit_identical_across_backends(tmp_path, source, target):
    """The backends play the same episodes, so a seeded run trains the same weights on
    either, and a checkpoint of one continues on the other exactly."""
    whole = train(tiny_run(target), "whole", tmp_path, 3)
    part = train(tiny_run(source), "part", tmp_path, 1)
    part.save()
    payload, _ = load_model_file(str(tmp_path / "m" / "part.nn"))
    resumed = train(tiny_run(target), "part", tmp_path, 3, payload)
    assert resumed.last_stats.losses == whole.last_stats.losses
    assert_same_weights(whole, resumed)
    if source == target:
        assert_same_weights(whole, train(tiny_run(target), "again", tmp_path, 3))


def test_config_chooses_and_checks_the_backend():
    def config(**data):
        return config_from_dict(data)
    assert resolve_backend(config()) == "vector"
    assert resolve_backend(config(env_processes=2)) == "processes"
    assert resolve_backend(config(max_worker_restarts=1)) == "processes"
    assert resolve_backend(config(environment={"type": "minigrid",
                                               "name": "MiniGrid-MemoryS9-v0"})) == "processes"
    with pytest.raises(ConfigError, match=r"environment.backend = 'jax': the proof_of_memory "
                                          r"family runs on vector, processes\. Fix: use"):
        config(environment={"backend": "jax"})
    with pytest.raises(ConfigError, match=r"env_processes = 2: only the processes backend.*"
                                          r"resolves to vector\. Fix"):
        config(environment={"backend": "vector"}, env_processes=2)
    with pytest.raises(ConfigError, match=r"environment.backend = 'gpu': not an allowed value"):
        config(environment={"backend": "gpu"})


def test_play_episode_takes_a_backend_or_a_gymnasium_env():
    from agent import MemoryAgent
    cfg = tiny_config("gru")
    env = make_env(seed_echo(length=4))
    model = randomised_model(cfg, VectorBackend.around([env]).spec)
    agent = MemoryAgent(model, 1, torch.device("cpu"))
    with player_backend(seed_echo(length=4)) as envs:
        for played in (play_episode(agent, envs, 5, True), play_episode(agent, env, 5, True)):
            assert (played.total_return, played.length, played.success) == (4.0, 4, 1.0)
    env.close()
