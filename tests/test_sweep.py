"""sweep.py: 2 grid points x 2 seeds of a tiny config as Ray tasks on a local Ray instance,
with one trial's trainer and another trial's Ray worker killed mid-run (both resume); a second
start skips the finished trials; bad command lines fail before Ray starts."""
import copy
import csv
import fcntl
import glob
import os
import re
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

import sweep
from sweeps import cluster
from test_cli import write_config as write_tiny_config
from runs.checkpoint import load_model_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# test_cli's tiny proof-of-memory config (64 steps per update), longer and with a checkpoint
# every 4 updates: a trial trains in seconds, and can be killed between its first checkpoint
# and its last.
TINY = {"updates": 16, "checkpoint_interval": 4, "evaluation": {"n_seeds": 2, "repetitions": 1}}
GRID = ["--grid", "transformer.gtrxl=true,false"]
RUNS = [f"gtrxl-{g}_seed{s}" for g in ("true", "false") for s in (0, 1)]
# The whole sweep, Ray's start included, must end well within this.
SWEEP_SECONDS = 240


def write_config(folder: str) -> str:
    return write_tiny_config(folder, **copy.deepcopy(TINY))


def sweep_args(folder: str, *extra: str) -> list[str]:
    return ["--config", os.path.join(folder, "tiny.yaml"), "--seeds", "0-1", "--name", "tiny",
            "--models-dir", os.path.join(folder, "models"),
            "--summaries-dir", os.path.join(folder, "summaries"),
            "--results-dir", os.path.join(folder, "results"), "--reps", "100", *extra]


# ----- killing trials from outside, as a crash or a lost node would -----

def first_trainer(models: str, running: set[str]) -> tuple[str, psutil.Process] | None:
    """A trial's first train.py process that has saved a checkpoint but not its last one."""
    for process in psutil.process_iter(["cmdline"]):
        cmd = process.info["cmdline"] or []
        # Only this test's trials: other train.py processes may run on the machine.
        if (len(cmd) < 2 or not cmd[1].endswith("train.py") or "--resume" in cmd
                or "--run-id" not in cmd or models not in " ".join(cmd)):
            continue
        run = cmd[cmd.index("--run-id") + 1]
        if run in running:
            continue
        folder = os.path.join(models, run)
        if (os.path.isfile(os.path.join(folder, "update_000004.nn"))
                and not os.path.isfile(os.path.join(folder, "update_000016.nn"))):
            return run, process
    return None


