"""A trained agent acting in live environments: one memory per environment.

Used by enjoy.py (and evaluation). Unlike the training sampler it keeps no rollout: with TrXL
only the last M keys and values per block (a sliding window), with GRU/LSTM the running
state, so it can play episodes of any length.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

import guards

from config import Config
from environments import SpaceSpec
from environments.spec import takes_scalar_action
from model import ActorCritic, PolicyOutput, sample_actions
from recurrent import reset_at_episode_start
from trainer import build_model
from transformer import KV, prepend
from utils import load_model_file


class MemoryAgent:
    def __init__(self, model: ActorCritic, n_envs: int, device: torch.device):
        self.model, self.device = model.eval(), device
        self.episode_step = torch.zeros(n_envs, dtype=torch.long, device=device)
        if not model.is_transformer:
            memory = model.memory
            self.state = torch.zeros(memory.num_layers, n_envs, memory.state_width,
                                     device=device)                        # (N, W, S)
            return
        cfg = model.memory.cfg
        N, H, M = cfg.num_blocks, cfg.num_heads, cfg.memory_length - 1
        shape = (n_envs, H, M, cfg.embed_dim // H)
        self.dtype = getattr(torch, cfg.memory_dtype)
        like = dict(device=device, dtype=self.dtype)
        self.k = [torch.zeros(shape, **like) for _ in range(N)]   # per block (W, H, M, dh)
        self.v = [torch.zeros(shape, **like) for _ in range(N)]
        self.valid = torch.zeros(n_envs, M, dtype=torch.bool, device=device)  # (W, M)

    def reset(self, env: int) -> None:
        """Forget everything of env's episode: its next step starts a new one (a recurrent
        state is zeroed at that step, reset_at_episode_start)."""
        if self.model.is_transformer:
            self.valid[env] = False
        self.episode_step[env] = 0

    def _keys_for(self, b: int) -> Callable[[KV], KV]:
        def window(own: KV) -> KV:                                          # own (W, H, 1, dh)
            # Rounded to the window's dtype as the sampler's cache stores it (bfloat16 option).
            own = KV(own.k.to(self.dtype), own.v.to(self.dtype))
            kv = prepend(KV(self.k[b], self.v[b]))(own)                     # (W, H, L, dh)
            self.k[b], self.v[b] = kv.k[:, :, 1:], kv.v[:, :, 1:]           # slide by one
            return KV(kv.k.float(), kv.v.float())
        return window

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """obs (W, *obs_shape) -> actions (W, A)."""
        policy = self.policy(obs)
        return sample_actions(policy.logits, deterministic=deterministic).cpu().numpy()

    @torch.no_grad()
    def policy(self, obs: np.ndarray) -> PolicyOutput:
        """One step of every env: the policy's logits and value; the window slides by one."""
        x = torch.as_tensor(obs, device=self.device)
        if not self.model.is_transformer:
            state = reset_at_episode_start(self.state, self.episode_step)   # (N, W, S)
            policy, self.state = self.model.step_recurrent(x, state)
            self.episode_step += 1
            return policy
        own = torch.ones(len(self.valid), 1, dtype=torch.bool, device=self.device)
        key_valid = torch.cat([self.valid, own], dim=1)                      # (W, L)
        keys_for = [self._keys_for(b) for b in range(len(self.k))]
        out = self.model.step(x, keys_for, key_valid, self.episode_step)
        self.valid = key_valid[:, 1:]
        self.episode_step += 1
        return out.policy


def load_agent(path: str, n_envs: int, device: torch.device) -> tuple[MemoryAgent, Config, SpaceSpec]:
    """Rebuild the network from a model file (weights_only) and wrap it as an agent. Sizes
    from the file are checked against the memory available before anything is allocated, and
    the weights against the network by name and shape."""
    payload, config = load_model_file(path, device)
    spec = guards.spec_from_file(payload["spec"], path)
    with torch.device("meta"):                      # sizes only: nothing is allocated
        shapes = build_model(config, spec, torch.device("meta"))
    guards.check_fits(guards.playing_memory(shapes, config, n_envs),
                      f"{path}: its network", "use a model file written by train.py")
    model = build_model(config, spec, device)
    mismatch = guards.state_dict_mismatch(model.state_dict(), payload["model"])
    if mismatch:
        raise ValueError(f"{path}: its weights do not fit the network its config describes: "
                         f"{mismatch}. Fix: use the model file as train.py wrote it.")
    model.load_state_dict(payload["model"])
    return MemoryAgent(model, n_envs, device), config, spec


@dataclass
class EpisodeResult:
    total_return: float
    length: int
    info: dict                      # the environment's info at the last step


def play_episode(agent: MemoryAgent, env, seed: int, deterministic: bool,
                 before_step: Optional[Callable[[], bool]] = None) -> Optional[EpisodeResult]:
    """Play one episode of a single env with agent slot 0. `before_step` runs before every
    action (enjoy.py renders there); returning False abandons the episode (None)."""
    scalar = takes_scalar_action(env.action_space)
    obs, _ = env.reset(seed=seed)
    agent.reset(0)
    total, length, done, info = 0.0, 0, False, {}
    while not done:
        if before_step is not None and not before_step():
            return None
        action = agent.act(obs[None], deterministic)[0]
        obs, reward, terminated, truncated, info = env.step(int(action[0]) if scalar else action)
        total, length, done = total + float(reward), length + 1, terminated or truncated
    return EpisodeResult(total, length, info)
