"""The shapes a model needs to know about an environment, as a small picklable record.

`SpaceSpec` is stored inside model files that are read back with
`torch.load(weights_only=True)`, which only accepts plain containers, so it converts to and
from a dict of lists, ints and strings.
"""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from environments.adapters import FLOAT_BYTES, PackedImageVector

OBS_DTYPES = ("uint8", "float32")


@dataclass(frozen=True)
class SpaceSpec:
    """Observation shape and dtype, and the number of choices of every action dimension.

    obs_dtype "uint8" means an (H, W, C) image, "float32" an (N,) vector. With image_shape
    (H, W, C) set, the observation is uint8 (H*W*C + 4*N,): an image and N float32 values
    packed into one array (environments.adapters). A Discrete(n) action space is
    action_nvec (n,); a MultiDiscrete space is its nvec.
    """
    obs_shape: tuple[int, ...]
    obs_dtype: str
    action_nvec: tuple[int, ...]
    image_shape: tuple[int, ...] = ()

    def __post_init__(self):
        if self.obs_dtype not in OBS_DTYPES:
            raise ValueError(f"SpaceSpec.obs_dtype = {self.obs_dtype!r}: must be one of "
                             f"{OBS_DTYPES}.")
        if self.image_shape:
            self._check_mixed()
        else:
            self._check_single()
        if not self.action_nvec or min(self.action_nvec) < 1:
            raise ValueError(f"SpaceSpec.action_nvec = {self.action_nvec}: needs at least one "
                             f"action dimension, each with at least one choice.")

    def _check_single(self) -> None:
        expected_dims = 3 if self.obs_dtype == "uint8" else 1
        if len(self.obs_shape) != expected_dims or min(self.obs_shape) < 1:
            raise ValueError(f"SpaceSpec.obs_shape = {self.obs_shape}: a {self.obs_dtype} "
                             f"observation must have {expected_dims} positive dimension(s).")

    def _check_mixed(self) -> None:
        image_bytes = int(np.prod(self.image_shape))
        packed = (len(self.image_shape) == 3 and min(self.image_shape) >= 1
                  and self.obs_dtype == "uint8" and len(self.obs_shape) == 1
                  and self.obs_shape[0] > image_bytes
                  and (self.obs_shape[0] - image_bytes) % FLOAT_BYTES == 0)
        if not packed:
            raise ValueError(f"SpaceSpec: obs_shape {self.obs_shape} ({self.obs_dtype}) with "
                             f"image_shape {self.image_shape}: a packed image and vector must "
                             f"be uint8 (H*W*C + 4*N,) with N >= 1.")

    @property
    def is_image(self) -> bool:
        return self.obs_dtype == "uint8" and not self.image_shape

    @property
    def vector_size(self) -> int:
        """N, the float32 values beside the image of a packed observation."""
        return (self.obs_shape[0] - int(np.prod(self.image_shape))) // FLOAT_BYTES \
            if self.image_shape else 0

    def to_dict(self) -> dict:
        d = {"obs_shape": list(self.obs_shape), "obs_dtype": self.obs_dtype,
             "action_nvec": list(self.action_nvec)}
        if self.image_shape:   # absent otherwise, so model files written before it still match
            d["image_shape"] = list(self.image_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SpaceSpec":
        required = {"obs_shape", "obs_dtype", "action_nvec"}
        if not isinstance(d, dict) or not required <= set(d) <= required | {"image_shape"}:
            found = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"SpaceSpec.from_dict: expected a dict with the keys "
                             f"{sorted(required)} (and optionally image_shape), found {found}. "
                             f"Was it written by to_dict()?")
        return cls(obs_shape=tuple(int(n) for n in d["obs_shape"]), obs_dtype=str(d["obs_dtype"]),
                   action_nvec=tuple(int(n) for n in d["action_nvec"]),
                   image_shape=tuple(int(n) for n in d.get("image_shape", ())))


def space_spec(env: gym.Env) -> SpaceSpec:
    """The SpaceSpec of `env`; ValueError if its spaces are outside what the models support."""
    space = env.observation_space
    packed = isinstance(space, PackedImageVector)
    return SpaceSpec(obs_shape=_obs_shape(space, packed), obs_dtype=str(space.dtype),
                     action_nvec=action_nvec(env.action_space),
                     image_shape=space.image_shape if packed else ())


def _obs_shape(space: gym.Space, packed: bool) -> tuple[int, ...]:
    supported = "a Box of uint8 with shape (H, W, C) or of float32 with shape (N,)"
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"observation space {space} is not supported; supported is {supported}.")
    dtype = str(space.dtype)
    allowed = (("uint8", 1),) if packed else (("uint8", 3), ("float32", 1))
    if (dtype, len(space.shape)) not in allowed:
        raise ValueError(f"observation space {space} is not supported; supported is {supported}.")
    return tuple(int(n) for n in space.shape)


def takes_scalar_action(space: gym.Space) -> bool:
    """Whether env.step expects a plain int (Discrete) rather than an array of them."""
    return isinstance(space, gym.spaces.Discrete)


def action_nvec(space: gym.Space) -> tuple[int, ...]:
    """Choices per action dimension of a Discrete or MultiDiscrete space starting at 0."""
    if isinstance(space, gym.spaces.Discrete) and space.start == 0:
        return (int(space.n),)
    if isinstance(space, gym.spaces.MultiDiscrete) and space.nvec.ndim == 1 \
            and not np.any(space.start):
        return tuple(int(n) for n in space.nvec)
    raise ValueError(f"action space {space} is not supported; supported are Discrete(n) and "
                     f"one-dimensional MultiDiscrete(nvec), both with actions starting at 0 "
                     f"(continuous Box actions are not implemented).")
