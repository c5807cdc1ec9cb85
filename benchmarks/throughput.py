"""Throughput and memory of the training loop, one figure a line.

    python benchmarks/throughput.py --config configs/minigrid_memory.yaml --updates 3
    python benchmarks/throughput.py --config configs/endless_mortar_mayhem.yaml \
        --set transformer.memory_dtype=bfloat16          # any config key, as in the YAML

Prints: steps/s of the whole loop; seconds in sampling and in optimisation; steps/s of the
environments alone (random actions, same pool) and sampling's overhead over it; one sampling
step in milliseconds by phase (sampler.SamplingTimes) beside one env-only step and the envs'
own share of it (each stepped in this process, without the pool); the compute
floor (the network's forward and backward passes over one update's data, alone) and the
optimisation's overhead over it; the whole loop's floor (the envs alone, the network's
acting step alone for every rollout step, and the compute floor) and the share of it the
loop reaches; peak memory of the whole process tree (sum of proportional
set sizes of the trainer and its workers); bytes held by the buffer, of which the cached
memory stream, and by the KV cache (or recurrent state); the update's FLOPs (counted by
torch.utils.flop_counter) and the rate the compute floor reaches, as a share of the
machine's peak (benchmarks/flops.py says how the peak is derived): the model FLOPs
utilisation.
The first update is a warm-up and is not timed; its time is printed apart (with
compile_update it holds the compiles).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import preflight.process_setup  # noqa: E402,F401  (before torch)


class PeakMemory:
    """Samples the summed PSS of this process and its children in a background thread."""

    def __init__(self, interval: float = 0.5):
        import psutil
        self.psutil, self.interval, self.peak = psutil, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        me = self.psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_full_info().pss
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                pass
        self.peak = max(self.peak, total)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def env_only_steps_per_second(trainer, steps_per_worker: int) -> float:
    """Random actions through the same pool: the sampling floor."""
    import numpy as np
    pool = trainer.pool
    rng = np.random.default_rng(0)
    spec = pool.spec
    # Uniform choices, standard normal continuous entries, fair bits.
    high = np.concatenate([spec.action_nvec, np.zeros(spec.action_continuous),
                           np.full(spec.action_binary, 2)])
    continuous = slice(len(spec.action_nvec), len(spec.action_nvec) + spec.action_continuous)
    start = time.perf_counter()
    for _ in range(steps_per_worker):
        actions = np.floor(rng.random((pool.n_envs, spec.action_width)) * high)
        actions[:, continuous] = rng.standard_normal((pool.n_envs, spec.action_continuous))
        pool.step(actions.astype(spec.action_dtype))
    return pool.n_envs * steps_per_worker / (time.perf_counter() - start)


def in_process_env_step_ms(env_config, steps: int) -> float:
    """One environment stepped in this process with random actions, no pool: what the envs
    themselves cost, next to the pool's step (nan for a JAX family, whose backend steps
    them in this process already: env-only says what they cost)."""
    from environments import families, make_env
    if "jax" in families()[env_config.type].backends:
        return float("nan")
    env = make_env(env_config)
    try:
        env.reset(seed=0)
        env.action_space.seed(0)
        start = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        return (time.perf_counter() - start) / steps * 1e3
    finally:
        env.close()


def compute_floor_seconds(trainer) -> float:
    """Forward and backward passes over one update's minibatches (all epochs), nothing else:
    no optimiser step, no logging, the batches gathered beforehand."""
    import torch
    from trainer import Schedules, accumulate_gradients
    schedules = Schedules.at(trainer.config, 0)
    # One epoch's batches, gathered beforehand and replayed for every epoch.
    batches = list(trainer.buffer.minibatches(trainer.config.n_mini_batch, trainer.generator))
    trainer.model.train()
    start = time.perf_counter()
    for batch in batches * trainer.config.epochs:
        accumulate_gradients(trainer.model, batch, trainer.config, schedules)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    trainer.model.zero_grad(set_to_none=True)
    return elapsed


@dataclasses.dataclass
class FloorVariant:
    compile_update: bool
    update_precision: str
    first_seconds: float       # the first minibatch: with compile_update, its compile
    floor_seconds: float       # per update, from the minibatches timed after the first


def floor_variants(trainer, timed: int = 3) -> list[FloorVariant]:
    """The compute floor under each of compile_update x update_precision, side by side on
    the same data: one minibatch first (it pays any compile), then `timed` minibatches, the
    update's floor estimated as their mean x minibatches x epochs."""
    from trainer import Schedules, accumulate_gradients
    config, model = trainer.config, trainer.model
    schedules = Schedules.at(config, 0)
    batches = list(trainer.buffer.minibatches(config.n_mini_batch, trainer.generator))
    saved = model.compile_update, model.autocast
    variants = []
    model.train()
    try:
        for compiled in (False, True):
            for precision in ("float32", "bfloat16"):
                model.compile_update, model.autocast = compiled, precision == "bfloat16"
                times = []
                for batch in batches[:timed + 1]:
                    start = time.perf_counter()
                    accumulate_gradients(model, batch, config, schedules)
                    times.append(time.perf_counter() - start)
                model.zero_grad(set_to_none=True)
                per_batch = sum(times[1:]) / len(times[1:])
                variants.append(FloorVariant(compiled, precision, times[0],
                                             per_batch * config.n_mini_batch * config.epochs))
    finally:
        model.compile_update, model.autocast = saved
    return variants


