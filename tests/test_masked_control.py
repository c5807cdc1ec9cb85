"""The masked_control family: positions-only and velocities-only control tasks (Ni et al.
2022). The index sets are checked against the simulator's own state, not against a copy of
the table: for MuJoCo, P must be qpos without the unobserved root coordinates and V must be
qvel."""
import importlib.util
import os

import numpy as np
import pytest

from config import EnvironmentConfig
from environments import make_env, space_spec

HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None
needs_mujoco = pytest.mark.skipif(
    not HAS_MUJOCO, reason="the masked MuJoCo tasks need the optional package mujoco "
                           "(pip install -r requirements-mujoco.txt)")
# Root coordinates that v5 leaves out of the observation: x (and Ant's y).
UNOBSERVED_ROOT = {"HalfCheetah": 1, "Hopper": 1, "Walker2d": 1, "Ant": 2}


def masked(name: str, **reset_params):
    return make_env(EnvironmentConfig(type="masked_control", name=name,
                                      reset_params=reset_params))


def test_pendulum_without_angular_velocity_keeps_cos_and_sin():
    env = masked("Pendulum-P-v1")
    try:
        spec = space_spec(env)
        assert spec.obs_shape == (2,) and spec.action_continuous == 1 and not spec.action_nvec
        obs, _ = env.reset(seed=3)
        theta = env.unwrapped.state[0]
        np.testing.assert_allclose(obs, [np.cos(theta), np.sin(theta)], rtol=1e-6)
        for _ in range(5):
            obs, *_ = env.step(np.array([0.5], np.float32))
        theta, velocity = env.unwrapped.state
        np.testing.assert_allclose(obs, [np.cos(theta), np.sin(theta)], rtol=1e-6)
        assert obs.dtype == np.float32 and env.spec.max_episode_steps == 200
    finally:
        env.close()
    env = masked("Pendulum-V-v1")
    try:
        obs, _ = env.reset(seed=3)
        assert obs.tolist() == [np.float32(env.unwrapped.state[1])]
    finally:
        env.close()


def test_pendulum_renders_frames_for_videos():
    env = make_env(EnvironmentConfig(type="masked_control", name="Pendulum-P-v1"), render=True)
    try:
        env.reset(seed=0)
        frame = env.render()
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    finally:
        env.close()


HEADLESS_FRAME = """
from config import EnvironmentConfig
from environments import make_env
env = make_env(EnvironmentConfig(type="masked_control", name="HalfCheetah-V-v5"), render=True)
env.reset(seed=0)
frame = env.render()
print(frame.shape, frame.dtype, int(frame.std() > 10))
"""


@needs_mujoco
def test_mujoco_renders_frames_without_a_display():
    """enjoy.py's videos on a server: no DISPLAY, no MUJOCO_GL, a fresh process (mujoco reads
    MUJOCO_GL when first imported) still gets real frames, off-screen."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL", "PYOPENGL_PLATFORM")}
    out = subprocess.run([sys.executable, "-c", HEADLESS_FRAME], cwd=root, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == "(480, 480, 3) uint8 1"


def test_a_users_mujoco_gl_choice_stands(monkeypatch):
    from environments.masked_control import headless_rendering
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    headless_rendering()
    assert os.environ["MUJOCO_GL"] == "osmesa"
    monkeypatch.delenv("MUJOCO_GL")
    headless_rendering()
    assert os.environ["MUJOCO_GL"] == "egl"


@pytest.mark.parametrize("name", ["Pendulum-X-v1", "Pendulum-v1", "Swimmer-P-v5", "cheetah-P-v5"])
def test_unknown_names_are_refused_with_the_known_ones(name):
    with pytest.raises(ValueError, match="not a masked task; known are HalfCheetah-P-v5"):
        masked(name)


def test_mujoco_tasks_without_mujoco_name_the_requirements_file(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def without_mujoco(name, *args, **kwargs):
        if name == "mujoco":
            raise ImportError("No module named 'mujoco'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", without_mujoco)
    with pytest.raises(ValueError, match="HalfCheetah-V-v5 needs the optional package mujoco.*"
                                         "requirements-mujoco.txt"):
        masked("HalfCheetah-V-v5")


@needs_mujoco
@pytest.mark.parametrize("task", ["HalfCheetah", "Hopper", "Walker2d", "Ant"])
def test_mujoco_positions_are_qpos_and_velocities_qvel(task):
    """Over 20 random steps, P observes exactly qpos without the unobserved root
    coordinates and V exactly qvel (Hopper's and Walker2d's v5 clip velocities to
    [-10, 10] in the observation)."""
    for kept in "PV":
        env = masked(f"{task}-{kept}-v5")
        try:
            env.reset(seed=0)
            env.action_space.seed(0)
            data = env.unwrapped.data
            for _ in range(20):
                obs, *_ = env.step(env.action_space.sample())
                state = data.qpos[UNOBSERVED_ROOT[task]:] if kept == "P" else data.qvel
                if kept == "V" and task in ("Hopper", "Walker2d"):
                    state = np.clip(state, -10, 10)
                np.testing.assert_allclose(obs, state.astype(np.float32), rtol=1e-6, atol=1e-7)
            assert space_spec(env).action_continuous == env.action_space.shape[0]
        finally:
            env.close()


@needs_mujoco
def test_reset_params_that_move_the_indices_are_refused():
    with pytest.raises(ValueError, match="observes .18,., but the index sets.*exclude_current"):
        masked("HalfCheetah-P-v5", exclude_current_positions_from_observation=False)


def test_every_shipped_continuous_control_config_loads_and_builds():
    """Pendulum always; the 24 MuJoCo configs (4 tasks x P/V x TrXL/GRU/none) build where
    mujoco is installed."""
    import glob
    import os

    from config import load_config
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pendulum = sorted(glob.glob(os.path.join(root, "configs", "pendulum_velocity_masked*.yaml")))
    mujoco = sorted(glob.glob(os.path.join(root, "configs", "mujoco", "*.yaml")))
    assert len(pendulum) == 3 and len(mujoco) == 24
    for path in pendulum + (mujoco if HAS_MUJOCO else []):
        config = load_config(path)
        assert config.normalize_observations and config.scale_rewards
        env = make_env(config.environment)
        assert space_spec(env).action_continuous >= 1
        env.close()
    for path in mujoco:
        load_config(path)
