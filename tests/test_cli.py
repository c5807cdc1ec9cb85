"""train.py and enjoy.py end to end on a tiny proof-of-memory run, seeded reproducibility, and
bad command lines: exit status 2 with a message that says what is wrong."""
import copy
import glob
import os
import re
import subprocess
import sys
import time

import pytest
import torch
import yaml

import enjoy
import train
from config import load_config
from trainer import Trainer
from runs.checkpoint import load_model_file
from utils import format_duration, remaining_seconds

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 4 workers x 16 steps = 64 steps per update, 8 segments of 8 in 2 minibatches: seconds to run.
TINY = {"n_workers": 4, "worker_steps": 16, "segment_length": 8, "n_mini_batch": 2,
        "updates": 2}
EPISODE_LINE = re.compile(r"^episode (\d+)  seed (\d+)  return (-?\d+\.\d{3})  length (\d+)  "
                          r"success (\S+)$", re.MULTILINE)


def write_config(folder, **changes) -> str:
    with open(os.path.join(REPO_ROOT, "configs", "proof_of_memory.yaml"), encoding="utf-8") as f:
        data = yaml.safe_load(f)
    data.update(copy.deepcopy(TINY), **changes)
    path = os.path.join(folder, "tiny.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f)
    return path


def run_script(*args, timeout=120) -> subprocess.CompletedProcess:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real `train.py` run, shared by the tests that need a model file."""
    folder = tmp_path_factory.mktemp("train")
    models, summaries = folder / "models", folder / "summaries"
    result = run_script("train.py", "--config", write_config(str(folder)), "--run-id", "smoke",
                        "--models-dir", str(models), "--summaries-dir", str(summaries))
    return result, str(models / "smoke.nn"), summaries


# ----- train.py -----

def test_train_smoke_run_saves_model_and_summaries(trained):
    result, model_path, summaries = trained
    assert result.returncode == 0, result.stderr
    # The model file records the run: 2 updates of 4 workers x 16 steps.
    payload, config = load_model_file(model_path)
    assert (payload["update"], payload["steps"]) == (2, 2 * 4 * 16)
    assert config.n_workers == 4 and config.updates == 2
    # summaries/RUN/<timestamp>/events.out.tfevents.*
    runs = os.listdir(summaries / "smoke")
    assert len(runs) == 1 and re.fullmatch(r"\d{8}-\d{6}", runs[0])
    assert glob.glob(str(summaries / "smoke" / runs[0] / "events.out.tfevents.*"))


def test_train_prints_progress_with_speed_and_eta(trained):
    result, model_path, _ = trained
    progress = [line for line in result.stdout.splitlines() if line.startswith("update ")]
    assert [line.split()[1] for line in progress] == ["1/2", "2/2"]
    assert all("steps/s" in line and "ETA" in line for line in progress)
    assert f"saved {model_path} after 2 updates, 128 steps" in result.stdout


def test_eta_of_a_resumed_run_counts_only_its_own_updates():
    """A run resumed at update 3 of 40 took 60 s for its first update: the 36 left at that
    pace take 36 minutes. Dividing by all 4 updates done, as the ETA once did, said 9m00s."""
    assert remaining_seconds(60.0, updates_done=1, updates_left=36) == 36 * 60.0
    assert format_duration(remaining_seconds(60.0, 1, 36)) == "36m00s"
    assert remaining_seconds(0.5, updates_done=0, updates_left=2) == 1.0  # no division by 0


REQUIRED_TAGS = {
    "episode/return", "episode/length", "episode/success",
    "loss/policy", "loss/value", "loss/entropy", "loss/reconstruction", "loss/total",
    "policy/approx_kl", "policy/approx_kl_old", "policy/clip_fraction",
    "value/explained_variance", "value/mean", "advantage/mean", "optim/grad_norm",
    "schedule/learning_rate", "schedule/entropy_coefficient", "schedule/clip_range",
    "speed/steps_per_second", "speed/sampling_seconds", "speed/optimisation_seconds"}


def test_train_writes_every_summary_and_the_config(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    _, _, summaries = trained
    (run,) = os.listdir(summaries / "smoke")
    events = EventAccumulator(str(summaries / "smoke" / run)).Reload()
    assert REQUIRED_TAGS <= set(events.Tags()["scalars"])
    # One point per update, at the environment step count.
    assert [e.step for e in events.Scalars("loss/total")] == [64, 128]
    assert "config/text_summary" in events.Tags()["tensors"]


# ----- enjoy.py -----

@pytest.mark.parametrize("suffix,magic,offset", [(".gif", b"GIF8", 0), (".mp4", b"ftyp", 4)])
def test_enjoy_writes_a_video(trained, tmp_path, suffix, magic, offset):
    _, model_path, _ = trained
    video = tmp_path / "out" / f"episodes{suffix}"
    result = run_script("enjoy.py", "--model", model_path, "--episodes", "2", "--video",
                        str(video))
    assert result.returncode == 0, result.stderr
    episodes = EPISODE_LINE.findall(result.stdout)
    assert [int(e[0]) for e in episodes] == [0, 1]
    assert [int(e[1]) for e in episodes] == [enjoy.DEFAULT_SEED, enjoy.DEFAULT_SEED + 1]
    assert all(e[4] in ("0.0", "1.0") for e in episodes)   # the task reports success
    # One frame per step plus each episode's final state.
    frames = sum(int(e[3]) + 1 for e in episodes)
    assert f"wrote {video} ({frames} frames)" in result.stdout
    data = video.read_bytes()
    assert data[offset:offset + len(magic)] == magic


# ----- reproducibility -----

def train_in_process(tmp_path, seed: int) -> Trainer:
    tmp_path.mkdir()
    config = load_config(write_config(str(tmp_path)), {"seed": seed})
    trainer = Trainer(config, f"seed{seed}", str(tmp_path / "models"), str(tmp_path / "summaries"))
    try:
        trainer.run()
    finally:
        trainer.close()
    return trainer


def test_same_seed_same_results_different_seed_different_results(tmp_path):
    first = train_in_process(tmp_path / "a", seed=3)
    second = train_in_process(tmp_path / "b", seed=3)
    assert first.last_stats.losses == second.last_stats.losses   # exactly, not approximately
    weights, again = first.model.state_dict(), second.model.state_dict()
    assert weights.keys() == again.keys()
    assert all(torch.equal(weights[k], again[k]) for k in weights)

    other = train_in_process(tmp_path / "c", seed=4)
    assert other.last_stats.losses != first.last_stats.losses
    assert not torch.equal(other.model.state_dict()["value_head.weight"],
                           weights["value_head.weight"])


# ----- bad command lines -----

def exit_status(main, argv, capsys) -> tuple[int, str]:
    """What `sys.exit(main(argv))` would exit with, and stderr. In-process: no torch start-up."""
    try:
        status = main(argv)
    except SystemExit as e:   # argparse errors
        status = e.code
    return status, capsys.readouterr().err


def train_argv(tmp_path, *args) -> list[str]:
    return [*args, "--models-dir", str(tmp_path / "models"),
            "--summaries-dir", str(tmp_path / "summaries")]


def test_train_missing_config_exits_2_naming_the_path(tmp_path):
    # As a real process: the exit status the shell sees.
    missing = str(tmp_path / "missing.yaml")
    result = run_script("train.py", "--config", missing, "--run-id", "x",
                        "--models-dir", str(tmp_path / "m"), "--summaries-dir", str(tmp_path / "s"))
    assert result.returncode == 2
    assert missing in result.stderr and "no such config file" in result.stderr
    assert not os.path.exists(tmp_path / "m") and not os.path.exists(tmp_path / "s")


def test_train_unknown_key_exits_2_naming_the_key(tmp_path, capsys):
    config = write_config(str(tmp_path), transformer={"num_head": 2})
    status, err = exit_status(train.main, train_argv(tmp_path, "--config", config), capsys)
    assert status == 2
    assert "transformer.num_head = 2: unknown key" in err and config in err


@pytest.mark.parametrize("run_id", ["a/b", "a\\b", "..", ".hidden", ""])
def test_train_run_id_must_be_a_plain_name(tmp_path, capsys, run_id):
    status, err = exit_status(train.main, train_argv(tmp_path, "--run-id", run_id), capsys)
    assert status == 2 and "--run-id" in err and ("plain name" in err or "must not be empty" in err)


@pytest.mark.parametrize("updates", ["0", "-3"])
def test_train_updates_must_be_positive(tmp_path, capsys, updates):
    status, err = exit_status(train.main, train_argv(tmp_path, "--updates", updates), capsys)
    assert status == 2 and f"--updates {updates}: must be at least 1" in err


def test_enjoy_missing_model_exits_2_naming_the_path(tmp_path, capsys):
    missing = str(tmp_path / "missing.nn")
    status, err = exit_status(enjoy.main, ["--model", missing, "--video", str(tmp_path / "v.gif")],
                              capsys)
    assert status == 2 and missing in err and "no such model file" in err


@pytest.mark.parametrize("content", [b"", b"not a model\n", b"PK\x03\x04 truncated zip"])
def test_enjoy_on_a_file_that_is_not_a_model_exits_2(tmp_path, capsys, content):
    path = tmp_path / "config.nn"
    path.write_bytes(content)
    status, err = exit_status(enjoy.main, ["--model", str(path), "--video",
                                           str(tmp_path / "v.gif")], capsys)
    assert status == 2 and str(path) in err and "not a loadable TrXL-PPO model file" in err
    assert not (tmp_path / "v.gif").exists()


@pytest.mark.parametrize("args,message", [
    (["--video", "out.avi"], "--video out.avi: the file name must end in .mp4 or .gif"),
    (["--episodes", "0"], "--episodes 0: must lie in [1, 10,000]"),
    (["--fps", "0"], "--fps 0: must lie in [1, 1000]"),
    ([], "the following arguments are required: --model"),
])
def test_enjoy_bad_arguments_exit_2(capsys, args, message):
    argv = ["--model", "whatever.nn", *args] if args else args
    status, err = exit_status(enjoy.main, argv, capsys)
    assert status == 2 and message in err


# ----- flags added for multi-seed runs and resume -----

@pytest.mark.parametrize("args,message", [
    (["--seed", "1", "--seeds", "2", "3"], "give one or the other"),
    (["--seeds", "-1"], "seeds must lie in [0, 2^32)"),
    (["--resume", "x", "--config", "c.yaml"], "drop --config"),
    (["--seeds"], "expected at least one argument"),
])
def test_train_flag_combinations_are_refused(tmp_path, capsys, args, message):
    status, err = exit_status(train.main, train_argv(tmp_path, *args), capsys)
    assert status == 2 and message in err


def test_resume_of_a_missing_run_names_the_file(tmp_path, capsys):
    status, err = exit_status(train.main, train_argv(tmp_path, "--resume", "nope"), capsys)
    assert status == 2 and re.search(r"nope\.nn: no such model file", err)


def test_unwritable_output_folder_is_reported_before_training(tmp_path, capsys):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    status, err = exit_status(train.main, ["--models-dir", str(blocked),
                                           "--summaries-dir", str(tmp_path / "s")], capsys)
    assert status == 2 and re.search(r"cannot write to .*file-not-folder", err)


def test_seeds_train_one_run_per_seed(tmp_path):
    config = write_config(str(tmp_path), updates=1)
    assert train.main(train_argv(tmp_path, "--config", config, "--run-id", "multi",
                                 "--seeds", "3", "4")) == 0
    for seed in (3, 4):
        payload, loaded = load_model_file(str(tmp_path / "models" / f"multi_seed{seed}.nn"))
        assert loaded.seed == seed and payload["update"] == 1


def test_environment_crash_stops_the_run_and_saves(tmp_path, monkeypatch):
    """A worker's exception ends training with the env, worker, seed and traceback, exit 1,
    and the last completed update saved."""
    config = write_config(str(tmp_path), updates=50,
                          environment={"type": "gymnasium", "name": "tests.faulty_env:Faulty-v0",
                                       "reset_params": {"fail_at_step": 40}})
    result = run_script("train.py", "--config", config, "--run-id", "crash",
                        "--models-dir", str(tmp_path / "m"), "--summaries-dir", str(tmp_path / "s"))
    assert result.returncode == 1
    assert "tests.faulty_env:Faulty-v0" in result.stderr and "worker" in result.stderr
    assert "Traceback" in result.stderr and "seed" in result.stderr
    # The id imports a module: a model file may name it only when the user allows it.
    from runs import integrity
    monkeypatch.setattr(integrity, "_allowed_env_ids", {"tests.faulty_env:Faulty-v0"})
    payload, _ = load_model_file(str(tmp_path / "m" / "crash.nn"))
    assert payload["update"] == 2          # 2 updates of 16 steps finished before step 40


def test_failed_worker_is_restarted_when_allowed(tmp_path):
    """With max_worker_restarts the run survives the env's exception and counts the restart."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    config = write_config(str(tmp_path), updates=3, max_worker_restarts=2,
                          environment={"type": "gymnasium", "name": "tests.faulty_env:Faulty-v0",
                                       "reset_params": {"fail_at_step": 40}})
    result = run_script("train.py", "--config", config, "--run-id", "restart",
                        "--models-dir", str(tmp_path / "m"), "--summaries-dir", str(tmp_path / "s"))
    assert result.returncode == 0, result.stderr
    assert "restarting env process" in result.stderr
    (run,) = os.listdir(tmp_path / "s" / "restart")
    events = EventAccumulator(str(tmp_path / "s" / "restart" / run)).Reload()
    assert events.Scalars("env/worker_restarts")[-1].value >= 1