def acting_forward_ms(trainer, steps: int = 50) -> float:
    """The network's acting step alone on a batch of the rollout's shapes, best of 3 rounds:
    what acting would cost with no rollout around it (benchmarks/acting_step.py)."""
    import torch
    from benchmarks.acting_step import alone_inputs, milliseconds
    from model import ActorCritic
    model, obs, state, envs = alone_inputs(trainer.model.eval(), trainer.config, trainer.spec)
    device = trainer.device

    def step(*args):
        out = ActorCritic.step(*args)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return out

    inputs = (model, obs.to(device), type(state)(*(t.to(device) for t in state)), envs.to(device))
    with torch.no_grad():
        milliseconds(step, inputs, 5)                                       # warm-up
        return min(milliseconds(step, inputs, steps) for _ in range(3))


def utilisation(flops: int, floor: float, optimisation: float, peak, precision: str
                ) -> list[str]:
    """The update's FLOPs, and the rate of the compute floor and of the whole optimisation
    against the peak of the precision its matrix products run in."""
    reference = peak.measured_bfloat16 if precision == "bfloat16" else peak.measured_float32
    lines = [f"update FLOPs                 {flops / 1e9:.1f} GFLOP over the timed updates "
             f"(forward + backward, matrix products, counted)",
             f"compute floor FLOP/s         {flops / floor / 1e9:.1f} GFLOP/s = "
             f"{flops / floor / reference:.1%} of the measured {precision} GEMM peak (MFU)",
             f"optimisation FLOP/s         {flops / optimisation / 1e9:.1f} GFLOP/s = "
             f"{flops / optimisation / reference:.1%} of it"]
    if peak.specified is not None:
        lines.append(f"compute floor vs spec peak   {flops / floor / peak.specified:.1%} of the "
                     f"specified float32 peak")
    from benchmarks.flops import describe
    return lines + describe(peak)


