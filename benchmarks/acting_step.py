"""Milliseconds of one batched acting step of a config's network, eager and compiled.

    python benchmarks/acting_step.py --config configs/cartpole_masked.yaml

One step is what the sampler runs per environment step: encoder, the memory's step (TrXL:
every block over its cached window), heads, for n_workers observations at once (random
weights, inputs and memory state). The
compiled step is the one `compile_acting: true` gives the sampler (agent.acting_step:
inductor with its C++ wrapper on CPU). Eager and compiled alternate in rounds in one
process, so a busy machine slows both alike. A third figure times the compiled step after
an idle gap (--idle-ms), as in the sampler, where the process sleeps while the envs step.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import process_setup  # noqa: E402,F401  (before torch)


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--steps", type=int, default=300, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-ms", type=float, default=1.0,
                        help="sleep before each call of the third figure (default 1 ms)")
    args = parser.parse_args(argv)
    import torch
    from agent import acting_step
    from config import ConfigError, load_config
    from environments import SpaceSpec
    from model import ActorCritic
    try:       # the schema says which memories compile
        config = load_config(args.config, {"compile_acting": True})
    except ConfigError as e:
        parser.error(str(e))
    torch.set_num_threads(1)
    model = ActorCritic(config, SpaceSpec((2,), "float32", (2,))).eval()
    W = config.n_workers
    state = type(model.memory.initial_state(W, torch.device("cpu")))(
        *(torch.randn_like(t.float()).to(t.dtype)
          for t in model.memory.initial_state(W, torch.device("cpu"))))
    inputs = (model, torch.randn(W, 2), state, torch.arange(W))

    def outputs(fn, args):
        out = fn(*args)
        return out.policy.value, out.to_store, *out.state

    step = ActorCritic.step
    compiled = acting_step(True, torch.device("cpu"))
    start = time.time()
    with torch.no_grad():
        compiled(*inputs)
        print(f"config            {args.config} ({W} workers, memory {config.memory}; "
              f"vector observation of 2)")
        print(f"compile seconds   {time.time() - start:.1f}")
        for fn in (step, compiled):
            milliseconds(fn, inputs, 20)                                    # warm-up
        for r in range(args.rounds):
            print(f"round {r + 1}           eager {milliseconds(step, inputs, args.steps):.2f} ms"
                  f"   compiled {milliseconds(compiled, inputs, args.steps):.2f} ms"
                  f"   compiled after {args.idle_ms:g} ms idle "
                  f"{milliseconds(compiled, inputs, args.steps, args.idle_ms / 1e3):.2f} ms")
        difference = max((a - b).abs().max().item()
                         for a, b in zip(outputs(step, inputs), outputs(compiled, inputs)))
    print(f"max difference    {difference:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
