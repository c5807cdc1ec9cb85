"""Reliability: an interrupted and resumed run equals an uninterrupted one; interrupts save
and stop every worker; non-finite losses are caught."""
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch

from config import load_config
from memories import kinds
from tests.fakes import memory_variants
from trainer import NonFiniteError, Trainer
from runs.checkpoint import load_model_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"n_workers": 4, "worker_steps": 16, "segment_length": 8, "n_mini_batch": 2,
        "updates": 4, "env_processes": 2}


def tiny(**overrides):
    return load_config(os.path.join(ROOT, "configs", "proof_of_memory.yaml"), {**TINY, **overrides})


def run(trainer: Trainer, updates: int) -> Trainer:
    try:
        trainer.run(updates)
    finally:
        trainer.close()
    return trainer


@pytest.mark.parametrize("memory", sorted(kinds()))
def test_resumed_run_equals_uninterrupted_run(tmp_path, memory):
    """Bit-identical, for every memory: its running state is part of the checkpoint."""
    kind, values = memory_variants()[memory]
    config = tiny(memory=memory, **{f"{kind.section}.{key}": v for key, v in values.items()})
    whole = run(Trainer(config, "whole", str(tmp_path / "m"), str(tmp_path / "s")), 4)
    first = run(Trainer(config, "part", str(tmp_path / "m"), str(tmp_path / "s")), 2)
    first.save()
    payload, loaded = load_model_file(str(tmp_path / "m" / "part.nn"))
    second = run(Trainer(loaded, "part", str(tmp_path / "m"), str(tmp_path / "s"), payload), 4)
    assert (second.update, second.steps) == (whole.update, whole.steps)
    assert second.last_stats.losses == whole.last_stats.losses
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[name]), name
    # The resumed run writes on in the same TensorBoard folder.
    assert second.log_dir == first.log_dir


def test_checkpoint_without_memory_state_refuses_to_resume(tmp_path):
    """A checkpoint written before memories had one interface holds no memory state: resuming
    from it fails with a ValueError that says so (it would otherwise continue with a blank
    memory, not the run it claims to continue)."""
    config = tiny()
    first = run(Trainer(config, "old", str(tmp_path / "m"), str(tmp_path / "s")), 1)
    first.save()
    payload, loaded = load_model_file(str(tmp_path / "m" / "old.nn"))
    del payload["sampler"]["memory_state"]
    with pytest.raises(ValueError, match="memory_state"):
        Trainer(loaded, "old", str(tmp_path / "m"), str(tmp_path / "s"), payload)


def test_resumed_run_continues_the_tensorboard_curve(tmp_path):
    """Resumed from update 2 after the first process had logged update 3 (killed after its
    periodic checkpoint): update 3's stale point is purged, update 2's kept, each once. The
    purge once started at the checkpoint's own step, so every resume lost a point."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    config = tiny(checkpoint_interval=2)
    first = run(Trainer(config, "tb", str(tmp_path / "m"), str(tmp_path / "s")), 3)
    payload, loaded = load_model_file(str(tmp_path / "m" / "tb" / "update_000002.nn"))
    # A real resume is a later process. In this one process, a writer opened within the same
    # second gets a file name that differs only in a per-process counter, which sorts as text
    # ("...9" after "...10"), so TensorBoard could read the resumed file first.
    time.sleep(1.1)
    second = run(Trainer(loaded, "tb", str(tmp_path / "m"), str(tmp_path / "s"), payload), 4)
    assert second.log_dir == first.log_dir
    events = EventAccumulator(second.log_dir).Reload()
    steps = [e.step for e in events.Scalars("speed/sampling_seconds")]
    assert steps == [u * config.batch_size for u in (1, 2, 3, 4)]


def test_periodic_checkpoints(tmp_path):
    trainer = run(Trainer(tiny(checkpoint_interval=2), "ck", str(tmp_path / "m"),
                          str(tmp_path / "s")), 4)
    assert sorted(os.listdir(tmp_path / "m" / "ck")) == ["update_000002.nn", "update_000004.nn"]
    payload, _ = load_model_file(str(tmp_path / "m" / "ck" / "update_000002.nn"))
    assert (payload["update"], payload["steps"]) == (2, 2 * trainer.config.batch_size)


def test_nonfinite_loss_stops_naming_the_term(tmp_path, monkeypatch):
    trainer = Trainer(tiny(), "nan", str(tmp_path / "m"), str(tmp_path / "s"))
    import losses
    real = losses.ppo_loss

    def broken(*args, **kwargs):
        terms = real(*args, **kwargs)
        terms.value = terms.value * float("nan")
        return terms
    monkeypatch.setattr("trainer.ppo_loss", broken)
    with pytest.raises(NonFiniteError, match=r"update 1: the loss term\(s\) value.*update 0"):
        run(trainer, 1)


def test_nonfinite_loss_can_be_skipped(tmp_path, monkeypatch):
    trainer = Trainer(tiny(on_nonfinite="skip"), "skip", str(tmp_path / "m"), str(tmp_path / "s"))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    # An infinite gradient norm on every minibatch: every optimiser step must be skipped.
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_",
                        lambda *a, **k: torch.tensor(float("inf")))
    run(trainer, 1)
    assert trainer.skipped_steps == trainer.config.epochs * trainer.config.n_mini_batch
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def children_of(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_saves_and_stops_every_worker(tmp_path, sig):
    config = tmp_path / "long.yaml"
    # Env processes (environment.backend: processes), so that there are workers to stop.
    config.write_text(open(os.path.join(ROOT, "configs", "proof_of_memory.yaml")).read()
                      .replace("updates: 40", "updates: 100000") + "env_processes: 2\n")
    process = subprocess.Popen(
        [sys.executable, "train.py", "--config", str(config), "--run-id", "long",
         "--models-dir", str(tmp_path / "m"), "--summaries-dir", str(tmp_path / "s")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
    try:
        for line in process.stdout:          # wait until it is training
            if line.startswith("update "):
                break
        workers = children_of(process.pid)
        assert workers
        process.send_signal(sig)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "saving update" in out and "--resume" in out
    payload, _ = load_model_file(str(tmp_path / "m" / "long.nn"))
    assert payload["update"] >= 1
    deadline = time.time() + 5
    while any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers):
        assert time.time() < deadline, "a worker outlived the trainer"
        time.sleep(0.1)


def test_killed_trainer_leaves_no_workers(tmp_path):
    """SIGKILL cannot be handled: the workers notice their parent is gone and exit."""
    process = subprocess.Popen(
        [sys.executable, "train.py", "--run-id", "k", "--updates", "100000",
         "--set", "environment.backend=processes",
         "--models-dir", str(tmp_path / "m"), "--summaries-dir", str(tmp_path / "s")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
    try:
        for line in process.stdout:
            if line.startswith("update "):
                break
        workers = children_of(process.pid)
        assert workers
        process.kill()
        process.wait(10)
    finally:
        process.kill()
    deadline = time.time() + 10
    while any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers):
        assert time.time() < deadline, "a worker outlived its killed trainer"
        time.sleep(0.2)
