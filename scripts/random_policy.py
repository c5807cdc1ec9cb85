"""Chance level of a task: uniformly random actions on evaluate.py's held-out seeds.

    python scripts/random_policy.py configs/mystery_path_grid.yaml --n-seeds 100

Prints the mean return, success and length of one episode per seed, so a trained agent's
held-out score can be read against what no learning at all gives (docs/results.md quotes it
for MiniGrid and the Memory Gym Grid tasks). The actions are seeded from each environment seed: the same command
prints the same figures.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from config import load_config  # noqa: E402
from environments import make_env  # noqa: E402
from environments.episodes import held_out_seeds  # noqa: E402


def play(env, seed: int) -> tuple[float, int, float | None]:
    """One episode of random actions on environment seed `seed`: return, length, success."""
    env.action_space.seed(seed)
    env.reset(seed=seed)
    total, length, done, info = 0.0, 0, False, {}
    while not done:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        total, length, done = total + float(reward), length + 1, terminated or truncated
    return total, length, float(info["success"]) if "success" in info else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="a training config; its environment is played")
    parser.add_argument("--n-seeds", type=int, default=100,
                        help="held-out environment seeds, one episode each (default: 100)")
    args = parser.parse_args(argv)
    if args.n_seeds < 1:
        parser.error(f"--n-seeds {args.n_seeds}: play at least one episode")
    try:
        config = load_config(args.config)
        env = make_env(config.environment)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        episodes = [play(env, seed) for seed in held_out_seeds(args.n_seeds)]
    finally:
        env.close()
    returns, lengths, successes = zip(*episodes)
    line = (f"{config.environment.name}, random actions, {args.n_seeds} held-out seeds: "
            f"return {np.mean(returns):.3f} (standard error "
            f"{np.std(returns) / np.sqrt(len(returns)):.3f}), length {np.mean(lengths):.1f}")
    if None not in successes:
        line += f", success {np.mean(successes):.3f}"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
