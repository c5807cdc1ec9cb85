"""The benchmarks anyone can run still run and print every figure they promise.
Smoke tests only: performance claims live in the scripts' output, never in a timed test."""
import argparse
import re
import sys

import pytest

from agent import cpp_compiler


def printed_numbers(text: str, label: str) -> list[float]:
    line = next(line for line in text.splitlines() if line.startswith(label))
    numbers = re.findall(r"\d[\d,]*\.?\d*(?:e[-+]?\d+)?", line[len(label):])
    return [float(x.replace(",", "")) for x in numbers]


def test_throughput_prints_every_figure(capsys):
    from benchmarks import throughput
    assert throughput.main(["--config", "configs/proof_of_memory.yaml", "--updates", "1"]) == 0
    out = capsys.readouterr().out
    for label in ("steps/s whole loop", "sampling seconds", "optimisation seconds",
                  "env-only steps/s", "compute floor seconds", "whole-loop floor seconds",
                  "peak memory (PSS, tree)", "buffer bytes", "cached memory bytes",
                  "first update seconds", "update FLOPs", "compute floor FLOP/s",
                  "peak float32 GEMM (measured)", "peak bfloat16 GEMM (measured)"):
        assert printed_numbers(out, label)[0] > 0, label
    phases = printed_numbers(out, "sampling step ms")
    assert len(phases) == 6 and all(ms > 0 for ms in phases)     # 4 phases, env-only, envs alone


def test_update_profile_shares_cover_the_update(capsys):
    from benchmarks import update_profile
    assert update_profile.main(["--config", "configs/proof_of_memory.yaml", "--updates", "1"]) == 0
    out = capsys.readouterr().out
    top = [printed_numbers(out, f"  {name}")[0] for name in
           ("sampling", "advantages", "optimisation", "logging", "snapshot", "outside")]
    assert all(share >= 0 for share in top) and abs(sum(top) - 100) < 0.5   # percentages
    assert printed_numbers(out, "    forward + backward")[0] > 0


def test_optimiser_step_prints_every_variant_against_the_default(capsys):
    from benchmarks import optimiser_step
    assert optimiser_step.main(["--config", "configs/proof_of_memory.yaml", "--rounds", "1",
                                "--calls", "1"]) == 0
    out = capsys.readouterr().out
    assert printed_numbers(out, "AdamW default") == [1.0]
    for label in ("AdamW foreach", "AdamW fused", "clip_grad_norm_ default",
                  "clip_grad_norm_ foreach"):
        assert printed_numbers(out, label)[0] > 0, label


@pytest.mark.skipif(cpp_compiler() is None, reason="torch.compile on CPU needs a C++ compiler")
def test_acting_step_prints_eager_compiled_and_idle_times(capsys):
    from benchmarks import acting_step
    assert acting_step.main(["--config", "configs/proof_of_memory.yaml", "--steps", "3",
                             "--rounds", "1", "--idle-ms", "0.1", "--worker-steps", "8",
                             "--rollouts", "1", "--profile", "3"]) == 0
    out = capsys.readouterr().out
    for label in ("acting in rollout", "forward alone", "acting / forward"):
        assert printed_numbers(out, label)[0] > 0, label
    assert printed_numbers(out, "  phases")[0] > 0
    ops = [line for line in out.splitlines() if line.startswith("    aten::")]
    assert len(ops) == 2 * 3                     # the rollout's and the forward's alone
    assert len(printed_numbers(out, "round 1")) == 4          # eager, compiled, the gap, compiled after it
    assert printed_numbers(out, "max difference")[0] < 1e-4


def side_by_side_args(**changes):
    args = argparse.Namespace(
        original=None, cleanrl=None, their_path="", python=sys.executable, cases=["pom-solve"],
        rounds=1, updates=None, threads=2, max_load=0.2, wait=0.0, load_window=0.1,
        allow_load=False, timeout=60.0, log_dir="", out=None, console=False)
    for key, value in changes.items():
        setattr(args, key, value)
    return args


def test_side_by_side_refuses_to_run_under_load(monkeypatch):
    from benchmarks import side_by_side
    monkeypatch.setattr(side_by_side, "other_load", lambda seconds: 1.5)
    case = side_by_side.CASES["minigrid-4x128"]
    command = side_by_side.Command("ours", ["false"])
    result = side_by_side.run_once(command, case, 1, side_by_side_args())
    assert result.error.startswith("refused: other load 1.50 cores > 0.2")
    assert result.update_seconds == []


def test_side_by_side_table_gives_theirs_over_ours(monkeypatch):
    from benchmarks.side_by_side import CASES, RunResult, summary
    case = CASES["minigrid-4x128"]
    results = [RunResult("ours", case.name, 1, [9.0, 10.0, 11.0], parameters=4_392_484),
               RunResult("original", case.name, 1, [19.0, 20.0, 21.0], parameters=4_000_000),
               RunResult("ours", case.name, 2, [12.0], parameters=4_392_484),
               RunResult("original", case.name, 2, error="refused: other load 0.90 cores > 0.2")]
    row = next(line for line in summary(results, [case], side_by_side_args()).splitlines()
               if line.startswith("| MiniGrid"))
    # Per run the median update: ours 10 and 12 (their median 11), the original 20; the
    # refused run counts for nothing.
    assert "| 10.0-12.0 | 20.0 |" in row and "1.82x original" in row
    assert "ours 4,392,484; original 4,000,000" in row


