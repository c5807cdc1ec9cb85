"""What training and evaluation agree on about episodes: which seeds each may use, and which
of an episode's final info values are the environment's own metrics.

Kept apart from worker_pool.py so that enjoy.py and evaluate.py, which play episodes in their
own process, load no worker pool.
"""
from __future__ import annotations

import numpy as np

# Info keys that EpisodeInfo (and evaluate.py's score file) carries in its own fields rather
# than in `metrics`.
_EPISODE_FIELDS = ("reward", "length", "success", "return")


def final_metrics(info: dict) -> dict[str, float]:
    """The numeric scalars of an episode's final info besides reward, length and success:
    the environment's own metrics (Memory Gym: commands_completed, tiles_visited, ...;
    MiniGrid: start_column). Training logs them; evaluate.py writes them to its scores."""
    numeric = (bool, int, float, np.bool_, np.integer, np.floating)
    return {str(key): float(value) for key, value in info.items()
            if key not in _EPISODE_FIELDS and isinstance(value, numeric)}


# Training episodes use seeds below this; held-out evaluation seeds start here, so the two
# sets never overlap.
HELD_OUT_SEED_START = 2**30


def episode_seed(worker_seed: int, episode: int) -> int:
    """The seed of a worker's `episode`-th episode: reproducible, distinct per (worker,
    episode), always a training seed (< HELD_OUT_SEED_START). Seeding every episode, rather
    than only the first, makes an episode a function of (seed, actions): a run can be resumed
    exactly by replaying the actions of the episodes it was in (WorkerPool.restore)."""
    state = np.random.SeedSequence([worker_seed, episode]).generate_state(1)[0]
    return int(state % HELD_OUT_SEED_START)
