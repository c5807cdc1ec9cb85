"""Where one PPO update's time goes, as shares of the update: the costs that do not grow with
the rollout show up as large shares at small rollout sizes.

    python benchmarks/update_profile.py --config configs/bench/minigrid_original_4x128.yaml
    python benchmarks/update_profile.py --config configs/bench/minigrid_original_4x128.yaml \
        --n-workers 16                   # the same network with 4x the data, for comparison

Every part is timed by wrapping the function that does it (the code under test is unchanged):
sampling (the KV cache's re-projection of the carried-over memory, the buffer's carry-over,
then the sampler's own phases), advantages, optimisation (minibatch gathering, forward and
loss, backward, gradient clipping, optimiser step, the rest), TensorBoard logging, and the
end-of-update snapshot (the checkpoint kept in memory for saving). The first update is a
warm-up and is not counted.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import preflight.process_setup  # noqa: E402,F401  (before torch)


class Timers:
    """Seconds per named part, added up by wrapped functions."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def wrap(self, fn, name: str):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        return timed

    def generator(self, fn, name: str):
        """A generator function whose every resumption (the work between yields) is timed."""
        def timed(*args, **kwargs):
            items = fn(*args, **kwargs)
            while True:
                start = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    return
                finally:
                    self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
                yield item
        return timed


@contextmanager
def patched(patches):
    """Set (owner, attribute, value) triples; restore the originals afterwards."""
    saved = [(owner, attribute, getattr(owner, attribute)) for owner, attribute, _ in patches]
    for owner, attribute, value in patches:
        setattr(owner, attribute, value)
    try:
        yield
    finally:
        for owner, attribute, value in saved:
            setattr(owner, attribute, value)


def profile_updates(trainer, updates: int) -> tuple[dict[str, float], dict[str, float], float]:
    """Seconds per part and per sampling phase over `updates` updates, and their total."""
    import torch
    import trainer as trainer_module
    timers = Timers()
    t = trainer
    patches = [
        (t, "optimise", timers.wrap(t.optimise, "optimisation")),
        (t, "_log", timers.wrap(t._log, "logging (TensorBoard)")),
        (t, "_after_update", timers.wrap(t._after_update, "snapshot for saving")),
        (t.sampler, "collect", timers.wrap(t.sampler.collect, "sampling")),
        (t.sampler.agent, "refresh", timers.wrap(t.sampler.agent.refresh, "  memory refresh (KV cache)")),
        (t.buffer, "carry_over", timers.wrap(t.buffer.carry_over, "  buffer carry-over")),
        (t.buffer, "compute_advantages", timers.wrap(t.buffer.compute_advantages, "advantages")),
        (t.buffer, "minibatches", timers.generator(t.buffer.minibatches, "  minibatch gathering")),
        (trainer_module, "accumulate_gradients",
         timers.wrap(trainer_module.accumulate_gradients, "  forward + backward")),
        (trainer_module, "minibatch_loss", timers.wrap(trainer_module.minibatch_loss, "    forward + loss")),
        (torch.nn.utils, "clip_grad_norm_", timers.wrap(torch.nn.utils.clip_grad_norm_, "  gradient clipping")),
        (t.optimizer, "step", timers.wrap(t.optimizer.step, "  optimiser step")),
        (t.optimizer, "zero_grad", timers.wrap(t.optimizer.zero_grad, "  zero_grad")),
    ]
    phases: dict[str, float] = {}
    total = 0.0
    with patched(patches):
        for _ in range(updates):
            start = time.perf_counter()
            t.train_one_update()
            total += time.perf_counter() - start
            for phase, seconds in dataclasses.asdict(t.sampler.times).items():
                phases[phase] = phases.get(phase, 0.0) + seconds
    return timers.seconds, phases, total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--updates", type=int, default=2, help="profiled updates after a warm-up")
    parser.add_argument("--n-workers", type=int, help="overrides the config's n_workers")
    parser.add_argument("--worker-steps", type=int, help="overrides the config's worker_steps")
    args = parser.parse_args(argv)
    from config import load_config
    from trainer import Trainer
    overrides = {"device": "cpu"}
    for key, value in (("n_workers", args.n_workers), ("worker_steps", args.worker_steps)):
        if value:
            overrides[key] = value
    config = load_config(args.config, overrides)
    out = tempfile.mkdtemp(prefix="trxl-update-profile-")
    trainer = Trainer(config, "profile", os.path.join(out, "models"), os.path.join(out, "summaries"))
    try:
        trainer.train_one_update()                                    # warm-up
        seconds, phases, total = profile_updates(trainer, args.updates)
    finally:
        trainer.close()
        shutil.rmtree(out, ignore_errors=True)
    print(f"config        {args.config} ({config.n_workers} workers x {config.worker_steps} "
          f"steps, {config.epochs} epochs x {config.n_mini_batch} minibatches, "
          f"{trainer.threads} torch threads); shares of {args.updates} updates' wall time")
    seconds["    backward (and the rest of accumulation)"] = (
        seconds.get("  forward + backward", 0.0) - seconds.get("    forward + loss", 0.0))
    order = ["sampling", "  memory refresh (KV cache)", "  buffer carry-over", "advantages",
             "optimisation", "  minibatch gathering", "  forward + backward", "    forward + loss",
             "    backward (and the rest of accumulation)", "  gradient clipping",
             "  optimiser step", "  zero_grad", "  the rest (statistics)",
             "logging (TensorBoard)", "snapshot for saving"]
    inner = ("  minibatch gathering", "  forward + backward", "  gradient clipping",
             "  optimiser step", "  zero_grad")
    seconds["  the rest (statistics)"] = (seconds.get("optimisation", 0.0)
                                          - sum(seconds.get(n, 0.0) for n in inner))
    for name in order:
        print(f"  {name:<46} {seconds.get(name, 0.0) / total:6.1%}")
    top = ("sampling", "advantages", "optimisation", "logging (TensorBoard)", "snapshot for saving")
    print(f"  {'outside all of these':<46} {1 - sum(seconds.get(n, 0.0) for n in top) / total:6.1%}")
    print("  sampling phases: " + ", ".join(f"{k} {v / total:.1%}" for k, v in phases.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
