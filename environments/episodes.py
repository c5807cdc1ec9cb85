"""What training and evaluation agree on about episodes: which seeds each may use, and which
of an episode's final info values are the environment's own metrics.

Kept apart from worker_pool.py so that enjoy.py and evaluate.py, which play episodes in their
own process, load no worker pool.
"""
from __future__ import annotations

from typing import Iterable

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


def check_held_out(seeds: Iterable[int]) -> None:
    """ValueError if any seed is one that training episodes may use."""
    training = [seed for seed in seeds if seed < HELD_OUT_SEED_START]
    if training:
        raise ValueError(f"evaluation seed(s) {training[:5]} lie below HELD_OUT_SEED_START = "
                         f"{HELD_OUT_SEED_START}, where training episodes are seeded. Fix: "
                         f"evaluate on seeds from {HELD_OUT_SEED_START} on.")


def held_out_seeds(n_seeds: int) -> list[int]:
    """The first `n_seeds` held-out seeds, the ones evaluate.py plays."""
    seeds = [HELD_OUT_SEED_START + i for i in range(n_seeds)]
    check_held_out(seeds)
    return seeds
