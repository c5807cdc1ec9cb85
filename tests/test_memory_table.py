"""scripts/memory_table.py: the page is what the committed score files give, missing cells are
found and ordered as documented, and the computed config facts hold. Nothing is trained."""
import csv
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import memory_table as mt  # noqa: E402


def test_the_page_is_what_the_committed_files_give():
    assert mt.main(["--check"]) == 0


def _write_run_scores(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["algorithm", "run", "task", "seed_of_run", "checkpoint", "update",
                         "steps", "score", "episodes", "metric"])
        writer.writerows(rows)


def test_cells_count_only_runs_that_reached_the_budget(tmp_path):
    pom = mt.COLUMNS[0]
    rows = [["pom_gru", f"pom_gru_seed{s}", pom.task, s, f"pom_gru_seed{s}.nn", 40, 20480,
             0.5 + 0.1 * s, 150, "return"] for s in (0, 1, 2)]
    # seed 3 stopped half way: not in the cell, so still missing
    rows.append(["pom_gru", "pom_gru_seed3", pom.task, 3, "update_000020.nn", 20, 10240, 0.9,
                 150, "return"])
    _write_run_scores(tmp_path / "results" / pom.folder / "run_scores.csv", rows)
    budgets = {(c.key, k): 20480 for c in mt.COLUMNS for k in mt.MEMORIES}
    table = {(c.column.key, c.memory): c for c in mt.cells(str(tmp_path), budgets)}
    gru = table[pom.key, "gru"]
    assert gru.scores == pytest.approx({0: 0.5, 1: 0.6, 2: 0.7})
    assert gru.missing == [3, 4]
    assert table[pom.key, "trxl"].missing == list(mt.SEEDS)
    jobs = mt.missing_jobs(list(table.values()))
    # the cell that lacks two seeds comes first, and a cell's runs come together
    runs = [j.run for j in jobs]
    gru = runs.index("pom_gru_seed3")
    assert runs[gru + 1] == "pom_gru_seed4" and gru < runs.index("pom_lstm_seed0")
    cells_in_order = [(j.column.key, j.memory) for j in jobs]
    assert len(set(cells_in_order)) == sum(
        1 for a, b in zip([None] + cells_in_order, cells_in_order) if a != b)
    assert "pom_gru_seed3" in {j.run for j in jobs}
    assert "pom_gru_seed0" not in {j.run for j in jobs}


def test_a_cell_estimate_is_the_iqm_with_an_interval_around_it():
    cell = mt.Cell(mt.COLUMNS[0], "trxl", 20480, {0: 0.0, 1: 0.2, 2: 0.4, 3: 0.6, 4: 1.0})
    estimate = mt.cell_estimate(cell, reps=2000)
    # IQM of 5 runs: the mean of the middle 50% with fractional weights (rliable's)
    from scipy.stats import trim_mean
    assert estimate.point == pytest.approx(trim_mean([0.0, 0.2, 0.4, 0.6, 1.0], 0.25))
    assert 0.0 <= estimate.low <= estimate.point <= estimate.high <= 1.0
    assert mt.cell_estimate(mt.Cell(cell.column, "trxl", 1, {0: 0.3, 1: 0.3})).low == 0.3


def test_derived_configs_keep_trxls_ppo_settings_and_the_counts_are_computed():
    popgym = next(c for c in mt.COLUMNS if c.key == "RepeatFirst")
    reference = mt.cell_config(popgym, "trxl").load()
    for kind in mt.MEMORIES:
        config = mt.cell_config(popgym, kind).load()
        assert mt.deviations(config, reference) == [], kind
        assert config.memory == ("trxl" if kind == "gtrxl" else kind)
    rows = mt.read_config_rows(os.path.join(ROOT, mt.OUT, "configs.csv"))
    pom = mt.COLUMNS[0]
    fresh = mt.config_rows([pom])
    assert [rows[pom.key, r.memory] for r in fresh] == fresh


def test_deviations_name_the_setting_and_both_values():
    cartpole = mt.COLUMNS[1]
    reference = mt.cell_config(cartpole, "trxl").load()
    lines = mt.deviations(mt.cell_config(cartpole, "agalite").load(), reference)
    assert "`value_loss_coefficient` 0.05 (TrXL: 0.2)" in lines


def test_aggregate_complete_only_leaves_incomplete_seeds_out_of_the_statistics():
    import pandas as pd

    import aggregate
    table = pd.DataFrame({"algorithm": ["a", "a", "b", "b", "b"],
                          "run": ["a_seed0", "a_seed0", "b_seed0", "b_seed0", "b_seed1"],
                          "task": ["X", "Y", "X", "Y", "X"], "seed_of_run": [0, 0, 0, 0, 1],
                          "steps": [10] * 5, "score": [1.0] * 5})
    table = pd.concat([table, table.assign(algorithm="c", run="c_seed1", seed_of_run=1)[:1]])
    kept, pairs = aggregate.complete_algorithms(table, [("a", "b"), ("a", "c"), ("a", "d")])
    # b keeps seed 0 (on both tasks) and loses seed 1 (task X only); c's only seed lacks Y
    assert sorted(set(zip(kept["algorithm"], kept["seed_of_run"]))) == [("a", 0), ("b", 0)]
    assert pairs == [("a", "b")]                    # no runs of c left, none of d at all
