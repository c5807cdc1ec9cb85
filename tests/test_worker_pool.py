"""WorkerPool: seeding, episode bookkeeping, shared observations, failures and shutdown."""
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pytest  # noqa: E402

from config import EnvironmentConfig  # noqa: E402
from environments import make_env  # noqa: E402
from environments.episodes import HELD_OUT_SEED_START, episode_seed  # noqa: E402
from worker_pool import WorkerPool  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = [10, 11, 12, 13]
POM = EnvironmentConfig(type="proof_of_memory")
FAULTY_ID = "tests.faulty_env:Faulty-v0"


def faulty(**reset_params) -> EnvironmentConfig:
    return EnvironmentConfig(type="gymnasium", name=FAULTY_ID, reset_params=reset_params)


def random_actions(n_steps: int, n_envs: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, size=(n_steps, n_envs, 1))


def record(pool: WorkerPool, actions: np.ndarray) -> np.ndarray:
    """Observations of every step (copies: the shared array is overwritten in place)."""
    return np.concatenate([pool.reset().copy()[None], record_steps(pool, actions)])


def record_steps(pool: WorkerPool, actions: np.ndarray) -> np.ndarray:
    return np.array([pool.step(step_actions).obs.copy() for step_actions in actions])


def record_single_env(config, seed: int, actions: np.ndarray) -> np.ndarray:
    """What the pool should produce for one env: episode k reset with episode_seed(seed, k)."""
    env = make_env(config)
    episode = 0
    observation, _ = env.reset(seed=episode_seed(seed, episode))
    observations = [observation]
    for action in actions:
        observation, _, terminated, truncated, _ = env.step(int(action[0]))
        if terminated or truncated:
            episode += 1
            observation, _ = env.reset(seed=episode_seed(seed, episode))
        observations.append(observation)
    return np.array(observations)


def assert_no_children_left(pool: WorkerPool) -> None:
    assert not any(process.is_alive() for process in pool._processes)
    assert mp.active_children() == []


def test_seeds_make_workers_differ_and_pools_reproducible():
    actions = random_actions(60, len(SEEDS))
    with WorkerPool(POM, len(SEEDS), 2, SEEDS) as pool:
        assert pool.n_processes == 2 and pool.obs.shape == (4, 3) and pool.obs.dtype == np.float32
        first = record(pool, actions)
    with WorkerPool(POM, len(SEEDS), 2, SEEDS) as pool:
        second = record(pool, actions)
    np.testing.assert_array_equal(first, second)
    cue_sequences = {tuple(first[:, i, 0]) for i in range(len(SEEDS))}
    assert len(cue_sequences) == len(SEEDS)
    for i, seed in enumerate(SEEDS):
        np.testing.assert_array_equal(first[:, i], record_single_env(POM, seed, actions[:, i]))


def test_episode_infos_final_obs_and_reset_obs():
    config = EnvironmentConfig(type="proof_of_memory",
                               reset_params={"corridor_length": 2, "freeze_steps": 2})
    with WorkerPool(config, 4, 2, SEEDS) as pool:
        cues = pool.reset()[:, 0].copy()
        right = np.ones((4, 1), dtype=np.int64)
        for _ in range(3):
            result = pool.step(right)
            assert result.episodes == [] and not result.terminated.any()
        result = pool.step(right)
        assert result.terminated.all() and not result.truncated.any()
        assert [e.worker for e in result.episodes] == [0, 1, 2, 3]
        for i, episode in enumerate(result.episodes):
            expected = 1.0 if cues[i] < 0 else -1.0  # right is good when the cue is -1
            assert episode.length == 4 and episode.reward == expected
            assert episode.success == (1.0 if expected > 0 else 0.0) and episode.metrics == {}
            assert result.rewards[i] == expected
        np.testing.assert_array_equal(pool.final_obs, [[0.0, 1.0, 0.0]] * 4)
        assert np.all(np.abs(pool.obs[:, 0]) == 1.0)  # the next episode's cue
        np.testing.assert_array_equal(pool.obs[:, 1:], [[0.0, 1.0]] * 4)
        assert result.rewards.dtype == np.float32 and result.terminated.dtype == bool


