"""Action spaces as the models see them, and back: one flat vector per step.

The policy acts in three groups, concatenated in this order into one flat action vector:

    categorical  one integer per Discrete (n) and per MultiDiscrete entry, in 0 .. n-1
    continuous   one float per Box entry (flattened), sampled from a diagonal Gaussian
    binary       one 0/1 per MultiBinary entry (flattened), sampled from a Bernoulli

Tuple (in index order) and Dict (in the space's key order) actions are walked leaf by leaf
and each leaf's entries go to its group, so the network needs only the three group sizes
(SpaceSpec.action_nvec, action_continuous, action_binary) and `ActionLayout.to_env` rebuilds
the env's own action (its structure, shapes, dtypes and Discrete/MultiDiscrete starts) from
the flat vector. A continuous entry is handed to the env clipped to the Box's bounds, as
CleanRL's and Stable-Baselines3's PPO do; the buffer keeps the unclipped sample, whose
log-probability the PPO ratio needs.

Action masks (`ActionMasks`) cover the categorical group: one 0/1 per choice, the choices
of every categorical entry concatenated (sum(nvec) values); 1 allows a choice.

This module must not import torch: the environment worker processes import it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np

SUPPORTED = ("Discrete, MultiDiscrete, Box (floating point), MultiBinary, and Tuple or Dict "
             "of those")
MASK_KEY = "action_mask"


@dataclass
class _Leaf:
    """One action leaf: its group, the width it takes there, how its entries become the
    env's value, and (once laid out) its slice of the flat vector."""
    group: str                                        # categorical | continuous | binary
    size: int
    to_env: Callable[[np.ndarray], Any]
    nvec: tuple[int, ...] = ()                        # categorical only: choices per entry
    at: slice = field(default_factory=lambda: slice(0, 0))


def _discrete(space: gym.spaces.Discrete) -> _Leaf:
    start = int(space.start)
    return _Leaf("categorical", 1, lambda a: int(a[0]) + start, (int(space.n),))


def _multi_discrete(space: gym.spaces.MultiDiscrete) -> _Leaf:
    shape, start, dtype = space.nvec.shape, np.asarray(space.start), space.dtype

    def to_env(a: np.ndarray) -> np.ndarray:
        return (np.asarray(a, np.int64).reshape(shape) + start).astype(dtype, copy=False)
    return _Leaf("categorical", int(space.nvec.size), to_env,
                 tuple(int(n) for n in space.nvec.reshape(-1)))


def _box(space: gym.spaces.Box) -> _Leaf:
    low, high = space.low.reshape(-1), space.high.reshape(-1)
    shape, dtype = space.shape, space.dtype

    def to_env(a: np.ndarray) -> np.ndarray:
        return np.clip(a, low, high).reshape(shape).astype(dtype, copy=False)
    return _Leaf("continuous", int(np.prod(shape)), to_env)


def _multi_binary(space: gym.spaces.MultiBinary) -> _Leaf:
    shape = space.shape
    return _Leaf("binary", int(np.prod(shape)),
                 lambda a: np.asarray(a).reshape(shape).astype(np.int8))


def _leaf(space: gym.Space, path: tuple) -> _Leaf:
    if isinstance(space, gym.spaces.Discrete):
        return _discrete(space)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return _multi_discrete(space)
    if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating):
        return _box(space)
    if isinstance(space, gym.spaces.MultiBinary):
        return _multi_binary(space)
    where = f" at {'/'.join(map(str, path))}" if path else ""
    raise ValueError(f"action space {space}{where} is not supported; supported are "
                     f"{SUPPORTED}.")


class ActionLayout:
    """Where each leaf of an action space sits in the flat action vector, and the way back."""

    def __init__(self, space: gym.Space):
        self.space = space
        self._structure = self._walk(space, ())
        leaves = list(self._leaves(self._structure))
        self.nvec = tuple(n for leaf in leaves for n in leaf.nvec)
        self.continuous = sum(leaf.size for leaf in leaves if leaf.group == "continuous")
        self.binary = sum(leaf.size for leaf in leaves if leaf.group == "binary")
        if not leaves or not (self.nvec or self.continuous or self.binary):
            raise ValueError(f"action space {space} has no action entries; supported are "
                             f"{SUPPORTED}.")
        offsets = {"categorical": 0, "continuous": len(self.nvec),
                   "binary": len(self.nvec) + self.continuous}
        for leaf in leaves:
            leaf.at = slice(offsets[leaf.group], offsets[leaf.group] + leaf.size)
            offsets[leaf.group] += leaf.size

    @property
    def width(self) -> int:
        return len(self.nvec) + self.continuous + self.binary

    def _walk(self, space: gym.Space, path: tuple):
        if isinstance(space, gym.spaces.Tuple):
            return tuple(self._walk(s, (*path, i)) for i, s in enumerate(space.spaces))
        if isinstance(space, gym.spaces.Dict):
            return {k: self._walk(s, (*path, k)) for k, s in space.spaces.items()}
        return _leaf(space, path)

    def _leaves(self, node):
        if isinstance(node, tuple):
            for child in node:
                yield from self._leaves(child)
        elif isinstance(node, dict):
            for child in node.values():
                yield from self._leaves(child)
        else:
            yield node

    def to_env(self, flat: np.ndarray):
        """The env's action for one flat action vector (width,)."""
        return self._build(self._structure, np.asarray(flat))

    def _build(self, node, flat: np.ndarray):
        if isinstance(node, tuple):
            return tuple(self._build(child, flat) for child in node)
        if isinstance(node, dict):
            return {k: self._build(child, flat) for k, child in node.items()}
        return node.to_env(flat[node.at])


