"""The JAX backend: every environment of a JAX family (gymnax's API, environments/jax_envs.py)
stepped at once with jit(vmap(step)) in the trainer's process.

Observations stay JAX arrays; the sampler reads them through DLPack (no host copy when torch
and JAX share the device). Rewards and episode ends come to the host each step: the sampler
needs them there, and they decide which environments reset. Only the ended environments
reset, in one jit(vmap(reset)) over their indices padded to a power of two (a handful of
compiled sizes): a reset of every env at every step, as an auto-resetting step computes
under vmap, is what makes Craftax's auto-reset variant ~17x slower on CPU.

Seeds: env i's k-th episode gets the key PRNGKey(episode_seed(seeds[i], k)) (the seeds every
backend uses, below the held-out evaluation seeds); its reset uses that key and its t-th step
fold_in(key, t). An episode is thus a function of its seed and actions, and the state a
checkpoint needs is the env-state pytree's leaves with the keys and counters: plain arrays,
saved as tensors (no pickle).

This module imports jax; nothing outside the JAX families and this backend does.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from env_backends.base import EnvBackend, EnvState, EpisodeInfo, ReplayMismatch, StepResult
from environments.episodes import episode_seed
from environments.jax_envs import JaxEnv, import_jax
from environments.spec import SpaceSpec


def _jax(family: str):
    """jax with XLA's CPU work on one thread unless the user set XLA_FLAGS: the trainer's
    torch threads and the env steps run one after the other on the same cores, and XLA's
    own pool of one thread per core spun beside torch's (docs/performance.md)."""
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1")
    return import_jax(family)


def _space_spec(jax_env: JaxEnv) -> tuple[SpaceSpec, bool]:
    """The spec the models see, and whether observations are images (uint8 (H, W, C))."""
    obs_space = jax_env.env.observation_space(jax_env.params)
    actions = jax_env.env.action_space(jax_env.params)
    if not hasattr(actions, "n"):
        raise ValueError(f"action space {actions} is not supported; the JAX backend takes "
                         f"Discrete actions.")
    shape = tuple(int(n) for n in obs_space.shape)
    image = len(shape) == 3
    obs_shape = shape if image else (int(np.prod(shape)),)
    return SpaceSpec(obs_shape, "uint8" if image else "float32", (int(actions.n),)), image


