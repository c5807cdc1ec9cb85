"""Observation adapters: any supported gymnasium observation space as what the models take.

The models take one observation array per step, of one of three layouts:
- image:  uint8 (H, W, C), a Box of that dtype and rank, passed through unchanged;
- vector: float32 (N,), everything else flattened and concatenated;
- mixed:  one image and a vector, packed into one flat uint8 array
          [ H*W*C image bytes | the N float32 values' 4*N bytes ]
          so that storage, shared memory and the buffer keep one array per step; the model's
          MixedEncoder unpacks it (image through the CNN, vector beside its embedding).

Leaves are converted as follows, composites (Tuple in index order, Dict in the space's key
order) concatenated in that order:

    Box uint8 (H, W, C)        image (at most one per observation)
    other Box                  flattened to float32
    Discrete(n, start)         one-hot of x - start, n values
    MultiDiscrete(nvec, start) one one-hot per dimension, concatenated (sum(nvec) values)
    MultiBinary(n)             its bits as float32

Text, Graph, Sequence, OneOf and any other space are refused with a ValueError naming the
space. One-hot inputs are how POPGym's own baselines feed its Discrete and MultiDiscrete
observations (Morad et al., ICLR 2023).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import gymnasium as gym
import numpy as np

SUPPORTED = ("Box (a uint8 (H, W, C) image, or anything that flattens to a vector), Discrete, "
             "MultiDiscrete, MultiBinary, and Tuple or Dict of those with at most one image")
FLOAT_BYTES = 4


def is_image_space(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


class PackedImageVector(gym.spaces.Box):
    """The mixed layout's space: uint8 (H*W*C + 4*N,), remembering the image's shape."""

    def __init__(self, image_shape: tuple[int, ...], vector_size: int):
        self.image_shape = tuple(image_shape)
        size = int(np.prod(image_shape)) + FLOAT_BYTES * vector_size
        super().__init__(0, 255, (size,), dtype=np.uint8)


@dataclass(frozen=True)
class Leaf:
    """One vector part of an observation: where it is, its width, and how to encode it."""
    path: tuple                                   # keys/indices from the root to this leaf
    size: int
    encode: Callable[[np.ndarray], np.ndarray]    # raw value -> float32 (size,)


def _one_hot(n: int, start: int) -> Callable[[np.ndarray], np.ndarray]:
    def encode(value) -> np.ndarray:
        out = np.zeros(n, np.float32)
        out[int(value) - start] = 1.0
        return out
    return encode


def _multi_one_hot(nvec: np.ndarray, start: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])      # first slot of each dimension

    def encode(value) -> np.ndarray:
        out = np.zeros(int(nvec.sum()), np.float32)
        out[offsets + (np.asarray(value).reshape(-1) - start)] = 1.0
        return out
    return encode


def _as_float_vector(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float32).reshape(-1)


def _leaf(space: gym.Space, path: tuple) -> Leaf:
    if isinstance(space, gym.spaces.Box):
        return Leaf(path, int(np.prod(space.shape)), _as_float_vector)
    if isinstance(space, gym.spaces.Discrete):
        return Leaf(path, int(space.n), _one_hot(int(space.n), int(space.start)))
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec, start = space.nvec.reshape(-1), np.asarray(space.start).reshape(-1)
        return Leaf(path, int(nvec.sum()), _multi_one_hot(nvec, start))
    if isinstance(space, gym.spaces.MultiBinary):
        return Leaf(path, int(np.prod(space.shape)), _as_float_vector)
    where = f" at {'/'.join(map(str, path))}" if path else ""
    raise ValueError(f"observation space {space}{where} is not supported ({type(space).__name__} "
                     f"cannot be turned into a fixed-size input); supported are {SUPPORTED}.")


def _walk(space: gym.Space, path: tuple, images: list, leaves: list) -> None:
    """Collect the image paths and vector leaves of `space`, depth first, in order."""
    if isinstance(space, gym.spaces.Tuple):
        for i, sub in enumerate(space.spaces):
            _walk(sub, (*path, i), images, leaves)
    elif isinstance(space, gym.spaces.Dict):
        for key, sub in space.spaces.items():
            _walk(sub, (*path, key), images, leaves)
    elif is_image_space(space):
        images.append((path, space))
    else:
        leaves.append(_leaf(space, path))


def _at(observation, path: tuple):
    for key in path:
        observation = observation[key]
    return observation


@dataclass(frozen=True)
class ObservationLayout:
    """What an observation space becomes: an image, a vector, or both (packed)."""
    image_path: Optional[tuple]                   # None: no image
    image_shape: tuple[int, ...]                  # () without an image
    leaves: tuple[Leaf, ...]

    @property
    def vector_size(self) -> int:
        return sum(leaf.size for leaf in self.leaves)

    @property
    def space(self) -> gym.spaces.Box:
        """The adapted observation space."""
        if not self.leaves:
            return gym.spaces.Box(0, 255, self.image_shape, dtype=np.uint8)
        if self.image_path is None:
            return gym.spaces.Box(-np.inf, np.inf, (self.vector_size,), dtype=np.float32)
        return PackedImageVector(self.image_shape, self.vector_size)

    def adapt(self, observation) -> np.ndarray:
        image = None if self.image_path is None else \
            np.asarray(_at(observation, self.image_path), dtype=np.uint8)
        if not self.leaves:
            return image
        vector = np.concatenate([leaf.encode(_at(observation, leaf.path))
                                 for leaf in self.leaves]).astype(np.float32, copy=False)
        if image is None:
            return vector
        # The float32 values' bytes follow the image's (native byte order: the packed array
        # never leaves the machine that wrote it).
        return np.concatenate([image.reshape(-1), vector.view(np.uint8)])


def observation_layout(space: gym.Space) -> ObservationLayout:
    """How `space` is adapted; ValueError naming the part that cannot be."""
    images: list = []
    leaves: list[Leaf] = []
    _walk(space, (), images, leaves)
    if len(images) > 1:
        raise ValueError(f"observation space {space} holds {len(images)} images "
                         f"({', '.join('/'.join(map(str, p)) for p, _ in images)}); at most one "
                         f"image per observation is supported (one CNN encoder). Supported are "
                         f"{SUPPORTED}.")
    if not images and not leaves:
        raise ValueError(f"observation space {space} is empty; supported are {SUPPORTED}.")
    image_path, image_shape = (images[0][0], tuple(int(n) for n in images[0][1].shape)) \
        if images else (None, ())
    return ObservationLayout(image_path, image_shape, tuple(leaves))


def needs_adapting(space: gym.Space) -> bool:
    """False for the two layouts the models take as they are: an image, a float32 vector."""
    if is_image_space(space):
        return False
    return not (isinstance(space, gym.spaces.Box) and space.dtype == np.float32
                and len(space.shape) == 1)


class AdaptObservation(gym.ObservationWrapper):
    """Presents an env's observations in one of the layouts the models take."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.layout = observation_layout(env.observation_space)
        self.observation_space = self.layout.space

    def observation(self, observation) -> np.ndarray:
        return self.layout.adapt(observation)


