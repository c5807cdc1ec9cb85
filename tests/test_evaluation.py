"""Evaluation on held-out seeds (evaluate.py), its statistics (evaluation.py, rliable),
aggregate.py and the notebook: known answers, reproducibility, and clear failures."""
import csv
import os
import subprocess
import sys

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient
from rliable import library as rly
from rliable import metrics as rm

import aggregate
import evaluate
import evaluation as ev
from test_resume import tiny
from trainer import Trainer
from environments.episodes import HELD_OUT_SEED_START, episode_seed, final_metrics
from runs.checkpoint import load_model_file, save_model_file
from utils import worker_seeds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POM = "ProofOfMemory-v0"
REPS, SEED = 300, 7


# ----- hand-made score tables -----

def episodes(run: str, task: str, values: list[float], seed_of_run: int, steps: int = 100,
             checkpoint: str = "final.nn", metric: str = "return") -> list[dict]:
    """Score-file rows of one checkpoint whose episodes scored `values` on `metric`."""
    rows = []
    for i, value in enumerate(values):
        row = {"run": run, "config_name": task, "seed_of_run": seed_of_run,
               "checkpoint": checkpoint, "update": steps // 10, "steps": steps,
               "env_seed": HELD_OUT_SEED_START + i, "repetition": 0, "deterministic": False,
               "return": 0.0, "length": 5, "success": 1.0}
        row[metric] = value
        rows.append(row)
    return rows


# Per-run episode returns of two algorithms on two tasks with different max scores.
RETURNS = {  # (algorithm, seed) -> {task: episode returns}
    ("a", 0): {POM: [1, 1, -1, 1], "Other-v0": [8, 10]},
    ("a", 1): {POM: [1, 1, 1, 1], "Other-v0": [6, 4]},
    ("a", 2): {POM: [-1, 1, -1, 1], "Other-v0": [10, 10]},
    ("a", 3): {POM: [1, -1, -1, -1], "Other-v0": [2, 0]},
    ("b", 0): {POM: [-1, -1, 1, -1], "Other-v0": [2, 4]},
    ("b", 1): {POM: [1, -1, -1, -1], "Other-v0": [0, 0]},
    ("b", 2): {POM: [1, 1, -1, -1], "Other-v0": [6, 2]},
}
MAX_SCORES = {POM: 1.0, "Other-v0": 10.0}


def returns_frame() -> pd.DataFrame:
    rows = [row for (algorithm, seed), tasks in RETURNS.items()
            for task, values in tasks.items()
            for row in episodes(f"{algorithm}_seed{seed}", task, values, seed)]
    return pd.DataFrame(rows)


def expected_matrices() -> dict[str, np.ndarray]:
    """The score dict written out by hand: mean return per run and task / max score."""
    out = {}
    for algorithm in ("a", "b"):
        seeds = sorted(s for a, s in RETURNS if a == algorithm)
        out[algorithm] = np.array([[np.mean(RETURNS[algorithm, s][task]) / MAX_SCORES[task]
                                    for task in sorted(MAX_SCORES)] for s in seeds])
    return out


@pytest.fixture(scope="module")
def matrices() -> ev.ScoreMatrices:
    finals = ev.final_scores(ev.run_scores(returns_frame(), "return"))
    return ev.score_matrices(finals, "return", MAX_SCORES)


def test_score_matrices_are_normalised_run_means(matrices):
    assert matrices.tasks == ("Other-v0", POM) and matrices.normalised
    expected = expected_matrices()
    assert matrices.algorithms == ["a", "b"]
    for algorithm, scores in expected.items():
        np.testing.assert_allclose(matrices.scores[algorithm], scores)


