"""Cost of each memory at matched parameter counts: acting, state, training.

    python benchmarks/memories.py                 # ~2-3 min on 2 cores
    python benchmarks/memories.py --quick         # seconds; the smoke test's run
    python benchmarks/memories.py --compile       # acting steps compiled (~10 min)
    python benchmarks/memories.py --ratio AGaLiTe GTrXL   # one against another at every L

Memories: every registered memory's benchmark variants (memories.MemoryKind.sized), e.g.
TrXL and GTrXL (relative positions, pre-LayerNorm) at context lengths L = 16, 64, 256, 1024;
GRU, LSTM, AGaLiTe, GaLiTe, FFM and the others, whose cost does not depend on L. Each
variant's width is chosen so that its parameter count is the closest to --parameters (by
default GTrXL's at width 64; the counts are printed). Only the memory is timed, through the
interface the sampler and the trainer use (memories.Memory): no encoder, no heads.

Per memory and L it prints:
  * acting ms: one batched acting step (--batch workers at once, `Memory.step`): TrXL/GTrXL
    attend over L - 1 cached keys/values per block plus the step itself, the others update
    their state (and hand the buffer what it stores);
  * state KiB/worker: what one worker keeps between steps to act: the KV cache of
    L - 1 steps per block for TrXL/GTrXL, the recurrent state for the others;
  * train ms: forward + backward of one training segment of --segment steps per worker
    (`Memory.segments`: TrXL/GTrXL with their L - 1 cached block inputs; the others from a
    stored state);
  * saved MiB: bytes autograd keeps for that backward pass (the activations the segment
    holds at its peak, counted once per storage; deterministic, unlike a process's RSS);
    with --device cuda also the allocator's peak.
Timings alternate between memories in --rounds rounds in one process and keep each one's
fastest round, so a busy machine slows all alike; on a shared machine they are indicative
only. A PNG plots acting cost and state size against L. With --ratio A B the last lines give
A's figures over B's at every L (docs/memories-benchmark.md compares AGaLiTe with GTrXL so,
against the AGaLiTe paper's claim).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import preflight.process_setup  # noqa: E402,F401  (before torch)

import torch  # noqa: E402
from torch import nn  # noqa: E402

from config import schema  # noqa: E402
from memories import MemoryKind, kinds, make_memory, state_nbytes  # noqa: E402

WIDTHS = range(8, 513, 4)   # candidate widths, multiples of 4 (the heads of the attention ones)
# The default parameter budget: two GTrXL blocks of width 64 with 4 heads.
PARAMETERS = 148_992


@dataclass(frozen=True)
class Variant:
    """One benchmark variant of a registered memory: its section at a width and length."""
    kind: MemoryKind
    sized: Callable[[int, int], Mapping]

    def build(self, width: int, length: int, segment: int) -> nn.Module:
        section = self.kind.settings(**self.sized(width, length))
        config = dataclasses.replace(schema()(), memory=self.kind.name, worker_steps=segment,
                                     segment_length=segment, **{self.kind.section: section})
        return make_memory(config)

    @property
    def grows_with_length(self) -> bool:
        return self.sized(64, 16) != self.sized(64, 64)


def variants() -> dict[str, Variant]:
    """Every registered memory's benchmark variants, by label."""
    return {label: Variant(kind, sized) for kind in kinds().values()
            for label, sized in kind.sized.items()}


@dataclass
class Runner:
    """One memory at one context length, ready to time."""
    name: str
    length: Optional[int]           # L where the cost depends on it, else None
    module: nn.Module
    act: Callable[[], object]       # one acting step on prepared inputs
    train: Callable[[], torch.Tensor]   # one segment's forward, returning a scalar loss
    state_bytes: int                # per worker
    compiles: bool                  # torch.compile takes its acting step


@dataclass
class Result:
    acting_ms: float = float("inf")
    train_ms: float = float("inf")
    saved_bytes: int = 0
    cuda_peak_bytes: int = 0


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def matched_width(variant: Variant, target: int, segment: int) -> int:
    """The width whose parameter count is closest to target (counts grow with the width)."""
    best, best_gap = WIDTHS[0], float("inf")
    for width in WIDTHS:
        with torch.device("meta"):
            count = parameter_count(variant.build(width, 16, segment))
        if abs(count - target) < best_gap:
            best, best_gap = width, abs(count - target)
        if count >= target:
            break
    return best


