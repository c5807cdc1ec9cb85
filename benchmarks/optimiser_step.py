"""The optimiser step and gradient clipping of a config's network, in torch's variants.

    python benchmarks/optimiser_step.py --config configs/bench/minigrid_original_4x128.yaml

Both run once per minibatch over every parameter, however much data the update holds
(benchmarks/update_profile.py shows their share). On the CPU torch's AdamW and
clip_grad_norm_ default to a Python loop over the parameter tensors; the multi-tensor
(`foreach`) and fused forms do the same arithmetic in fewer, larger kernels. The variants
alternate in rounds in one process, so a busy machine slows them alike; the figures are
ratios to the default AdamW step.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import preflight.process_setup  # noqa: E402,F401  (before torch)


def seconds(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5, help="calls per variant and round")
    args = parser.parse_args(argv)
    import torch
    from config import load_config
    from environments import make_env, space_spec
    from trainer import build_model
    from utils import set_torch_threads
    config = load_config(args.config, {"device": "cpu"})
    env = make_env(config.environment)
    try:
        spec = space_spec(env)
    finally:
        env.close()
    model = build_model(config, spec, torch.device("cpu"))
    parameters = list(model.parameters())
    threads = set_torch_threads(config.torch_threads, sum(p.numel() for p in parameters))
    for p in parameters:
        p.grad = torch.randn_like(p)
    norm = config.max_grad_norm
    variants = {f"AdamW {name}": torch.optim.AdamW(parameters, lr=1e-4, **kwargs).step
                for name, kwargs in (("default", {}), ("foreach", {"foreach": True}),
                                     ("fused", {"fused": True}))}
    variants["clip_grad_norm_ default"] = lambda: torch.nn.utils.clip_grad_norm_(parameters, norm)
    variants["clip_grad_norm_ foreach"] = lambda: torch.nn.utils.clip_grad_norm_(
        parameters, norm, foreach=True)
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(args.rounds):
        for name, fn in variants.items():
            best[name] = min(best[name], seconds(fn, args.calls))
    print(f"config   {args.config} ({sum(p.numel() for p in parameters):,} parameters in "
          f"{len(parameters)} tensors, {threads} torch threads); best of {args.rounds} rounds")
    for name, value in best.items():
        print(f"{name:<26} {value / best['AdamW default']:.2f}x the default AdamW step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
