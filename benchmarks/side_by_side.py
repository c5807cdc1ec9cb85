"""Seconds per update of this implementation next to the originals, measured side by side.

    benchmarks/side_by_side.sh ORIGINAL_CHECKOUT CLEANRL_CHECKOUT [options]

ORIGINAL_CHECKOUT is a checkout of MarcoMeter/episodic-transformer-memory-ppo and
CLEANRL_CHECKOUT one of vwxyzjn/cleanrl, each with the patches of docs/performance-method.md
applied (today's gymnasium, minigrid and numpy; fixed update counts; one `SBS ...` line per
update). Their code is never stored in this repository.

For every case, rounds alternate the order of the implementations (ours first in odd rounds,
theirs first in even ones) so that a drift of the machine's speed hits both alike. Before
every run the other load on the machine (CPU time of processes that are not this benchmark's,
from /proc/stat) is measured; above --max-load cores the run waits up to --wait seconds and is
then refused (or, with --allow-load, run and marked). During every run the same figure is
sampled and printed beside the result.

Every run starts with the environment this harness was started with, as if launched from the
same shell by its own README's command: the settings that this project's process_setup adds
for its own processes (OMP_WAIT_POLICY) are taken out again, so each implementation runs with
its own defaults; only OMP_NUM_THREADS and MKL_NUM_THREADS (default 2) are fixed for all. Each
run's log starts with those variables, and each run prints the thread settings it ran with.

--console is the cross-check: every implementation is run as its README runs it (ours as
train.py) and timed from the arrival of its own per-update console lines, not from the
`SBS` lines of the patches and of our runner.

Cases (ours: configs/bench/*.yaml and configs/proof_of_memory.yaml):
  minigrid-4x128    MiniGrid-MemoryS9, the original's network (3 x 384, L 64, 5 epochs),
                    episodes cut at 96 steps as the original cuts them
  minigrid-16x128   the same at 16 workers x 128 steps
  minigrid-16x512   the same at the original's own rollout size (16 x 512)
  mortar-8x128      Mortar Mayhem Grid, CleanRL's defaults (3 x 384, L 119, 3 epochs), vs CleanRL
  mortar-32x512     the same at CleanRL's own rollout size
  pom-solve         proof-of-memory, wall seconds from launch until an update's episodes succeed
                    >= 90% of the time, each implementation with its own shipped config

`python benchmarks/side_by_side.py ours --config FILE --updates N` is the single run of ours
that the driver launches (one process per run, as theirs are). benchmarks/prepare_originals.sh
fetches and patches the two other implementations (patches in benchmarks/patches/).
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from preflight import process_setup  # noqa: E402  (before torch)

# An update's episodes must succeed this often for the proof-of-memory task to count as solved.
SOLVED_SUCCESS = 0.9
# The first update of every run allocates, compiles kernels and fills the first episodes.
WARMUP_UPDATES = 1
LINE = re.compile(r"^SBS (.*)$")
# Each implementation's own per-update console line: ours (train.py), the original's
# trainer.py and CleanRL's ppo_trxl.py.
CONSOLE_UPDATE = {"ours": re.compile(r"^update\s+\d+/\d+"),
                  "original": re.compile(r"^\s*\d+ reward="),
                  "cleanrl": re.compile(r"^\s*\d+ SPS=")}
# Variables that decide how a run's threads behave; each run's log starts with them.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME",
                    "GOMP_SPINCOUNT", "OMP_PROC_BIND")


# --------------------------------------------------------------------------------------
# The runs
# --------------------------------------------------------------------------------------

class Command(NamedTuple):
    """One implementation's command line for a case; `extra_path` goes first on PYTHONPATH."""
    impl: str
    argv: list[str]
    extra_path: str = ""


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    ours_config: str
    theirs: str                       # "original" or "cleanrl"
    updates: int                      # timed updates per run (after the warm-up)
    solve: bool = False               # time to solve instead of seconds per update
    also: tuple[str, ...] = ()        # further implementations run beside (pom-solve: both)