# --------------------------------------------------------------------------------------
# Action masks
# --------------------------------------------------------------------------------------

def mask_in_observation(space: gym.Space) -> bool:
    """Whether observations carry the mask as an `action_mask` entry of a Dict (the
    PettingZoo convention)."""
    return isinstance(space, gym.spaces.Dict) and MASK_KEY in space.spaces


class ActionMasks(gym.Wrapper):
    """Puts an env's action mask into info["action_mask"] as a bool (sum(nvec),) array,
    checked, at every reset and step. The env supplies it either as info["action_mask"] or
    as an `action_mask` entry of a Dict observation (removed from the observation here).
    Accepted forms: one flat 0/1 array of sum(nvec) values, or a tuple of one array per
    categorical entry (gymnasium's MultiDiscrete.sample(mask=...) convention)."""

    def __init__(self, env: gym.Env, nvec: tuple[int, ...]):
        super().__init__(env)
        if not nvec:
            raise ValueError(f"the environment supplies an action mask, but its action space "
                             f"{env.action_space} has no Discrete or MultiDiscrete part to "
                             f"mask; masks cover categorical actions only.")
        self.nvec, self.size = np.asarray(nvec), int(sum(nvec))
        self.offsets = np.concatenate([[0], np.cumsum(self.nvec)])
        self.in_observation = mask_in_observation(env.observation_space)
        if self.in_observation:
            rest = {k: s for k, s in env.observation_space.spaces.items() if k != MASK_KEY}
            if not rest:
                raise ValueError(f"observation space {env.observation_space} holds only the "
                                 f"action mask; the policy needs something to observe.")
            self.observation_space = gym.spaces.Dict(rest)
        self.steps = 0

    def reset(self, **kwargs):
        self.steps = 0
        return self._split(*self.env.reset(**kwargs))

    def step(self, action):
        self.steps += 1
        observation, reward, terminated, truncated, info = self.env.step(action)
        observation, info = self._split(observation, info)
        return observation, reward, terminated, truncated, info

    def _split(self, observation, info: dict):
        if self.in_observation:
            observation = dict(observation)
            mask = observation.pop(MASK_KEY)
        elif MASK_KEY in info:
            mask = info[MASK_KEY]
        else:
            raise ValueError(f"step {self.steps} of an episode gave no {MASK_KEY!r} in its "
                             f"info, although the environment supplied one at reset; an "
                             f"environment that masks actions must supply the mask at every "
                             f"reset and step.")
        return observation, {**info, MASK_KEY: self._checked(mask)}

    def _checked(self, mask) -> np.ndarray:
        parts = mask if isinstance(mask, (tuple, list)) else (mask,)
        flat = np.concatenate([np.asarray(p).reshape(-1) for p in parts])
        if flat.size != self.size or not np.isin(flat, (0, 1)).all():
            raise ValueError(f"step {self.steps}: action_mask {flat.tolist()[:20]} is not "
                             f"{self.size} values of 0 or 1 (one per choice of the action "
                             f"entries {self.nvec.tolist()}).")
        flat = flat.astype(bool)
        allowed = np.add.reduceat(flat, self.offsets[:-1])
        if not allowed.all():
            entry = int(np.flatnonzero(allowed == 0)[0])
            raise ValueError(f"step {self.steps}: action_mask allows no choice of action "
                             f"entry {entry} (of {self.nvec.tolist()}); at least one must "
                             f"be allowed.")
        return flat


def find_wrapper(env: gym.Env, kind: type) -> Optional[gym.Env]:
    """The first wrapper of type `kind` in env's chain, or None."""
    while True:
        if isinstance(env, kind):
            return env
        if not isinstance(env, gym.Wrapper):
            return None
        env = env.env
