"""Memory is really used: with a window the proof-of-memory task is solved; the same agent
with memory_length 1 (attending only to the present) stays at chance. A GRU solves it too,
and the memoryless control (memory: none) does not.

Slow-marked (about a minute on 2 cores); run with `make test-slow`."""
import numpy as np
import pytest
import torch

from agent import MemoryAgent, play_episode
from config import load_config
from environments import make_env
from trainer import Trainer
from environments.episodes import HELD_OUT_SEED_START

HELD_OUT_SEEDS = range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + 50)


def train_and_evaluate(tmp_path, memory_length: int = 8, config_name: str = "proof_of_memory") -> float:
    config = load_config(f"configs/{config_name}.yaml",
                         {"transformer.memory_length": memory_length, "updates": 30})
    trainer = Trainer(config, f"{config_name}{memory_length}", str(tmp_path / "models"),
                      str(tmp_path / "summaries"))
    try:
        trainer.run()
    finally:
        trainer.close()
    agent = MemoryAgent(trainer.model, 1, torch.device("cpu"))
    env = make_env(config.environment)
    return float(np.mean([play_episode(agent, env, seed, deterministic=True).total_return
                          for seed in HELD_OUT_SEEDS]))


@pytest.mark.slow
def test_memory_solves_the_task_and_no_memory_does_not(tmp_path):
    assert train_and_evaluate(tmp_path, memory_length=8) >= 0.95
    # Without memory the best policy is a coin flip between the exits: mean return ~0.
    assert train_and_evaluate(tmp_path, memory_length=1) <= 0.5


@pytest.mark.slow
def test_a_gru_solves_the_task_and_the_memoryless_control_does_not(tmp_path):
    assert train_and_evaluate(tmp_path, config_name="proof_of_memory_gru") >= 0.95
    assert train_and_evaluate(tmp_path, config_name="proof_of_memory_none") <= 0.5
