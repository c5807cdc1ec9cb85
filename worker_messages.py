"""What the worker pool and its environment processes send each other, and the shared
memory the observations travel through (worker_pool.py): typed records, a Command to a
process, a Reply or a Failure back, and the records a step produces.

Like worker_pool.py, this module must not import torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from multiprocessing import shared_memory
from typing import Any, NamedTuple, Optional, Union

import numpy as np


@dataclass(frozen=True)
class EpisodeInfo:
    """One finished episode. `worker` is the environment's index in the pool; reward and length
    are counted by the pool; success comes from info["success"] when the env reports it;
    metrics are the other numeric scalars of the env's final info (e.g. Memory Gym's)."""
    worker: int
    reward: float
    length: int
    success: Optional[float]
    metrics: dict[str, float] = field(default_factory=dict)


class SliceStep(NamedTuple):
    """One process's part of a step: its environments' rewards, flags and finished episodes."""
    rewards: np.ndarray      # float32 (envs of the slice,)
    terminated: np.ndarray   # bool (envs of the slice,)
    truncated: np.ndarray    # bool (envs of the slice,)
    episodes: list[EpisodeInfo]


class StepResult(NamedTuple):
    obs: np.ndarray          # the pool's shared observation array, to act on next
    rewards: np.ndarray      # float32 (n_envs,)
    terminated: np.ndarray   # bool (n_envs,)
    truncated: np.ndarray    # bool (n_envs,)
    episodes: list[EpisodeInfo]


# --------------------------------------------------------------------------------------
# Messages, dispatched by type: a Command to a process, a Reply or a Failure back
# --------------------------------------------------------------------------------------

class Attach(NamedTuple):      # map the pool's shared observation arrays, by block name
    obs_name: str
    final_obs_name: str
    shape: tuple[int, ...]     # (n_envs, *obs_shape): the whole pool's arrays
    dtype: str
    mask_name: Optional[str]   # the action-mask block, where the envs supply masks
    mask_size: int


class Reset(NamedTuple):       # start every environment's next episode
    pass


class Step(NamedTuple):        # step every environment of the slice; replied: a SliceStep
    actions: np.ndarray        # (envs of the slice, action width): int, or float32 with Box


class Restore(NamedTuple):     # put each environment back into a recorded episode
    episodes: list[int]
    actions: list[np.ndarray]


class Close(NamedTuple):       # close the environments and exit
    pass


Command = Union[Attach, Reset, Step, Restore, Close]


class Reply(NamedTuple):       # a command done
    value: Any                 # the spec dict after start-up, a SliceStep after Step, or None


class Failure(NamedTuple):     # a command raised in the process
    env_in_slice: Optional[int]    # the environment being worked on, if any
    traceback: str
    replay: Optional[str] = None   # set when a Restore's recorded episode did not replay


class ReplayMismatch(ValueError):
    """A recorded episode did not replay (Restore): the record is not this environment's
    (an altered or foreign checkpoint) or the environment is not deterministic."""


# --------------------------------------------------------------------------------------
# Shared memory
# --------------------------------------------------------------------------------------

class SharedArray:
    """numpy's view of a shared memory block that keeps the block mapped while it is used.

    Arrays made by np.asarray(self) have this object as their base, so the mapping lives
    until the last of them (slices a caller kept included) is gone. Arrays that exported the
    SharedMemory's own buffer would instead make closing it raise BufferError for as long as
    a caller holds, say, the array that reset() returned.
    """

    def __init__(self, shm: shared_memory.SharedMemory, shape: tuple[int, ...], dtype: str):
        self._shm = shm
        # The temporary array only reads the block's address; it is released at once.
        address = np.frombuffer(shm.buf, dtype=np.uint8).__array_interface__["data"][0]
        self.__array_interface__ = {"shape": tuple(shape), "typestr": np.dtype(dtype).str,
                                    "data": (address, False), "version": 3}


def shared_array(shm: shared_memory.SharedMemory, shape: tuple[int, ...],
                  dtype: str) -> np.ndarray:
    array = np.asarray(SharedArray(shm, shape, dtype))
    assert array.nbytes <= shm.size, "shared memory block smaller than the array"
    return array
