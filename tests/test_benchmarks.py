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
                  "peak memory (PSS, tree)", "buffer bytes", "cached memory bytes"):
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
        allow_load=False, timeout=60.0, log_dir="", out=None)
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
