"""Train a PPO agent with TrXL/GTrXL episodic memory.

    python train.py                                   # the proof-of-memory task
    python train.py --config configs/minigrid_memory.yaml --run-id minigrid --seed 1
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import process_setup  # noqa: F401  (before torch)

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs",
                              "proof_of_memory.yaml")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="YAML config file")
    parser.add_argument("--run-id", default="run", help="names models/RUN.nn and summaries/RUN/")
    parser.add_argument("--seed", type=int, help="overrides the config's seed")
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"],
                        help="overrides the config's device")
    parser.add_argument("--updates", type=int, help="overrides the config's number of updates")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--summaries-dir", default="summaries")
    args = parser.parse_args(argv)
    if not args.run_id or any(c in args.run_id for c in "/\\") or args.run_id.startswith("."):
        parser.error(f"--run-id {args.run_id!r}: must be a plain name (no slashes, not hidden)")
    if args.updates is not None and args.updates < 1:
        parser.error(f"--updates {args.updates}: must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from config import ConfigError, load_config
    overrides = {k: v for k, v in (("seed", args.seed), ("device", args.device),
                                   ("updates", args.updates)) if v is not None}
    try:
        config = load_config(args.config, overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from trainer import Trainer
    trainer = Trainer(config, args.run_id, args.models_dir, args.summaries_dir)
    print(f"run {args.run_id}: {config.environment.type}/{config.environment.name}, "
          f"{config.n_workers} workers x {config.worker_steps} steps, {config.updates} updates, "
          f"device {trainer.device}, {trainer.threads} torch threads, seed {config.seed}",
          flush=True)
    start = time.time()
    try:
        trainer.run()
    except KeyboardInterrupt:
        print(f"\ninterrupted at update {trainer.update}: saving what was trained", flush=True)
    finally:
        trainer.close()
    path = trainer.save()
    print(f"saved {path} after {trainer.update} updates, {trainer.steps:,} steps, "
          f"{time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
