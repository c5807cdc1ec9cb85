"""Cost of each memory at matched parameter counts: acting, state, training.

    python benchmarks/memories.py                 # ~1-2 min on 2 cores
    python benchmarks/memories.py --quick         # seconds; the smoke test's run
    python benchmarks/memories.py --compile       # acting steps compiled (~10 min)

Memories: TrXL and GTrXL (memories.trxl, relative positions, pre-LayerNorm)
at context lengths L = 16, 64, 256, 1024; GRU and LSTM (memories.recurrent); AGaLiTe,
its exact form GaLiTe (memories.agalite) and FFM (memories.ffm), whose cost does not depend
on L. Each family's width is chosen so that its parameter count is the closest to GTrXL's at
--gtrxl-dim (the counts are printed). Only the memory is timed: no encoder, no heads.

Per memory and L it prints:
  * acting ms: one batched acting step (--batch workers at once): TrXL/GTrXL attend over
    L - 1 cached keys/values per block plus the step itself, the others update their state;
  * state KiB/worker: what one worker keeps between steps to act: the KV cache of
    L - 1 steps per block for TrXL/GTrXL, the recurrent state for the others;
  * train ms: forward + backward of one training segment of --segment steps per worker
    (TrXL/GTrXL with their L - 1 cached block inputs; the others from a carried state);
  * saved MiB: bytes autograd keeps for that backward pass (the activations the segment
    holds at its peak, counted once per storage; deterministic, unlike a process's RSS);
    with --device cuda also the allocator's peak.
Timings alternate between memories in --rounds rounds in one process and keep each one's
fastest round, so a busy machine slows all alike; on a shared machine they are indicative
only. A PNG plots acting cost and state size against L. The last lines compare AGaLiTe with
GTrXL at every L against the AGaLiTe paper's claim (Pramanik et al., TMLR 2024: inference
>= 40% cheaper and memory > 50% smaller than GTrXL).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import preflight.process_setup  # noqa: E402,F401  (before torch)

import torch  # noqa: E402
from torch import nn  # noqa: E402

from config import RecurrentConfig, TransformerConfig  # noqa: E402
from memories.agalite import AGaLiTe, AGaLiTeConfig  # noqa: E402
from memories.ffm import FFM, FFMConfig  # noqa: E402
from memories import state_nbytes  # noqa: E402
from memories.recurrent import RecurrentMemory  # noqa: E402
from memories.trxl import TransformerMemory  # noqa: E402

HEADS = 4
WIDTHS = range(8, 513, 4)   # candidate widths, multiples of the heads


@dataclass
class Runner:
    """One memory at one context length, ready to time."""
    name: str
    length: int | None              # L for TrXL/GTrXL, None where the cost does not depend on it
    module: nn.Module
    act: Callable[[], object]       # one acting step on prepared inputs
    train: Callable[[], torch.Tensor]   # one segment's forward, returning a scalar loss
    state_bytes: int                # per worker


@dataclass
class Result:
    acting_ms: float = float("inf")
    train_ms: float = float("inf")
    saved_bytes: int = 0
    cuda_peak_bytes: int = 0


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def transformer_config(width: int, length: int, gtrxl: bool) -> TransformerConfig:
    return TransformerConfig(num_blocks=2, embed_dim=width, num_heads=HEADS,
                             memory_length=length, gtrxl=gtrxl)


def agalite_config(width: int, exact: bool = False) -> AGaLiTeConfig:
    """The paper's Mystery Path proportions (eta 4, r 2, feed-forward as wide as the model)."""
    return AGaLiTeConfig(num_layers=2, embed_dim=width, num_heads=HEADS, head_dim=width // HEADS,
                         eta=4, r=2, ffn_dim=width, exact=exact)