def test_aggregates_equal_rliable_computed_directly(matrices):
    table = ev.aggregate_estimates(matrices, reps=REPS, seed=SEED)

    def direct(scores):
        return np.array([rm.aggregate_iqm(scores), rm.aggregate_median(scores),
                         rm.aggregate_mean(scores), rm.aggregate_optimality_gap(scores, 1.0)])
    np.random.seed(SEED)
    points, intervals = rly.get_interval_estimates(expected_matrices(), direct, reps=REPS)
    for algorithm in ("a", "b"):
        for i, name in enumerate(ev.AGGREGATES):
            e = table.estimates[algorithm][name]
            assert e.point == pytest.approx(points[algorithm][i], abs=1e-12), name
            assert (e.low, e.high) == pytest.approx(tuple(intervals[algorithm][:, i]), abs=1e-12)
    # The interval is a real interval around the point, and the global RNG is left alone.
    state = np.random.get_state()[1].copy()
    ev.aggregate_estimates(matrices, reps=REPS, seed=SEED)
    assert np.array_equal(np.random.get_state()[1], state)


def test_profile_and_improvement_equal_rliable_computed_directly(matrices):
    taus = np.linspace(-1, 1, 21)
    profile = ev.performance_profile(matrices, reps=REPS, seed=SEED, taus=taus)
    np.random.seed(SEED)
    profiles, cis = rly.create_performance_profile(expected_matrices(), taus, reps=REPS)
    for algorithm in ("a", "b"):
        np.testing.assert_allclose(profile.profiles[algorithm], profiles[algorithm])
        np.testing.assert_allclose(profile.intervals[algorithm], cis[algorithm])

    (improvement,) = ev.probability_of_improvement(matrices, [("a", "b")], reps=REPS, seed=SEED)
    np.random.seed(SEED)
    pair = {"a,b": [expected_matrices()["a"], expected_matrices()["b"]]}
    points, intervals = rly.get_interval_estimates(pair, rm.probability_of_improvement, reps=REPS)
    assert improvement.estimate.point == pytest.approx(float(points["a,b"]))
    assert (improvement.estimate.low, improvement.estimate.high) == pytest.approx(
        tuple(np.ravel(intervals["a,b"])))
    assert improvement.estimate.point > 0.5          # a's runs do score higher


def test_sample_efficiency_equals_rliable_on_the_common_steps():
    rows = []
    for seed, values in enumerate(([0, 0], [0, 1], [1, 1])):
        for k, steps in enumerate((100, 200, 300)):
            name = "final.nn" if steps == 300 else f"update_{k:06d}.nn"
            rows += episodes(f"c_seed{seed}", POM, [v * k / 2 for v in values], seed, steps, name)
    rows += episodes("c_seed0", POM, [1.0], 0, 150, "update_000015.nn")   # only one run: dropped
    table = ev.run_scores(pd.DataFrame(rows), "return")
    curves = ev.sample_efficiency(table, "return", {POM: 1.0}, reps=REPS, seed=SEED)
    assert curves.steps["c"].tolist() == [100, 200, 300]
    array = np.array([[[np.mean(values) * k / 2 for k in range(3)]]
                      for values in ([0, 0], [0, 1], [1, 1])])          # (runs, tasks, steps)
    np.random.seed(SEED)
    points, intervals = rly.get_interval_estimates(
        {"c": array}, lambda s: np.array([rm.aggregate_iqm(s[..., i]) for i in range(3)]),
        reps=REPS)
    np.testing.assert_allclose(curves.iqm["c"], points["c"])
    np.testing.assert_allclose(curves.intervals["c"], intervals["c"])
    # Only final checkpoints: one step count per run, so no curve.
    assert ev.sample_efficiency(ev.final_scores(table), "return", {POM: 1.0}, REPS) is None


