"""Train a PPO agent with TrXL/GTrXL episodic memory.

    python train.py                                   # the proof-of-memory task
    python train.py --config configs/minigrid_memory.yaml --run-id minigrid --seed 1
    python train.py --config configs/proof_of_memory.yaml --run-id pom --seeds 0 1 2 3 4
    python train.py --resume models/minigrid.nn      # continue exactly where it stopped

Ctrl-C or SIGTERM saves the last completed update and stops the workers; a second Ctrl-C
exits at once.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Optional

import process_setup  # noqa: F401  (before torch)

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs",
                              "proof_of_memory.yaml")
MIN_FREE_BYTES = 100 * 2**20


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML config file (default: the proof-of-memory task)")
    parser.add_argument("--run-id", help="names models/RUN.nn and summaries/RUN/ (default: run)")
    parser.add_argument("--seed", type=int, help="overrides the config's seed")
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="train one run per seed, one after another: RUN_seedN")
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"],
                        help="overrides the config's device")
    parser.add_argument("--updates", type=int, help="overrides the config's number of updates")
    parser.add_argument("--resume", metavar="MODEL_OR_RUN",
                        help="continue a run from models/RUN.nn (a path or a run id)")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--summaries-dir", default="summaries")
    args = parser.parse_args(argv)
    if args.run_id is not None and (not args.run_id or any(c in args.run_id for c in "/\\")
                                    or args.run_id.startswith(".")):
        parser.error(f"--run-id {args.run_id!r}: must be a plain name (no slashes, not hidden)")
    if args.updates is not None and args.updates < 1:
        parser.error(f"--updates {args.updates}: must be at least 1")
    if args.seed is not None and args.seeds:
        parser.error("--seed and --seeds: give one or the other")
    for seed in [args.seed] + (args.seeds or []):
        if seed is not None and seed < 0:
            parser.error(f"seed {seed}: seeds must not be negative")
    if args.resume and (args.config or args.seeds or args.seed is not None):
        parser.error("--resume continues a run with its own config and seed: drop --config, "
                     "--seed and --seeds")
    return args


def check_output_folders(*folders: str) -> None:
    """Fail before training, not after hours, when results could not be written."""
    for folder in folders:
        try:
            os.makedirs(folder, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder):
                pass
        except OSError as e:
            raise SystemExit(f"error: cannot write to {folder}/ ({e.strerror}). Fix: make it "
                             f"writable or pass another --models-dir/--summaries-dir.") from None
        free = shutil.disk_usage(folder).free
        if free < MIN_FREE_BYTES:
            raise SystemExit(f"error: only {free / 2**20:.0f} MiB free for {folder}/; model "
                             f"files and summaries need more. Fix: free disk space.")


class Interrupts:
    """SIGTERM is handled like Ctrl-C; after the first, a second Ctrl-C exits at once."""

    def __enter__(self) -> "Interrupts":
        self.previous = signal.signal(signal.SIGTERM, self._first)
        return self

    def _first(self, signum, frame):
        raise KeyboardInterrupt

    def escalate(self) -> None:
        def second(signum, frame):
            print("\nsecond interrupt: exiting now, without saving", file=sys.stderr, flush=True)
            os._exit(130)
        signal.signal(signal.SIGINT, second)
        signal.signal(signal.SIGTERM, second)

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGTERM, self.previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def train_one(config, run_id: str, args, resume=None) -> int:
    from trainer import NonFiniteError, Trainer
    with Interrupts() as interrupts:
        try:
            trainer = Trainer(config, run_id, args.models_dir, args.summaries_dir, resume)
        except KeyboardInterrupt:
            print("\ninterrupted while starting: nothing to save", file=sys.stderr)
            return 130
        except ValueError as e:                # e.g. an environment space no model takes
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"run {run_id}: {config.environment.type}/{config.environment.name}, "
              f"{config.n_workers} workers x {config.worker_steps} steps, update "
              f"{trainer.update}/{config.updates}, device {trainer.device}, {trainer.threads} "
              f"torch threads, seed {config.seed}", flush=True)
        start, status = time.time(), 0
        try:
            trainer.run()
        except KeyboardInterrupt:
            interrupts.escalate()
            print(f"\ninterrupted: saving update {trainer.snapshot['update']}", flush=True)
            status = 130
        except (NonFiniteError, RuntimeError) as e:
            interrupts.escalate()
            print(f"error: {e}\nsaving the last completed update ({trainer.snapshot['update']})",
                  file=sys.stderr, flush=True)
            status = 1
        finally:
            trainer.close()
        path = trainer.save()
        resume_hint = f"; continue with: python train.py --resume {path}" if status else ""
        # The saved snapshot's counters: an interrupt can land between an update's counters.
        saved = trainer.snapshot
        print(f"saved {path} after {saved['update']} updates, {saved['steps']:,} steps, "
              f"{time.time() - start:.0f} s{resume_hint}", flush=True)
        return status


def latest_model_file(models_dir: str, run: str) -> Optional[str]:
    """The newest of models_dir/RUN.nn and RUN/update_*.nn, or None. Trainer writes the
    periodic file before RUN.nn, so a kill between the two leaves RUN.nn one interval behind."""
    files = [os.path.join(models_dir, f"{run}.nn")] + glob.glob(
        os.path.join(glob.escape(models_dir), glob.escape(run), "update_*.nn"))
    saved = [path for path in files if os.path.isfile(path)]
    return max(saved, key=os.path.getmtime) if saved else None


def resumed(args):
    """The payload, config and run id of the run to resume (--resume PATH or RUN)."""
    from config import ConfigError
    from utils import load_model_file
    if args.resume.endswith(".nn") or os.sep in args.resume:
        path, run_id = args.resume, os.path.splitext(os.path.basename(args.resume))[0]
    else:
        run_id = args.resume
        path = latest_model_file(args.models_dir, run_id) or \
            os.path.join(args.models_dir, f"{run_id}.nn")
    try:
        payload, config = load_model_file(path)
    except (ValueError, ConfigError) as e:
        raise SystemExit(f"error: {e}") from None
    if "sampler" not in payload:
        raise SystemExit(f"error: {path} holds weights but no training state to resume.")
    return payload, config, run_id


def main(argv=None) -> int:
    args = parse_args(argv)
    from config import ConfigError, load_config
    overrides = {k: v for k, v in (("seed", args.seed), ("device", args.device),
                                   ("updates", args.updates)) if v is not None}
    if args.resume:
        payload, config, run_id = resumed(args)
        config = dataclasses.replace(config, **overrides)
        check_output_folders(args.models_dir, args.summaries_dir)
        return train_one(config, args.run_id or run_id, args, payload)
    try:
        config = load_config(args.config or DEFAULT_CONFIG, overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    check_output_folders(args.models_dir, args.summaries_dir)
    run_id = args.run_id or "run"
    if not args.seeds:
        return train_one(config, run_id, args)
    for seed in args.seeds:
        status = train_one(dataclasses.replace(config, seed=seed), f"{run_id}_seed{seed}", args)
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