def test_enjoy_window_shows_frames_headless():
    """The live window path, on SDL's dummy video driver (set by conftest)."""
    import numpy as np
    window = enjoy.Window("test")
    try:
        assert window.show(np.zeros((84, 84, 3), dtype=np.uint8), fps=1000)
        assert window.screen.get_size() == (504, 504)      # scaled to at least ~512 px
    finally:
        window.close()


@pytest.mark.parametrize("args,message", [
    (["--device", "gpu"], "invalid choice: 'gpu'"),
    (["--seed", "-5"], "seeds must lie in [0, 2^32)"),
    (["--updates", "many"], "invalid int value"),
])
def test_train_rejects_wrong_flag_values(tmp_path, capsys, args, message):
    status, err = exit_status(train.main, train_argv(tmp_path, *args), capsys)
    assert status == 2 and message in err


def test_enjoy_rejects_a_negative_seed(capsys):
    status, err = exit_status(enjoy.main, ["--model", "x.nn", "--seed", "-1"], capsys)
    assert status == 2 and "seeds must lie in [0, 2^32)" in err


def test_full_disk_is_reported_before_training(tmp_path, monkeypatch, capsys):
    import shutil
    from collections import namedtuple
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 10 * 2**20))
    status, err = exit_status(train.main, train_argv(tmp_path), capsys)
    assert status == 2 and re.search(r"only 10 MiB free .*Fix: free disk space", err)


