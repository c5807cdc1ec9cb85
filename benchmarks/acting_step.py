"""Milliseconds of the rollout's acting step next to the network's own batched forward.

    python benchmarks/acting_step.py --config configs/minigrid_memory.yaml
    python benchmarks/acting_step.py --config configs/minigrid_memory.yaml --profile 15

First the config's real environments run short rollouts (--worker-steps per worker), and the
sampler's acting phase is read per step (sampler.SamplingTimes.acting: the network's step,
action sampling and the value of time-limit-cut observations): that is "acting in a
rollout". Then, with the environments closed and the same torch threads, the network's own
step (ActorCritic.step: encoder, the memory's step, e.g. every TrXL block over its cached
window, heads) is timed alone on a batch of the same shapes: n_workers observations of the
environment's dtype and shape and a memory state of random values. The ratio of the two is
what acting costs beyond the network. The same step compiled
(`compile_acting: true`: inductor, on CPU with its C++ wrapper) alternates with the eager one
in rounds, and once more after an idle gap (--idle-ms) as in the sampler, where the process
sleeps while the envs step.

--profile N prints the N ops that take most of the rollout's time (torch.profiler, self CPU
time, as shares of the rollout), to see where acting goes. The compiled figures need a memory
that compiles (the schema says which) and a C++ compiler.
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


def milliseconds(fn, args, steps: int, idle_seconds: float = 0.0) -> float:
    """Mean milliseconds of fn(*args), each call timed alone after sleeping idle_seconds."""
    total = 0.0
    for _ in range(steps):
        if idle_seconds:
            time.sleep(idle_seconds)
        start = time.perf_counter()
        fn(*args)
        total += time.perf_counter() - start
    return total / steps * 1e3


def rollout_acting_ms(trainer, rollouts: int, profile_rows: int) -> float:
    """Mean acting milliseconds per step over `rollouts` rollouts after a warm-up one; with
    profile_rows, where one more rollout's time goes."""
    trainer.model.eval()
    sampler = trainer.sampler
    sampler.collect()                                               # warm-up
    acting = 0.0
    for _ in range(rollouts):
        sampler.collect()
        acting += sampler.times.acting
    if profile_rows:
        print_profile(trainer, profile_rows)
    return acting / (rollouts * trainer.config.worker_steps) * 1e3


def print_profile(trainer, rows: int) -> None:
    """One rollout under torch.profiler: its phases (sampler.SamplingTimes) and the ops with
    the most self CPU time, as shares of the rollout's wall time."""
    import dataclasses
    from torch.profiler import ProfilerActivity, profile
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.sampler.collect()
    wall = time.perf_counter() - start
    print(f"profile of one rollout ({wall:.2f} s under the profiler), shares of its wall time")
    phases = dataclasses.asdict(trainer.sampler.times)
    print("  phases    " + ", ".join(f"{k} {v / wall:.1%}" for k, v in phases.items()))
    print_top_ops(prof.key_averages(), wall, trainer.config.worker_steps, rows)


def print_top_ops(events, wall: float, steps: int, rows: int, exclude=frozenset()) -> None:
    """The `rows` ops with the most self CPU time: share of `wall` seconds, calls per step."""
    print("  top ops by self CPU time (op, share, calls per step)")
    ops = sorted((e for e in events if e.key not in exclude),
                 key=lambda e: e.self_cpu_time_total, reverse=True)
    for event in ops[:rows]:
        print(f"    {event.key:<40} {event.self_cpu_time_total / 1e6 / wall:6.1%} "
              f"{event.count / steps:8.1f}")


def profile_alone(step, inputs, calls: int, rows: int) -> None:
    """The network's step alone under torch.profiler: its top ops as shares of its time."""
    from torch.profiler import ProfilerActivity, profile
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            step(*inputs)
    wall = time.perf_counter() - start
    print(f"profile of the forward alone ({calls} calls)")
    print_top_ops(prof.key_averages(), wall, calls, rows)


