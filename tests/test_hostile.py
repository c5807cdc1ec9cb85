"""Hostile and careless input, by family: configs, command lines and model files that must
be refused. Each family is generated (every float field, every limit, every byte offset...),
so a family is covered by construction rather than by one example. Every case must end
within 10 s with exit status 2 and one `error:` line that names the file or flag, no
traceback, and no file written outside models/RUN* and summaries/RUN*.

The cases run in-process (train.main, enjoy.main, evaluate.main): the same code path as the
command line without a torch start-up per case. The marker-file tests run the real command
lines, where an imported module would show.
"""
from __future__ import annotations

import copy
import dataclasses
import errno
import fcntl
import math
import os
import signal
import subprocess
import sys
import threading
import time
import typing
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
import torch
import yaml

import config as config_module
import enjoy
import evaluate
import train
import trainer as trainer_module
from config import Config, load_config
from preflight.refusal import MAX_MESSAGE_CHARS, RefusedInput
from runs import checkpoint as model_file, integrity
from runs.checkpoint import load_model_file, save_model_file
from runs.lock import run_lock
from trainer import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"n_workers": 2, "worker_steps": 8, "segment_length": 8, "n_mini_batch": 1,
        "updates": 1, "env_processes": 1}
MAINS = {"train": train.main, "enjoy": enjoy.main, "evaluate": evaluate.main}
SECONDS = 10.0


def base_config() -> dict:
    with open(os.path.join(ROOT, "configs", "proof_of_memory.yaml"), encoding="utf-8") as f:
        data = yaml.safe_load(f)
    return {**data, **copy.deepcopy(TINY)}


@dataclass
class Case:
    """One refused input: a command line and the files it reads (written into a fresh
    folder that is the working directory), and what the error line must name."""
    id: str
    script: str
    argv: list[str]
    names: str
    files: dict[str, Callable[[str], None]] = field(default_factory=dict)
    run: str = "run"        # outputs may only appear under models/RUN* and summaries/RUN*


def refuse(case: Case, folder, capsys, monkeypatch) -> str:
    """Run the case in `folder`; assert every promise; return the error line."""
    monkeypatch.chdir(folder)
    monkeypatch.setattr(integrity, "_allowed_env_ids", set())
    for name, write in case.files.items():
        write(os.path.join(str(folder), name))
    before = {os.path.join(d, f) for d, _, fs in os.walk(".") for f in fs}
    start = time.monotonic()
    try:
        status = MAINS[case.script](case.argv)
    except SystemExit as e:                 # argparse
        status = e.code
    elapsed = time.monotonic() - start
    out, err = capsys.readouterr()
    text = out + err
    assert status == 2, f"{case.id}: exit {status}\n{text[-2000:]}"
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if "error:" in line]
    assert len(lines) == 1, f"{case.id}: {len(lines)} error lines\n{text[-2000:]}"
    assert case.names in lines[0], f"{case.id}: {case.names!r} not in {lines[0]!r}"
    assert len(lines[0]) <= MAX_MESSAGE_CHARS + 200, lines[0][:300]
    assert lines[0].isprintable(), f"{case.id}: raw control characters in {lines[0]!r}"
    after = {os.path.join(d, f) for d, _, fs in os.walk(".") for f in fs}
    allowed = (f"./models/{case.run}", f"./summaries/{case.run}")
    stray = [p for p in after - before if not p.startswith(allowed)]
    assert not stray, f"{case.id} wrote {stray}"
    assert elapsed < SECONDS, f"{case.id} took {elapsed:.1f} s"
    return lines[0]


