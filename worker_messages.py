"""What the worker pool and its environment processes send each other, and the shared
memory the observations travel through (worker_pool.py): typed records, a Command to a
process, a Reply or a Failure back (a Step's reply value is env_backends.env_slice.SliceStep).

Like worker_pool.py, this module must not import torch.
"""
from __future__ import annotations

from multiprocessing import shared_memory
from typing import Any, NamedTuple, Optional, Union

import numpy as np


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
    seeds: Optional[list[int]] = None    # the episodes' own seeds, else the next training seeds


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