CASES = {
    "minigrid-4x128": Case("minigrid-4x128", "MiniGrid-MemoryS9, original's network, 4 x 128",
                           "configs/bench/minigrid_original_4x128.yaml", "original", 3),
    "minigrid-16x128": Case("minigrid-16x128", "MiniGrid-MemoryS9, original's network, 16 x 128",
                            "configs/bench/minigrid_original_16x128.yaml", "original", 2),
    "minigrid-16x512": Case("minigrid-16x512", "MiniGrid-MemoryS9, original's config, 16 x 512",
                            "configs/bench/minigrid_original_16x512.yaml", "original", 1),
    "mortar-8x128": Case("mortar-8x128", "Mortar Mayhem Grid, CleanRL's network, 8 x 128",
                         "configs/bench/mortar_mayhem_grid_cleanrl_8x128.yaml", "cleanrl", 3),
    "mortar-32x512": Case("mortar-32x512", "Mortar Mayhem Grid, CleanRL's defaults, 32 x 512",
                          "configs/bench/mortar_mayhem_grid_cleanrl_32x512.yaml", "cleanrl", 1),
    "pom-solve": Case("pom-solve", "proof-of-memory, time to solve, each its own shipped "
                      "config and task (measures configs and start-up, not implementations)",
                      "configs/proof_of_memory.yaml", "cleanrl", 40, solve=True,
                      also=("original",)),
}

# CleanRL's documented proof-of-memory command (its PPO-TrXL documentation's hyperparameters).
CLEANRL_POM = ["--env-id", "ProofofMemory-v0", "--num-envs", "16", "--num-steps", "128",
               "--num-minibatches", "8", "--update-epochs", "4", "--trxl-num-layers", "4",
               "--trxl-num-heads", "1", "--trxl-dim", "64", "--trxl-memory-length", "16",
               "--trxl-positional-encoding", "none", "--vf-coef", "0.1", "--max-grad-norm",
               "0.5", "--init-lr", "3.0e-4", "--init-ent-coef", "0.001", "--clip-coef", "0.2"]
# Updates each ships for proof-of-memory: CleanRL 25,000 steps of 16 x 128, the original's
# configs/poc_memory_env.yaml 200 updates.
SHIPPED_POM_UPDATES = {"cleanrl": 12, "original": 200}


def command(impl: str, case: Case, args, seed: int) -> Command:
    """The command line of one run of `impl` on `case`. --updates replaces every update count
    (timed updates, or the proof-of-memory budgets): for a quick check that all runs start."""
    python = args.python
    total = WARMUP_UPDATES + (args.updates or case.updates)
    pom_updates = dict(SHIPPED_POM_UPDATES, ours=case.updates)
    if args.updates:
        pom_updates = dict.fromkeys(pom_updates, args.updates)
    if impl == "ours" and args.console:
        return Command(impl, [python, os.path.join(ROOT, "train.py"), "--config",
                              os.path.join(ROOT, case.ours_config), "--run-id", "side-by-side",
                              "--updates", str(total), "--seed", str(seed), "--device", "cpu"])
    if impl == "ours":
        updates = pom_updates["ours"] if case.solve else total
        argv = [python, os.path.join(ROOT, "benchmarks", "side_by_side.py"), "ours",
                "--config", os.path.join(ROOT, case.ours_config), "--updates", str(updates),
                "--seed", str(seed)]
        return Command(impl, argv + (["--until-solved"] if case.solve else []))
    if impl == "original":
        train = os.path.join(args.original, "train.py")
        if case.solve:
            return Command(impl, [python, train, "--config", os.path.join(
                args.original, "configs", "poc_memory_env.yaml"), "--cpu",
                "--updates", str(pom_updates["original"])], args.their_path)
        workers, steps = case.name.split("-")[1].split("x")
        return Command(impl, [python, train, "--config", os.path.join(
            args.original, "configs", "minigrid.yaml"), "--cpu", "--updates", str(total),
            "--workers", workers, "--steps", steps], args.their_path)
    script = os.path.join(args.cleanrl, "cleanrl", "ppo_trxl", "ppo_trxl.py")
    if case.solve:
        steps = pom_updates["cleanrl"] * 16 * 128
        return Command(impl, [python, script, "--no-cuda", "--seed", str(seed),
                              "--total-timesteps", str(steps), *CLEANRL_POM], args.their_path)
    workers, steps = case.name.split("-")[1].split("x")
    return Command(impl, [python, script, "--no-cuda", "--seed", str(seed),
                          "--env-id", "MortarMayhem-Grid-v0", "--num-envs", workers,
                          "--num-steps", steps, "--total-timesteps",
                          str(total * int(workers) * int(steps))], args.their_path)