def ffm_config(width: int) -> FFMConfig:
    return FFMConfig(num_layers=1, embed_dim=width, memory_size=width // 2, context_size=4)


FAMILIES: dict[str, Callable[[int, int], nn.Module]] = {
    "TrXL": lambda w, L: TransformerMemory(transformer_config(w, L, gtrxl=False), 64),
    "GTrXL": lambda w, L: TransformerMemory(transformer_config(w, L, gtrxl=True), 64),
    "GRU": lambda w, L: RecurrentMemory("gru", RecurrentConfig(hidden_size=w), "float32"),
    "LSTM": lambda w, L: RecurrentMemory("lstm", RecurrentConfig(hidden_size=w), "float32"),
    "AGaLiTe": lambda w, L: AGaLiTe(agalite_config(w)),
    "GaLiTe": lambda w, L: AGaLiTe(agalite_config(w, exact=True)),
    "FFM": lambda w, L: FFM(ffm_config(w)),
}
TRANSFORMERS = ("TrXL", "GTrXL")
RNNS = ("GRU", "LSTM")


def matched_width(family: str, target: int) -> int:
    """The width whose parameter count is closest to target (counts grow with the width)."""
    build = FAMILIES[family]
    best, best_gap = WIDTHS[0], float("inf")
    for width in WIDTHS:
        count = parameter_count(build(width, 16))
        if abs(count - target) < best_gap:
            best, best_gap = width, abs(count - target)
        if count >= target:
            break
    return best


def transformer_runner(name: str, width: int, L: int, B: int, G: int, device) -> Runner:
    memory = FAMILIES[name](width, L).to(device)
    N, M = memory.cfg.num_blocks, L - 1
    state = memory.initial_state(B, device)
    for part in state:                                                     # (B, H, M, dh)
        part.normal_()
    x = torch.randn(B, width, device=device)
    episode_step = torch.full((B,), M, device=device)

    def act():
        return memory.step(x, state, episode_step)

    segment = torch.randn(B, G, width, device=device)
    cached = torch.randn(B, M, N, width, device=device)                    # (B, M, N, D)
    key_episode = torch.zeros(B, M + G, dtype=torch.long, device=device)
    query_step = (torch.arange(G, device=device) + M).expand(B, G)

    def train():
        return memory.segments(segment, cached, key_episode, query_step).square().mean()

    return Runner(name, L, memory, act, train, state_nbytes(state) // B)


def recurrent_runner(name: str, width: int, B: int, G: int, device) -> Runner:
    memory = FAMILIES[name](width, 0).to(device)
    state = memory.initial_state(B, device)
    x = torch.randn(B, width, device=device)
    episode_step = torch.ones(B, dtype=torch.long, device=device)
    segment = torch.randn(B, G, width, device=device)
    stored = state.h.unsqueeze(1)                                          # (B, 1, N, S)
    key_episode = torch.zeros(B, G, dtype=torch.long, device=device)
    query_step = (torch.arange(G, device=device) + 1).expand(B, G)
    return Runner(name, None, memory, lambda: memory.step(x, state, episode_step),
                  lambda: memory.segments(segment, stored, key_episode, query_step).square().mean(),
                  state_nbytes(state) // B)


def linear_runner(name: str, width: int, B: int, G: int, device) -> Runner:
    memory = FAMILIES[name](width, 0).to(device)
    state = memory.initial_state(B, device)
    x = torch.randn(B, width, device=device)
    no_reset = torch.zeros(B, dtype=torch.bool, device=device)
    segment = torch.randn(B, G, width, device=device)
    resets = torch.zeros(B, G, dtype=torch.bool, device=device)
    return Runner(name, None, memory, lambda: memory.step(x, state, no_reset),
                  lambda: memory.parallel(segment, state, resets)[0].square().mean(),
                  state_nbytes(state) // B)


def build_runners(args, device) -> list[Runner]:
    target = parameter_count(FAMILIES["GTrXL"](args.gtrxl_dim, 16))
    runners = []
    for name in FAMILIES:
        width = args.gtrxl_dim if name == "GTrXL" else matched_width(name, target)
        if name in TRANSFORMERS:
            runners += [transformer_runner(name, width, L, args.batch, args.segment, device)
                        for L in args.lengths]
        elif name in RNNS:
            runners.append(recurrent_runner(name, width, args.batch, args.segment, device))
        else:
            runners.append(linear_runner(name, width, args.batch, args.segment, device))
        print(f"{name:8s} width {width:4d}   parameters {parameter_count(runners[-1].module):,}")
    return runners


def synchronise(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn: Callable, repeats: int, device) -> float:
    synchronise(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronise(device)
    return (time.perf_counter() - start) / repeats * 1e3


def saved_for_backward(train: Callable[[], torch.Tensor]) -> tuple[int, torch.Tensor]:
    """Bytes autograd saves during train(), each storage counted once, and the loss."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = train()
    return sum(storages.values()), loss


def compiled(act: Callable, device) -> Callable:
    """The acting step as the sampler's compile_acting gives it (sampler.acting_step)."""
    options = {"cpp_wrapper": True} if device.type == "cpu" else None
    return torch.compile(act, dynamic=False, fullgraph=True, options=options)


def measure(runners: list[Runner], args, device) -> dict[int, Result]:
    results = {id(r): Result() for r in runners}
    for runner in runners:                                                 # warm-up, memory
        # torch.compile cannot capture nn.GRU/nn.LSTM (one fused kernel per step already):
        # they act eagerly in both modes.
        if args.compile and runner.name not in RNNS:
            print(f"compiling {runner.name} {runner.length or ''}", flush=True)
            runner.act = compiled(runner.act, device)
        with torch.no_grad():
            runner.act()
        saved, loss = saved_for_backward(runner.train)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            runner.train().backward()
            results[id(runner)].cuda_peak_bytes = torch.cuda.max_memory_allocated(device)
        else:
            loss.backward()
        results[id(runner)].saved_bytes = saved
    for r in range(args.rounds):
        print(f"timing round {r + 1}/{args.rounds}", flush=True)
        for runner in runners:
            result = results[id(runner)]
            with torch.no_grad():
                result.acting_ms = min(result.acting_ms,
                                       time_ms(runner.act, args.steps, device))
            result.train_ms = min(result.train_ms, time_ms(
                lambda runner=runner: runner.train().backward(), args.train_repeats, device))
    return results


def print_table(runners: list[Runner], results: dict[int, Result], device) -> None:
    cuda = device.type == "cuda"
    header = (f"{'memory':8s} {'L':>5s} {'params':>8s} {'acting ms':>10s} "
              f"{'state KiB/worker':>17s} {'train ms':>9s} {'saved MiB':>10s}")
    print(header + (f" {'CUDA peak MiB':>14s}" if cuda else ""))
    for runner in runners:
        res = results[id(runner)]
        L = str(runner.length) if runner.length else "any"
        line = (f"{runner.name:8s} {L:>5s} {parameter_count(runner.module):8,d} "
                f"{res.acting_ms:10.3f} {runner.state_bytes / 1024:17.1f} {res.train_ms:9.1f} "
                f"{res.saved_bytes / 2**20:10.1f}")
        print(line + (f" {res.cuda_peak_bytes / 2**20:14.1f}" if cuda else ""))


def compare_with_claim(runners: list[Runner], results: dict[int, Result]) -> None:
    """AGaLiTe against GTrXL at each L, as ratios, in the terms of the paper's claim."""
    agalite = next(r for r in runners if r.name == "AGaLiTe")
    a = results[id(agalite)]
    print("AGaLiTe / GTrXL (the claim: acting time <= 0.60, memory < 0.50)")
    for g in (r for r in runners if r.name == "GTrXL"):
        res = results[id(g)]
        acting, state = a.acting_ms / res.acting_ms, agalite.state_bytes / g.state_bytes
        verdict = "holds" if acting <= 0.60 and state < 0.50 else "does not hold"
        print(f"  L {g.length:5d}: acting time {acting:5.2f}, state {state:5.3f}, training time "
              f"{a.train_ms / res.train_ms:5.2f}, training activations "
              f"{a.saved_bytes / res.saved_bytes:5.2f} -> claim {verdict}")


def plot(runners: list[Runner], results: dict[int, Result], lengths: list[int], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax_time, ax_bytes) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in FAMILIES:
        mine = [r for r in runners if r.name == name]
        if mine[0].length is None:                       # constant in L: one figure, drawn flat
            ms = [results[id(mine[0])].acting_ms] * len(lengths)
            kib = [mine[0].state_bytes / 1024] * len(lengths)
            style = "--"
        else:
            ms = [results[id(r)].acting_ms for r in mine]
            kib = [r.state_bytes / 1024 for r in mine]
            style = "-o"
        ax_time.plot(lengths, ms, style, label=name)
        ax_bytes.plot(lengths, kib, style, label=name)
    for ax, label in ((ax_time, "acting ms per batched step"), (ax_bytes, "state KiB per worker")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [str(L) for L in lengths])
        ax.set_xlabel("context length L (TrXL/GTrXL window)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax_bytes.set_yscale("log")
    ax_time.legend(fontsize=8)
    fig.suptitle("Acting cost against context length at matched parameter counts")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot              {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--gtrxl-dim", type=int, default=64,
                        help="GTrXL's width; every other memory matches its parameter count")
    parser.add_argument("--batch", type=int, default=16, help="workers acting at once")
    parser.add_argument("--segment", type=int, default=64, help="training segment length")
    parser.add_argument("--steps", type=int, default=100, help="acting steps per timing")
    parser.add_argument("--train-repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--plot", default="results/memories_benchmark/acting_cost.png")
    parser.add_argument("--compile", action="store_true",
                        help="time the acting steps torch.compile'd, as compile_acting: true "
                             "runs them (needs a C++ compiler on CPU; 10-90 s per memory; "
                             "GRU and LSTM stay eager: torch.compile cannot capture them)")
    parser.add_argument("--quick", action="store_true",
                        help="a few steps at L = 16, 64 and small sizes: checks that it runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.lengths, args.batch, args.segment = [16, 64], 4, 8
        args.steps, args.train_repeats, args.rounds = 3, 1, 1
    if min(args.lengths) < 1 or args.gtrxl_dim % HEADS:
        parser.error(f"--lengths must be >= 1 and --gtrxl-dim a multiple of {HEADS}")
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"batch {args.batch} workers, training segment {args.segment} steps, "
          f"{args.threads} thread(s), device {device}, acting "
          f"{'compiled' if args.compile else 'eager'}")
    runners = build_runners(args, device)
    results = measure(runners, args, device)
    print_table(runners, results, device)
    compare_with_claim(runners, results)
    plot(runners, results, args.lengths, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
