"""Env-only steps/s of the jax backend: random actions through JaxBackend (jit(vmap(step)),
ended envs reset), per number of envs.

    python benchmarks/jax_envs.py --config configs/craftax_symbolic.yaml --envs 64 256 1024

XLA_FLAGS chooses XLA's CPU threads (the backend sets one thread unless XLA_FLAGS is set).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import preflight.process_setup  # noqa: E402,F401

import numpy as np  # noqa: E402


def steps_per_second(env_config, n_envs: int, steps: int) -> float:
    from env_backends.jax_backend import JaxBackend
    envs = JaxBackend(env_config, list(range(n_envs)))
    rng = np.random.default_rng(0)
    n = envs.spec.action_nvec[0]
    for _ in range(3):                                   # compiles, first resets
        envs.step(rng.integers(0, n, (n_envs, 1)))
    start = time.perf_counter()
    for _ in range(steps):
        np.asarray(envs.step(rng.integers(0, n, (n_envs, 1))).obs)
    return n_envs * steps / (time.perf_counter() - start)


def main(argv=None) -> int:
    from config import load_config
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--envs", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per env")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    flags = os.environ.get("XLA_FLAGS", "(the backend's: one XLA thread)")
    for n in args.envs:
        sps = steps_per_second(config.environment, n, args.steps)
        print(f"{config.environment.name}: {n:5d} envs  env-only {sps:9,.0f} steps/s  "
              f"XLA_FLAGS {flags}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
