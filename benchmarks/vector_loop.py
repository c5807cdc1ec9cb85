"""Env-only steps/s of the in-process vector backend's plain loop against gymnasium's
SyncVectorEnv (autoreset in the same step, as the sampler needs the final observation), on
the same environments with the same random actions.

    python benchmarks/vector_loop.py --config configs/proof_of_memory.yaml --steps 2000

SyncVectorEnv would also reset ended envs without a seed, which the backend cannot accept
(a resumed run replays seeded episodes); the figure says what the loop costs beside it.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import preflight.process_setup  # noqa: E402,F401

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402


def loop_steps_per_second(env_config, n_envs: int, actions: np.ndarray) -> float:
    from env_backends.vector import VectorBackend
    with VectorBackend(env_config, list(range(n_envs))) as envs:
        envs.reset()
        start = time.perf_counter()
        for step_actions in actions:
            envs.step(step_actions)
        return actions.shape[0] * n_envs / (time.perf_counter() - start)


def sync_vector_steps_per_second(env_config, n_envs: int, actions: np.ndarray) -> float:
    from environments import make_env
    envs = gym.vector.SyncVectorEnv([lambda: make_env(env_config) for _ in range(n_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    try:
        envs.reset(seed=0)
        flat = actions[..., 0] if actions.shape[-1] == 1 else actions
        start = time.perf_counter()
        for step_actions in flat:
            envs.step(step_actions)
        return actions.shape[0] * n_envs / (time.perf_counter() - start)
    finally:
        envs.close()


def main(argv=None) -> int:
    from config import load_config
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--steps", type=int, default=2000, help="steps per environment")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many rounds")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    from env_backends.vector import VectorBackend
    with VectorBackend(config.environment, [0]) as probe:
        spec = probe.spec
    if spec.action_continuous or spec.action_binary or len(spec.action_nvec) != 1:
        parser.error("the comparison takes one Discrete action")
    rng = np.random.default_rng(0)
    actions = rng.integers(0, spec.action_nvec[0], (args.steps, config.n_workers, 1))
    loop = max(loop_steps_per_second(config.environment, config.n_workers, actions)
               for _ in range(args.rounds))
    sync = max(sync_vector_steps_per_second(config.environment, config.n_workers, actions)
               for _ in range(args.rounds))
    print(f"{args.config}: {config.n_workers} envs, env-only steps/s: plain loop {loop:,.0f}, "
          f"SyncVectorEnv {sync:,.0f} (loop / SyncVectorEnv {loop / sync:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