def wait_gone(process: psutil.Process, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


def kill_two_trials(models: str, sweeping: subprocess.Popen) -> dict[str, str]:
    """SIGKILL one trial's trainer, and another trial's Ray worker (whose trainer must then
    die with it). Returns {run: what was killed}."""
    killed: dict[str, str] = {}
    deadline = time.time() + SWEEP_SECONDS
    while len(killed) < 2 and sweeping.poll() is None and time.time() < deadline:
        found = first_trainer(models, set(killed))
        if found is None:
            time.sleep(0.05)
            continue
        run, trainer = found
        if not killed:
            trainer.kill()
            killed[run] = "trainer"
            continue
        worker = trainer.parent()
        assert worker.cmdline()[0].startswith("ray::"), worker.cmdline()
        worker.kill()
        killed[run] = "worker"
        assert wait_gone(trainer, 10), "the trainer outlived its killed Ray worker"
    return killed


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One sweep of 2 grid points x 2 seeds, two of its trials killed mid-run."""
    folder = str(tmp_path_factory.mktemp("sweep"))
    write_config(folder)
    log = open(os.path.join(folder, "sweep.out"), "w+", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "sweep.py", *sweep_args(folder, *GRID, "--progress-seconds", "2")],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
    try:
        killed = kill_two_trials(os.path.join(folder, "models", "tiny"), process)
        process.wait(SWEEP_SECONDS)
    finally:
        if process.poll() is None:   # a hung sweep: stop it and its Ray processes
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    log.seek(0)
    return process.returncode, log.read(), folder, killed


def test_sweep_trains_evaluates_and_aggregates_every_trial(swept):
    status, out, folder, _ = swept
    assert status == 0, out
    assert "2 grid point(s) x 2 seed(s) = 4 trials; 0 finished before, 4 to run" in out
    models = os.path.join(folder, "models", "tiny")
    for run in RUNS:
        payload, config = load_model_file(os.path.join(models, f"{run}.nn"))
        assert (payload["update"], config.seed) == (16, int(run[-1]))
        assert config.transformer.gtrxl == ("true" in run)
        assert os.path.isfile(os.path.join(models, run, "scores.csv"))
        assert sorted(os.listdir(os.path.join(models, run))) == [
            "scores.csv", "update_000004.nn", "update_000008.nn", "update_000012.nn",
            "update_000016.nn"]
        # One TensorBoard folder per run, also for the resumed ones: summaries/SWEEP works.
        (log_dir,) = glob.glob(os.path.join(folder, "summaries", "tiny", run, "*"))
        assert glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))
    table = open(os.path.join(folder, "results", "tiny", "table.md"), encoding="utf-8").read()
    assert "gtrxl-true" in table and "gtrxl-false" in table
    # At least the two killed trials were retried (more when something else interrupts one).
    assert re.search(r"sweep tiny \S+: 4/4 trials done \(0 before this start\), 0 running, "
                     r"0 pending, 0 failed, [2-4] retried \| best IQM of return \(.*\): "
                     r"gtrxl-\w+ -?\d\.\d{3}", out)
    assert re.search(r"2/4 trials done .* \| best IQM", out)


def test_killed_trials_resume_from_their_last_checkpoint(swept):
    status, out, folder, killed = swept
    assert sorted(killed.values()) == ["trainer", "worker"], killed
    for run in killed:
        assert re.search(rf"finished {run} \(resumed, \S+, \d retr(y|ies)\)", out), out
        log = open(os.path.join(folder, "models", "tiny", "logs", f"{run}.log")).read()
        starts = [int(n) for n in re.findall(rf"^run {run}: .* update (\d+)/16", log, re.M)]
        assert starts[0] == 0 and starts[-1] >= 4, log
        assert re.search(rf"resuming from .*/{run}(\.nn|/update_\d+\.nn): {run}", log), log
    for run in set(RUNS) - set(killed):
        assert re.search(rf"finished {run} \(", out)


def test_second_start_skips_finished_trials(swept):
    status, _, folder, _ = swept
    assert status == 0
    models = os.path.join(folder, "models", "tiny")
    before = {run: os.path.getmtime(os.path.join(models, f"{run}.nn")) for run in RUNS}
    again = subprocess.run([sys.executable, "sweep.py", *sweep_args(folder, *GRID)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "4 trials; 4 finished before, 0 to run" in again.stdout
    assert "Ray" not in again.stdout + again.stderr       # nothing to run: Ray never starts
    assert "4/4 trials done (4 before this start)" in again.stdout
    assert before == {run: os.path.getmtime(os.path.join(models, f"{run}.nn")) for run in RUNS}


def test_a_finished_run_of_another_config_is_not_taken_for_this_one(swept, capsys):
    _, _, folder, _ = swept
    # A single-valued --grid key names no run: the run ids are the same as before.
    status = sweep.main(sweep_args(folder, *GRID, "hidden_layer_size=32"))
    assert status == 2
    err = capsys.readouterr().err
    assert "gtrxl-true_seed0.nn was trained with hidden_layer_size = 64" in err
    assert "asks for 32" in err and "another --name" in err


def test_max_score_reaches_the_aggregation(swept):
    """--max-score normalises the finished sweep's scores, as aggregate.py's own does."""
    _, _, folder, _ = swept
    tables = {}
    for name, extra in (("plain", []), ("halved", ["--max-score", "2"])):
        out = os.path.join(folder, name)
        assert sweep.main(sweep_args(folder, *GRID, *extra, "--results-dir", out)) == 0
        with open(os.path.join(out, "tiny", "table.csv"), newline="", encoding="utf-8") as f:
            tables[name] = {row["algorithm"]: float(row["IQM"]) for row in csv.DictReader(f)}
    assert tables["halved"] == pytest.approx({a: v / 2 for a, v in tables["plain"].items()})


# ----- start-up errors: before Ray starts, naming the flag and the value -----

@pytest.mark.parametrize("text,seeds", [("0-4", [0, 1, 2, 3, 4]), ("0,2,5", [0, 2, 5]),
                                        ("3", [3]), ("0-1,7", [0, 1, 7])])
def test_seeds_accept_ranges_and_lists(text, seeds):
    assert sweep.parse_seeds(text) == seeds


def test_grid_names_runs_by_their_values():
    axes = [sweep.parse_grid_entry("transformer.gtrxl=true,false"),
            sweep.parse_grid_entry("environment.name=A,B"),
            sweep.parse_grid_entry("updates=100")]
    points = sweep.grid_points(axes, "pom")
    assert [p.label for p in points] == ["gtrxl-true_name-A", "gtrxl-true_name-B",
                                         "gtrxl-false_name-A", "gtrxl-false_name-B"]
    # Environments are rliable's tasks, not part of the algorithm.
    assert [p.algorithm for p in points] == ["gtrxl-true", "gtrxl-true", "gtrxl-false",
                                             "gtrxl-false"]
    assert dict(points[0].settings) == {"transformer.gtrxl": True, "environment.name": "A",
                                        "updates": 100}
    # Ambiguous last parts: the full keys.
    axes = [sweep.parse_grid_entry("learning_rate_schedule.initial=1.0e-3,3.0e-4"),
            sweep.parse_grid_entry("clip_range_schedule.initial=0.1,0.2")]
    assert sweep.grid_points(axes, "pom")[0].label == \
        "learning_rate_schedule.initial-0.001_clip_range_schedule.initial-0.1"
    assert sweep.grid_points([], "pom")[0].label == "pom"


@pytest.mark.parametrize("args,message", [
    (["--seeds", "4-1"], "argument --seeds: '4-1': the range 4-1 is empty"),
    (["--seeds", "a"], "argument --seeds: 'a': expected seeds like 0-4 or 0,2,5"),
    (["--seeds", "1,1"], "argument --seeds: '1,1': a seed is given twice"),
    (["--seeds", "0", "--grid", "transformer.gtrxl"],
     "argument --grid: 'transformer.gtrxl': expected KEY=VALUE,VALUE"),
    (["--seeds", "0", "--grid", "seed=1,2"], "give the seeds with --seeds"),
    (["--seeds", "0", "--grid", "x=[1"], "the values must be a comma-separated YAML list"),
    (["--seeds", "0", "--grid", "x=1,1"], "'x=1,1': a value is given twice"),
    (["--seeds", "0", "--grid", "x=1", "x=2"], "--grid x: the key is given twice"),
    (["--seeds", "0", "--cpus-per-run", "0"], "--cpus-per-run 0: must be at least 1"),
    (["--seeds", "0", "--gpus-per-run", "-1"], "--gpus-per-run -1.0: must be a fraction"),
    (["--seeds", "0", "--gpus-per-run", "1.5"], "--gpus-per-run 1.5: must be a fraction"),
    (["--seeds", "0", "--max-retries", "-1"], "--max-retries -1: must be 0 or more"),
    (["--seeds", "0", "--reps", "10"], "--reps 10: use at least 100"),
    (["--seeds", "0", "--name", "a/b"], "--name 'a/b': must be a plain name"),
])
def test_bad_command_lines_exit_2_naming_the_flag(tmp_path, capsys, args, message):
    write_config(str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(["--config", str(tmp_path / "tiny.yaml"), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("grid,message", [
    ("transformer.nope=1,2", "--grid transformer.nope=1: "),
    ("transformer.gtrxl=maybe,true", "--grid transformer.gtrxl=maybe: "),
    ("seed.x=1,2", "--grid seed.x: "),
    ("transformer.num_heads=2,3", "--grid transformer.num_heads=3: "),
    ("device=cuda", "--gpus-per-run 0, but device=cuda trains on device cuda"),
])
def test_bad_grid_values_fail_before_ray_starts(tmp_path, capsys, monkeypatch, grid, message):
    write_config(str(tmp_path))
    monkeypatch.setattr(cluster, "start_ray", lambda *a: pytest.fail("Ray was started"))
    assert sweep.main(sweep_args(str(tmp_path), "--grid", grid)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: " + message) and "Fix:" in err


def test_missing_ray_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    write_config(str(tmp_path))
    monkeypatch.setitem(sys.modules, "ray", None)       # `import ray` raises ImportError
    assert sweep.main(sweep_args(str(tmp_path))) == 2
    assert "pip install -r requirements-ray.txt" in capsys.readouterr().err


def test_one_sweep_at_a_time_per_folder(tmp_path, capsys):
    write_config(str(tmp_path))
    models = tmp_path / "models" / "tiny"
    models.mkdir(parents=True)
    with open(models / ".sweep.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert sweep.main(sweep_args(str(tmp_path))) == 2
    assert "another sweep.py is running sweep tiny" in capsys.readouterr().err


def test_an_address_where_nothing_answers_is_one_message(tmp_path, capsys):
    """ray.init would wait without end there; the sweep says so at once."""
    write_config(str(tmp_path))
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert sweep.main(sweep_args(str(tmp_path), "--address", f"127.0.0.1:{port}")) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: --address 127.0.0.1:{port}: nothing answers at ")
    assert "ray start --head" in line
