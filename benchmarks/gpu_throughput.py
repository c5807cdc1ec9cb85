"""Throughput of the training loop on a CUDA GPU, synchronised around every timing.

    python benchmarks/gpu_throughput.py --config configs/mortar_mayhem_grid.yaml --updates 2

CUDA kernels run asynchronously, so a host clock read while kernels are queued measures the
queueing, not the work: every timed interval here starts and ends with
torch.cuda.synchronize(). Prints steps/s of the whole loop (and of sampling and optimisation
alone), the compute floor (forward and backward passes over one update's data), peak GPU
memory, and host-device copies per acting step, counted by torch.profiler over one rollout
(CUDA memcpy activities, either direction). The first update is a warm-up and is not timed.
Refuses to run, with a message, where torch sees no CUDA GPU.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import preflight.process_setup  # noqa: E402,F401  (before torch)


def synchronised_seconds(fn) -> tuple[float, object]:
    """Wall seconds of fn() with the GPU idle at both ends, and fn's result."""
    import torch
    torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start, result


def copies_per_step(trainer) -> tuple[float, float]:
    """Host-to-device and device-to-host copies per acting step over one rollout."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        trainer.model.eval()
        trainer.sampler.collect(trainer.model)
    names = [event.name for event in prof.events()]
    steps = trainer.config.worker_steps
    return (sum(n.startswith("Memcpy HtoD") for n in names) / steps,
            sum(n.startswith("Memcpy DtoH") for n in names) / steps)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--updates", type=int, default=2, help="timed updates after a warm-up")
    parser.add_argument("--n-workers", type=int, help="overrides the config's n_workers")
    args = parser.parse_args(argv)
    if args.updates < 1:
        parser.error("--updates must be at least 1")
    import torch
    if not torch.cuda.is_available():
        print(f"gpu_throughput: torch {torch.__version__} sees no CUDA GPU (built for CUDA "
              f"{torch.version.cuda}). Fix: run on a machine with a CUDA GPU and a CUDA build "
              f"of torch.", file=sys.stderr)
        return 2
    from benchmarks.throughput import compute_floor_seconds
    from config import ConfigError, load_config
    from trainer import Trainer
    overrides = {"device": "cuda"} | ({"n_workers": args.n_workers} if args.n_workers else {})
    try:
        config = load_config(args.config, overrides)
    except ConfigError as e:
        parser.error(str(e))
    out = tempfile.mkdtemp(prefix="trxl-gpu-benchmark-")
    trainer = Trainer(config, "gpu-benchmark", os.path.join(out, "models"),
                      os.path.join(out, "summaries"))
    try:
        trainer.train_one_update()                             # warm-up: allocations, kernels
        torch.cuda.reset_peak_memory_stats()
        whole = sampling = optimisation = 0.0
        for _ in range(args.updates):
            seconds, (_, times) = synchronised_seconds(trainer.train_one_update)
            whole += seconds
            # The trainer's own split: each phase ends on a host read of its results
            # (actions to the envs, losses to the log), which waits for the GPU.
            sampling += times.sampling
            optimisation += times.optimisation
        peak = torch.cuda.max_memory_allocated()
        floor, _ = synchronised_seconds(lambda: compute_floor_seconds(trainer))
        to_device, to_host = copies_per_step(trainer)
    finally:
        trainer.close()
        shutil.rmtree(out, ignore_errors=True)
    steps = config.batch_size * args.updates
    print(f"config                      {args.config} ({args.updates} timed updates of "
          f"{config.batch_size} steps, {torch.cuda.get_device_name()}, {trainer.threads} "
          f"CPU threads)")
    print(f"steps/s whole loop          {steps / whole:.1f}")
    print(f"steps/s sampling            {steps / sampling:.1f}  ({sampling:.2f} s)")
    print(f"steps/s optimisation        {steps / optimisation:.1f}  ({optimisation:.2f} s)")
    print(f"compute floor seconds       {floor * args.updates:.2f}  (optimisation is "
          f"{optimisation / (floor * args.updates):.2f}x it)")
    print(f"peak GPU memory             {peak / 2**20:.0f} MiB")
    print(f"host-device copies per step {to_device:.1f} to the GPU, {to_host:.1f} to the host "
          f"(one acting step of all {config.n_workers} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