@dataclass
class RunResult:
    impl: str
    case: str
    round: int
    update_seconds: list[float] = field(default_factory=list)   # timed updates only
    sampling: list[float] = field(default_factory=list)
    optimisation: list[float] = field(default_factory=list)
    parameters: Optional[int] = None
    settings: dict[str, str] = field(default_factory=dict)   # thread settings the run printed
    console_seconds: list[float] = field(default_factory=list)  # from its own console lines
    solved_seconds: Optional[float] = None     # pom-solve: launch to the solving update's end
    solved_update: Optional[int] = None
    load_before: float = 0.0
    load_during: float = 0.0
    error: str = ""

    @property
    def per_update(self) -> Optional[float]:
        return statistics.median(self.update_seconds) if self.update_seconds else None

    @property
    def per_update_console(self) -> Optional[float]:
        return statistics.median(self.console_seconds) if self.console_seconds else None


def parse_fields(text: str) -> dict[str, str]:
    """`key=value key=value` -> dict."""
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


# --------------------------------------------------------------------------------------
# Load on the machine
# --------------------------------------------------------------------------------------

def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [float(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)     # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class TreeCPU:
    """CPU seconds used by a process and all its descendants, polled (psutil) so that
    descendants that exit between polls still count up to their last poll."""

    def __init__(self, pid: int):
        import psutil
        self.psutil, self.pid, self.seen = psutil, pid, {}

    def poll(self) -> float:
        try:
            root = self.psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except self.psutil.NoSuchProcess:
            procs = []
        for proc in procs:
            try:
                t = proc.cpu_times()
                self.seen[proc.pid] = t.user + t.system
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                pass
        return sum(self.seen.values())


def other_load(seconds: float, pids: tuple[int, ...] = ()) -> float:
    """Cores kept busy over `seconds` by processes other than this one (and `pids`' trees)."""
    trees = [TreeCPU(p) for p in (os.getpid(), *pids)]
    start_busy, start_ours = busy_seconds(), sum(t.poll() for t in trees)
    time.sleep(seconds)
    busy, ours = busy_seconds() - start_busy, sum(t.poll() for t in trees) - start_ours
    return max(0.0, busy - ours) / seconds


class LoadDuringRun:
    """Other load while a run's process tree works: machine busy time minus the tree's."""

    def __init__(self, pid: int, interval: float = 0.5):
        self.trees = [TreeCPU(pid), TreeCPU(os.getpid())]
        self.interval, self._stop = interval, threading.Event()
        self.start_busy, self.start_time = busy_seconds(), time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for tree in self.trees:
                tree.poll()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        elapsed = time.monotonic() - self.start_time
        ours = sum(tree.poll() for tree in self.trees)
        return max(0.0, busy_seconds() - self.start_busy - ours) / max(elapsed, 1e-9)


def wait_for_quiet(args) -> float:
    """Other load once it is at most --max-load cores, or the last figure after --wait s."""
    deadline = time.monotonic() + args.wait
    while True:
        load = other_load(args.load_window)
        if load <= args.max_load or time.monotonic() >= deadline:
            return load
        print(f"  other load {load:.2f} cores > {args.max_load}; waiting", flush=True)
        time.sleep(5)


# --------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------

def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the run's whole session: pygame (Memory Gym) catches SIGTERM, and the original
    leaves its environment processes alive when the trainer dies."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def launch_environment(threads: int, extra_path: str = "") -> dict[str, str]:
    """The environment a run starts with: this harness's own, less what process_setup added
    to it for this project's processes (ours adds it again itself, as train.py does, and the
    others run with their defaults, as from a shell), with the thread count fixed for all."""
    env = {key: value for key, value in os.environ.items() if key not in process_setup.APPLIED}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYGAME_HIDE_SUPPORT_PROMPT="1")
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, env.get("PYTHONPATH")) if p)
    return env


