"""A memory and an environment family from outside the repository: one temporary module
that registers both, found through its entry points (docs/extending.md), is named by a
config and trained for one update by train.py, and its model file plays with evaluate.py,
with no file of the project edited. The same module also shows what the config says when
it gets a memory's or a family's settings wrong."""
import dataclasses
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from environments import Family, families, register_family
from memories import kinds, register

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PLUGIN = '''
"""A throwaway memory (an exponential trace) and a throwaway family (a coin to remember)."""
from dataclasses import dataclass
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from config import Invalid, setting
from environments import Family, register_family
from memories import MemoryKind, StoreLayout, register


@dataclass(frozen=True)
class TraceConfig:
    width: int = setting("Width of the trace.", low=1, default=8)
    keep: float = setting("How much of the trace each step keeps.", low=0.0, high=1.0,
                          default=0.5)


class TraceState(NamedTuple):
    h: torch.Tensor                              # (B, width)


class Trace(nn.Module):
    """h_t = keep h_(t-1) + W x_t, zeroed at an episode start; stored before every step."""

    def __init__(self, cfg: TraceConfig):
        super().__init__()
        self.input_dim = self.output_dim = cfg.width
        self.keep = cfg.keep
        self.write = nn.Linear(cfg.width, cfg.width)

    def layout(self):
        return StoreLayout((self.output_dim,), torch.float32, per_segment=False, history=0,
                           keys=1)

    def initial_state(self, batch, device):
        return TraceState(torch.zeros(batch, self.output_dim, device=device))

    def refresh(self, state, history):
        return state

    def activation_bytes(self, segments, length):
        return 4 * 2 * segments * length * self.output_dim

    def _next(self, x, h, episode_step):
        h = torch.where((episode_step == 0).unsqueeze(-1), 0.0, h)
        return h, self.keep * h + self.write(x)

    def step(self, x, state, episode_step):
        before, after = self._next(x, state.h, episode_step)
        return after, TraceState(after), before

    def segments(self, x, stored, key_episode, query_step):
        h, outputs = stored[:, 0], []
        for t in range(x.shape[1]):
            _, h = self._next(x[:, t], h, query_step[:, t])
            outputs.append(h)
        return torch.stack(outputs, dim=1)


def check(cfg, config):
    if cfg.width > 64:
        raise Invalid("trace.width", cfg.width, "too wide for a throwaway", "use 64 or less")


register(MemoryKind(name="trace", summary="A throwaway exponential trace.", section="trace",
                    settings=TraceConfig, build=lambda cfg, config: Trace(cfg), check=check,
                    examples={"trace": {"width": 8}}))


class Coin(gym.Env):
    """Shows a coin (+1 or -1) at the first step only; guessing it at the third pays 1."""
    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.coin, self.t = int(self.np_random.integers(2)), 0
        return np.array([2.0 * self.coin - 1.0], np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t == 3
        reward = float(done and int(action) == self.coin)
        info = {"success": reward} if done else {}
        return np.zeros(1, np.float32), reward, done, False, info


def check_coin(env_config):
    if env_config.name != "Coin-v0":
        raise Invalid("environment.name", env_config.name, "there is one coin",
                      "use Coin-v0")


register_family(Family(name="coin", summary="A throwaway coin to remember.",
                       make=lambda env_config, render: Coin(), check=check_coin,
                       example="Coin-v0"))
'''

ENTRY_POINTS = """
[trxl_ppo.memories]
trace = throwaway_plugin

[trxl_ppo.environments]
coin = throwaway_plugin
"""


def install_plugin(folder) -> dict:
    """The module and its distribution metadata in `folder`; the environment that finds it."""
    (folder / "throwaway_plugin.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    info = folder / "throwaway_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: throwaway-plugin\n"
                                   "Version: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), ROOT]),
            "SDL_VIDEODRIVER": "dummy"}