def alone_inputs(model, config, spec):
    """A batch of the rollout's shapes: n_workers observations, a random memory state."""
    import torch
    W, cpu = config.n_workers, torch.device("cpu")
    if spec.obs_dtype == "uint8":
        obs = torch.randint(0, 256, (W, *spec.obs_shape), dtype=torch.uint8)
    else:
        obs = torch.randn(W, *spec.obs_shape)
    initial = model.memory.initial_state(W, cpu)
    state = type(initial)(*(torch.randn_like(t.float()).to(t.dtype) for t in initial))
    return (model, obs, state, torch.arange(W))


def compiles(path: str) -> bool:
    """Whether the schema lets this config's memory compile its acting step."""
    from agent import cpp_compiler
    from config import ConfigError, load_config
    try:
        load_config(path, {"compile_acting": True})
    except ConfigError as e:
        print(f"compiled          skipped: {e}")
        return False
    if cpp_compiler() is None:
        print("compiled          skipped: no C++ compiler for inductor")
        return False
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--n-workers", type=int, help="overrides the config's n_workers")
    parser.add_argument("--worker-steps", type=int, default=64,
                        help="steps per worker of each measured rollout (default 64)")
    parser.add_argument("--rollouts", type=int, default=2, help="measured rollouts")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per round alone")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-ms", type=float, default=1.0,
                        help="sleep before each call of the idle-gap figure (default 1 ms)")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the compiled step (it needs a C++ compiler and minutes)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N ops taking most of one rollout")
    args = parser.parse_args(argv)
    import torch
    from config import load_config
    from model import ActorCritic
    from agent import acting_step
    from trainer import Trainer
    # Only the rollout runs here: no minibatches to split the segments into.
    overrides = {"device": "cpu", "worker_steps": args.worker_steps, "segment_length": None,
                 "n_mini_batch": 1}
    if args.n_workers:
        overrides["n_workers"] = args.n_workers
    config = load_config(args.config, overrides)
    out = tempfile.mkdtemp(prefix="trxl-acting-")
    trainer = Trainer(config, "acting", os.path.join(out, "models"), os.path.join(out, "summaries"))
    try:
        in_rollout = rollout_acting_ms(trainer, args.rollouts, args.profile)
    finally:
        trainer.close()
        shutil.rmtree(out, ignore_errors=True)
    W = config.n_workers
    model, step = trainer.model.eval(), ActorCritic.step
    inputs = alone_inputs(model, config, trainer.spec)
    print(f"config            {args.config} ({W} workers, memory {config.memory}; observation "
          f"{trainer.spec.obs_dtype} {tuple(trainer.spec.obs_shape)}; {trainer.threads} torch "
          f"threads; compile_acting {config.compile_acting})")
    with torch.no_grad():
        milliseconds(step, inputs, 10)                                      # warm-up
        alone = min(milliseconds(step, inputs, args.steps) for _ in range(args.rounds))
        print(f"acting in rollout {in_rollout:.2f} ms per step ({W} workers)")
        print(f"forward alone     {alone:.2f} ms (eager, best of {args.rounds} rounds)")
        print(f"acting / forward  {in_rollout / alone:.2f}x")
        if args.profile:
            profile_alone(step, inputs, args.steps, args.profile)
        if args.no_compile or not compiles(args.config):
            return 0
        compiled = acting_step(True, torch.device("cpu"))
        start = time.time()
        compiled(*inputs)
        print(f"compile seconds   {time.time() - start:.1f}")
        milliseconds(compiled, inputs, 10)
        for r in range(args.rounds):
            print(f"round {r + 1}           eager {milliseconds(step, inputs, args.steps):.2f} ms"
                  f"   compiled {milliseconds(compiled, inputs, args.steps):.2f} ms"
                  f"   compiled after {args.idle_ms:g} ms idle "
                  f"{milliseconds(compiled, inputs, args.steps, args.idle_ms / 1e3):.2f} ms")
        difference = max((a - b).abs().max().item()
                         for a, b in zip(outputs(step, inputs), outputs(compiled, inputs)))
    print(f"max difference    {difference:.1e}")
    return 0


def outputs(fn, args):
    out = fn(*args)
    return out.policy.value, out.to_store, *out.state


if __name__ == "__main__":
    sys.exit(main())
