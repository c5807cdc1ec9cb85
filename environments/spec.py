"""The shapes a model needs to know about an environment, as a small picklable record.

`SpaceSpec` is stored inside model files that are read back with
`torch.load(weights_only=True)`, which only accepts plain containers, so it converts to and
from a dict of lists, ints and strings.
"""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from environments.actions import ActionLayout, ActionMasks, find_wrapper
from environments.adapters import FLOAT_BYTES, PackedImageVector

OBS_DTYPES = ("uint8", "float32")
OPTIONAL_ACTION_KEYS = ("action_continuous", "action_binary", "action_mask")


@dataclass(frozen=True)
class SpaceSpec:
    """Observation shape and dtype, and the action groups (environments.actions).

    obs_dtype "uint8" means an (H, W, C) image, "float32" an (N,) vector. With image_shape
    (H, W, C) set, the observation is uint8 (H*W*C + 4*N,): an image and N float32 values
    packed into one array (environments.adapters). action_nvec holds the choices of every
    categorical action entry (a Discrete(n) space is (n,), a MultiDiscrete its nvec),
    action_continuous the number of Box entries, action_binary of MultiBinary entries;
    action_mask says that the env supplies masks over the categorical choices.
    """
    obs_shape: tuple[int, ...]
    obs_dtype: str
    action_nvec: tuple[int, ...]
    image_shape: tuple[int, ...] = ()
    action_continuous: int = 0
    action_binary: int = 0
    action_mask: bool = False

    def actions_outside(self, actions: np.ndarray) -> np.ndarray:
        """Per row of actions (rows, action_width): whether it lies outside the action space."""
        n, c = len(self.action_nvec), self.action_continuous
        categorical = actions[:, :n]
        bad = ((categorical < 0) | (categorical >= np.asarray(self.action_nvec))).any(axis=1)
        if c:           # float actions: the categorical entries must be whole numbers
            bad |= (categorical != np.round(categorical)).any(axis=1) \
                | ~np.isfinite(actions[:, n:n + c]).all(axis=1)
        if self.action_binary:
            bad |= ~np.isin(actions[:, n + c:], (0, 1)).all(axis=1)
        return bad

    def action_space_text(self) -> str:
        return (f"choices per categorical entry {list(self.action_nvec)}, then "
                f"{self.action_continuous} finite continuous and {self.action_binary} binary "
                f"entries")

    def checked_actions(self, actions, rows: int, caller: str) -> np.ndarray:
        """actions as one row per environment of action_dtype; ValueError naming `caller`
        when their shape, kind or any value does not fit the action space."""
        actions = np.asarray(actions)
        expected = (rows, self.action_width)
        numeric = np.issubdtype(actions.dtype, np.integer) or (
            self.action_continuous and np.issubdtype(actions.dtype, np.floating))
        kind = "numbers" if self.action_continuous else "integers"
        if actions.shape != expected or not numeric:
            raise ValueError(f"{caller}: actions have shape {actions.shape} and dtype "
                             f"{actions.dtype}; expected {kind} of shape {expected} (one row "
                             f"per environment, one column per action entry).")
        bad = self.actions_outside(actions)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{caller}: actions[{i}] = {actions[i].tolist()} is outside "
                             f"the action space ({self.action_space_text()}).")
        return actions.astype(self.action_dtype, copy=False)

    def __post_init__(self):
        if self.obs_dtype not in OBS_DTYPES:
            raise ValueError(f"SpaceSpec.obs_dtype = {self.obs_dtype!r}: must be one of "
                             f"{OBS_DTYPES}.")
        if self.image_shape:
            self._check_mixed()
        else:
            self._check_single()
        if min(self.action_nvec, default=1) < 1 or min(self.action_continuous,
                                                        self.action_binary) < 0 \
                or not self.action_width:
            raise ValueError(f"SpaceSpec.action_nvec = {self.action_nvec}, action_continuous "
                             f"= {self.action_continuous}, action_binary = "
                             f"{self.action_binary}: needs at least one action dimension, "
                             f"each categorical one with at least one choice.")
        if self.action_mask and not self.action_nvec:
            raise ValueError("SpaceSpec.action_mask: masks cover categorical actions, and "
                             "action_nvec is empty.")

    @property
    def action_width(self) -> int:
        """Entries of the flat action vector: categorical, then continuous, then binary."""
        return len(self.action_nvec) + self.action_continuous + self.action_binary

    @property
    def action_dtype(self) -> str:
        """The flat vector's dtype: integers, unless a continuous entry makes it float32."""
        return "float32" if self.action_continuous else "int64"

    @property
    def mask_size(self) -> int:
        """Values of one action mask (0 without masks): one per categorical choice."""
        return sum(self.action_nvec) if self.action_mask else 0

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
        # The optional entries only when set, so model files written before them still match.
        if self.image_shape:
            d["image_shape"] = list(self.image_shape)
        for key in OPTIONAL_ACTION_KEYS:
            if getattr(self, key):
                d[key] = getattr(self, key)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SpaceSpec":
        required = {"obs_shape", "obs_dtype", "action_nvec"}
        optional = {"image_shape", *OPTIONAL_ACTION_KEYS}
        if not isinstance(d, dict) or not required <= set(d) <= required | optional:
            found = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"SpaceSpec.from_dict: expected a dict with the keys "
                             f"{sorted(required)} (and optionally {sorted(optional)}), found "
                             f"{found}. Was it written by to_dict()?")
        if not isinstance(d.get("action_mask", False), bool):
            raise ValueError(f"SpaceSpec.from_dict: action_mask = {d['action_mask']!r} is not "
                             f"true or false.")
        return cls(obs_shape=tuple(int(n) for n in d["obs_shape"]), obs_dtype=str(d["obs_dtype"]),
                   action_nvec=tuple(int(n) for n in d["action_nvec"]),
                   image_shape=tuple(int(n) for n in d.get("image_shape", ())),
                   action_continuous=int(d.get("action_continuous", 0)),
                   action_binary=int(d.get("action_binary", 0)),
                   action_mask=d.get("action_mask", False))


def space_spec(env: gym.Env) -> SpaceSpec:
    """The SpaceSpec of `env`; ValueError if its spaces are outside what the models support."""
    space = env.observation_space
    packed = isinstance(space, PackedImageVector)
    actions = ActionLayout(env.action_space)
    return SpaceSpec(obs_shape=_obs_shape(space, packed), obs_dtype=str(space.dtype),
                     action_nvec=actions.nvec, image_shape=space.image_shape if packed else (),
                     action_continuous=actions.continuous, action_binary=actions.binary,
                     action_mask=find_wrapper(env, ActionMasks) is not None)


def _obs_shape(space: gym.Space, packed: bool) -> tuple[int, ...]:
    supported = "a Box of uint8 with shape (H, W, C) or of float32 with shape (N,)"
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"observation space {space} is not supported; supported is {supported}.")
    dtype = str(space.dtype)
    allowed = (("uint8", 1),) if packed else (("uint8", 3), ("float32", 1))
    if (dtype, len(space.shape)) not in allowed:
        raise ValueError(f"observation space {space} is not supported; supported is {supported}.")
    return tuple(int(n) for n in space.shape)