class PreviousActionReward(gym.Wrapper):
    """Adds the previous action and/or the previous reward (a scalar) to each observation;
    both are zero at the first step of an episode. Many memory and meta-RL agents take them
    as inputs (RL^2, Duan et al. 2016; POPGym's baselines), and on POPGym's tasks they are
    often needed to infer what was asked. The action is encoded as an observation of the
    action space would be (the table above: one one-hot per Discrete or MultiDiscrete entry,
    Box values as they reached the env, MultiBinary bits).

    The observation becomes a Dict {"observation", "previous_action", "previous_reward"}
    (the last two only when asked for), which AdaptObservation then flattens.
    """

    def __init__(self, env: gym.Env, action: bool, reward: bool):
        super().__init__(env)
        assert action or reward, "wrap only when one of the two is asked for"
        self.action_layout = observation_layout(env.action_space)
        self.with_action, self.with_reward = action, reward
        spaces = {"observation": env.observation_space}
        if action:
            spaces["previous_action"] = gym.spaces.Box(-np.inf, np.inf,
                                                       (self.action_layout.vector_size,),
                                                       dtype=np.float32)
        if reward:
            spaces["previous_reward"] = gym.spaces.Box(-np.inf, np.inf, (1,), dtype=np.float32)
        self.observation_space = gym.spaces.Dict(spaces)

    def _observation(self, observation, action, reward: float) -> dict:
        out = {"observation": observation}
        if self.with_action:
            out["previous_action"] = np.zeros(self.action_layout.vector_size, np.float32) \
                if action is None else self.action_layout.adapt(action)
        if self.with_reward:
            out["previous_reward"] = np.array([reward], np.float32)
        return out

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        return self._observation(observation, None, 0.0), info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        return self._observation(observation, action, float(reward)), reward, terminated, \
            truncated, info