def test_side_by_side_needs_the_checkouts(tmp_path):
    from benchmarks import side_by_side
    with pytest.raises(SystemExit, match="original checkout None is not a directory"):
        side_by_side.drive(side_by_side_args(cases=["minigrid-4x128"], log_dir=str(tmp_path)))


# A stand-in for an implementation's process: prints the thread settings it sees, as the
# patches make the originals do, then warm-up plus three updates as SBS and console lines.
FAKE_RUN = """
import os, sys
sys.path.insert(0, {root!r})
if {ours!r}:
    from preflight import process_setup
print("SBS parameters=7 OMP_WAIT_POLICY=" + os.environ.get("OMP_WAIT_POLICY", "<unset>")
      + " OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "<unset>"), flush=True)
for update in range(1, 5):
    print(f"SBS update={{update}} seconds=2.0 sampling=0.5 optimisation=1.5 episodes=1 "
          f"success=nan", flush=True)
    print(f"{{update:4}} reward=0.00", flush=True)
"""


@pytest.mark.parametrize("impl", ["original", "ours"])
def test_side_by_side_runs_each_implementation_with_its_own_thread_settings(
        impl, tmp_path, monkeypatch):
    """This project's process_setup sets OMP_WAIT_POLICY=PASSIVE in the harness's own
    environment; the other implementations must not inherit it (they run as from a shell),
    while ours sets it again itself. Only the thread count is fixed for everyone."""
    from preflight import process_setup
    from benchmarks import side_by_side
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setitem(process_setup.APPLIED, "OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setattr(side_by_side, "other_load", lambda seconds: 0.0)
    monkeypatch.setitem(side_by_side.CONSOLE_UPDATE, "ours",
                        side_by_side.CONSOLE_UPDATE["original"])
    code = FAKE_RUN.format(root=side_by_side.ROOT, ours=impl == "ours")
    command = side_by_side.Command(impl, [sys.executable, "-c", code])
    case = side_by_side.CASES["minigrid-4x128"]
    result = side_by_side.run_once(command, case, 1, side_by_side_args(log_dir=str(tmp_path)))
    assert result.error == ""
    expected = "PASSIVE" if impl == "ours" else "<unset>"
    assert result.settings == {"OMP_WAIT_POLICY": expected, "OMP_NUM_THREADS": "2"}
    assert result.update_seconds == [2.0, 2.0, 2.0]
    assert len(result.console_seconds) == 3          # the intervals after the warm-up line
    log = (tmp_path / f"minigrid-4x128.{impl}.round1.log").read_text()
    assert "\n# environment: OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 OMP_WAIT_POLICY=<unset>" in log


def test_console_intervals_skip_the_warm_up_update():
    from benchmarks.side_by_side import console_intervals
    # Lines at the ends of updates 1 (warm-up), 2, 3 and 4.
    assert console_intervals([10.0, 13.0, 15.5, 18.5]) == [3.0, 2.5, 3.0]
    assert console_intervals([10.0]) == []


def test_prepared_originals_match_the_documented_commits():
    """The patches apply to the commits docs/performance-method.md names; the script that
    applies them pins the same ones."""
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = open(os.path.join(root, "benchmarks", "prepare_originals.sh")).read()
    method = open(os.path.join(root, "docs", "performance-method.md")).read()
    for commit in re.findall(r"_COMMIT=([0-9a-f]{40})", script):
        assert commit in method
    for name in ("original", "cleanrl"):
        patch = open(os.path.join(root, "benchmarks", "patches", f"{name}.patch")).read()
        assert "SBS parameters=" in patch and "SBS update=" in patch


def test_gpu_check_dry_run_lists_the_multi_gpu_steps():
    """gpu_check.sh cannot run here (no GPU): its syntax is checked, and a dry run prints
    the 2-GPU equivalence tests and the 1- and 2-GPU torchrun trainings."""
    import subprocess
    assert subprocess.run(["bash", "-n", "benchmarks/gpu_check.sh"]).returncode == 0
    dry = subprocess.run(["bash", "benchmarks/gpu_check.sh"], capture_output=True, text=True,
                         env={"DRY_RUN": "1", "PATH": "/usr/bin:/bin"}, timeout=30)
    assert dry.returncode == 0, dry.stderr
    assert "tests/test_distributed.py" in dry.stdout
    for n in (1, 2):
        assert f"--nproc-per-node {n} train.py" in dry.stdout


def test_compute_floor_plot_reads_the_committed_log(tmp_path):
    from benchmarks import plot_compute_floor
    log = "benchmarks/logs/compute_floor_2026-12-03.log"
    figures = plot_compute_floor.parse(open(log).read())
    assert list(figures) == ["minigrid_memory", "mortar_mayhem_grid"]
    assert figures["minigrid_memory"].floors == {"eager float32": 18.81, "eager bfloat16": 12.16,
                                                 "compiled float32": 17.57,
                                                 "compiled bfloat16": 8.7}
    assert figures["mortar_mayhem_grid"].mfu["eager float32"] == (40.3, 43.6)
    assert plot_compute_floor.main([log, str(tmp_path / "floor.png")]) == 0
    assert (tmp_path / "floor.png").stat().st_size > 0