def make_runner(name: str, variant: Variant, width: int, L: int, B: int, G: int, device) -> Runner:
    """The memory's acting step and training segment on random inputs, through the Memory
    interface: a full window (episode_step >= L - 1) and stored entries of its layout."""
    memory = variant.build(width, L, G).to(device)
    layout = memory.layout()
    state = memory.initial_state(B, device)
    for part in state:
        if part.is_floating_point():
            part.normal_()
    x = torch.randn(B, memory.input_dim, device=device)
    episode_step = torch.full((B,), max(L - 1, 1), device=device)
    segment = torch.randn(B, G, memory.input_dim, device=device)
    stored = torch.randn(B, layout.keys, *layout.shape, device=device)       # (B, K, *shape)
    key_episode = torch.zeros(B, layout.history + G, dtype=torch.long, device=device)
    query_step = (torch.arange(G, device=device) + max(L - 1, 1)).expand(B, G)

    def train():
        return memory.segments(segment, stored, key_episode, query_step).square().mean()

    return Runner(name, L if variant.grows_with_length else None, memory,
                  lambda: memory.step(x, state, episode_step), train,
                  state_nbytes(state) // B, variant.kind.compiles)


def build_runners(args, device) -> list[Runner]:
    runners = []
    for name, variant in variants().items():
        width = matched_width(variant, args.parameters, args.segment)
        lengths = args.lengths if variant.grows_with_length else args.lengths[:1]
        runners += [make_runner(name, variant, width, L, args.batch, args.segment, device)
                    for L in lengths]
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
        # A memory whose step torch.compile cannot capture (nn.GRU/nn.LSTM: one fused kernel
        # per step already) acts eagerly in both modes.
        if args.compile and runner.compiles:
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


def print_ratios(runners: list[Runner], results: dict[int, Result], numerator: str,
                 denominator: str) -> None:
    """numerator's figures over denominator's, at each L of either."""
    def at(name: str, L: int) -> Runner:
        mine = [r for r in runners if r.name == name]
        return next((r for r in mine if r.length == L), mine[0])

    print(f"{numerator} / {denominator}")
    for L in sorted({r.length for r in runners if r.name in (numerator, denominator)
                     and r.length is not None}):
        a, b = at(numerator, L), at(denominator, L)
        ra, rb = results[id(a)], results[id(b)]
        print(f"  L {L:5d}: acting time {ra.acting_ms / rb.acting_ms:5.2f}, state "
              f"{a.state_bytes / b.state_bytes:5.3f}, training time "
              f"{ra.train_ms / rb.train_ms:5.2f}, training activations "
              f"{ra.saved_bytes / rb.saved_bytes:5.2f}")


def plot(runners: list[Runner], results: dict[int, Result], lengths: list[int], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax_time, ax_bytes) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in dict.fromkeys(r.name for r in runners):
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
    parser.add_argument("--parameters", type=int, default=PARAMETERS,
                        help="every memory's width is chosen so that its parameter count is "
                             "the closest to this")
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
                             "memories whose step torch.compile cannot capture stay eager)")
    parser.add_argument("--ratio", nargs=2, metavar=("A", "B"),
                        help="also print A's figures over B's at every L")
    parser.add_argument("--quick", action="store_true",
                        help="a few steps at L = 16, 64 and small sizes: checks that it runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.lengths, args.batch, args.segment = [16, 64], 4, 8
        args.steps, args.train_repeats, args.rounds = 3, 1, 1
    if min(args.lengths) < 1 or args.parameters < 1:
        parser.error("--lengths and --parameters must be >= 1")
    if args.ratio and not set(args.ratio) <= set(variants()):
        parser.error(f"--ratio {' '.join(args.ratio)}: the memories are "
                     f"{', '.join(variants())}")
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"batch {args.batch} workers, training segment {args.segment} steps, "
          f"{args.threads} thread(s), device {device}, acting "
          f"{'compiled' if args.compile else 'eager'}")
    runners = build_runners(args, device)
    results = measure(runners, args, device)
    print_table(runners, results, device)
    if args.ratio:
        print_ratios(runners, results, *args.ratio)
    plot(runners, results, args.lengths, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