def main(argv=None) -> int:
    from preflight.overrides import Setting, load_with, parse_setting, repeated_key
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--updates", type=int, default=3, help="timed updates after a warm-up")
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--n-workers", type=int, help="overrides the config's n_workers")
    parser.add_argument("--floor-variants", action="store_true",
                        help="also time the compute floor with compile_update and "
                             "update_precision each way, side by side on the same data")
    parser.add_argument("--set", nargs="+", action="extend", default=[], type=parse_setting,
                        metavar="KEY=VALUE", help="override config values, as train.py --set "
                                                  "does (dotted keys, YAML values)")
    args = parser.parse_args(argv)
    if args.updates < 1:
        parser.error("--updates must be at least 1")
    flags = [Setting(key, value) for key, value in (("device", args.device),
                                                     ("n_workers", args.n_workers))
             if value is not None]
    repeated = repeated_key(setting.key for setting in [*flags, *args.set])
    if repeated:
        parser.error(f"--set {repeated}: the key is given twice (or also by its own flag)")
    import torch
    from benchmarks.flops import machine_peak, update_flops
    from trainer import Trainer

    try:
        config = load_with(args.config, [*flags, *args.set], "--set")
    except ValueError as e:
        parser.error(str(e))
    out = tempfile.mkdtemp(prefix="trxl-benchmark-")
    with PeakMemory() as memory:
        trainer = Trainer(config, "benchmark", os.path.join(out, "models"),
                          os.path.join(out, "summaries"))
        try:
            start = time.perf_counter()
            trainer.train_one_update()                     # warm-up: allocations, first episodes
            first_update = time.perf_counter() - start
            sampling = optimisation = 0.0
            phases: dict[str, float] = {}          # sampler.SamplingTimes, summed over updates
            for _ in range(args.updates):
                _, times = trainer.train_one_update()
                sampling += times.sampling
                optimisation += times.optimisation
                for phase, seconds in dataclasses.asdict(trainer.sampler.times).items():
                    phases[phase] = phases.get(phase, 0.0) + seconds
            memory.sample()
            peak_training = memory.peak
            env_sps = env_only_steps_per_second(trainer, min(config.worker_steps, 256))
            env_step_ms = in_process_env_step_ms(config.environment, 1000)
            floor = compute_floor_seconds(trainer) * args.updates
            acting_ms = acting_forward_ms(trainer)
            flops = update_flops(trainer) * args.updates
            peak = machine_peak(trainer.threads)
            variants = floor_variants(trainer) if args.floor_variants else []
            buffer_bytes, cache_bytes = trainer.buffer.nbytes(), trainer.sampler.agent.nbytes()
            stream_bytes = trainer.buffer.stored.nbytes
            gpu_peak = torch.cuda.max_memory_allocated() if trainer.device.type == "cuda" else None
        finally:
            trainer.close()
    steps = config.batch_size * args.updates
    sampling_sps = steps / sampling
    print(f"config                      {args.config} ({args.updates} timed updates of "
          f"{config.batch_size} steps, device {trainer.device}, {trainer.threads} threads, "
          f"compile_update {config.compile_update}, update_precision "
          f"{config.update_precision})")
    print(f"first update seconds        {first_update:.1f}  (warm-up, not timed)")
    print(f"steps/s whole loop          {steps / (sampling + optimisation):.1f}")
    print(f"sampling seconds            {sampling:.2f}  ({sampling_sps:.1f} steps/s)")
    print(f"optimisation seconds        {optimisation:.2f}")
    print(f"env-only steps/s            {env_sps:.1f}  (sampling takes {env_sps / sampling_sps:.2f}x "
          f"the env-only time)")
    per_step = {phase: seconds / (args.updates * config.worker_steps) * 1e3
                for phase, seconds in phases.items()}
    print("sampling step ms            " + ", ".join(f"{phase} {ms:.2f}" for phase, ms in per_step.items())
          + f"  (all envs; env-only {config.n_workers / env_sps * 1e3:.2f}, of which the envs "
          f"in this process {config.n_workers * env_step_ms:.2f})")
    print(f"compute floor seconds       {floor:.2f}  (optimisation is {optimisation / floor:.2f}x it)")
    # Acting cannot overlap the envs (the next actions need the next observations), so the
    # loop's floor is the sum of the three parts, each measured alone.
    loop_floor = steps / env_sps + acting_ms / 1e3 * config.worker_steps * args.updates + floor
    print(f"whole-loop floor seconds    {loop_floor:.2f}  (envs alone {steps / env_sps:.2f} + "
          f"acting step alone {acting_ms:.2f} ms x {config.worker_steps * args.updates} steps + "
          f"compute floor; the loop runs at {loop_floor / (sampling + optimisation):.0%} of "
          f"its floor's speed)")
    for line in utilisation(flops, floor, optimisation, peak, config.update_precision):
        print(line)
    for v in variants:
        print(f"floor variant               compile_update {str(v.compile_update):5} "
              f"{v.update_precision:8}  {v.floor_seconds:7.2f} s per update "
              f"({v.floor_seconds / variants[0].floor_seconds:.2f}x the eager float32; first "
              f"minibatch {v.first_seconds:.1f} s)")
    print(f"peak memory (PSS, tree)     {peak_training / 2**20:.0f} MiB during training "
          f"({memory.peak / 2**20:.0f} MiB with this benchmark's own measurements)")
    print(f"buffer bytes                {buffer_bytes / 2**20:.1f} MiB (+ memory state "
          f"{cache_bytes / 2**20:.1f} MiB); fixed by memory_length + worker_steps, "
          f"not by episode length")
    print(f"cached memory bytes         {(stream_bytes + cache_bytes) / 2**20:.1f} MiB (stored "
          f"{stream_bytes / 2**20:.1f} + memory state {cache_bytes / 2**20:.1f}, "
          f"{config.transformer.memory_dtype})")
    if gpu_peak is not None:
        print(f"peak GPU memory             {gpu_peak / 2**20:.0f} MiB "
              f"({torch.cuda.get_device_name()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
