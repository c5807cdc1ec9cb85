"""Data-parallel training (distributed.py) on 2 gloo ranks of this CPU: the same update as one
rank on the same data, identical weights on every rank, exact resume, world-size refusal,
rank 0 alone writing, and a stop of any rank stopping all with the checkpoint saved."""
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import psutil
import pytest
import torch

from config import load_config
from distributed import Ranks, rank_seed, ranks_from_environment, worker_share
from environments.episodes import HELD_OUT_SEED_START, episode_seed, held_out_seeds
from runs.checkpoint import load_model_file
from tests import distributed_ranks
from tests.distributed_ranks import run_ranks
from trainer import Schedules, Trainer
from utils import worker_seeds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"n_workers": 4, "worker_steps": 16, "segment_length": 8, "n_mini_batch": 3,
        "updates": 3, "env_processes": 1, "epochs": 2}


def tiny(**overrides):
    return load_config(os.path.join(ROOT, "configs", "proof_of_memory.yaml"),
                       {**TINY, **overrides})


VALUES = [[1.0, 2.0, 3.0], [4.0, 5.0]]         # rank 0's and rank 1's advantages
PREDICTED = [[1.0, 2.0, 2.0], [4.0, 6.0]]


@dataclass
class OneRank:
    """A 1-rank optimisation of a recorded rollout, to hold the 2-rank one against."""
    losses: dict
    value_mean: float
    explained_variance: float
    weights: dict
    grads: dict


def one_rank_update(config, folder) -> OneRank:
    """One rank with 4 workers records a rollout (and the weights and shuffle state before
    optimising it) in folder/data.pt, then optimises it."""
    trainer = Trainer(config, "one", str(folder / "m"), str(folder / "s"))
    try:
        trainer.model.eval()
        _, last_value = trainer.sampler.collect()
        trainer.buffer.compute_advantages(last_value, config.gamma, config.gae_lambda)
        buffer = {k: v.clone() for k, v in vars(trainer.buffer).items()
                  if isinstance(v, torch.Tensor)}
        torch.save({"model": trainer.model.state_dict(), "buffer": buffer,
                    "shuffle": trainer.generator.get_state()}, folder / "data.pt")
        trainer.model.train()
        stats = trainer.optimise(Schedules.at(config, 0))
        return OneRank(stats.losses, stats.value_mean, stats.explained_variance,
                       trainer.model.state_dict(),
                       {k: p.grad for k, p in trainer.model.named_parameters()
                        if p.grad is not None})
    finally:
        trainer.close()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """The 1-rank reference, and every check of distributed_ranks on 2 gloo ranks."""
    folder = tmp_path_factory.mktemp("ranks")
    config = tiny()
    reference = one_rank_update(config, folder)
    return reference, run_ranks(distributed_ranks.all_checks, 2, config, str(folder), VALUES,
                                PREDICTED)


def test_advantages_are_normalised_over_all_ranks(two_ranks):
    """Rank 0 holds [1, 2, 3], rank 1 [4, 5]: mean 3, variance (4+1+0+1+4)/5 = 2."""
    rank0, rank1 = (rank["reductions"] for rank in two_ranks[1])
    scale = math.sqrt(2.0) + 1e-8
    torch.testing.assert_close(rank0["normalized"], torch.tensor([-2.0, -1.0, 0.0]) / scale)
    torch.testing.assert_close(rank1["normalized"], torch.tensor([1.0, 2.0]) / scale)
    assert rank0["mean"] == rank1["mean"] == 3.0
    # Residuals [0, 0, 1, 0, -1]: variance 2/4 (unbiased), target variance 10/4.
    assert rank0["explained_variance"] == pytest.approx(1 - 0.5 / 2.5)
    assert rank0["gathered"] == [0, 10] and rank1["gathered"] is None
    assert rank0["broadcast"] == rank1["broadcast"] == "from 0"


