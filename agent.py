"""Acting: the network steps every environment, carrying its memory state.

One acting path: the training sampler drives a `MemoryAgent` and adds a buffer; enjoy.py and
evaluation use it alone. Its memory state holds only what the next step needs (TrXL: the last
M steps' keys and values; GRU/LSTM: the running state), so it plays episodes of any length.
Nothing here imports training code (tests/test_agent_imports.py).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from config import Config
from env_backends import EnvBackend
from environments import SpaceSpec
from memories import state_nbytes
from model import ActorCritic, PolicyOutput, StepOutput, build_model
from preflight.memory_estimate import check_fits, playing_memory
from runs.checkpoint import load_model_file
from runs.integrity import spec_from_file, state_dict_mismatch


def cpp_compiler() -> Optional[str]:
    """The C++ compiler inductor will use on CPU ($CXX, else g++), or None if absent."""
    return shutil.which(os.environ.get("CXX", "g++"))


def acting_step(compiled: bool, device: torch.device) -> Optional[Callable]:
    """ActorCritic.step compiled with torch.compile (called with the model first), or None
    for eager. Shapes never change within a run, so one graph serves it. On CPU the C++
    wrapper calls the kernels without Python in between: that is where a small model's step
    spends most of its time eagerly (benchmarks/acting_step.py)."""
    if not compiled:
        return None
    if device.type == "cpu" and cpp_compiler() is None:
        raise RuntimeError(f"compile_acting: true needs a C++ compiler on CPU (inductor builds "
                           f"the step with {os.environ.get('CXX', 'g++')!r}), and none was found. "
                           f"Fix: install one (e.g. apt install g++, or set CXX), or set "
                           f"compile_acting: false.")
    options = {"cpp_wrapper": True} if device.type == "cpu" else None
    return torch.compile(ActorCritic.step, dynamic=False, fullgraph=True, options=options)


class MemoryAgent:
    """The network acting in n_envs environments, one memory state each."""

    def __init__(self, model: ActorCritic, n_envs: int, device: torch.device,
                 compiled: bool = False):
        self.model, self.device = model.eval(), device
        self.compiled = acting_step(compiled, device)
        self.state = model.memory.initial_state(n_envs, device)
        self.episode_step = torch.zeros(n_envs, dtype=torch.long, device=device)

    def reset(self, env: int) -> None:
        """Forget env's episode: its next step starts a new one."""
        self.episode_step[env] = 0

    def episodes_ended(self, ended: torch.Tensor) -> None:
        """ended (n_envs,) bool: those environments' next steps start new episodes."""
        self.episode_step = torch.where(ended, 0, self.episode_step)

    def refresh(self, history: torch.Tensor) -> None:
        """Recompute what the memory state derives from the weights, after they changed, from
        the stored entries (n_envs, layout().history, *shape) of the steps before."""
        self.state = self.model.memory.refresh(self.state, history)

    def step(self, obs: torch.Tensor, advance: bool = True) -> StepOutput:
        """One step of every environment. With `advance` the memory takes the step and the
        episodes move on; without, it only looks (the value of an observation that no step
        follows: the rollout's last, or one a time limit cut off)."""
        if self.compiled is not None:
            out = self.compiled(self.model, obs, self.state, self.episode_step)
        else:
            out = self.model.step(obs, self.state, self.episode_step)
        if advance:
            self.state = out.state
            self.episode_step = self.episode_step + 1
        return out

    def normalize(self, obs: torch.Tensor, update: bool = False) -> torch.Tensor:
        """obs as the network takes it: normalised with the running statistics when the run
        normalises observations (first folded into them with `update`, which only the
        training sampler asks for), else unchanged."""
        normalizer = self.model.obs_normalizer
        if normalizer is None:
            return obs
        if update:
            normalizer.update(obs)
        return normalizer(obs)

    def act(self, obs: np.ndarray, mask: Optional[np.ndarray] = None,
            deterministic: bool = False) -> np.ndarray:
        """obs (W, *obs_shape) and the action masks (W, sum(nvec)) if the env supplies them
        -> flat actions (W, A). obs may be any array torch reads (numpy's, or JAX's through
        DLPack)."""
        policy = self.policy(obs)
        mask = None if mask is None else torch.as_tensor(mask, device=self.device)
        return policy.distribution.sample(mask, deterministic=deterministic).cpu().numpy()

    def policy(self, obs: np.ndarray) -> PolicyOutput:
        """One step of every env: the policy's distribution and value; the memory takes the
        step."""
        obs = torch.as_tensor(obs) if isinstance(obs, np.ndarray) else torch.from_dlpack(obs)
        return self.step(self.normalize(obs.to(self.device))).policy

    def nbytes(self) -> int:
        """Bytes of the memory state."""
        return state_nbytes(self.state)


def load_agent(path: str, n_envs: int, device: torch.device) -> tuple[MemoryAgent, Config, SpaceSpec]:
    """Rebuild the network from a model file (weights_only) and wrap it as an agent. Sizes
    from the file are checked against the memory available before anything is allocated, and
    the weights against the network by name and shape."""
    payload, config = load_model_file(path, device)
    spec = spec_from_file(payload["spec"], path)
    with torch.device("meta"):                      # sizes only: nothing is allocated
        shapes = build_model(config, spec, torch.device("meta"))
    check_fits(playing_memory(shapes, n_envs),
               f"{path}: its network", "use a model file written by train.py")
    model = build_model(config, spec, device)
    mismatch = state_dict_mismatch(model.state_dict(), payload["model"])
    if mismatch:
        raise ValueError(f"{path}: its weights do not fit the network its config describes: "
                         f"{mismatch}. Fix: use the model file as train.py wrote it.")
    model.load_state_dict(payload["model"])
    return MemoryAgent(model, n_envs, device), config, spec


@dataclass
class EpisodeResult:
    total_return: float
    length: int
    success: Optional[float]        # info["success"] at the last step, where the env gives it
    metrics: dict[str, float]       # the other numbers of the last step's info


def play_episode(agent: MemoryAgent, envs, seed: int, deterministic: bool,
                 before_step: Optional[Callable[[], bool]] = None) -> Optional[EpisodeResult]:
    """Play one episode, seeded with `seed`, with agent slot 0 in `envs`: an env backend of
    one environment without autoreset (env_backends.player_backend), or a gymnasium env as
    make_env builds it. `before_step` runs before every action (enjoy.py renders there);
    returning False abandons the episode (None)."""
    if not isinstance(envs, EnvBackend):
        from env_backends.vector import VectorBackend
        envs = VectorBackend.around([envs])
    obs = envs.reset([seed])
    agent.reset(0)
    while True:
        if before_step is not None and not before_step():
            return None
        result = envs.step(agent.act(obs, envs.action_masks, deterministic))
        if result.episodes:
            episode = result.episodes[0]
            return EpisodeResult(episode.reward, episode.length, episode.success,
                                 episode.metrics)
        obs = result.obs