def write_config(folder, **changes) -> str:
    data = {"memory": "trace", "trace": {"width": 8},
            "environment": {"type": "coin", "name": "Coin-v0"},
            "updates": 1, "n_workers": 2, "worker_steps": 8, "segment_length": 4,
            "n_mini_batch": 1, "epochs": 1, "hidden_layer_size": 8, "env_processes": 1,
            "evaluation": {"n_seeds": 2, "repetitions": 1}, **changes}
    path = folder / "trace.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def run(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_plugin_memory_and_family_train_and_play(tmp_path):
    env = install_plugin(tmp_path)
    models = tmp_path / "models"
    trained = run(env, "train.py", "--config", write_config(tmp_path), "--run-id", "trace",
                  "--models-dir", str(models), "--summaries-dir", str(tmp_path / "s"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (models / "trace.nn").is_file()
    played = run(env, "evaluate.py", str(models / "trace.nn"), "--n-seeds", "2",
                 "--repetitions", "1", "--processes", "1")
    assert played.returncode == 0, played.stderr[-2000:]
    reference = run(env, "config.py", "--markdown")
    assert "| `trace` | `trace` | yes | A throwaway exponential trace. |" in reference.stdout
    assert "| `trace.keep` | `0.5` |" in reference.stdout
    assert "| `coin` | processes, vector | A throwaway coin to remember. |" in reference.stdout


def test_a_plugins_settings_are_checked_like_the_projects(tmp_path):
    env = install_plugin(tmp_path)
    for changes, message in [
            ({"trace": {"width": 0}}, "trace.width = 0: must be at least 1"),
            ({"trace": {"width": 65}}, "trace.width = 65: too wide for a throwaway. Fix: "
                                       "use 64 or less"),
            ({"trace": {"keep": 1.5}}, "trace.keep = 1.5: must be at most 1"),
            ({"trace": {"wdth": 8}}, "trace.wdth = 8: unknown key. Fix: remove it; did you "
                                     "mean 'width'?"),
            ({"environment": {"type": "coin", "name": "Coin-v1"}},
             "environment.name = 'Coin-v1': there is one coin. Fix: use Coin-v0")]:
        refused = run(env, "train.py", "--config", write_config(tmp_path, **changes),
                      "--run-id", "refused", "--models-dir", str(tmp_path / "m"))
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr


def test_a_broken_plugin_is_named(tmp_path):
    env = install_plugin(tmp_path)
    (tmp_path / "throwaway_plugin.py").write_text("import no_such_module\n", encoding="utf-8")
    refused = run(env, "train.py", "--config", write_config(tmp_path), "--run-id", "broken",
                  "--models-dir", str(tmp_path / "m"))
    assert refused.returncode != 0
    assert "the plugin 'throwaway_plugin' (entry point 'trace' in trxl_ppo.memories) fails " \
           "to import: ModuleNotFoundError" in refused.stderr, refused.stderr[-2000:]


def test_a_name_or_section_is_registered_once():
    """A second file cannot take a memory's name, a memory's config section or a family's
    name: the registries refuse it, naming both."""
    @dataclasses.dataclass(frozen=True)
    class Other:
        width: int = 1

    taken = kinds()["trxl"]
    assert "gymnasium" in families()   # discovered, as a config's loading would
    with pytest.raises(ValueError, match="memory 'trxl' is registered by both"):
        register(dataclasses.replace(taken, settings=Other))
    with pytest.raises(ValueError, match="config section 'transformer' of memory 'other'"):
        register(dataclasses.replace(taken, name="other", settings=Other))
    with pytest.raises(ValueError, match="environment family 'gymnasium' is registered by both"):
        register_family(Family(name="gymnasium", summary="", make=lambda env, render: None))
    assert kinds()["trxl"] is taken


def test_the_extending_guide_quotes_the_code_as_it_is():
    """docs/extending.md walks through files of the repository: every line of its Python
    and YAML blocks (but the elisions, `...`) is a line of memories/, environments/ or
    configs/, so the guide cannot drift from the code it shows."""
    import glob
    import re
    sources = set()
    for pattern in ("memories/*.py", "environments/*.py", "configs/*.yaml"):
        for path in glob.glob(os.path.join(ROOT, pattern)):
            with open(path, encoding="utf-8") as f:
                sources.update(line.rstrip() for line in f)
    with open(os.path.join(ROOT, "docs", "extending.md"), encoding="utf-8") as f:
        guide = f.read()
    blocks = re.findall(r"```(?:python|yaml)\n(.*?)```", guide, flags=re.S)
    assert len(blocks) >= 5
    quoted = [line.rstrip() for block in blocks for line in block.splitlines()
              if line.strip() and line.strip() != "..."]
    assert [line for line in quoted if line not in sources] == []