class JaxBackend(EnvBackend):
    """`len(seeds)` environments of a JAX family in this process, on JAX's default device
    (`device: cpu` keeps them on the CPU). Without `autoreset` an ended env keeps its last
    observation until reset() (for playing single episodes)."""

    def __init__(self, env_config, seeds: Sequence[int], device: str = "auto",
                 render: bool = False, autoreset: bool = True):
        from environments import families
        jax = self.jax = _jax(env_config.type)
        if not seeds:
            raise ValueError("JaxBackend: needs at least one environment (seed).")
        self.jax_env: JaxEnv = families()[env_config.type].make(env_config, render)
        self.spec, self._image = _space_spec(self.jax_env)
        self.n_envs, self.seeds, self.autoreset = len(seeds), [int(s) for s in seeds], autoreset
        self.device = jax.devices("cpu")[0] if device == "cpu" else jax.devices()[0]
        self._render = render
        self._step = jax.jit(jax.vmap(self._step_one, in_axes=(0, 0, 0, 0)))
        self._reset_some = jax.jit(self._reset_indices)
        self.episodes = np.zeros(self.n_envs, np.int64)     # resets so far, per env
        self.steps = np.zeros(self.n_envs, np.int64)        # steps of the running episode
        self.returns = np.zeros(self.n_envs, np.float64)
        self._keys = np.zeros((self.n_envs, 2), np.uint32)  # each running episode's key
        self._in_flight: Optional[np.ndarray] = None
        self.env_state = self.obs = self.final_obs = None
        self.reset()

    # ----- the jitted pieces -----

    def _observation(self, obs):
        """One env's observation as the models take it: an image as uint8, else a flat
        float32 vector."""
        jnp = self.jax.numpy
        if not self._image:
            return obs.reshape(-1).astype(jnp.float32)
        if jnp.issubdtype(obs.dtype, jnp.floating):            # [0, 1] -> 0..255
            return jnp.round(jnp.clip(obs, 0.0, 1.0) * 255).astype(jnp.uint8)
        return obs.astype(jnp.uint8)

    def _step_one(self, key, t, state, action):
        e = self.jax_env
        obs, state, reward, terminated, truncated = e.step(
            self.jax.random.fold_in(key, t), state, action, e.params)
        return (self._observation(obs), state, self.jax.numpy.float32(reward),
                self.jax.numpy.bool_(terminated), self.jax.numpy.bool_(truncated))

    def _reset_indices(self, env_state, obs, indices, keys):
        """env_state and obs with the envs at `indices` reset with `keys` (one each)."""
        e = self.jax_env
        new_obs, new_state = self.jax.vmap(e.reset, in_axes=(0, None))(keys, e.params)
        env_state = self.jax.tree_util.tree_map(lambda old, new: old.at[indices].set(new),
                                                env_state, new_state)
        return env_state, obs.at[indices].set(self.jax.vmap(self._observation)(new_obs))

    # ----- episodes -----

    def _start(self, envs: np.ndarray, seeds: Optional[Sequence[int]] = None) -> None:
        """Reset the envs `envs` (indices) for their next episodes: seeded with `seeds` where
        given, else with each env's next training seed."""
        if seeds is None:
            seeds = [episode_seed(self.seeds[i], self.episodes[i]) for i in envs]
        keys = np.asarray(self.jax.vmap(self.jax.random.PRNGKey)(
            self.jax.numpy.asarray(np.asarray(seeds, np.int64).astype(np.uint32))))
        self._keys[envs] = keys
        self.episodes[envs] += 1
        self.steps[envs] = 0
        self.returns[envs] = 0.0
        # Padded to a power of two (repeating the first env, which gets the same reset again)
        # so that only a few batch sizes are ever compiled.
        size = 1 << (len(envs) - 1).bit_length()
        padded = np.concatenate([envs, np.full(size - len(envs), envs[0])])
        with self.jax.default_device(self.device):
            if self.env_state is None:          # the first reset makes the arrays
                first, self.env_state = self.jax.jit(self.jax.vmap(
                    self.jax_env.reset, in_axes=(0, None)))(
                    self.jax.numpy.asarray(self._keys), self.jax_env.params)
                self.obs = self.jax.vmap(self._observation)(first)
                return
            self.env_state, self.obs = self._reset_some(
                self.env_state, self.obs, self.jax.numpy.asarray(padded),
                self.jax.numpy.asarray(self._keys[padded]))

    def reset(self, seeds: Optional[Sequence[int]] = None):
        self._check_idle()
        self._start(np.arange(self.n_envs), seeds)
        self.final_obs = self.obs
        return self.obs

    @property
    def action_masks(self) -> None:
        return None

    def step_async(self, actions: np.ndarray) -> None:
        self._check_idle()
        self._in_flight = self.spec.checked_actions(actions, self.n_envs, "JaxBackend.step")

    def step_wait(self) -> StepResult:
        if self._in_flight is None:
            raise RuntimeError("JaxBackend.step_wait: no step is in flight. Fix: call "
                               "step_async(actions) first, or step(actions) for both.")
        actions, self._in_flight = self._in_flight, None
        jnp = self.jax.numpy
        self.steps += 1
        with self.jax.default_device(self.device):
            obs, self.env_state, rewards, terminated, truncated = self._step(
                jnp.asarray(self._keys), jnp.asarray(self.steps.astype(np.uint32)),
                self.env_state, jnp.asarray(actions[:, 0].astype(np.int32)))
        rewards, terminated = np.asarray(rewards), np.asarray(terminated)
        truncated = np.asarray(truncated) & ~terminated
        self.returns += rewards
        ended = np.flatnonzero(terminated | truncated)
        episodes = [EpisodeInfo(int(i), float(self.returns[i]), int(self.steps[i]), None)
                    for i in ended]
        self.final_obs = self.obs = obs
        if len(ended) and self.autoreset:
            self._start(ended)
        return StepResult(self.obs, rewards, terminated, truncated, episodes, self.final_obs,
                          None)

    # ----- resume -----

    def state(self) -> EnvState:
        leaves = self.jax.tree_util.tree_leaves(self.env_state)
        return {"env_jax_state": [np.asarray(leaf) for leaf in leaves],
                "env_jax_obs": np.asarray(self.obs), "env_episodes": self.episodes.copy(),
                "env_steps": self.steps.copy(), "env_returns": self.returns.copy(),
                "env_keys": self._keys.copy()}

    def restore(self, state: EnvState):
        self._check_idle()
        leaves, treedef = self.jax.tree_util.tree_flatten(self.env_state)
        saved = list(state["env_jax_state"])
        if len(saved) != len(leaves) or any(
                np.shape(s) != leaf.shape or np.asarray(s).dtype != leaf.dtype
                for s, leaf in zip(saved, leaves)):
            raise ReplayMismatch("the saved environment state does not have this "
                                 "environment's structure")
        jnp = self.jax.numpy
        with self.jax.default_device(self.device):
            self.env_state = self.jax.tree_util.tree_unflatten(
                treedef, [jnp.asarray(s) for s in saved])
            self.obs = self.final_obs = jnp.asarray(state["env_jax_obs"])
        self.episodes = np.asarray(state["env_episodes"], np.int64).copy()
        self.steps = np.asarray(state["env_steps"], np.int64).copy()
        self.returns = np.asarray(state["env_returns"], np.float64).copy()
        self._keys = np.asarray(state["env_keys"], np.uint32).copy()
        return self.obs

    def render(self, env: int = 0) -> Optional[np.ndarray]:
        """Env `env`'s frame: the family's renderer (Craftax draws pixels), or the observation
        itself where it is an image (POPGym Arcade); None otherwise."""
        if not self._render:
            return None
        if self.jax_env.render is not None:
            one = self.jax.tree_util.tree_map(lambda leaf: leaf[env], self.env_state)
            frame = np.asarray(self.jax_env.render(one))
            if np.issubdtype(frame.dtype, np.floating):
                frame = np.round(np.clip(frame, 0.0, 1.0) * 255)
            return frame.astype(np.uint8)
        return np.asarray(self.obs[env]) if self._image else None

    def close(self) -> None:
        self.env_state = None

    def _check_idle(self) -> None:
        if self._in_flight is not None:
            raise RuntimeError("JaxBackend: a step is in flight. Fix: call step_wait() before "
                               "anything else.")
