"""Test doubles: a scripted worker pool with known episode boundaries, and tiny configs."""
from __future__ import annotations


import numpy as np
import torch

from buffer import RolloutBuffer
from config import Config, config_from_dict
from environments import SpaceSpec
from memories import MemoryKind, kinds
from env_backends import EpisodeInfo, StepResult


def memory_variants() -> dict[str, tuple[MemoryKind, dict]]:
    """Every registered memory's small variants (MemoryKind.examples), by label: what the
    shared known-answer tests run, so that a new memory joins them by registering."""
    return {label: (kind, dict(values)) for kind in kinds().values()
            for label, values in kind.examples.items()}


def variants_where(predicate) -> list[str]:
    """The labels of the variants whose tiny config satisfies `predicate(config)`."""
    return [label for label in memory_variants() if predicate(tiny_config(label))]


def tiny_config(memory: str = "trxl", **overrides) -> Config:
    """A tiny network of a registered memory variant (a kind's name, or a variant label such
    as galite); `overrides` change that memory's section."""
    kind, values = memory_variants()[memory]
    data = {"n_workers": 3, "worker_steps": 12, "segment_length": 4, "n_mini_batch": 3,
            "epochs": 1, "hidden_layer_size": 16, "memory": kind.name,
            kind.section: {**values, **overrides}}
    return config_from_dict(data)


def randomised_model(cfg: Config, spec: SpaceSpec, seed: int = 0):
    """A model whose every weight matters: default init leaves u/v biases at zero and the
    policy heads near uniform, which would hide errors."""
    from model import ActorCritic
    torch.manual_seed(seed)
    model = ActorCritic(cfg, spec)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def rollout_setup(cfg: Config, lengths: list[int], seed: int = 0,
                  device: torch.device = torch.device("cpu"), **actions):
    """A scripted pool (`actions`: its action groups, ScriptedPool's keywords), a randomised
    model, its buffer and sampler on `device` (the weights drawn on the CPU, so every device
    starts from the same ones)."""
    from sampler import Sampler
    pool = ScriptedPool(cfg.n_workers, lengths, seed=seed, **actions)
    model = randomised_model(cfg, pool.spec, seed).to(device)
    buffer = RolloutBuffer(cfg, pool.spec, device)
    return pool, model, buffer, Sampler(pool, buffer, cfg, device, model)


class ScriptedPool:
    """Vector observations of random numbers; worker w's episodes last episode_lengths[w]
    steps, ending alternately in termination and truncation."""

    def __init__(self, n_envs: int, episode_lengths: list[int], obs_dim: int = 5,
                 action_nvec=(3, 2), seed: int = 0, action_continuous: int = 0,
                 action_binary: int = 0):
        self.spec = SpaceSpec((obs_dim,), "float32", tuple(action_nvec),
                              action_continuous=action_continuous, action_binary=action_binary)
        self.rng = np.random.default_rng(seed)
        self.lengths = episode_lengths
        self.obs = np.zeros((n_envs, obs_dim), np.float32)
        self.final_obs = np.zeros_like(self.obs)
        self.action_masks = None
        self.t = np.zeros(n_envs, int)
        self.episodes_done = np.zeros(n_envs, int)
        self.calls = 0
        self.truncations = []   # (call index, worker, cut-off observation)

    def reset(self) -> np.ndarray:
        self.obs[:] = self.rng.standard_normal(self.obs.shape)
        return self.obs

    def step(self, actions: np.ndarray) -> StepResult:
        n = len(self.obs)
        self.calls += 1
        assert actions.shape == (n, self.spec.action_width)
        self.t += 1
        new = self.rng.standard_normal(self.obs.shape).astype(np.float32)
        ended = self.t >= np.asarray(self.lengths)
        truncated = ended & (self.episodes_done % 2 == 1)
        terminated = ended & ~truncated
        rewards = self.rng.standard_normal(n).astype(np.float32)
        episodes = []
        for w in np.flatnonzero(ended):
            self.final_obs[w] = new[w]
            if truncated[w]:
                self.truncations.append((self.calls - 1, int(w), new[w].copy()))
            new[w] = self.rng.standard_normal(self.obs.shape[1])
            episodes.append(EpisodeInfo(int(w), 0.0, int(self.t[w]), None, {}))
            self.t[w] = 0
            self.episodes_done[w] += 1
        self.obs[:] = new
        return StepResult(self.obs, rewards, terminated, truncated, episodes, self.final_obs,
                          self.action_masks)

    def step_async(self, actions: np.ndarray) -> None:
        # Steps at once: obs and final_obs change before step_wait, as the real pool's
        # workers may overwrite them, so a sampler that read them in between would fail.
        self._result = self.step(actions)

    def step_wait(self) -> StepResult:
        result, self._result = self._result, None
        return result

    def close(self) -> None:
        pass


def assert_training_recomputes_rollout(cfg: Config, lengths=(3, 7, 50), atol: float = 2e-5,
                                       rtol: float = 1e-5,
                                       device: torch.device = torch.device("cpu"),
                                       **actions) -> None:
    """Before any optimiser step, training's recomputation of every minibatch gives the
    log-probs and values the rollout produced, over several rollouts (carried memory,
    episodes that start and end mid-segment, an episode longer than the window)."""
    pool, model, buffer, sampler = rollout_setup(cfg, list(lengths), device=device, **actions)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        sampler.collect()
        seen = 0
        for batch in buffer.minibatches(cfg.n_mini_batch, generator):
            with torch.no_grad():
                out = model(batch.obs, batch.memory, batch.key_episode, batch.query_step)
            masks = batch.action_masks if batch.action_masks.shape[-1] else None
            log_probs, _ = out.distribution.log_prob_entropy(batch.actions, masks)
            torch.testing.assert_close(log_probs, batch.log_probs, atol=atol, rtol=rtol)
            torch.testing.assert_close(out.value, batch.values, atol=atol, rtol=rtol)
            seen += batch.steps
        assert seen == cfg.batch_size