def thread_settings(env) -> str:
    """`NAME=value` of every THREAD_VARIABLES entry of env, `<unset>` where absent."""
    return " ".join(f"{key}={env.get(key, '<unset>')}" for key in THREAD_VARIABLES)


def console_intervals(arrivals: list[float]) -> list[float]:
    """Seconds between consecutive per-update console lines, after the warm-up updates: the
    first line marks the end of update 1, so the k-th interval is update WARMUP + k."""
    timed = arrivals[WARMUP_UPDATES - 1:]
    return [b - a for a, b in zip(timed, timed[1:])]


def run_once(cmd: Command, case: Case, round_: int, args) -> RunResult:
    result = RunResult(cmd.impl, case.name, round_)
    result.load_before = wait_for_quiet(args)
    if result.load_before > args.max_load and not args.allow_load:
        result.error = f"refused: other load {result.load_before:.2f} cores > {args.max_load}"
        return result
    env = launch_environment(args.threads, cmd.extra_path)
    workdir = tempfile.mkdtemp(prefix=f"sbs-{cmd.impl}-")     # their summaries and models
    log_path = os.path.join(args.log_dir, f"{case.name}.{cmd.impl}.round{round_}.log")
    console = CONSOLE_UPDATE[cmd.impl]
    arrivals: list[float] = []
    start = time.monotonic()
    with open(log_path, "w") as log:
        log.write(f"# command: {shlex.join(cmd.argv)}\n# environment: {thread_settings(env)}\n")
        proc = subprocess.Popen(cmd.argv, cwd=workdir, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        load = LoadDuringRun(proc.pid)
        timer = threading.Timer(args.timeout, kill_tree, (proc,))
        timer.start()
        try:
            for line in proc.stdout:
                log.write(line)
                if console.match(line):
                    arrivals.append(time.monotonic())
                    if args.console and case.solve is False and \
                            len(arrivals) > WARMUP_UPDATES + (args.updates or case.updates):
                        break
                match = LINE.match(line.strip())
                if not match:
                    continue
                fields = parse_fields(match.group(1))
                if "parameters" in fields:
                    result.parameters = int(fields.pop("parameters"))
                    result.settings = fields
                    continue
                update = int(fields["update"])
                if case.solve:
                    if float(fields["success"]) >= SOLVED_SUCCESS:   # nan compares False
                        result.solved_seconds = time.monotonic() - start
                        result.solved_update = update
                        break
                elif update > WARMUP_UPDATES and not args.console:
                    result.update_seconds.append(float(fields["seconds"]))
                    result.sampling.append(float(fields["sampling"]))
                    result.optimisation.append(float(fields["optimisation"]))
        finally:
            timer.cancel()
            result.load_during = load.stop()
            kill_tree(proc)
            shutil.rmtree(workdir, ignore_errors=True)
    result.console_seconds = console_intervals(arrivals)
    if args.console:
        result.update_seconds = result.console_seconds
    if case.solve and result.solved_seconds is None:
        result.error = f"not solved ({time.monotonic() - start:.0f} s; log {log_path})"
    elif not case.solve and len(result.update_seconds) < (args.updates or case.updates):
        result.error = f"{len(result.update_seconds)} timed updates of " \
                       f"{args.updates or case.updates} (log {log_path})"
    return result


def describe(r: RunResult) -> str:
    head = f"  {r.case:<16} round {r.round}  {r.impl:<8}"
    load = f"other load {r.load_before:.2f} before, {r.load_during:.2f} during"
    if r.error:
        return f"{head} {r.error}  ({load})"
    params = f"{r.parameters:,} parameters" if r.parameters else "parameters ?"
    threads = " ".join(f"{k}={v}" for k, v in r.settings.items()) or "thread settings ?"
    if r.solved_seconds is not None:
        return f"{head} solved in {r.solved_seconds:6.1f} s at update {r.solved_update}  " \
               f"({params}; {threads}; {load})"
    parts = [f"{params}", threads, load]
    if r.sampling:
        parts.insert(0, f"sampling {statistics.median(r.sampling):.2f}, optimisation "
                        f"{statistics.median(r.optimisation):.2f}")
    if r.console_seconds and r.console_seconds is not r.update_seconds:
        parts.insert(1, f"own console lines {r.per_update_console:.2f} s/update")
    return f"{head} {r.per_update:7.2f} s/update ({'; '.join(parts)})"


# --------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------

def figure(results: list[RunResult], impl: str, case: Case) -> list[float]:
    mine = [r for r in results if r.impl == impl and r.case == case.name and not r.error]
    return [r.solved_seconds if case.solve else r.per_update for r in mine]


def span(values: list[float]) -> str:
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return f"{lo:.1f}" if abs(hi - lo) < 0.05 else f"{lo:.1f}-{hi:.1f}"


def summary(results: list[RunResult], cases: list[Case], args) -> str:
    loads = [r.load_during for r in results if not r.error]
    lines = [f"Side by side, {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores, "
             f"OMP_NUM_THREADS={args.threads}, other load during runs "
             f"{min(loads, default=0):.2f}-{max(loads, default=0):.2f} cores "
             f"(limit {args.max_load}); {args.rounds} interleaved rounds; "
             + ("cross-check: each program as its README runs it, timed from its own console "
                "lines" if args.console else "timed from the SBS lines"),
             "", "| config | ours | original | CleanRL | theirs / ours (medians) | parameters |",
             "|---|---|---|---|---|---|"]
    for case in cases:
        ours = figure(results, "ours", case)
        row = [case.description + (" (s to solve)" if case.solve else " (s/update)"), span(ours)]
        ratios, params = [], []
        for impl in ("original", "cleanrl"):
            theirs = figure(results, impl, case)
            row.append(span(theirs) if impl in (case.theirs, *case.also) else "")
            if ours and theirs:
                ratios.append(f"{statistics.median(theirs) / statistics.median(ours):.2f}x {impl}")
        for impl in ("ours", case.theirs, *case.also):
            counts = {r.parameters for r in results
                      if r.impl == impl and r.case == case.name and r.parameters}
            params.append(f"{impl} {', '.join(f'{c:,}' for c in sorted(counts)) or '?'}")
        row += ["; ".join(ratios) or "-", "; ".join(params)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def drive(args) -> int:
    cases = [CASES[name] for name in args.cases]
    if args.console and any(case.solve for case in cases):
        raise SystemExit("side_by_side: --console times updates; pom-solve times a whole run. "
                         "Fix: leave pom-solve out of --cases.")
    for impl, path in (("original", args.original), ("cleanrl", args.cleanrl)):
        if any(impl in (c.theirs, *c.also) for c in cases) and not (
                path and os.path.isdir(path)):
            raise SystemExit(f"side_by_side: the {impl} checkout {path!r} is not a directory. "
                             f"Fix: pass it (or set SBS_{impl.upper()}); see "
                             f"docs/performance-method.md for how to fetch and patch it.")
    os.makedirs(args.log_dir, exist_ok=True)
    print(f"logs in {args.log_dir}; cases {', '.join(args.cases)}; {args.rounds} rounds", flush=True)
    results: list[RunResult] = []
    for case in cases:
        impls = ["ours", case.theirs, *case.also]
        for round_ in range(1, args.rounds + 1):
            order = impls if round_ % 2 else impls[::-1]
            for impl in order:
                result = run_once(command(impl, case, args, seed=round_), case, round_, args)
                results.append(result)
                print(describe(result), flush=True)
    text = summary(results, cases, args)
    print("\n" + text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n\nRuns:\n" + "\n".join(describe(r) for r in results) + "\n")
    return 1 if any(r.error for r in results) else 0


def run_ours(args) -> int:
    """One run of ours: a warm-up plus timed updates, one `SBS` line each, as theirs print."""
    import numpy as np
    from config import load_config
    from trainer import Trainer
    import torch
    config = load_config(args.config, {"seed": args.seed, "device": "cpu"})
    out = tempfile.mkdtemp(prefix="sbs-ours-")
    trainer = Trainer(config, "side-by-side", os.path.join(out, "models"),
                      os.path.join(out, "summaries"))
    try:
        print(f"SBS parameters={sum(p.numel() for p in trainer.model.parameters())} "
              f"torch_threads={torch.get_num_threads()} {thread_settings(os.environ)}", flush=True)
        for update in range(1, args.updates + 1):
            start = time.perf_counter()
            episodes, times = trainer.train_one_update()
            seconds = time.perf_counter() - start
            successes = [e.success for e in episodes if e.success is not None]
            success = f"{np.mean(successes):.4f}" if successes else "nan"
            print(f"SBS update={update} seconds={seconds:.4f} sampling={times.sampling:.4f} "
                  f"optimisation={times.optimisation:.4f} episodes={len(episodes)} "
                  f"success={success}", flush=True)
            if args.until_solved and successes and np.mean(successes) >= SOLVED_SUCCESS:
                break
    finally:
        trainer.close()
        shutil.rmtree(out, ignore_errors=True)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ours"]:
        parser = argparse.ArgumentParser(prog="side_by_side.py ours")
        parser.add_argument("--config", required=True)
        parser.add_argument("--updates", type=int, required=True)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--until-solved", action="store_true")
        return run_ours(parser.parse_args(argv[1:]))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", default=os.environ.get("SBS_ORIGINAL"),
                        help="checkout of episodic-transformer-memory-ppo, patched ($SBS_ORIGINAL)")
    parser.add_argument("--cleanrl", default=os.environ.get("SBS_CLEANRL"),
                        help="checkout of cleanrl, patched ($SBS_CLEANRL)")
    parser.add_argument("--their-path", default=os.environ.get("SBS_PYTHONPATH", ""),
                        help="extra PYTHONPATH for their imports (einops, docopt, tyro...) "
                             "($SBS_PYTHONPATH)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for every run")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--updates", type=int,
                        help="replace every case's update count (a quick check, not a figure)")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of every run")
    parser.add_argument("--max-load", type=float, default=0.2,
                        help="most other load (cores) a run may start under")
    parser.add_argument("--wait", type=float, default=600,
                        help="seconds to wait for the load to fall before refusing a run")
    parser.add_argument("--load-window", type=float, default=3.0,
                        help="seconds over which the load before a run is measured")
    parser.add_argument("--allow-load", action="store_true",
                        help="run under load anyway, marking the figure (not a measurement)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument("--log-dir", default=os.path.join(tempfile.gettempdir(), "side-by-side"))
    parser.add_argument("--out", help="also write the table and every run to this file")
    parser.add_argument("--console", action="store_true",
                        help="cross-check: run ours as train.py and time every implementation "
                             "from its own per-update console lines")
    return drive(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
