"""MiniGrid tasks (meant for the Memory ones) seen through a 3x3 RGB window with 3 actions.

Observation: the agent's partial view rendered at 28 pixels per tile, uint8 (84, 84, 3) for
the default agent_view_size of 3; the mission text is dropped (constant within a task).
environment.reset_params.tile_pixels renders fewer pixels per tile: at 12 the view is
(36, 36, 3), the smallest image the Nature CNN takes, and the CNN costs about a tenth of its
84x84 cost (the tiles are flat colours and shapes, which 12 pixels still draw apart).
Actions: Discrete(3), 0 = turn left, 1 = turn right, 2 = forward (MiniGrid's own numbers);
pickup, drop, toggle and done are never needed in the Memory tasks.
info at the end of an episode holds "success": 1.0 if the final reward is positive (MiniGrid
rewards only reaching the goal), else 0.0, and "start_column": the agent's x at reset. In the
Memory tasks the start column decides whether the cue is in view without turning round, so
evaluate.py's scores.csv can break success down by it (scripts/breakdown.py); "cue_seen" is
1.0 if the start room's cue object was ever inside the agent's view square during the episode
(a run's TensorBoard logs its mean as episode/cue_seen: the share of episodes in which the
agent looked at what it must remember).
The other environment.reset_params go to gym.make as keyword arguments (e.g. max_steps) and
override the defaults here (agent_view_size=3).
render(): the full grid as an RGB frame (MiniGrid's render_mode="rgb_array").
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from environments import Family, register_family
from environments.gym_env import make_registered

TILE_PIXELS = 28
# The Nature CNN's three convolutions (8/4, 4/2, 3/1) need an image of at least 36 pixels.
MIN_VIEW_PIXELS = 36
DEFAULT_KWARGS = {"agent_view_size": 3}
N_ACTIONS = 3


class AgentViewImage(gym.ObservationWrapper):
    """Replaces the observation dict by the RGB rendering of the agent's partial view."""

    def __init__(self, env: gym.Env, tile_pixels: int = TILE_PIXELS):
        super().__init__(env)
        self.tile_pixels = tile_pixels
        side = env.unwrapped.agent_view_size * tile_pixels
        self.observation_space = gym.spaces.Box(0, 255, (side, side, 3), dtype=np.uint8)

    def observation(self, observation) -> np.ndarray:
        # get_frame on the unwrapped env: reaching it through the wrapper chain is deprecated.
        return self.env.unwrapped.get_frame(tile_size=self.tile_pixels, agent_pov=True)


class TurnAndForward(gym.ActionWrapper):
    """Only the navigation actions 0, 1 and 2, which keep their MiniGrid numbers."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.action_space = gym.spaces.Discrete(N_ACTIONS)

    def action(self, action) -> int:
        value = np.asarray(action).reshape(-1)
        if value.size != 1 or value[0] not in range(N_ACTIONS):
            raise ValueError(f"minigrid: action {action!r} is not 0 (left), 1 (right) or "
                             f"2 (forward).")
        return int(value[0])


class SuccessFromFinalReward(gym.Wrapper):
    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = {**info, "success": float(reward > 0)}
        return observation, reward, terminated, truncated, info


class StartColumn(gym.Wrapper):
    """Adds "start_column" (the agent's x at reset) to the final info of each episode."""

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        self.start_column = int(self.env.unwrapped.agent_pos[0])
        return observation, info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = {**info, "start_column": self.start_column}
        return observation, reward, terminated, truncated, info


class CueSeen(gym.Wrapper):
    """Adds "cue_seen" to the final info: was the cue (MemoryEnv puts it at column 1, one row
    above the corridor) inside the agent's view square at reset or after any step?"""
    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        self.cue = (1, self.env.unwrapped.height // 2 - 1)
        self.seen = self._in_view()
        return observation, info

    def _in_view(self) -> bool:
        return bool(self.env.unwrapped.in_view(*self.cue))

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.seen = self.seen or self._in_view()
        if terminated or truncated:
            info = {**info, "cue_seen": float(self.seen)}
        return observation, reward, terminated, truncated, info


def make(env_config, render: bool = False) -> gym.Env:
    import minigrid  # noqa: F401  (importing registers the MiniGrid ids with gymnasium)
    if not env_config.name.startswith("MiniGrid-"):
        raise ValueError(f"minigrid: environment.name = {env_config.name!r} is not a MiniGrid "
                         f"id. Fix: use e.g. MiniGrid-MemoryS9-v0.")
    kwargs = {**DEFAULT_KWARGS, **env_config.reset_params}
    tile_pixels = kwargs.pop("tile_pixels", TILE_PIXELS)
    env = make_registered(env_config.name, kwargs, render)
    view = AgentViewImage(env, tile_pixels)
    return CueSeen(StartColumn(SuccessFromFinalReward(TurnAndForward(view))))


def check(env_config) -> None:
    if not env_config.name.startswith("MiniGrid-Memory"):
        raise ValueError(f"environment.name = {env_config.name!r}: the minigrid type wraps the "
                         f"Memory tasks. Fix: use MiniGrid-MemoryS9-v0 (or S7, S11, S13...), "
                         f"or type: gymnasium.")
    params = {**DEFAULT_KWARGS, **env_config.reset_params}
    tile, view = params.get("tile_pixels", TILE_PIXELS), params["agent_view_size"]
    if not isinstance(view, int) or view < 1:
        return                      # MiniGrid's own check names a bad agent_view_size
    least = -(-MIN_VIEW_PIXELS // view)
    if not isinstance(tile, int) or isinstance(tile, bool) or tile < least:
        raise ValueError(f"environment.reset_params.tile_pixels = {tile!r}: with agent_view_size "
                         f"{view} the view image must be at least {MIN_VIEW_PIXELS} pixels wide "
                         f"for the CNN. Fix: use an integer tile_pixels of at least {least}.")


register_family(Family(
    name="minigrid", make=make, check=check, example="MiniGrid-MemoryS9-v0",
    summary="MiniGrid's Memory tasks through a 3x3 RGB view with 3 actions."))
