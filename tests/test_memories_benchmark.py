"""benchmarks/memories.py runs and prints every figure it promises for every registered
memory (a smoke test: the figures themselves live in the script's output, never in a timed
test)."""
from tests.test_benchmarks import printed_numbers


def test_memories_benchmark_prints_every_memory_and_writes_the_plot(capsys, tmp_path):
    from benchmarks import memories
    names = list(memories.variants())
    plot = tmp_path / "acting_cost.png"
    assert memories.main(["--quick", "--plot", str(plot), "--ratio", "AGaLiTe", "GTrXL"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    counts = {name: printed_numbers(out, f"{name:8s} width")[1] for name in names}
    target = memories.PARAMETERS
    assert all(abs(count - target) < 0.1 * target for count in counts.values()), counts
    rows = [row for row in map(str.split, lines)
            if len(row) == 7 and row[0] in names and (row[1] == "any" or row[1].isdigit())]
    assert sorted({row[0] for row in rows}) == sorted(names)
    assert [row[1] for row in rows if row[0] == "GTrXL"] == ["16", "64"]
    for row in rows:
        figures = [float(x.replace(",", "")) for x in row[2:]]
        assert len(figures) == 5 and all(f > 0 for f in figures), row
    # TrXL's cache grows with L; a linear-recurrent state does not depend on it.
    trxl = [float(row[4]) for row in rows if row[0] == "TrXL"]
    assert trxl[1] > 3 * trxl[0]
    assert len(printed_numbers(out, "  L    16:")) == 4     # acting, state, training x 2
    assert plot.stat().st_size > 10_000