def yaml_file(text: str) -> Callable[[str], None]:
    def write(path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return write


def config_file(**changes) -> Callable[[str], None]:
    data = base_config()
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return yaml_file(yaml.safe_dump(data))


def train_config_case(id: str, write: Callable[[str], None], *extra: str) -> Case:
    return Case(id, "train", ["--config", "bad.yaml", *extra], "bad.yaml", {"bad.yaml": write})


# --------------------------------------------------------------------------------------
# Config families
# --------------------------------------------------------------------------------------

def float_fields(cls=Config, prefix="") -> list[str]:
    """Every float field of the schema, dotted: each must refuse non-finite values."""
    hints = typing.get_type_hints(cls)
    keys = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            keys += float_fields(tp, f"{prefix}{f.name}.")
        elif tp is float:
            keys.append(prefix + f.name)
    return keys


def alias_bomb(levels: int, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def config_cases() -> list[Case]:
    cases = []
    for key in float_fields():
        for value in (math.inf, -math.inf, math.nan):
            cases.append(train_config_case(f"nonfinite-{key}-{value}",
                                           config_file(**{key: value})))
    for key, limit in config_module.LIMITS.items():
        cases.append(train_config_case(f"limit-{key}", config_file(**{key: limit + 1})))
    for seed in (-1, 2**32, 2**64, -(2**70)):
        cases.append(train_config_case(f"seed-{seed}", config_file(seed=seed)))
    for key, value in (("worker_steps", 10**12), ("transformer.memory_length", 10**9),
                       ("transformer.embed_dim", 2**20), ("hidden_layer_size", 10**9),
                       ("n_workers", 4096), ("micro_batch_size", None)):
        changes = {key: value}
        if key == "n_workers":
            changes.update({"worker_steps": 2**20, "segment_length": None})
        if key == "micro_batch_size":
            changes.update({"worker_steps": 2**22, "segment_length": None, "n_mini_batch": 1})
        cases.append(train_config_case(f"memory-{key}", config_file(**changes)))
    for empty in ("", "# only a comment\n", "~\n", "null\n", "{}\n", "   \n\n"):
        cases.append(train_config_case(f"empty-{empty!r}", yaml_file(empty)))
    for where in ("gamma", "transformer.num_blocks", "environment.name"):
        cases.append(train_config_case(f"duplicate-{where}", yaml_file(_duplicated(where))))
    for levels in (6, 9):
        bomb = alias_bomb(levels)
        cases.append(train_config_case(f"bomb-first-{levels}", yaml_file(bomb)))
        cases.append(train_config_case(f"bomb-typed-{levels}", yaml_file(
            bomb + f"gamma: *a{levels - 1}\n")))
        cases.append(train_config_case(f"bomb-reset-params-{levels}", yaml_file(
            bomb + f"environment: {{type: proof_of_memory, reset_params: {{x: *a{levels - 1}}}}}\n")))
    for text in ("x: &a [1, *a]\n", "&r {self: *r}\n", "gamma: &g [0.9, {x: *g}]\n",
                 "? [a, b]\n: 1\n", "? {a: 1}\n: 2\n", "gamma: 0.9\x00\n",
                 "gamma: \x1b[31m0.9\n", "gamma: 0.9\n\x7f: 1\n"):
        cases.append(train_config_case(f"yaml-{text[:10]!r}", yaml_file(text)))
    cases.append(Case("config-pagemap", "train", ["--config", "/proc/self/pagemap"],
                      "/proc/self/pagemap"))
    cases.append(Case("config-name-escape", "train", ["--config", "no\x1b[2Jsuch.yaml"],
                      "such.yaml"))
    cases.append(train_config_case("render-mode-human", config_file(
        **{"environment.reset_params": {"render_mode": "human"}})))
    cases.append(train_config_case("relative-import-id", config_file(
        **{"environment.type": "gymnasium", "environment.name": ".envs:Env-v0"})))
    for depth in (40, 5000):
        cases.append(train_config_case(f"nested-flow-{depth}",
                                       yaml_file("x: " + "[" * depth + "]" * depth + "\n")))
        cases.append(train_config_case(f"nested-block-{depth}", yaml_file(
            "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "v: 1\n")))
    for value in ("x" * 100_000, list(range(5_000)), {"k": "v" * 100_000}):
        cases.append(train_config_case(f"long-value-{type(value).__name__}",
                                       config_file(updates=value)))
    for name in ("NoSuchEnv-v0", "CartPole-v999", "ns/Missing-v1", "!!bad id", "x" * 5000):
        cases.append(train_config_case(f"unknown-gym-id-{name[:12]}", config_file(
            **{"environment.type": "gymnasium", "environment.name": name})))
    for params in ({"no_such_kwarg": 1}, {"max_episode_steps": "many"}):
        cases.append(train_config_case(f"reset-params-{next(iter(params))}", config_file(
            **{"environment.type": "gymnasium", "environment.name": "CartPole-v1",
               "environment.reset_params": params})))
    cases.append(train_config_case("pom-reset-params", config_file(
        **{"environment.reset_params": {"corridor_length": -5}})))
    for name in ("tests.spaces_env:IntegerActions-v0", "Blackjack-v1", "FrozenLake-v1"):
        cases.append(train_config_case(f"unsupported-space-{name}", config_file(
            **{"environment.type": "gymnasium", "environment.name": name})))
    cases.append(train_config_case("reconstruction-with-vectors", config_file(
        reconstruction_loss_coefficient=0.1)))
    cases.append(train_config_case("empty-env-name", config_file(**{"environment.name": ""})))
    cases.append(train_config_case("huge-file", yaml_file("# padding\n" * 200_000)))
    for device in ("/dev/zero", "/dev/null"):
        cases.append(Case(f"config-{device}", "train", ["--config", device], device))
    cases.append(Case("config-folder", "train", ["--config", "."], "."))
    for tag in ("!!python/object/apply:os.system ['touch pwned']", "!!binary AAAA"):
        cases.append(train_config_case(f"yaml-tag-{tag[:12]}", yaml_file(f"gamma: {tag}\n")))
    if not torch.cuda.is_available():
        cases.append(train_config_case("cuda-without-gpu", config_file(device="cuda")))
        cases.append(Case("cuda-flag-without-gpu", "train",
                          ["--config", "ok.yaml", "--device", "cuda"], "ok.yaml",
                          {"ok.yaml": config_file()}))
    return cases


def _duplicated(dotted: str) -> str:
    """The base config with `dotted` given twice in its own mapping."""
    data = base_config()
    text = ""
    *parents, leaf = dotted.split(".")
    for key, value in data.items():
        if parents and key == parents[0]:
            continue
        text += yaml.safe_dump({key: value})
    if parents:
        section = dict(data.get(parents[0], {}))
        section.pop(leaf, None)
        body = yaml.safe_dump({parents[0]: section}) if section else f"{parents[0]}:\n"
        return text + body + f"  {leaf}: 1\n  {leaf}: 2\n"
    return text + f"{leaf}: 0.9\n{leaf}: 0.8\n"


# --------------------------------------------------------------------------------------
# Command-line families
# --------------------------------------------------------------------------------------

def command_line_cases() -> list[Case]:
    ok = {"ok.yaml": config_file()}
    cases = []
    for flag in ("--config", "--run-id", "--resume", "--models-dir", "--summaries-dir",
                 "--allow-env-id"):
        cases.append(Case(f"train-empty{flag}", "train", [flag, ""], flag))
    for flag in ("--model", "--video", "--allow-env-id"):
        argv = ["--model", "m.nn"] + [flag, ""] if flag != "--model" else ["--model", ""]
        cases.append(Case(f"enjoy-empty{flag}", "enjoy", argv, flag))
    for flag in ("--out", "--models-dir", "--allow-env-id"):
        cases.append(Case(f"evaluate-empty{flag}", "evaluate", ["run", flag, ""], flag))
    cases.append(Case("evaluate-empty-target", "evaluate", [""], "MODEL_OR_RUN"))
    bad_ids = ["a\nb", "a\tb", "a*", "a?", "a[b]", "a b", "x" * 300, "-x", "a/b", ".hidden",
               "a\x1bb", "é"]
    for run_id in bad_ids:
        cases.append(Case(f"run-id-{run_id[:8]!r}", "train",
                          ["--config", "ok.yaml", "--run-id", run_id], "--run-id", ok))
    for seed in ("-1", str(2**32), str(2**80)):
        cases.append(Case(f"train-seed-{seed[:6]}", "train", ["--seed", seed], "--seed"))
        cases.append(Case(f"train-seeds-{seed[:6]}", "train", ["--seeds", "1", seed], "--seeds"))
        cases.append(Case(f"enjoy-seed-{seed[:6]}", "enjoy", ["--model", "m.nn", "--seed", seed],
                          "--seed"))
    cases.append(Case("enjoy-seed-overflow", "enjoy",
                      ["--model", "m.nn", "--seed", str(2**32 - 2), "--episodes", "5"], "--seed"))
    for flag, value in (("--n-seeds", "2000000000"), ("--repetitions", "10000000"),
                        ("--processes", "100000"), ("--n-seeds", "0")):
        cases.append(Case(f"evaluate{flag}-{value}", "evaluate", ["run", flag, value], flag))
    for value in ("0", str(10**10)):
        cases.append(Case(f"train-updates-{value}", "train", ["--updates", value], "--updates"))
    return cases


# --------------------------------------------------------------------------------------
# Model-file families
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory) -> str:
    """A real one-update checkpoint of a tiny proof-of-memory run."""
    folder = tmp_path_factory.mktemp("base")
    config = load_config(os.path.join(ROOT, "configs", "proof_of_memory.yaml"), TINY)
    t = Trainer(config, "base", str(folder / "models"), str(folder / "summaries"))
    try:
        t.run(1)
    finally:
        t.close()
    return t.save()


def payload_of(path: str) -> dict:
    payload = torch.load(path, weights_only=True)
    return {k: v for k, v in payload.items() if k not in ("format", "version")}


def mutated(base: str, change: Callable[[dict], None]) -> Callable[[str], None]:
    def write(path: str) -> None:
        payload = payload_of(base)
        change(payload)
        save_model_file(path, payload)
    return write


def raw_bytes(base: str, edit: Callable[[bytes], bytes]) -> Callable[[str], None]:
    def write(path: str) -> None:
        with open(base, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(edit(data))
    return write


def setter(*keys, value):
    def change(payload: dict) -> None:
        node = payload
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value(node.get(keys[-1])) if callable(value) else value
    return change


def deleter(*keys):
    def change(payload: dict) -> None:
        node = payload
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]
    return change


def model_file_mutations(base: str) -> dict[str, Callable[[str], None]]:
    """Files every command that reads a model must refuse."""
    first = next(iter(payload_of(base)["model"]))
    files = {
        "not-a-dict-model": mutated(base, setter("model", value=[1, 2, 3])),
        "string-in-model": mutated(base, setter("model", first, value="weights")),
        "wrong-shape-weight": mutated(base, setter("model", first, value=lambda t: torch.zeros(
            [s + 1 for s in t.shape]))),
        "missing-weight": mutated(base, deleter("model", first)),
        "extra-weight": mutated(base, setter("model", "extra.weight", value=torch.zeros(2))),
        "no-spec": mutated(base, deleter("spec")),
        "spec-not-dict": mutated(base, setter("spec", value="Box")),
        "huge-action-nvec": mutated(base, setter("spec", "action_nvec", value=[10**9])),
        "many-action-dims": mutated(base, setter("spec", "action_nvec", value=[2] * 5000)),
        "huge-obs": mutated(base, setter("spec", "obs_shape", value=[10**9])),
        "other-spec": mutated(base, setter("spec", "action_nvec", value=[7])),
        "huge-memory-window": mutated(base, setter("config", "transformer", "memory_length",
                                                   value=10**9)),
        "huge-embedding": mutated(base, setter("config", "transformer", "embed_dim",
                                               value=2**20)),
        "int8-not-dict": mutated(base, setter(model_file.INT8_KEY, value=[1])),
        "int8-bad-record": mutated(base, setter(model_file.INT8_KEY, value={
            first: {"q": torch.zeros(2, 2), "scale": torch.ones(2, 1)}})),
        "int8-bad-scale": mutated(base, setter(model_file.INT8_KEY, value={
            first: {"q": torch.zeros(2, 2, dtype=torch.int8), "scale": torch.ones(3, 1)}})),
        "embedded-long-value": mutated(base, setter("config", "environment", "reset_params",
                                                     value={"x": "y" * 10**6})),
        "embedded-bad-seed": mutated(base, setter("config", "seed", value=2**40)),
        "embedded-limit": mutated(base, setter("config", "evaluation", "n_seeds",
                                               value=2 * 10**9)),
        "memo-bomb": mutated(base, setter("config", "environment", "reset_params",
                                          value={"x": _memo_bomb()})),
        "deep-nesting": mutated(base, setter("config", "environment", "reset_params",
                                             value={"x": _nested(40)})),
        "pickled-global": lambda path: torch.save(
            {"format": model_file.MODEL_FORMAT, "version": model_file.MODEL_VERSION,
             "config": {}, "x": _Exploit()}, path),
        "empty-file": lambda path: open(path, "wb").close(),
        "not-zip": lambda path: open(path, "wb").write(b"PK\x03\x04garbage" * 100),
        "compressed-zip": _compressed(base),
    }
    size = os.path.getsize(base)
    for fraction in (0.05, 0.3, 0.5, 0.7, 0.95):
        cut = int(size * fraction)
        files[f"truncated-{fraction}"] = raw_bytes(base, lambda d, cut=cut: d[:cut])
    return files


def _memo_bomb(levels: int = 30) -> list:
    """A list that pickles to a few hundred bytes (its parts are shared) and expands to
    9^30 values."""
    value: list = ["x"] * 9
    for _ in range(levels):
        value = [value] * 9
    return value


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


class _Exploit:
    def __reduce__(self):
        return os.system, ("touch pwned",)


def _compressed(base: str) -> Callable[[str], None]:
    import zipfile

    def write(path: str) -> None:
        with zipfile.ZipFile(base) as src, zipfile.ZipFile(path, "w",
                                                           zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                dst.writestr(info.filename, src.read(info))
    return write


def resume_mutations(base: str) -> dict[str, Callable[[str], None]]:
    """Checkpoints train.py --resume must refuse on top of the model-file ones."""
    files = {f"missing-{key}": mutated(base, deleter(key))
             for key in ("optimizer", "rng", "sampler", "update", "steps", "skipped_steps")}
    files.update({
        "optimizer-not-state": mutated(base, setter("optimizer", value={"x": 1})),
        "optimizer-wrong-shape": mutated(base, lambda p: p["optimizer"]["state"][0].update(
            exp_avg=torch.zeros(1))),
        "optimizer-extra-param": mutated(base, lambda p: p["optimizer"]["state"].update(
            {999: p["optimizer"]["state"][0]})),
        "rng-wrong-dtype": mutated(base, setter("rng", "torch", value=torch.zeros(5))),
        "rng-missing": mutated(base, deleter("rng", "shuffle")),
        "negative-update": mutated(base, setter("update", value=-3)),
        "update-is-string": mutated(base, setter("update", value="three")),
    })
    return files


def sampler_mutations(base: str) -> dict[str, Callable[[str], None]]:
    """Found only once the workers run (the sampler's state depends on them)."""
    return {"sampler-missing-entry": mutated(base, deleter("sampler", "carried")),
            "sampler-wrong-shape": mutated(base, setter("sampler", "episode",
                                                        value=torch.zeros(7, dtype=torch.long)))}


def model_cases(base: str) -> list[Case]:
    cases = []
    for name, write in model_file_mutations(base).items():
        file = f"{name}.nn"
        cases.append(Case(f"enjoy-{name}", "enjoy", ["--model", file, "--video", "v.gif"],
                          file, {file: write}))
        cases.append(Case(f"evaluate-{name}", "evaluate", [file, "--out", "s.csv",
                                                           "--processes", "1"], file,
                          {file: write}, run=name))
        cases.append(Case(f"resume-{name}", "train", ["--resume", file], file,
                          {file: write}, run=name))
    # The counters identify a checkpoint's rows in evaluate.py's scores (enjoy needs none).
    for name, write in {"update-is-string": mutated(base, setter("update", value="three")),
                        "steps-missing": mutated(base, deleter("steps"))}.items():
        file = f"{name}.nn"
        cases.append(Case(f"evaluate-{name}", "evaluate", [file, "--out", "s.csv"], file,
                          {file: write}, run=name))
    for name, write in resume_mutations(base).items():
        file = f"{name}.nn"
        cases.append(Case(f"resume-{name}", "train", ["--resume", file], file, {file: write},
                          run=name))
    return cases


def test_config_families_are_refused(tmp_path, capsys, monkeypatch):
    for i, case in enumerate(config_cases()):
        refuse(case, _fresh(tmp_path, i), capsys, monkeypatch)


def test_command_line_families_are_refused(tmp_path, capsys, monkeypatch):
    for i, case in enumerate(command_line_cases()):
        refuse(case, _fresh(tmp_path, i), capsys, monkeypatch)


def test_model_file_families_are_refused(checkpoint_file, tmp_path, capsys, monkeypatch):
    for i, case in enumerate(model_cases(checkpoint_file)):
        refuse(case, _fresh(tmp_path, i), capsys, monkeypatch)


def test_sampler_entries_that_do_not_fit_are_refused(checkpoint_file, tmp_path, capsys,
                                                     monkeypatch):
    for i, (name, write) in enumerate(sampler_mutations(checkpoint_file).items()):
        file = f"{name}.nn"
        line = refuse(Case(f"resume-{name}", "train", ["--resume", file], file,
                           {file: write}, run=name), _fresh(tmp_path, i), capsys, monkeypatch)
        assert "'sampler" in line


def _fresh(tmp_path, i: int):
    folder = tmp_path / f"case{i}"
    folder.mkdir()
    return folder


def test_messages_name_the_memory_estimate(tmp_path, capsys, monkeypatch):
    case = train_config_case("estimate", config_file(**{"transformer.memory_length": 10**9}))
    line = refuse(case, tmp_path, capsys, monkeypatch)
    assert "needs about" in line and "GiB" in line and "available" in line


def test_blocked_global_is_named_without_torch_advice(checkpoint_file, tmp_path, capsys,
                                                      monkeypatch):
    write = model_file_mutations(checkpoint_file)["pickled-global"]
    line = refuse(Case("global", "enjoy", ["--model", "g.nn", "--video", "v.gif"], "g.nn",
                       {"g.nn": write}), tmp_path, capsys, monkeypatch)
    assert "system" in line and "weights_only" not in line
    assert not os.path.exists(tmp_path / "pwned")


def test_state_dict_mismatch_names_tensor_and_shapes(checkpoint_file, tmp_path, capsys,
                                                     monkeypatch):
    write = model_file_mutations(checkpoint_file)["wrong-shape-weight"]
    line = refuse(Case("shape", "enjoy", ["--model", "w.nn", "--video", "v.gif"], "w.nn",
                       {"w.nn": write}), tmp_path, capsys, monkeypatch)
    first = next(iter(payload_of(checkpoint_file)["model"]))
    assert first in line and "in the file" in line and "in the network" in line


# --------------------------------------------------------------------------------------
# Corruption: every flipped byte that changes what loads is found
# --------------------------------------------------------------------------------------

def test_flipped_bytes_are_detected(checkpoint_file, tmp_path):
    """Flip one byte at 200 offsets spread over the file: each file is refused with a
    ValueError, or (a byte that no CRC covers, such as zip padding) loads exactly the
    original content. Without the CRC check most flips inside tensor data loaded silently."""
    with open(checkpoint_file, "rb") as f:
        data = f.read()
    original, _ = load_model_file(checkpoint_file)
    path = str(tmp_path / "flipped.nn")
    refused = 0
    offsets = sorted({int(i * (len(data) - 1) / 199) for i in range(200)})
    for offset in offsets:
        flipped = bytearray(data)
        flipped[offset] ^= 0x5A
        with open(path, "wb") as f:
            f.write(flipped)
        try:
            payload, _ = load_model_file(path)
        except ValueError:
            refused += 1
            continue
        assert _same(payload, original), f"byte {offset} changed the content silently"
    assert refused >= 0.9 * len(offsets)


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


# --------------------------------------------------------------------------------------
# Nothing runs that a model file chose: a marker module for every loading path
# --------------------------------------------------------------------------------------

MARKER_MODULE = "hostile_marker_module"


@pytest.fixture
def marker_env(tmp_path, checkpoint_file):
    """A folder with a module that writes `imported` when imported, and a model file whose
    environment id would import it."""
    tmp_path = tmp_path / "marker"
    tmp_path.mkdir()
    (tmp_path / f"{MARKER_MODULE}.py").write_text(
        "import os\nopen(os.path.join(os.path.dirname(__file__), 'imported'), 'w').close()\n",
        encoding="utf-8")
    env_id = f"{MARKER_MODULE}:Marker-v0"
    mutated(checkpoint_file, setter("config", "environment", value={
        "type": "gymnasium", "name": env_id, "reset_params": {}}))(str(tmp_path / "m.nn"))
    return tmp_path, env_id


def _run(folder, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}",
           "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    return subprocess.Popen([sys.executable, *args], cwd=folder, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


LOADERS = {
    "enjoy": lambda: [os.path.join(ROOT, "enjoy.py"), "--model", "m.nn", "--video", "v.gif"],
    "evaluate": lambda: [os.path.join(ROOT, "evaluate.py"), "m.nn", "--out", "s.csv"],
    "evaluate-workers": lambda: [os.path.join(ROOT, "evaluate.py"), "m.nn", "--out", "s.csv",
                                 "--processes", "2"],
    "train-resume": lambda: [os.path.join(ROOT, "train.py"), "--resume", "m.nn"],
}


def test_no_loader_imports_a_module_named_by_a_model_file(marker_env):
    """Every command that reads a model file, run for real, in parallel: exit 2, the id and
    the flag that would allow it named, and the marker module never imported. The control,
    in a copy of the folder: the same file with --allow-env-id does import the module (and
    then fails because it registers nothing), so an import would be seen."""
    import shutil
    folder, env_id = marker_env
    control = folder.parent / "control"       # beside it, in this test's own folder
    shutil.copytree(folder, control)
    processes = {name: _run(folder, *args()) for name, args in LOADERS.items()}
    allowed = _run(control, *LOADERS["enjoy"](), "--allow-env-id", env_id)
    for name, process in processes.items():
        out, err = process.communicate(timeout=180)
        assert process.returncode == 2, (name, out, err)
        assert "Traceback" not in err and env_id in err and "--allow-env-id" in err, err
    assert not (folder / "imported").exists()
    with pytest.raises(ValueError, match="would import the module"):
        load_model_file(str(folder / "m.nn"))
    out, err = allowed.communicate(timeout=180)
    assert (control / "imported").exists(), err
    assert allowed.returncode == 2 and "Traceback" not in err and "Marker-v0" in err


def test_the_users_own_config_may_name_an_importing_id(tmp_path, capsys, monkeypatch):
    """The user's YAML is trusted: the id reaches gym.make (and fails there, with a message,
    because the module is missing), it is not refused as untrusted."""
    case = train_config_case("own-config", config_file(
        **{"environment.type": "gymnasium", "environment.name": "no_such_module_x:X-v0"}))
    line = refuse(case, tmp_path, capsys, monkeypatch)
    assert "No module named" in line and "--allow-env-id" not in line


# --------------------------------------------------------------------------------------
# Nothing is lost
# --------------------------------------------------------------------------------------

def _train(folder, *args) -> int:
    return train.main([*args, "--models-dir", str(folder / "models"),
                       "--summaries-dir", str(folder / "summaries")])


@pytest.fixture
def tiny_yaml(tmp_path) -> str:
    path = str(tmp_path / "tiny.yaml")
    config_file(checkpoint_interval=1, updates=2)(path)
    return path


def test_run_id_reuse_is_refused_and_overwrite_removes_the_old_run(tmp_path, tiny_yaml,
                                                                   capsys):
    assert _train(tmp_path, "--config", tiny_yaml, "--run-id", "r") == 0
    capsys.readouterr()
    assert _train(tmp_path, "--config", tiny_yaml, "--run-id", "r", "--updates", "1") == 2
    err = capsys.readouterr().err
    assert "--run-id r: a run of that name exists" in err and "--resume r" in err
    assert sorted(os.listdir(tmp_path / "models" / "r")) == ["update_000001.nn",
                                                             "update_000002.nn"]
    assert _train(tmp_path, "--config", tiny_yaml, "--run-id", "r", "--updates", "1",
                  "--overwrite") == 0
    # The new run's files only: update_000002 of the old run is gone.
    assert os.listdir(tmp_path / "models" / "r") == ["update_000001.nn"]
    assert len(os.listdir(tmp_path / "summaries" / "r")) == 1


def test_resuming_a_periodic_checkpoint_continues_its_run(tmp_path, tiny_yaml, capsys):
    assert _train(tmp_path, "--config", tiny_yaml, "--run-id", "base") == 0
    older = str(tmp_path / "models" / "base" / "update_000001.nn")
    latest = str(tmp_path / "models" / "base" / "update_000002.nn")
    capsys.readouterr()
    assert _train(tmp_path, "--resume", older) == 2
    assert "latest checkpoint is update 2" in capsys.readouterr().err
    assert _train(tmp_path, "--resume", latest, "--updates", "3") == 0
    # The same run continues: no run named update_000002, one TensorBoard folder.
    assert sorted(os.listdir(tmp_path / "models")) == ["base", "base.nn"]
    assert load_model_file(str(tmp_path / "models" / "base.nn"))[0]["update"] == 3
    assert len(os.listdir(tmp_path / "summaries" / "base")) == 1
    # Branching from the older one is a new run with its own name.
    assert _train(tmp_path, "--resume", older, "--run-id", "branch", "--updates", "2") == 0
    assert load_model_file(str(tmp_path / "models" / "branch.nn"))[0]["update"] == 2


def test_log_dir_in_a_model_file_chooses_no_folder(tmp_path, tiny_yaml):
    assert _train(tmp_path, "--config", tiny_yaml, "--run-id", "own") == 0
    path = str(tmp_path / "models" / "own.nn")
    for target in (str(tmp_path / "elsewhere"), "../../escaped"):
        mutated(path, setter("log_dir", value=target))(path)
        assert _train(tmp_path, "--resume", path, "--updates", "3") == 0
        assert not os.path.exists(tmp_path / "elsewhere")
        assert not os.path.exists(os.path.join(os.getcwd(), "../../escaped"))
    folders = os.listdir(tmp_path / "summaries")
    assert folders == ["own"]


def test_unwritable_outputs_are_refused_before_any_episode(checkpoint_file, tmp_path, capsys,
                                                          monkeypatch):
    # A path under a file, under /proc, a folder, and a link to a device (which the rename
    # completing the write would replace).
    for i, target in enumerate(["a-file/scores.csv", "/proc/no/scores.csv", "folder.csv",
                                "device.csv"]):
        case = tmp_path / f"case{i}"
        case.mkdir()
        (case / "a-file").write_text("")
        for suffix in (".csv", ".gif"):
            (case / f"folder{suffix}").mkdir()
            (case / f"device{suffix}").symlink_to("/dev/null")
        base = os.path.basename(checkpoint_file)
        files = {base: raw_bytes(checkpoint_file, lambda d: d)}
        refuse(Case(f"out-{target}", "evaluate", [base, "--out", target], "--out", files,
                    run="base"), tmp_path / f"case{i}", capsys, monkeypatch)
        video = target.replace(".csv", ".gif")
        refuse(Case(f"video-{target}", "enjoy", ["--model", base, "--video", video],
                    "--video", files, run="base"), tmp_path / f"case{i}", capsys, monkeypatch)


# --------------------------------------------------------------------------------------
# Faults during a run: disk full, read-only
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["disk-full-models", "read-only-summaries"])
def test_fault_during_a_run_keeps_the_last_checkpoint_and_resumes(tmp_path, tiny_yaml,
                                                                  monkeypatch, capsys, fault):
    """The second periodic save (or the second update's TensorBoard write) fails; the run
    stops with a message naming what was kept and the resume command, and resuming from
    it finishes the run."""
    real_save = trainer_module.save_model_file
    calls = []

    def full_disk(path, payload):
        calls.append(path)
        if len(calls) >= 3:              # update 1's periodic file and RUN.nn were written
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real_save(path, payload)

    real_scalar = trainer_module.SummaryWriter.add_scalar

    def read_only(self, tag, value, step, *args, **kwargs):
        if step > 16:                    # from update 2 on (16 steps an update)
            raise PermissionError(errno.EROFS, os.strerror(errno.EROFS), self.log_dir)
        return real_scalar(self, tag, value, step, *args, **kwargs)

    if fault == "disk-full-models":
        monkeypatch.setattr(trainer_module, "save_model_file", full_disk)
    else:
        monkeypatch.setattr(trainer_module.SummaryWriter, "add_scalar", read_only)
    config_file(checkpoint_interval=1, updates=3)(tiny_yaml)
    assert _train(tmp_path, "--config", tiny_yaml, "--run-id", "f") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if fault == "disk-full-models":
        assert "No space left on device" in err and "Kept:" in err
        assert "python train.py --resume f" in err
        kept = load_model_file(str(tmp_path / "models" / "f" / "update_000001.nn"))[0]
        assert kept["update"] == 1
    else:
        assert "Read-only file system" in err
    monkeypatch.undo()
    assert _train(tmp_path, "--resume", "f") == 0
    assert load_model_file(str(tmp_path / "models" / "f.nn"))[0]["update"] == 3


# --------------------------------------------------------------------------------------
# Real processes: one owner per run, signals, a hung environment, a kill during a save
# --------------------------------------------------------------------------------------

def _process(folder, logs, name: str, *args) -> subprocess.Popen:
    """A command line run for real in `folder`, its output in logs/NAME.out and .err (outside
    `folder`, which must hold only what the command writes), in its own session."""
    env = {**os.environ, "PYTHONPATH": ROOT, "SDL_VIDEODRIVER": "dummy",
           "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    out = open(logs / f"{name}.out", "w", encoding="utf-8")
    err = open(logs / f"{name}.err", "w", encoding="utf-8")
    with out, err:
        return subprocess.Popen([sys.executable, *args], cwd=folder, env=env, stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)


def _output(logs, name: str) -> tuple[str, str]:
    return ((logs / f"{name}.out").read_text(encoding="utf-8"),
            (logs / f"{name}.err").read_text(encoding="utf-8"))


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.1)


def _one_clean_error(err: str, *names: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _files(folder) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder)
            for f in fs}


def _run_files_only(folder, run: str) -> None:
    stray = [p for p in _files(folder) if not p.startswith((f"models/{run}",
                                                          f"summaries/{run}", "long.yaml"))]
    assert not stray, stray


def test_a_run_has_one_owner_and_sighup_saves_it(tmp_path):
    """Two trainers of one run id started together: exactly one trains, the other is refused
    with the owner's PID. While the owner trains, a third with --overwrite and evaluate.py
    writing the run's scores are refused too and nothing of the run is touched. SIGHUP to
    the owner's session (the terminal closing) then saves the last completed update and
    names the resume command."""
    folder, logs = tmp_path / "work", tmp_path / "logs"
    folder.mkdir()
    logs.mkdir()
    config_file(updates=100_000, checkpoint_interval=2)(str(folder / "long.yaml"))
    train_py = os.path.join(ROOT, "train.py")
    common = [train_py, "--config", "long.yaml", "--run-id", "twin"]
    first, second = (_process(folder, logs, "a", *common),
                     _process(folder, logs, "b", *common, "--seed", "1"))
    _wait_for(lambda: first.poll() is not None or second.poll() is not None, 120,
              "one of two trainers to be refused")
    refused, owner = (first, second) if first.poll() is not None else (second, first)
    assert refused.wait() == 2
    _one_clean_error(_output(logs, "a" if refused is first else "b")[1],
                     "twin", f"process {owner.pid}")
    _wait_for(lambda: os.path.exists(folder / "models" / "twin" / "update_000002.nn"), 120,
              "the owner's first checkpoint")
    kept = load_model_file(str(folder / "models" / "twin" / "update_000002.nn"))[0]
    overwrite = _process(folder, logs, "c", *common, "--overwrite")
    evaluation = _process(folder, logs, "d", os.path.join(ROOT, "evaluate.py"), "twin",
                          "--n-seeds", "1", "--repetitions", "1")
    for process, name in ((overwrite, "c"), (evaluation, "d")):
        assert process.wait(timeout=120) == 2, _output(logs, name)
        _one_clean_error(_output(logs, name)[1], "twin", f"process {owner.pid}")
    assert owner.poll() is None, _output(logs, "a" if owner is first else "b")
    assert _same(load_model_file(str(folder / "models" / "twin" / "update_000002.nn"))[0],
                 kept)
    os.killpg(owner.pid, signal.SIGHUP)
    assert owner.wait(timeout=120) == 130
    out, err = _output(logs, "a" if owner is first else "b")
    assert "Traceback" not in err and "error:" not in err, err
    assert "continue with: python train.py --resume models/twin.nn" in out, out
    saved = load_model_file(str(folder / "models" / "twin.nn"))[0]
    assert saved["update"] >= 2 and saved["config"]["seed"] == (0 if owner is first else 1)
    _run_files_only(folder, "twin")
    assert not os.path.exists(folder / "models" / "twin.lock")     # released and removed


def _env_processes(pid: int) -> list[int]:
    """The spawned environment processes among `pid`'s children (not the resource tracker)."""
    children = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
            children += [int(c) for c in f.read().split()]
    found = []
    for child in children:
        with open(f"/proc/{child}/cmdline", "rb") as f:
            command = f.read()
        if b"spawn_main" in command and b"resource_tracker" not in command:
            found.append(child)
    return found


def test_a_process_refused_before_the_owner_wrote_its_pid_still_names_it(tmp_path):
    """The owner takes the lock and only then writes its PID: a process refused in between
    waits for the PID rather than naming "another process"."""
    folder = str(tmp_path / "models" / "twin")
    path = folder + ".lock"
    os.makedirs(os.path.dirname(path))
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    late = threading.Timer(0.3, lambda: os.write(fd, b"4242\n"))
    late.start()
    try:
        with pytest.raises(RefusedInput, match="in use by process 4242"):
            with run_lock(folder, "twin", "a second train.py"):
                pass
    finally:
        late.join()
        os.close(fd)


def test_a_stopped_environment_process_times_out_and_the_run_is_saved(tmp_path):
    """SIGSTOP of an environment process: past step_timeout the run names the worker, its
    environment and seed, saves the last completed update and gives the resume command."""
    folder, logs = tmp_path / "work", tmp_path / "logs"
    folder.mkdir()
    logs.mkdir()
    config_file(updates=100_000, step_timeout=2.0)(str(folder / "long.yaml"))
    trainer = _process(folder, logs, "t", os.path.join(ROOT, "train.py"), "--config",
                       "long.yaml", "--run-id", "hung")
    try:
        _wait_for(lambda: "update     2/" in _output(logs, "t")[0], 120, "two updates")
        (env_process,) = _env_processes(trainer.pid)
        os.kill(env_process, signal.SIGSTOP)
        stopped = time.monotonic()
        assert trainer.wait(timeout=60) == 1
        assert time.monotonic() - stopped < 20
    finally:
        if trainer.poll() is None:
            os.killpg(trainer.pid, signal.SIGKILL)
    out, err = _output(logs, "t")
    _one_clean_error(err, "step_timeout = 2 s", "proof_of_memory/ProofOfMemory-v0",
                     "worker", "seed")
    assert "continue with: python train.py --resume models/hung.nn" in out, out
    assert load_model_file(str(folder / "models" / "hung.nn"))[0]["update"] >= 2
    _run_files_only(folder, "hung")
    with pytest.raises(ProcessLookupError):
        os.kill(env_process, 0)                  # killed, not left stopped


def test_an_environment_that_loops_forever_is_named_after_the_step_timeout():
    from tests.test_worker_pool import faulty
    from worker_pool import WorkerPool
    pool = WorkerPool(faulty(fail_at_step=2, fail_seed=None, mode="hang"), 2, 1, [5, 6],
                      step_timeout=1.0)
    try:
        pool.reset()
        pool.step(np.zeros((2, 1), dtype=np.int64))
        start = time.monotonic()
        with pytest.raises(RuntimeError, match=r"worker 0 \(seed 5\).*step_timeout = 1 s"):
            pool.step(np.zeros((2, 1), dtype=np.int64))
        assert time.monotonic() - start < 5      # 2 envs in the process: 2 s at most
    finally:
        pool.close()


def test_recursive_yaml_is_refused_within_a_memory_bound(tmp_path):
    """Aliases that contain themselves grew memory by ~100 MB/s until killed: refused now in
    a process limited to 1 GiB of address space, in well under a second."""
    for i, text in enumerate(("x: &a [1, *a]\n", "&r {self: *r}\n",
                              "a: &a [&b [*a, *b], {k: *a}]\n")):
        (tmp_path / f"r{i}.yaml").write_text(text, encoding="utf-8")
    script = ("import resource, sys\n"
              "resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
              "from config import ConfigError, load_config\n"
              "for path in sys.argv[1:]:\n"
              "    try:\n"
              "        load_config(path)\n"
              "    except ConfigError as e:\n"
              "        print(e)\n")
    files = sorted(str(p) for p in tmp_path.glob("r*.yaml"))
    done = subprocess.run([sys.executable, "-c", script, *files], cwd=ROOT, text=True,
                          capture_output=True, timeout=60, env={**os.environ,
                                                                "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all("refers to the anchor it lies in" in x for x in lines)


def test_a_stop_signal_during_a_periodic_save_waits_for_the_save(tmp_path, tiny_yaml, capsys,
                                                                 monkeypatch):
    """Ctrl-C inside torch.save of the periodic checkpoint of update 1: the checkpoint is
    completed, then the run stops as interrupted (130), not failed. Without the deferral the
    interrupt lands inside torch.save, which turns it into its own RuntimeError ("unexpected
    pos"), and the run stopped with status 1."""
    real, interrupted = torch.save, []

    def save_while_interrupted(obj, f, *args, **kwargs):
        if not interrupted:
            interrupted.append(f.name)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)         # where the interrupt lands unless it is deferred
        real(obj, f, *args, **kwargs)
    monkeypatch.setattr(torch, "save", save_while_interrupted)
    assert _train(tmp_path, "--config", tiny_yaml, "--run-id", "r") == 130
    assert len(interrupted) == 1 and "update_000001.nn" in interrupted[0], interrupted
    periodic = str(tmp_path / "models" / "r" / "update_000001.nn")
    assert load_model_file(periodic)[0]["update"] == 1
    assert load_model_file(str(tmp_path / "models" / "r.nn"))[0]["update"] == 1
    assert "error:" not in capsys.readouterr().err


def test_a_kill_during_a_save_leaves_a_temporary_that_the_next_start_removes(tmp_path,
                                                                           tiny_yaml):
    """SIGKILL while a save of run r writes its temporaries: the earlier files stay intact,
    and resuming r removes r's temporaries and nothing else."""
    assert _train(tmp_path, "--config", tiny_yaml, "--run-id", "r") == 0
    models = tmp_path / "models"
    before = {name: (models / name).read_bytes() for name in ("r.nn", "r/update_000002.nn")}
    script = ("import sys, time\n"
              "from runs.atomic import atomic_write\n"
              "with atomic_write(sys.argv[1]) as a, atomic_write(sys.argv[2]) as b:\n"
              "    a.write(b'half'); a.flush(); b.write(b'half'); b.flush()\n"
              "    print('writing', flush=True); time.sleep(60)\n")
    saving = subprocess.Popen([sys.executable, "-c", script, str(models / "r.nn"),
                               str(models / "r" / "update_000002.nn")], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.PIPE,
                              text=True)
    assert saving.stdout.readline() == "writing\n"
    saving.kill()
    saving.wait()
    saving.stdout.close()
    left = sorted(p for p in _files(tmp_path) if "/.tmp-" in p)
    assert len(left) == 2, left
    for name, data in before.items():
        assert (models / name).read_bytes() == data
    others = [models / ".tmp-rx.nn-0123abcd.nn", models / ".tmp-notes", models / "keep.txt"]
    for path in others:
        path.write_text("not run r's")
    assert _train(tmp_path, "--resume", "r", "--updates", "3") == 0
    assert not [p for p in _files(tmp_path) if p in left]
    assert all(path.exists() for path in others)
    assert load_model_file(str(models / "r.nn"))[0]["update"] == 3


def test_a_sampler_state_that_does_not_replay_is_a_refused_checkpoint(checkpoint_file,
                                                                     tmp_path, capsys,
                                                                     monkeypatch):
    """Recorded actions that end the episode early (the corridor's time limit) or lie outside
    the action space: refused as a corrupted or foreign checkpoint, naming the file."""
    def longer(actions):
        return [torch.zeros(500, 1, dtype=torch.long)] + list(actions[1:])

    def outside(actions):
        return [torch.full((1, 1), 7, dtype=torch.long)] + list(actions[1:])
    for i, (name, change) in enumerate((("ends-early", longer), ("outside", outside))):
        file = f"{name}.nn"
        line = refuse(Case(f"replay-{name}", "train", ["--resume", file], file,
                           {file: mutated(checkpoint_file, setter("sampler", "env_actions",
                                                                  value=change))},
                           run=name), _fresh(tmp_path, i), capsys, monkeypatch)
        assert "corrupted, altered or foreign checkpoint" in line


def _score_rows(**change) -> str:
    row = {"run": "a_seed0", "config_name": "X-v0", "seed_of_run": 0, "checkpoint": "a.nn",
           "update": 1, "steps": 16, "env_seed": 1000, "repetition": 0,
           "deterministic": False, "return": 1.0, "length": 4, "success": 1.0}
    rows = [dict(row, env_seed=1000 + i) for i in range(3)]
    rows[2].update(change)
    header = ",".join(row)
    return header + "\n" + "".join(",".join(str(r[k]) for k in row) + "\n" for r in rows)


def test_bad_score_files_name_the_file_row_and_column(tmp_path, capsys):
    import aggregate
    for i, (column, value) in enumerate((("return", "abc"), ("run", ""), ("return", "inf"),
                                         ("steps", "-16"), ("update", "1.5"),
                                         ("success", "2"))):
        path = tmp_path / f"s{i}.csv"
        path.write_text(_score_rows(**{column: value}), encoding="utf-8")
        assert aggregate.main([str(path), "--out", str(tmp_path / "out")]) == 2
        line = _one_clean_error(capsys.readouterr().err, str(path), "row 3 (line 4)",
                                f"column {column!r}")
        assert "Fix:" in line
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_linked_run_files_are_refused(tmp_path, tiny_yaml, capsys):
    """models/alias.nn -> other.nn, and a run folder linked to another's: resuming the link
    or evaluating into the linked folder would write run `other` without saying so."""
    assert _train(tmp_path, "--config", tiny_yaml, "--run-id", "other", "--updates", "1") == 0
    models = tmp_path / "models"
    (models / "alias.nn").symlink_to("other.nn")
    (models / "linked").symlink_to("other")
    before = _files(tmp_path)
    capsys.readouterr()
    assert _train(tmp_path, "--resume", "alias", "--updates", "2") == 2
    _one_clean_error(capsys.readouterr().err, "alias.nn is a symbolic link")
    assert evaluate.main([str(models / "linked" / "update_000001.nn"), "--n-seeds", "1",
                          "--repetitions", "1"]) == 2
    _one_clean_error(capsys.readouterr().err, "linked is a symbolic link")
    assert _files(tmp_path) == before
    assert load_model_file(str(models / "other.nn"))[0]["update"] == 1


def test_a_video_gets_the_mode_of_any_new_file(checkpoint_file, tmp_path):
    video = tmp_path / "v.gif"
    assert enjoy.main(["--model", checkpoint_file, "--episodes", "1", "--video",
                       str(video)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert video.stat().st_mode & 0o777 == 0o666 & ~umask