def test_resume_by_run_id_takes_the_newest_checkpoint(tmp_path):
    """A kill between the periodic update_N.nn and RUN.nn leaves RUN.nn one interval behind:
    --resume RUN continues from the newer file (sweep.py's retries rely on it)."""
    from runs.paths import latest_model_file
    (tmp_path / "run").mkdir()
    assert latest_model_file(str(tmp_path), "run") is None
    for age, name in ((30, "run.nn"), (20, "run/update_000002.nn"), (10, "run/update_000004.nn")):
        (tmp_path / name).write_bytes(b"")
        os.utime(tmp_path / name, (time.time() - age, time.time() - age))
    assert latest_model_file(str(tmp_path), "run") == str(tmp_path / "run" / "update_000004.nn")


def test_random_policy_prints_the_chance_level_reproducibly():
    """scripts/random_policy.py is docs/results.md's chance level for Memory Gym and MiniGrid: the
    same figures every time, from seeded actions on the held-out seeds."""
    args = ("scripts/random_policy.py", "configs/proof_of_memory.yaml", "--n-seeds", "20")
    first, second = run_script(*args), run_script(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert first.stdout.startswith("ProofOfMemory-v0, random actions, 20 held-out seeds: return ")


# ----- --set: config values on the command line -----

def test_set_overrides_config_values_and_the_run_records_them(tmp_path):
    """Typed by the schema (1e-4 is a number, as YAML 1.2 reads it), applied over the file,
    embedded in the model file and written above the config in TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    config = write_config(str(tmp_path), updates=1)
    assert train.main(train_argv(tmp_path, "--config", config, "--run-id", "set", "--set",
                                 "transformer.memory_length=4",
                                 "learning_rate_schedule.initial=1e-4")) == 0
    _, loaded = load_model_file(str(tmp_path / "models" / "set.nn"))
    assert loaded.transformer.memory_length == 4
    assert loaded.learning_rate_schedule.initial == 1e-4
    assert loaded.n_workers == TINY["n_workers"]              # the rest from the file
    (run,) = os.listdir(tmp_path / "summaries" / "set")
    events = EventAccumulator(str(tmp_path / "summaries" / "set" / run)).Reload()
    text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert f"# {config} --set transformer.memory_length=4 --set " \
           f"learning_rate_schedule.initial=0.0001" in text
    assert "memory_length: 4" in text


@pytest.mark.parametrize("args,message", [
    (["--set", "updates=many"], "--set updates=many: "),
    (["--set", "updates=many"], "updates = 'many': expected an integer"),
    (["--set", "transformer.nope=1"], "transformer.nope = 1: unknown key"),
    (["--set", "transformer.num_heads=3"], "not divisible by transformer.num_heads = 3"),
    (["--set", "gamma=2"], "gamma = 2.0: must be at most 1.0"),
    (["--set", "seed.x=1"], "--set seed.x: "),
    (["--set", "noequals"], "'noequals': expected KEY=VALUE"),
    (["--set", "updates="], "no value after '='"),
    (["--set", "updates=1", "updates=2"], "--set updates: the key is given twice"),
    (["--set", "updates=3", "--updates", "2"], "--set updates=3 and --updates"),
    (["--set", "seed=3", "--seeds", "1", "2"], "--set seed=3 and --seed"),
    (["--resume", "x", "--set", "updates=3"], "drop --config, --seed, --seeds and --set"),
])
def test_bad_set_values_exit_2_naming_flag_key_and_value(tmp_path, capsys, args, message):
    config = write_config(str(tmp_path))
    argv = args if "--resume" in args else ["--config", config, *args]
    status, err = exit_status(train.main, train_argv(tmp_path, *argv), capsys)
    assert status == 2 and message in err, err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
    assert not os.path.exists(tmp_path / "models" / "run.nn")