def test_truncated_episodes_are_reported():
    config = EnvironmentConfig(type="proof_of_memory", reset_params={
        "corridor_length": 2, "freeze_steps": 0, "max_episode_steps": 4})
    with WorkerPool(config, 2, 1, [0, 1]) as pool:
        pool.reset()
        for step in range(4):
            result = pool.step(np.full((2, 1), step % 2, dtype=np.int64))  # left, right, ...
        assert result.truncated.all() and not result.terminated.any()
        assert [(e.reward, e.length, e.success) for e in result.episodes] == [(0.0, 4, 0.0)] * 2


def test_actions_are_validated():
    with WorkerPool(POM, 2, 1, [0, 1]) as pool:
        pool.reset()
        with pytest.raises(ValueError, match=r"shape \(2,\).*\(2, 1\)"):
            pool.step(np.zeros(2, dtype=np.int64))
        with pytest.raises(ValueError, match=r"actions\[1\] = \[2\]"):
            pool.step(np.array([[0], [2]]))


def test_exception_in_worker_names_env_worker_seed_and_traceback():
    pool = WorkerPool(faulty(fail_at_step=3, fail_seed=episode_seed(13, 0)), 4, 2, SEEDS)
    try:
        pool.reset()
        for _ in range(2):
            pool.step(np.zeros((4, 1), dtype=np.int64))
        with pytest.raises(RuntimeError) as failure:
            pool.step(np.zeros((4, 1), dtype=np.int64))
        message = str(failure.value)
        assert FAULTY_ID in message and "worker 3" in message and "seed 13" in message
        assert "Traceback" in message and "deliberate failure of FaultyEnv" in message
        with pytest.raises(RuntimeError, match="unusable after an earlier failure"):
            pool.step(np.zeros((4, 1), dtype=np.int64))
    finally:
        pool.close()
    assert_no_children_left(pool)


def test_dead_worker_process_is_reported_not_waited_for():
    crashing = faulty(fail_at_step=1, fail_seed=episode_seed(11, 0), mode="crash")
    pool = WorkerPool(crashing, 4, 2, SEEDS)
    try:
        pool.reset()
        started = time.monotonic()
        with pytest.raises(RuntimeError, match=r"env process 0 .*seeds \[10, 11\].*SIGSEGV"):
            pool.step(np.zeros((4, 1), dtype=np.int64))
        assert time.monotonic() - started < 10
    finally:
        pool.close()
    assert_no_children_left(pool)


def test_env_that_cannot_be_built_fails_the_pool_constructor():
    config = EnvironmentConfig(type="gymnasium", name="tests.spaces_env:IntegerActions-v0")
    with pytest.raises(RuntimeError, match=r"(?s)worker 0 \(seed 10\).*not supported"):
        WorkerPool(config, 2, 1, [10, 11])
    assert mp.active_children() == []


def test_memory_gym_pool_differs_per_worker_and_terminate_stops_its_processes():
    config = EnvironmentConfig(type="memory_gym", name="MortarMayhem-Grid-v0")
    pool = WorkerPool(config, 4, 2, SEEDS)
    try:
        observations = pool.reset().copy()
        assert pool.obs.shape == (4, 84, 84, 3) and pool.obs.dtype == np.uint8
        assert len({observation.tobytes() for observation in observations}) == 4
        pool.step(np.zeros((4, 1), dtype=np.int64))
        # pygame lets SDL catch SIGTERM; the worker must have restored the default action.
        victim = pool._processes[1]
        victim.terminate()
        victim.join(5)
        assert not victim.is_alive()
        with pytest.raises(RuntimeError, match="env process 1 .*SIGTERM"):
            pool.step(np.zeros((4, 1), dtype=np.int64))
    finally:
        pool.close()
    assert_no_children_left(pool)


