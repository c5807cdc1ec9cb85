"""The benchmarks anyone can run still run and print every figure they promise.
Smoke tests only: performance claims live in the scripts' output, never in a timed test."""
import re

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
                  "env-only steps/s", "compute floor seconds", "peak memory (PSS, tree)",
                  "buffer bytes", "cached memory bytes"):
        assert printed_numbers(out, label)[0] > 0, label
    phases = printed_numbers(out, "sampling step ms")
    assert len(phases) == 6 and all(ms > 0 for ms in phases)     # 4 phases, env-only, envs alone


@pytest.mark.skipif(cpp_compiler() is None, reason="torch.compile on CPU needs a C++ compiler")
def test_acting_step_prints_eager_compiled_and_idle_times(capsys):
    from benchmarks import acting_step
    assert acting_step.main(["--config", "configs/proof_of_memory.yaml", "--steps", "3",
                             "--rounds", "1", "--idle-ms", "0.1"]) == 0
    out = capsys.readouterr().out
    assert len(printed_numbers(out, "round 1")) == 4          # eager, compiled, the gap, compiled after it
    assert printed_numbers(out, "max difference")[0] < 1e-4
