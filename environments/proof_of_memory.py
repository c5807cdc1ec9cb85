"""ProofOfMemory-v0: the smallest task that a policy without memory cannot solve.

A 1-D corridor of integer positions -N..N; the agent starts at 0. The first observation shows a
cue saying which end is the rewarding exit, and the agent is frozen for the first
`freeze_steps` steps, so by the time it can move the cue has disappeared. A memoryless policy
sees the same observations whichever exit is good, so its expected return is 0; a policy that
remembers the cue earns +1 every episode.

Observation (float32, 3): [cue, position / N, frozen_flag]
  cue: +1 = the LEFT exit (-N) rewards, -1 = the RIGHT exit (+N) rewards; shown only in the
       observation returned by reset(), 0 afterwards.
  frozen_flag: 1 while the next action cannot move the agent, 0 afterwards.
Actions: Discrete(2), 0 = left, 1 = right.
Reaching -N or +N terminates the episode with +1 at the good exit and -1 at the wrong one.
After `max_episode_steps` steps without reaching an exit the episode is truncated with 0.
info at the end of every episode holds "success": 1.0 for the good exit, else 0.0.

render() always colours the good exit green and the wrong one red (also after the cue has
disappeared from the observation), so that a viewer of a video can judge the agent's choice.
The agent is yellow while frozen and blue when it can move.
"""
from __future__ import annotations

from typing import Any, Optional

import gymnasium as gym
import numpy as np

from environments import Family, register_family

DEFAULT_PARAMS = {"corridor_length": 2, "freeze_steps": 2, "max_episode_steps": 16}

LEFT, RIGHT = 0, 1
CELL_PIXELS = 32
_FLOOR = (40, 40, 40)
_GOOD_EXIT = (0, 200, 0)
_BAD_EXIT = (200, 0, 0)
_AGENT_FROZEN = (230, 200, 0)
_AGENT_FREE = (40, 120, 255)


def check_params(reset_params: dict) -> dict:
    """The defaults updated with `reset_params`; ValueError for unknown keys or bad values."""
    unknown = sorted(set(reset_params) - set(DEFAULT_PARAMS))
    if unknown:
        raise ValueError(f"environment.reset_params has unknown key(s) {unknown} for "
                         f"proof_of_memory. Fix: use only {sorted(DEFAULT_PARAMS)}.")
    params = {**DEFAULT_PARAMS, **reset_params}
    minimum = {"corridor_length": 1, "freeze_steps": 0, "max_episode_steps": 1}
    for key, low in minimum.items():
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"environment.reset_params.{key} = {value!r}: must be an "
                             f"integer >= {low}. Fix: use e.g. {DEFAULT_PARAMS[key]}.")
    shortest_episode = params["freeze_steps"] + params["corridor_length"]
    if params["max_episode_steps"] < shortest_episode:
        raise ValueError(
            f"environment.reset_params.max_episode_steps = {params['max_episode_steps']} "
            f"leaves no time to reach an exit, which takes freeze_steps + corridor_length = "
            f"{shortest_episode} steps. Fix: use max_episode_steps >= {shortest_episode}.")
    return {key: int(value) for key, value in params.items()}


class ProofOfMemoryEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, render_mode: Optional[str] = None, **reset_params):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"ProofOfMemory-v0: render_mode = {render_mode!r}: supported are "
                             f"None and 'rgb_array'.")
        params = check_params(reset_params)
        self.render_mode = render_mode
        self.corridor_length = params["corridor_length"]
        self.freeze_steps = params["freeze_steps"]
        self.max_episode_steps = params["max_episode_steps"]
        self.observation_space = gym.spaces.Box(
            low=np.array([-1.0, -1.0, 0.0], dtype=np.float32),
            high=np.array([1.0, 1.0, 1.0], dtype=np.float32), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self._position = 0
        self._t = 0
        self._good_exit = -self.corridor_length

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        if options:
            raise ValueError(f"ProofOfMemory-v0 takes no reset options, got {options}; set "
                             f"corridor_length etc. in environment.reset_params instead.")
        left_is_good = bool(self.np_random.integers(2))
        self._good_exit = -self.corridor_length if left_is_good else self.corridor_length
        self._position = 0
        self._t = 0
        return self._observation(), {}

    def step(self, action: Any):
        move = self._move_of(action)
        if self._is_frozen():
            move = 0
        self._position += move
        self._t += 1
        terminated = abs(self._position) == self.corridor_length
        truncated = not terminated and self._t >= self.max_episode_steps
        reward, info = 0.0, {}
        if terminated:
            success = self._position == self._good_exit
            reward = 1.0 if success else -1.0
            info["success"] = float(success)
        elif truncated:
            info["success"] = 0.0
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> np.ndarray:
        cells = 2 * self.corridor_length + 1
        frame = np.empty((CELL_PIXELS, cells * CELL_PIXELS, 3), dtype=np.uint8)
        frame[:] = _FLOOR
        self._paint_cell(frame, self._good_exit, _GOOD_EXIT, margin=0)
        self._paint_cell(frame, -self._good_exit, _BAD_EXIT, margin=0)
        agent_colour = _AGENT_FROZEN if self._is_frozen() else _AGENT_FREE
        self._paint_cell(frame, self._position, agent_colour, margin=CELL_PIXELS // 4)
        return frame

    def _paint_cell(self, frame: np.ndarray, position: int, colour, margin: int) -> None:
        left = (position + self.corridor_length) * CELL_PIXELS
        frame[margin:CELL_PIXELS - margin, left + margin:left + CELL_PIXELS - margin] = colour

    def _is_frozen(self) -> bool:
        return self._t < self.freeze_steps

    def _observation(self) -> np.ndarray:
        cue = 0.0
        if self._t == 0:
            cue = 1.0 if self._good_exit < 0 else -1.0
        return np.array([cue, self._position / self.corridor_length, float(self._is_frozen())],
                        dtype=np.float32)

    @staticmethod
    def _move_of(action: Any) -> int:
        value = np.asarray(action).reshape(-1)
        if value.size != 1 or value[0] not in (LEFT, RIGHT):
            raise ValueError(f"ProofOfMemory-v0: action {action!r} is not 0 (left) or 1 (right).")
        return -1 if int(value[0]) == LEFT else 1


def make(env_config, render: bool = False) -> gym.Env:
    """The proof-of-memory corridor; env_config.name is ignored (there is one variant)."""
    return ProofOfMemoryEnv(render_mode="rgb_array" if render else None,
                            **env_config.reset_params)


register_family(Family(
    name="proof_of_memory", make=make, example="ProofOfMemory-v0",
    backends=("vector", "processes"),
    check=lambda env_config: check_params(env_config.reset_params),
    summary="ProofOfMemory-v0: a corridor whose rewarding exit is shown only at the first step "
            "(reset_params: corridor_length, freeze_steps, max_episode_steps)."))