def test_aggregation_errors_say_what_to_do():
    frame = returns_frame()
    finals = ev.final_scores(ev.run_scores(frame, "return"))
    with pytest.raises(ValueError, match="needs each task's max score.*Other-v0.*--max-score"):
        ev.score_matrices(finals, "return", ev.known_max_scores("return", [POM, "Other-v0"]))
    with pytest.raises(ValueError, match="metric 'coins'.*Available: return, length, success"):
        ev.run_scores(frame, "coins")
    with pytest.raises(ValueError, match="no algorithm 'c'.*algorithms: a, b"):
        ev.check_pairs(ev.score_matrices(finals, "return", MAX_SCORES), [("a", "c")])
    with pytest.raises(ValueError, match="TASK=NUMBER"):
        ev.parse_max_scores(["ten"], [POM])
    assert ev.parse_max_scores(["2", "Other-v0=10"], [POM, "Other-v0"]) == MAX_SCORES | {POM: 2.0}


# ----- held-out seeds -----

def test_held_out_seeds_never_overlap_training_seeds():
    training = [episode_seed(worker_seed, episode)
                for worker_seed in worker_seeds(0, 64) + worker_seeds(12345, 64)
                for episode in range(200)]
    evaluation_seeds = evaluate.held_out_seeds(1000)
    assert max(training) < HELD_OUT_SEED_START == min(evaluation_seeds)
    assert len(set(evaluation_seeds)) == 1000
    with pytest.raises(ValueError, match="below HELD_OUT_SEED_START"):
        evaluate.check_held_out([HELD_OUT_SEED_START, HELD_OUT_SEED_START - 1])
    # The check guards every episode, before any model is loaded.
    checkpoint = evaluate.Checkpoint("none.nn", "r", "s.csv", POM, 0, 1, 1,
                                     evaluate.Settings(1, 1, False))
    with pytest.raises(ValueError, match="below HELD_OUT_SEED_START"):
        evaluate.CheckpointPlayer().play(evaluate.SeedTask(checkpoint, 17))


# ----- evaluate.py end to end -----

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """models/tiny_seed0.nn and its periodic checkpoints update_000001/2.nn (2 updates)."""
    folder = tmp_path_factory.mktemp("evaluate")
    models = folder / "models"
    trainer = Trainer(tiny(updates=2, checkpoint_interval=1), "tiny_seed0", str(models),
                      str(folder / "summaries"))
    try:
        trainer.run()
    finally:
        trainer.close()
    trainer.save()
    return models


def run_script(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "SDL_VIDEODRIVER": "dummy"})