def test_two_ranks_take_the_one_rank_update_on_the_same_data(two_ranks):
    """2 ranks of 2 workers each optimise their halves of the 1-rank run's rollout (4
    workers): same gradients, weights and statistics as the 1-rank optimisation."""
    one = two_ranks[0]
    ranks = [rank["same_data"] for rank in two_ranks[1]]
    for rank in ranks:
        assert rank["initial_equal"]
        assert set(rank["grads"]) == set(one.grads)
        for name, grad in one.grads.items():       # the last minibatch's, clipped
            torch.testing.assert_close(rank["grads"][name], grad, rtol=1e-4, atol=1e-6)
        # Adam divides each gradient by its own running magnitude, so a near-zero gradient's
        # rounding (the ranks sum in another order) moves its weight by up to a share of the
        # learning rate (1e-3): weights agree to a tenth of it.
        for name, tensor in one.weights.items():
            torch.testing.assert_close(rank["weights"][name], tensor, rtol=0, atol=1e-4)
        for key, value in one.losses.items():
            assert rank["losses"][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
        assert rank["value_mean"] == pytest.approx(one.value_mean, rel=1e-6)
        assert rank["explained_variance"] == pytest.approx(one.explained_variance, rel=1e-5)
    assert all(torch.equal(ranks[0]["weights"][k], ranks[1]["weights"][k]) for k in one.weights)


def test_weights_are_identical_on_every_rank_after_every_update(two_ranks):
    assert two_ranks[1][0]["every_update"] == [[True, True]] * 3


def test_two_rank_run_resumed_equals_uninterrupted(two_ranks):
    rank0, rank1 = (rank["resume"] for rank in two_ranks[1])
    for rank in (rank0, rank1):
        assert rank["equal"]
        assert rank["losses"][0] == rank["losses"][1]
        assert rank["saved_world_size"] == 2 and rank["saved_ranks"] == 1
        assert rank["steps"] == (3 * 64, 3 * 64)      # the run's steps: 4 workers x 16
    assert rank0["wrote"] == ["m", "s"]


def test_rank_seeds_and_worker_shares():
    """Every rank steps its share of the 1-rank run's workers, with their seeds: no two ranks
    share a worker, and no training episode seed is a held-out evaluation seed."""
    held_out = set(held_out_seeds(1000))
    for world_size in (1, 2, 4):
        shares = [worker_share(8, Ranks(rank, world_size)) for rank in range(world_size)]
        seeds = [worker_seeds(0, 8)[share] for share in shares]
        assert sum(seeds, []) == worker_seeds(0, 8)
        episodes = {episode_seed(seed, k) for part in seeds for seed in part for k in range(200)}
        assert max(episodes) < HELD_OUT_SEED_START and not episodes & held_out
    action_seeds = [rank_seed(0, rank) for rank in range(8)]
    assert action_seeds[0] == 0 and len(set(action_seeds)) == 8
    with pytest.raises(ValueError, match="n_workers = 6 does not divide among 4 ranks"):
        worker_share(6, Ranks(0, 4))


def test_ranks_come_from_torchrun_variables():
    assert ranks_from_environment({}) == Ranks()
    ranks = ranks_from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1",
                                    "LOCAL_WORLD_SIZE": "2"})
    assert ranks == Ranks(3, 4, 1, 2) and not ranks.is_main and ranks.distributed
    with pytest.raises(ValueError, match="do not describe a rank"):
        ranks_from_environment({"RANK": "4", "WORLD_SIZE": "4"})


# ----- torchrun itself -----
def torchrun(tmp_path, *args, ranks: int = 2, **popen) -> subprocess.Popen:
    command = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--nproc-per-node",
               str(ranks), "--master-port", str(distributed_ranks.free_port()), "train.py",
               *args, "--models-dir", str(tmp_path / "m"), "--summaries-dir",
               str(tmp_path / "s")]
    return subprocess.Popen(command, cwd=ROOT, text=True, env={**os.environ,
                            "SDL_VIDEODRIVER": "dummy"}, **popen)


def test_torchrun_trains_and_only_rank_zero_writes_and_resumes(tmp_path):
    settings = ["--set", "n_workers=4", "worker_steps=16", "segment_length=8",
                "env_processes=1", "checkpoint_interval=1"]
    process = torchrun(tmp_path, "--run-id", "dp", "--updates", "2", *settings,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = process.communicate(timeout=120)[0]
    assert process.returncode == 0, out
    assert out.count("update     2/2") == 1 and "on 2 ranks" in out   # rank 0 reports
    assert sorted(os.listdir(tmp_path / "m")) == ["dp", "dp.nn"]
    assert sorted(os.listdir(tmp_path / "m" / "dp")) == ["update_000001.nn", "update_000002.nn"]
    (folder,) = os.listdir(tmp_path / "s" / "dp")
    assert len(os.listdir(tmp_path / "s" / "dp" / folder)) == 1        # one events file
    payload, _ = load_model_file(str(tmp_path / "m" / "dp.nn"))
    assert payload["world_size"] == 2 and len(payload["ranks"]) == 1
    assert payload["steps"] == 2 * 64
    # Another number of ranks is refused before a worker starts, naming both.
    refused = subprocess.run([sys.executable, "train.py", "--resume", "dp", "--models-dir",
                              str(tmp_path / "m"), "--summaries-dir", str(tmp_path / "s")],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "written by a run of 2 rank(s), resumed with 1" in refused.stderr
    assert "torchrun --nproc-per-node 2 train.py --resume" in refused.stderr
    process = torchrun(tmp_path, "--resume", "dp", "--updates", "3", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    out = process.communicate(timeout=120)[0]
    assert process.returncode == 0, out
    assert "update     3/3" in out and load_model_file(str(tmp_path / "m" / "dp.nn"))[0][
        "update"] == 3


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def rank_process(launcher: int, rank: int) -> psutil.Process:
    for process in descendants(launcher):
        try:
            if process.environ().get("RANK") == str(rank) and "train.py" in process.cmdline():
                return process
        except psutil.NoSuchProcess:
            continue
    raise AssertionError(f"no rank {rank} under torchrun")


@pytest.mark.parametrize("stop", ["SIGTERM to rank 1", "SIGKILL to rank 1", "SIGINT to torchrun"])
def test_stopping_any_rank_stops_all_with_the_checkpoint_saved(tmp_path, stop):
    process = torchrun(tmp_path, "--run-id", "long", "--updates", "100000", "--set",
                       "n_workers=4", "env_processes=1", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for line in process.stdout:          # wait until it is training
            if line.startswith("update "):
                break
        tree = descendants(process.pid)
        assert len([p for p in tree if "train.py" in " ".join(p.cmdline())]) >= 2
        signum = getattr(signal, stop.split()[0])
        target = process if stop.endswith("torchrun") else rank_process(process.pid, 1)
        target.send_signal(signum)
        out = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode != 0
    assert "saved " in out, out
    payload, _ = load_model_file(str(tmp_path / "m" / "long.nn"))
    assert payload["update"] >= 1 and payload["world_size"] == 2
    deadline = time.time() + 10
    while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree):
        assert time.time() < deadline, "a process outlived the run"
        time.sleep(0.2)