def test_close_is_idempotent_and_leaves_no_processes_or_shared_memory():
    with WorkerPool(POM, 4, 2, SEEDS) as pool:
        observations = pool.reset()
        names = [shm.name for shm in pool._shared]
    pool.close()
    assert_no_children_left(pool)
    assert not any(os.path.exists(f"/dev/shm/{name}") for name in names)
    assert observations.shape == (4, 3)  # arrays kept by the caller stay readable
    with pytest.raises(RuntimeError, match="after close"):
        pool.reset()


def test_workers_exit_when_the_parent_dies():
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {REPO_ROOT!r})
        from config import EnvironmentConfig
        from worker_pool import WorkerPool
        if __name__ == "__main__":
            pool = WorkerPool(EnvironmentConfig(), 2, 2, [0, 1])
            print(*[p.pid for p in pool._processes], flush=True)
            time.sleep(60)
    """)
    # stderr is dropped: the resource tracker rightly warns that it unlinks the killed
    # parent's shared memory.
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        worker_pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(worker_pids) == 2
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(pid) for pid in worker_pids):
        time.sleep(0.2)
    assert not any(_running(pid) for pid in worker_pids)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_episode_seeds_are_distinct_training_seeds():
    seeds = {episode_seed(w, k) for w in range(20) for k in range(50)}
    assert len(seeds) == 1000
    assert max(seeds) < HELD_OUT_SEED_START


def test_restore_replays_running_episodes_exactly():
    """A pool rebuilt from state() continues exactly like the original."""
    actions = random_actions(40, len(SEEDS))
    with WorkerPool(POM, len(SEEDS), 2, SEEDS) as pool:
        record(pool, actions[:13])
        state = pool.state()
        before = pool.obs.copy()
        after = record_steps(pool, actions[13:])
    with WorkerPool(POM, len(SEEDS), 2, SEEDS) as pool:
        pool.reset()
        np.testing.assert_array_equal(pool.restore(state), before)
        np.testing.assert_array_equal(record_steps(pool, actions[13:]), after)


def test_async_step_returns_while_the_envs_step():
    """step_async only hands the actions over: it returns long before slow envs finish, and
    step_wait then delivers their step. This is what lets the sampler write its buffer while
    the envs run."""
    with WorkerPool(faulty(fail_at_step=10**6, step_seconds=0.5), 2, 2, seeds=[0, 1]) as pool:
        pool.reset()
        start = time.perf_counter()
        pool.step_async(np.zeros((2, 1), dtype=np.int64))
        handed_over = time.perf_counter() - start
        result = pool.step_wait()
        finished = time.perf_counter() - start
    assert handed_over < 0.1 < 0.5 <= finished
    np.testing.assert_array_equal(result.obs, [[1.0], [1.0]])


def test_async_step_matches_step_and_guards_its_order():
    """step_async + step_wait is step; nothing else may run while a step is in flight."""
    actions = np.ones((4, 1), dtype=np.int64)
    with WorkerPool(POM, 4, 2, seeds=[0, 1, 2, 3]) as a, \
            WorkerPool(POM, 4, 2, seeds=[0, 1, 2, 3]) as b:
        a.reset(), b.reset()
        for _ in range(30):                       # through episode ends
            expected = a.step(actions)
            b.step_async(actions)
            with pytest.raises(RuntimeError, match="in flight"):
                b.step_async(actions)
            result = b.step_wait()
            np.testing.assert_array_equal(result.obs, expected.obs)
            np.testing.assert_array_equal(result.rewards, expected.rewards)
            np.testing.assert_array_equal(result.terminated, expected.terminated)
        with pytest.raises(RuntimeError, match="step_async"):
            b.step_wait()
