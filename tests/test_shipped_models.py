"""Every model shipped in models/ still solves its task on held-out seeds."""
import os

import numpy as np
import pytest
import torch

from agent import load_agent, play_episode
from environments import make_env
from worker_pool import HELD_OUT_SEED_START

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# model file -> (held-out seeds to play, mean return that counts as solved)
SHIPPED = {"proof_of_memory.nn": (20, 0.9), "cartpole_masked.nn": (3, 400.0)}


def mean_return(path: str, n_seeds: int) -> float:
    agent, config, _ = load_agent(path, 1, torch.device("cpu"))
    env = make_env(config.environment)
    returns = [play_episode(agent, env, seed, deterministic=True).total_return
               for seed in range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + n_seeds)]
    env.close()
    return float(np.mean(returns))


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_solves_its_task(name):
    path = os.path.join(ROOT, "models", name)
    if not os.path.exists(path):
        pytest.skip(f"{name} is not shipped yet")
    n_seeds, solved = SHIPPED[name]
    assert mean_return(path, n_seeds) >= solved