def test_evaluate_writes_reproducible_tidy_scores(tiny_run, tmp_path):
    args = ["evaluate.py", "tiny_seed0", "--models-dir", str(tiny_run), "--n-seeds", "3",
            "--repetitions", "2"]
    first = run_script(*args, "--processes", "2")
    assert first.returncode == 0, first.stderr
    assert "episodes      12/12" in first.stdout and "episodes/s" in first.stdout
    assert "skipping" in first.stdout          # update_000002.nn is tiny_seed0.nn's update
    scores_path = tiny_run / "tiny_seed0" / "scores.csv"
    with open(scores_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(ev.EPISODE_COLUMNS)       # proof-of-memory has no metrics
    assert len(rows) == 2 * 3 * 2                          # checkpoints x seeds x repetitions
    assert {(r["checkpoint"], r["update"], r["steps"]) for r in rows} == {
        ("update_000001.nn", "1", "64"), ("tiny_seed0.nn", "2", "128")}
    assert {int(r["env_seed"]) for r in rows} == {HELD_OUT_SEED_START + i for i in range(3)}
    assert {r["repetition"] for r in rows} == {"0", "1"}
    assert {(r["run"], r["config_name"], r["seed_of_run"], r["deterministic"]) for r in rows} \
        == {("tiny_seed0", POM, "0", "False")}
    for r in rows:
        assert r["success"] in ("0.0", "1.0") and float(r["return"]) in (-1.0, 0.0, 1.0)
        assert 1 <= int(r["length"]) <= 16
    # Sampled actions are seeded per episode: another invocation, in one process, agrees.
    again = run_script(*args, "--processes", "1", "--out", str(tmp_path / "again.csv"))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.csv").read_bytes() == scores_path.read_bytes()
    loaded = ev.load_scores([str(scores_path)])
    assert len(ev.run_scores(loaded, "success")) == 2


def test_metric_columns_come_from_the_final_info(tmp_path):
    """Memory Gym-style metrics become columns; an episode without one leaves it empty."""
    info = {"reward": 3.0, "length": 9, "success": True, "commands_completed": 3,
            "num_fails": np.int64(1), "ground_truth": np.zeros(3), "note": "x"}
    assert final_metrics(info) == {"commands_completed": 3.0, "num_fails": 1.0}
    checkpoint = evaluate.Checkpoint("m/r.nn", "r", "m/r/scores.csv", "MortarMayhem-Grid-v0",
                                     0, 5, 640, evaluate.Settings(2, 1, True))
    scores = [evaluate.EpisodeScore(checkpoint, HELD_OUT_SEED_START + 1, 0, 3.0, 9, 1.0,
                                    {"commands_completed": 3.0, "num_fails": 1.0}),
              evaluate.EpisodeScore(checkpoint, HELD_OUT_SEED_START, 0, 0.5, 4, None,
                                    {"commands_completed": 1.0})]
    evaluate.write_csv(str(tmp_path / "s.csv"), scores)
    frame = ev.load_scores([str(tmp_path / "s.csv")])
    assert list(frame.columns) == [*ev.EPISODE_COLUMNS, "commands_completed", "num_fails"]
    assert frame["env_seed"].tolist() == [HELD_OUT_SEED_START, HELD_OUT_SEED_START + 1]
    assert frame["num_fails"].isna().tolist() == [True, False]
    assert frame["success"].isna().tolist() == [True, False]
    assert ev.metric_columns(frame) == ["return", "length", "success", "commands_completed",
                                        "num_fails"]


def error_of(main, argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    return err


def test_evaluate_fails_clearly_on_bad_files(tiny_run, tmp_path, capsys):
    missing = str(tmp_path / "missing.nn")
    assert missing in error_of(evaluate.main, [missing], capsys)
    junk = tmp_path / "junk.nn"
    junk.write_text("not a model")
    assert f"{junk}: not a loadable TrXL-PPO model file" in error_of(
        evaluate.main, [str(junk)], capsys)
    assert "no such model file" in error_of(
        evaluate.main, ["nosuchrun", "--models-dir", str(tiny_run)], capsys)
    # A model whose environment now gives other observations than it was trained on.
    payload, config = load_model_file(str(tiny_run / "tiny_seed0.nn"))
    payload["config"]["environment"] = {"type": "cartpole_masked", "name": "CartPole-v1",
                                        "reset_params": {}}
    mismatched = str(tmp_path / "mismatch.nn")
    save_model_file(mismatched, payload)
    assert f"{mismatched}: trained on observations/actions" in error_of(
        evaluate.main, [mismatched], capsys)
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([str(tiny_run / "tiny_seed0.nn"), "--n-seeds", "0"])
    assert exit_info.value.code == 2
    assert "--n-seeds 0: must lie in [1, 1,000,000]" in capsys.readouterr().err


def test_evaluate_cli_exits_2_naming_the_file():
    result = run_script("evaluate.py", "no/such/model.nn")
    assert result.returncode == 2
    assert result.stderr.startswith("error: no/such/model.nn: no such model file")


# ----- aggregate.py and the notebook, on score files written by evaluate.write_csv -----

@pytest.fixture(scope="module")
def score_files(tmp_path_factory) -> list[str]:
    """Two configurations x 3 seeds x 3 checkpoints: 'mem' improves, 'nomem' stays at chance."""
    folder = tmp_path_factory.mktemp("scores")
    rng = np.random.default_rng(0)
    paths = []
    for algorithm, skill in (("mem", 1.0), ("nomem", 0.0)):
        for seed in range(3):
            run = f"{algorithm}_seed{seed}"
            scores = []
            for update in (1, 2, 3):
                name = f"{run}.nn" if update == 3 else f"update_{update:06d}.nn"
                checkpoint = evaluate.Checkpoint(
                    name, run, "", POM, seed, update, 512 * update, evaluate.Settings(4, 2, False))
                p = 0.5 + 0.45 * skill * update / 3
                for env_seed in evaluate.held_out_seeds(4):
                    for repetition in range(2):
                        good = bool(rng.random() < p)
                        scores.append(evaluate.EpisodeScore(
                            checkpoint, env_seed, repetition, 1.0 if good else -1.0, 4,
                            float(good), {}))
            path = str(folder / run / "scores.csv")
            evaluate.write_csv(path, scores)
            paths.append(path)
    return paths


def is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 10_000


def test_aggregate_prints_the_table_and_writes_the_plots(score_files, tmp_path, capsys):
    out = tmp_path / "results"
    assert aggregate.main([*score_files, "--out", str(out), "--compare", "mem", "nomem",
                           "--reps", "200", "--profile-reps", "100"]) == 0
    printed = capsys.readouterr().out
    assert "IQM" in printed and "optimality gap" in printed and "95% CI" in printed
    assert any(line.startswith("mem ") for line in printed.splitlines())
    assert "P(mem > nomem) = " in printed
    for name in ("aggregate.png", "performance_profile.png", "sample_efficiency.png",
                 "probability_of_improvement.png"):
        assert is_png(out / name), name
    table = pd.read_csv(out / "table.csv")
    assert table["algorithm"].tolist() == ["mem", "nomem"] and table["runs"].tolist() == [3, 3]
    assert (table["IQM_low"] <= table["IQM"]).all() and (table["IQM"] <= table["IQM_high"]).all()
    assert (out / "table.md").read_text().startswith("| algorithm | runs | IQM |")


def test_aggregate_without_checkpoints_skips_the_curve(score_files, tmp_path, capsys):
    finals = tmp_path / "finals.csv"
    frame = ev.load_scores(score_files)
    frame[~frame["checkpoint"].str.startswith("update_")].to_csv(finals, index=False)
    assert aggregate.main([str(finals), "--out", str(tmp_path), "--metric", "success",
                           "--reps", "100", "--profile-reps", "100"]) == 0
    assert "no sample-efficiency curve" in capsys.readouterr().err
    assert not (tmp_path / "sample_efficiency.png").exists()
    assert is_png(tmp_path / "aggregate.png")


def test_aggregate_fails_clearly(score_files, tmp_path, capsys):
    missing = str(tmp_path / "none.csv")
    assert missing in error_of(aggregate.main, [missing, "--out", str(tmp_path)], capsys)
    assert "no algorithm 'gtrxl'" in error_of(
        aggregate.main, [*score_files, "--out", str(tmp_path), "--compare", "mem", "gtrxl"],
        capsys)


def test_aggregate_with_earlier_runs_equals_aggregating_all_score_files(score_files, tmp_path):
    """Seeds trained in different sessions: seed 2's score files are gone, its scores live
    in an earlier run_scores.csv. The table is the one all score files give; a run both in
    the score files and the earlier file is taken from the score files (seed 0's earlier
    scores here are wrong and must not count)."""
    options = ["--reps", "200", "--profile-reps", "100", "--compare", "mem", "nomem"]
    assert aggregate.main([*score_files, "--out", str(tmp_path / "all"), *options]) == 0
    earlier = pd.read_csv(tmp_path / "all" / "run_scores.csv")
    earlier.loc[earlier["run"] == "mem_seed0", "score"] = -1.0
    earlier.to_csv(tmp_path / "earlier.csv", index=False)
    today = [path for path in score_files if "seed2" not in path]
    assert aggregate.main([*today, "--earlier", str(tmp_path / "earlier.csv"),
                           "--out", str(tmp_path / "merged"), *options]) == 0
    for name in ("table.md", "improvement.csv"):
        assert (tmp_path / "merged" / name).read_text() == (tmp_path / "all" / name).read_text()
    merged = pd.read_csv(tmp_path / "merged" / "run_scores.csv")
    assert len(merged) == len(earlier) == 18 and set(merged["metric"]) == {"return"}
    assert aggregate.main(["--earlier", str(tmp_path / "earlier.csv"),
                           "--out", str(tmp_path / "only"), *options]) == 0


def test_reaggregating_run_scores_rewrites_them_byte_for_byte(score_files, tmp_path):
    """A committed run_scores.csv is the only record of runs whose models/ are gone, so
    aggregating it again must not move a digit. 0.9866666666666667 is a mean that pandas'
    default float parser reads one ulp high."""
    options = ["--reps", "100", "--profile-reps", "100"]
    assert aggregate.main([*score_files, "--out", str(tmp_path / "first"), *options]) == 0
    first = tmp_path / "first" / "run_scores.csv"
    frame = pd.read_csv(first)
    frame.loc[0, "score"] = 148 / 150
    frame.to_csv(first, index=False)
    assert aggregate.main(["--earlier", str(first), "--out", str(tmp_path / "again"),
                           *options]) == 0
    again = tmp_path / "again"
    assert (again / "run_scores.csv").read_text() == first.read_text()
    assert "0.9866666666666667," in first.read_text()


def test_earlier_run_scores_must_hold_the_metric(score_files, tmp_path, capsys):
    assert aggregate.main([*score_files, "--out", str(tmp_path), "--reps", "100",
                           "--profile-reps", "100"]) == 0
    earlier = str(tmp_path / "run_scores.csv")
    message = error_of(aggregate.main, ["--earlier", earlier, "--metric", "success",
                                        "--out", str(tmp_path)], capsys)
    assert earlier in message and "metric 'return', not 'success'" in message
    assert "lacks the column(s) algorithm" in error_of(
        aggregate.main, ["--earlier", score_files[0], "--out", str(tmp_path)], capsys)


def test_notebook_runs_end_to_end(score_files, monkeypatch):
    # The kernel inherits the environment: MPLBACKEND=Agg, as many servers and CI set it, once
    # left the notebook without a figure. The notebook must draw inline whatever it says.
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(os.path.join(ROOT, "notebooks", "evaluation.ipynb"), as_version=4)
    # Inject parameters after the `parameters` cell, as papermill does.
    index = next(i for i, cell in enumerate(notebook.cells)
                 if "parameters" in cell.metadata.get("tags", []))
    folder = os.path.dirname(os.path.dirname(score_files[0]))
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(
        f"SCORES = {os.path.join(folder, '*', 'scores.csv')!r}\n"
        f"COMPARE = [('mem', 'nomem')]\nREPS = 200\nPROFILE_REPS = 100"))
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "144 episodes from 6 file(s)" in text and "optimality gap" in text
    assert "P(mem > nomem)" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4       # aggregates, profile, sample efficiency, improvement


@pytest.mark.parametrize("args,message", [
    (["--n-seeds", "0"], "--n-seeds"),
    (["--repetitions", "-1"], "--repetitions"),
    (["--processes", "0"], "--processes"),
    (["--n-seeds", "x"], "invalid int value"),
])
def test_evaluate_rejects_wrong_flag_values(tiny_run, args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["tiny_seed0", "--models-dir", str(tiny_run), *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--reps", "0"], "--reps"),
    (["--profile-reps", "-5"], "--profile-reps"),
    (["--metric", "nosuch"], "nosuch"),
    (["--max-score", "abc"], "abc"),
    (["--rename", "nonsense"], "nonsense"),
])
def test_aggregate_rejects_wrong_flag_values(score_files, tmp_path, args, message, capsys):
    try:
        status = aggregate.main([*score_files, "--out", str(tmp_path), *args])
    except SystemExit as e:          # argparse's own checks
        status = e.code
    assert status == 2 and message in capsys.readouterr().err


def load_script(name: str):
    """scripts/NAME.py as a module (scripts/ is not a package)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(ROOT, "scripts", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_results_section(results_section, tmp_path, head: str = "", tail: str = "") -> str:
    """Run the script on tmp_path's results/ and summaries/; the page text it wrote."""
    readme = tmp_path / "results.md"
    readme.write_text(f"{head}{results_section.START}\nold\n{results_section.END}\n{tail}")
    assert results_section.main(["--page", str(readme), "--results", str(tmp_path / "results"),
                                 "--summaries", str(tmp_path / "summaries")]) == 0
    return readme.read_text()


def test_results_section_is_written_from_the_result_files(tmp_path):
    """scripts/results_section.py: the table, the steps and the training time of each
    configuration between the page's markers, text around them untouched. The time is the
    sum of the updates' own seconds, so the hour-long pause before the resumed third update
    does not count (the span of event times, 3,611 s, once did)."""
    from torch.utils.tensorboard import SummaryWriter
    results_section = load_script("results_section")
    task = tmp_path / "results" / "task"
    task.mkdir(parents=True)
    (task / "table.md").write_text("| algorithm | IQM |\n| --- | --- |\n| algo | 0.5 |\n\n"
                                   "caption\n")
    (task / "run_scores.csv").write_text("algorithm,run,steps\nalgo,algo_seed0,192\n"
                                         "algo,algo_seed0,64\n")
    writer = SummaryWriter(str(tmp_path / "summaries" / "algo_seed0" / "20260101-000000"))
    for step, wall, sampling, optimisation in [(64, 100, 1, 10), (128, 111, 2, 20),
                                               (192, 3700, 3, 30)]:
        writer.add_scalar("speed/sampling_seconds", sampling, step, walltime=wall)
        writer.add_scalar("speed/optimisation_seconds", optimisation, step, walltime=wall)
    writer.close()
    text = write_results_section(results_section, tmp_path, "head\n", "tail\n")
    assert text.startswith("head\n") and text.endswith("tail\n") and "old" not in text
    assert "| algo | 0.5 |" in text and "caption" in text
    assert "| algo | 192 | 66 s |" in text


def test_results_section_keeps_training_times_without_summaries(tmp_path):
    """summaries/ is not committed: a run whose summaries are gone keeps its stored time, a
    new seed's measured time is averaged in (seed0 stored 100 s, seed1 measured 40 s: 70 s),
    and a stored time taken at other steps (a run since extended) is not used."""
    from torch.utils.tensorboard import SummaryWriter
    results_section = load_script("results_section")
    task = tmp_path / "results" / "task"
    task.mkdir(parents=True)
    (task / "table.md").write_text("| algorithm | IQM |\n| --- | --- |\n\ncaption\n")
    (task / "run_scores.csv").write_text("algorithm,run,steps\nalgo,algo_seed0,64\n"
                                         "algo,algo_seed1,64\nlong,long_seed0,128\n")
    (task / "training_time.csv").write_text("algorithm,runs,steps,mean_seconds\n"
                                            "algo,algo_seed0,64,100.0\n"
                                            "long,long_seed0,64,50.0\n")
    writer = SummaryWriter(str(tmp_path / "summaries" / "algo_seed1" / "20260101-000000"))
    writer.add_scalar("speed/sampling_seconds", 10, 64)
    writer.add_scalar("speed/optimisation_seconds", 30, 64)
    writer.close()
    text = write_results_section(results_section, tmp_path)
    assert "| algo | 64 | 70 s |" in text and "| long | 128 | – |" in text
    assert (task / "training_time.csv").read_text().splitlines() == [
        "algorithm,runs,steps,mean_seconds", "algo,algo_seed0 algo_seed1,64,70.0"]


# ----- scripts/breakdown.py: a score by the value of another column -----

def start_column_frame() -> pd.DataFrame:
    """A MiniGrid-like run at two checkpoints: at the first it wins from column 1 only and
    guesses elsewhere; at the second it wins from every column."""
    rows = []
    for steps, wins in ((100, {1: [1, 1], 2: [1, 0, 0, 0]}), (200, {1: [1, 1], 2: [1, 1]})):
        values = [v for column in (1, 2) for v in wins[column]]
        checkpoint = "update_000010.nn" if steps == 100 else "run_seed0.nn"
        batch = episodes("run_seed0", "MiniGrid-MemoryS9-v0", values, 0, steps, checkpoint,
                         metric="success")
        columns = [column for column in (1, 2) for _ in wins[column]]
        rows += [{**row, "start_column": column} for row, column in zip(batch, columns)]
    return pd.DataFrame(rows)


def test_breakdown_is_the_mean_and_standard_error_per_value():
    table = ev.breakdown(start_column_frame(), "success", "start_column")
    assert table["steps"].tolist() == [100, 100, 200, 200]   # training order, not by name
    first = table[table["steps"] == 100].set_index("start_column")
    assert first["score"].tolist() == [1.0, 0.25] and first["episodes"].tolist() == [2, 4]
    # success 1,0,0,0: deviation sqrt(0.25 * 0.75), over sqrt(4) episodes
    assert first["standard_error"].tolist() == pytest.approx([0.0, np.sqrt(0.1875) / 2])
    assert table[table["steps"] == 200]["score"].tolist() == [1.0, 1.0]


def test_breakdown_fails_clearly_without_the_column():
    frame = start_column_frame().drop(columns="start_column")
    with pytest.raises(ValueError, match="--by 'start_column'.*Available: return, length, success"):
        ev.breakdown(frame, "success", "start_column")
    with pytest.raises(ValueError, match="is the metric itself"):
        ev.breakdown(frame, "success", "success")


def test_breakdown_script_prints_the_latest_checkpoint_and_writes_the_plot(tmp_path, capsys):
    path = tmp_path / "scores.csv"
    start_column_frame().to_csv(path, index=False)
    breakdown = load_script("breakdown")
    out = tmp_path / "by_column"
    assert breakdown.main([str(path), "--by", "start_column", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "run_seed0, run_seed0.nn (200 steps):" in printed
    assert "start_column 2: 1.000 +- 0.000 (2 episodes)" in printed
    assert "start_column 2: 0.250" not in printed     # only the latest checkpoint is printed
    assert len(pd.read_csv(out / "breakdown.csv")) == 4
    assert is_png(out / "breakdown.png")
    assert breakdown.main([str(path), "--by", "colour"]) == 2
    assert "--by 'colour': the score files have no values" in capsys.readouterr().err


def test_min_and_max_scores_map_returns_to_the_unit_interval():
    """POPGym's returns lie in [-1, 1]: -1 -> 0, 0 -> 0.5, 1 -> 1; a task without a min keeps 0."""
    table = pd.DataFrame({"task": ["A", "A", "A", "B"], "score": [-1.0, 0.0, 1.0, 5.0]})
    lows = ev.parse_min_scores(["A=-1"], ["A", "B"])
    out, normalised = ev.normalise(table, {"A": 1.0, "B": 10.0}, lows)
    assert normalised and out["score"].tolist() == [0.0, 0.5, 1.0, 0.5]
    with pytest.raises(ValueError, match="max score <= min score"):
        ev.normalise(table, {"A": 1.0, "B": 10.0}, {"A": 1.0})


def test_negative_returns_normalise_between_the_given_min_and_max():
    """Pendulum's returns are negative: --min-score -1600 --max-score 0 maps them to [0, 1]."""
    import pandas as pd

    import evaluation as ev
    table = pd.DataFrame({"task": ["Pendulum-P-v1"] * 2, "score": [-1600.0, -400.0]})
    maxima = ev.parse_max_scores(["0"], ["Pendulum-P-v1"])
    minima = ev.parse_min_scores(["-1600"], ["Pendulum-P-v1"])
    normalised, done = ev.normalise(table, maxima, minima)
    assert done and normalised["score"].tolist() == [0.0, 0.75]
