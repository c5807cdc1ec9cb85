"""The config schema's known answers: every shipped file loads, every mistake is a ConfigError
that names the file, the key, the value and a fix, and derived sizes are computed, not stored."""
import copy
import dataclasses
import glob
import os
import signal
import subprocess
import sys
import typing

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from config import (Config, ConfigError, Settings, config_from_dict, largest_divisors,
                    load_config)
from preflight.reference import markdown_page, markdown_reference
from memories.trxl import TransformerConfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = sorted(glob.glob(os.path.join(REPO_ROOT, "configs", "*.yaml")))
with open(os.path.join(REPO_ROOT, "configs", "proof_of_memory.yaml"), encoding="utf-8") as _f:
    BASE = yaml.safe_load(_f)   # a valid, fully spelled-out config to start mistakes from


def write_config(tmp_path, changes: dict) -> str:
    """BASE with `changes` (dotted keys) applied, written to tmp_path/run.yaml."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def config_error(path, overrides=None) -> str:
    """The ConfigError message of loading `path`; every message must name the file and a fix."""
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert str(path) in message
    assert "Fix:" in message
    return message


# ----- the shipped files -----

def test_configs_are_shipped():
    assert len(SHIPPED) >= 10   # guards the parametrisation below against an empty glob


@pytest.mark.parametrize("workers, steps", [(4, 128), (16, 128), (16, 512)])
def test_side_by_side_minigrid_configs_change_only_the_rollout_size(workers, steps):
    """benchmarks/side_by_side.py compares the original's network and PPO settings: the bench
    configs are the shipped MiniGrid config at another rollout size, with episodes cut at 96
    steps as the original cuts them, nothing else."""
    shipped = load_config(os.path.join(REPO_ROOT, "configs", "minigrid_memory.yaml"))
    bench = load_config(os.path.join(REPO_ROOT, "configs", "bench",
                                     f"minigrid_original_{workers}x{steps}.yaml"))
    environment = dataclasses.replace(shipped.environment, reset_params={"max_steps": 96})
    assert bench == dataclasses.replace(shipped, n_workers=workers, worker_steps=steps,
                                        environment=environment)


def test_side_by_side_mortar_config_is_cleanrls_network():
    """CleanRL ppo_trxl's defaults: 3 blocks x 384, 4 heads, memory 119, pre-LayerNorm,
    sinusoidal absolute positions, 3 epochs x 8 minibatches, at 8 workers x 128 steps."""
    c = load_config(os.path.join(REPO_ROOT, "configs", "bench", "mortar_mayhem_grid_cleanrl_8x128.yaml"))
    t = c.transformer
    assert (t.num_blocks, t.embed_dim, t.num_heads, t.memory_length) == (3, 384, 4, 119)
    assert (t.layer_norm, t.positional_encoding, t.gtrxl) == ("pre", "absolute", False)
    assert (c.epochs, c.n_mini_batch, c.n_workers, c.worker_steps) == (3, 8, 8, 128)
    assert (c.max_grad_norm, c.clip_range_schedule.initial, c.environment.name) == \
        (0.25, 0.1, "MortarMayhem-Grid-v0")


@pytest.mark.parametrize("path", SHIPPED, ids=os.path.basename)
def test_shipped_config_loads_and_round_trips(path):
    config = load_config(path)
    # to_dict() is what model files embed: reading it back must give the same config.
    assert config_from_dict(config.to_dict()) == config


# The experiment scripts derive variants of the shipped configs (GTrXL, memory_length 1, ...)
# with sed; a variant the schema rejects would only fail hours into scripts/image_tasks.sh.
VARIANT_TASKS = [("proof_of_memory", "gru lstm none"), ("cartpole_masked", "gru lstm none"),
                 ("minigrid_memory", "gru"), ("mortar_mayhem_grid", ""),
                 ("mystery_path_grid", "")]


@pytest.mark.parametrize("task,kinds", VARIANT_TASKS, ids=[t for t, _ in VARIANT_TASKS])
def test_every_experiment_variant_loads(tmp_path, task, kinds):
    script = (f'tmp={tmp_path}; source scripts/tasks.sh; '
              f'variants {task} run 7 {kinds}')
    subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, check=True)
    paths = sorted(tmp_path.glob("run*.yaml"))
    assert len(paths) == 3 + len(kinds.split())
    configs = {p.stem: load_config(p) for p in paths}
    assert configs["run_gtrxl"].transformer.gtrxl
    assert configs["run_nomem"].transformer.memory_length == 1
    assert all(c.checkpoint_interval == 7 for c in configs.values())


@pytest.mark.parametrize("task_updates,config_updates,done", [
    ("", 40, True), ("", 80, False),        # no TASK_UPDATES: the config's budget counts
    ("40", 80, True), ("41", 40, False),    # TASK_UPDATES overrides it, both ways
])
def test_finished_compares_the_model_with_the_budget(tmp_path, task_updates, config_updates,
                                                      done):
    """tasks.sh's `finished` decides whether an evaluated run is trained further; it once
    looked only at file times, so a larger TASK_UPDATES never extended a run. The shipped
    proof_of_memory.nn was trained for 40 updates."""
    script = (f'PY={sys.executable}; tmp={tmp_path}; source scripts/tasks.sh; '
              f'variants proof_of_memory run 7; '
              f'sed -i "s/^updates: .*/updates: {config_updates}/" {tmp_path}/run.yaml; '
              f'TASK_UPDATES={task_updates} finished proof_of_memory run')
    result = subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, capture_output=True,
                            text=True)
    assert result.stderr == ""
    assert result.returncode == (0 if done else 1)


def test_aggregate_task_joins_the_earlier_runs(tmp_path):
    """tasks.sh's `aggregate_task`: a variant scored only in an earlier checkout (its row in
    results/TASK/run_scores.csv) is still aggregated and compared; models/ holds today's."""
    (tmp_path / "models" / "x_nomem_seed1").mkdir(parents=True)
    (tmp_path / "models" / "x_nomem_seed1" / "scores.csv").write_text("")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "run_scores.csv").write_text(
        "algorithm,run\nx,x_seed0\nx_gtrxl,x_gtrxl_seed0\n")
    script = (f'PY=echo; source {REPO_ROOT}/scripts/tasks.sh; '
              f'aggregate_task x out --metric success')
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, check=True)
    assert result.stdout.split() == [
        "aggregate.py", "models/x_nomem_seed1/scores.csv", "--earlier", "out/run_scores.csv",
        "--compare", "x", "x_gtrxl", "--compare", "x", "x_nomem", "--metric", "success",
        "--out", "out"]


# ----- unknown keys -----

@pytest.mark.parametrize("dotted,value,suggestion", [
    ("gama", 0.9, "did you mean 'gamma'?"),
    ("transformer.num_head", 4, "did you mean 'num_heads'?"),
    ("learning_rate_schedule.inital", 1.0e-3, "did you mean 'initial'?"),
])
def test_unknown_key_names_file_key_value_and_suggestion(tmp_path, dotted, value, suggestion):
    message = config_error(write_config(tmp_path, {dotted: value}))
    assert f"{dotted} = {value!r}: unknown key" in message
    assert suggestion in message


def test_unknown_key_without_close_match_lists_the_known_keys(tmp_path):
    message = config_error(write_config(tmp_path, {"transformer.zzzz": 1}))
    assert "transformer.zzzz = 1" in message
    # No misspelling to suggest: the keys that section does know are listed instead.
    assert "known keys here: embed_dim, gradient_window, gtrxl, gtrxl_bias, layer_norm" in message


# ----- wrong types -----

@pytest.mark.parametrize("dotted,value,problem", [
    ("updates", "4", "expected an integer"),            # quoted number is a string
    ("n_workers", 2.5, "expected an integer"),
    ("seed", 3.0, "expected an integer"),               # whole-valued float is still a float
    ("epochs", True, "expected an integer"),            # bool is an int subclass in Python
    ("gamma", "0.99", "expected a number"),
    ("transformer.gtrxl", 1, "expected true or false"),
    ("transformer.positional_encoding", "rotary", "not an allowed value"),
    ("device", True, "not an allowed value"),
    ("updates", None, "expected an integer"),           # null where the field is not optional
    ("transformer", "big", "expected a mapping"),
    ("environment.reset_params", [1, 2], "expected a mapping"),
    ("on_nonfinite", "ignore", "not an allowed value"),
    ("checkpoint_interval", 2.5, "expected an integer"),
    ("max_worker_restarts", True, "expected an integer"),
    ("micro_batch_size", "big", "expected an integer"),
    ("evaluation.deterministic", "yes", "expected true or false"),
    ("evaluation", [50, 3], "expected a mapping"),
])
def test_wrong_type_names_key_and_value(tmp_path, dotted, value, problem):
    message = config_error(write_config(tmp_path, {dotted: value}))
    assert f"{dotted} = {value!r}: {problem}" in message


def test_literal_error_lists_the_allowed_values(tmp_path):
    message = config_error(write_config(tmp_path, {"transformer.positional_encoding": "rotary"}))
    assert "'none', 'absolute', 'learned', 'relative'" in message


def test_null_is_accepted_where_optional(tmp_path):
    config = load_config(write_config(tmp_path, {"segment_length": None, "torch_threads": None}))
    assert config.segment_length is None and config.torch_threads is None


def test_integer_is_accepted_for_a_number_and_stored_as_float(tmp_path):
    config = load_config(write_config(tmp_path, {"gamma": 1}))
    assert config.gamma == 1.0 and type(config.gamma) is float


def test_huge_integer_for_a_number_is_a_config_error():
    # float(10**400) overflows; the user must get a ConfigError, not an OverflowError.
    with pytest.raises(ConfigError, match=r"max_grad_norm = 1000+\.\.\.0+: "):
        config_from_dict({"max_grad_norm": 10**400})


def test_nan_is_a_config_error():
    # NaN passes every `<` / `<=` range check (all comparisons are False), so a NaN learning
    # rate would otherwise be accepted and train on NaN weights.
    with pytest.raises(ConfigError, match=r"learning_rate_schedule\.initial = nan"):
        config_from_dict({"learning_rate_schedule": {"initial": float("nan")}})


# ----- impossible values -----

@pytest.mark.parametrize("changes,key_and_value,fix", [
    ({"transformer.embed_dim": 30, "transformer.num_heads": 4},
     "transformer.embed_dim = 30", "multiple of 4, e.g. 32"),
    ({"transformer.memory_length": 0}, "transformer.memory_length = 0", "positive integer"),
    ({"updates": -1}, "updates = -1", "positive integer"),
    ({"gamma": -0.1}, "gamma = -0.1", "0.99 for gamma"),
    ({"gae_lambda": 1.5}, "gae_lambda = 1.5", "0.95 for gae_lambda"),
    ({"transformer.gtrxl": True, "transformer.layer_norm": "post"},
     "transformer.layer_norm = 'post'", "layer_norm: pre"),
    ({"worker_steps": 32, "segment_length": 5}, "segment_length = 5",
     "one of [1, 2, 4, 8, 16, 32]"),
    # 4 workers x 16 steps / 8 = 8 segments: 9 minibatches cannot each get a segment.
    ({"n_workers": 4, "worker_steps": 16, "segment_length": 8, "n_mini_batch": 9},
     "n_mini_batch = 9", "n_mini_batch <= 8"),
    ({"n_workers": 4, "env_processes": 5}, "env_processes = 5", "null for automatic"),
    ({"torch_threads": 0}, "torch_threads = 0", "null for automatic"),
    ({"learning_rate_schedule.max_decay_steps": 0},
     "learning_rate_schedule.max_decay_steps = 0", "number of updates"),
    ({"learning_rate_schedule.initial": 0.0}, "learning_rate_schedule.initial = 0.0", "3.0e-4"),
    ({"clip_range_schedule.power": 0.0}, "clip_range_schedule.power = 0.0", "linear"),
    ({"max_grad_norm": -1.0}, "max_grad_norm = -1.0", "0 or a positive number"),
    ({"checkpoint_interval": -1}, "checkpoint_interval = -1", "0 for none"),
    ({"max_worker_restarts": -1}, "max_worker_restarts = -1", "0 to stop at the first failure"),
    ({"micro_batch_size": 0}, "micro_batch_size = 0", "null for whole minibatches"),
    ({"evaluation.n_seeds": 0}, "evaluation.n_seeds = 0", "50 seeds x 3 repetitions"),
    ({"evaluation.repetitions": -2}, "evaluation.repetitions = -2", "50 seeds x 3 repetitions"),
    ({"environment.type": "minigrid", "environment.name": "MiniGrid-Empty-5x5-v0"},
     "environment.name = 'MiniGrid-Empty-5x5-v0'", "MiniGrid-MemoryS9-v0"),
])
def test_impossible_value_names_key_value_and_fix(tmp_path, changes, key_and_value, fix):
    message = config_error(write_config(tmp_path, changes))
    assert key_and_value in message
    assert fix in message


# ----- files that are not configs -----

def test_invalid_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("gamma: [0.99, 0.9\n", encoding="utf-8")
    assert "not valid YAML" in config_error(path)


def test_binary_file_is_a_config_error(tmp_path):
    # Not UTF-8 at all, e.g. a model file passed as --config by mistake.
    path = tmp_path / "model.nn"
    path.write_bytes(b"PK\x03\x04\xff\xfe\x00\x00binary")
    config_error(path)


def test_list_at_top_level_is_a_config_error(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- gamma\n- 0.99\n", encoding="utf-8")
    assert "found list" in config_error(path)
    # The same with train.py's overrides (--seed) applied on top: still a ConfigError.
    assert "found list" in config_error(path, {"seed": 1})


def test_missing_file_is_a_config_error(tmp_path):
    assert "no such config file" in config_error(tmp_path / "missing.yaml")


def test_directory_is_a_config_error(tmp_path):
    config_error(tmp_path)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "~\n", "{}\n"])
def test_empty_file_is_refused(tmp_path, text):
    # Training on the schema's defaults is never what an empty file meant.
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="empty.yaml: holds no settings"):
        load_config(path)


def test_overrides_win_over_the_file(tmp_path):
    config = load_config(write_config(tmp_path, {}), {"seed": 7, "transformer.num_heads": 4})
    assert config.seed == 7 and config.transformer.num_heads == 4


# ----- derived sizes -----

@pytest.mark.parametrize("worker_steps,expected", [
    (96, 48), (512, 64), (64, 64), (7, 7), (100, 50), (97, 1)])
def test_automatic_segment_length_is_largest_divisor_up_to_64(worker_steps, expected):
    config = config_from_dict({"n_workers": 4, "worker_steps": worker_steps, "n_mini_batch": 1})
    assert config.segment_len == expected


@pytest.mark.parametrize("n,expected", [
    (32, [1, 2, 4, 8, 16, 32]), (512, [4, 8, 16, 32, 64, 128, 256, 512]),
    (1_000_000_007, [1, 1_000_000_007]),   # a prime
    (10**18, [10**18 // d for d in (20, 16, 10, 8, 5, 4, 2, 1)])])
def test_largest_divisors_worked_examples(n, expected):
    assert largest_divisors(n) == expected


def test_bad_segment_length_with_huge_worker_steps_fails_at_once():
    """Listing every divisor up to worker_steps hung start-up (the fuzz test below found it);
    the alarm turns such a hang into a TimeoutError, a failure, instead of a stalled run."""
    def hung(signum, frame):
        raise TimeoutError("config_from_dict still running after 10 s")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        with pytest.raises(ConfigError, match="must divide worker_steps"):
            config_from_dict({"worker_steps": 10**18, "segment_length": 7}, "huge.yaml")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_derived_sizes_are_computed_and_never_written_back():
    config = config_from_dict({"n_workers": 3, "worker_steps": 96, "n_mini_batch": 2})
    assert config.batch_size == 3 * 96
    assert config.segment_len == 48
    assert config.n_segments == 3 * 96 // 48
    stored = config.to_dict()
    assert not {"batch_size", "segment_len", "n_segments"} & set(stored)
    assert stored["segment_length"] is None   # "automatic" stays automatic


def test_explicit_segment_length_is_used():
    config = config_from_dict({"n_workers": 2, "worker_steps": 96, "segment_length": 12})
    assert (config.segment_len, config.n_segments) == (12, 16)


# ----- the generated reference -----

def _all_keys(cls, prefix=""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        yield prefix + f.name
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _all_keys(hints[f.name], prefix + f.name + ".")


def test_markdown_reference_documents_every_field():
    reference = markdown_reference()
    keys = list(_all_keys(Config))
    assert {f"transformer.{f.name}" for f in dataclasses.fields(TransformerConfig)} <= set(keys)
    missing = [k for k in keys if f"| `{k}` |" not in reference]
    assert missing == []


# ----- property: any mutation is a Config or a ConfigError, never another exception -----

def _paths(data, prefix=()):
    for key, value in data.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _paths(value, prefix + (key,))


PATHS = list(_paths(BASE))


def _get(data, path):
    for key in path:
        data = data[key]
    return data


SECTIONS = [()] + [p for p in PATHS if isinstance(_get(BASE, p), dict)]
VALUES = st.one_of(
    st.integers(), st.floats(), st.text(max_size=8), st.booleans(), st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=4), max_size=3))
MUTATIONS = st.one_of(
    st.tuples(st.just("delete"), st.sampled_from(PATHS), st.none()),
    st.tuples(st.just("set"), st.sampled_from(PATHS), VALUES),
    st.tuples(st.just("add"), st.sampled_from(SECTIONS).map(lambda s: s + ("unknown_key",)),
              VALUES))


def _mutate(data, mutation):
    kind, path, value = mutation
    node = data
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            return   # an earlier mutation replaced this section: nothing left to mutate here
        node = node[key]
    if kind == "delete":
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MUTATIONS, min_size=1, max_size=4))
@example([("set", ("gamma",), 10**400)])
@example([("set", ("transformer",), [1])])
@example([("delete", ("segment_length",), None), ("set", ("worker_steps",), 0)])
def test_any_mutation_gives_config_or_config_error(mutations):
    data = copy.deepcopy(BASE)
    for mutation in mutations:
        _mutate(data, mutation)
    try:
        config = config_from_dict(data, "mutated.yaml")
    except ConfigError as e:
        assert "mutated.yaml" in str(e)
        return
    # Accepted: the derived sizes must be usable too.
    assert config.n_segments >= config.n_mini_batch >= 1
    assert config.worker_steps % config.segment_len == 0


def test_configuration_reference_is_current():
    """docs/configuration.md is generated: every line of it is still what the schema says,
    and it documents every setting every run has. A memory or environment family added
    since (a plugin, or a new file) may be missing from it until the page is regenerated with
    `python config.py --markdown > docs/configuration.md`; a changed line fails here."""
    page = open(os.path.join(REPO_ROOT, "docs", "configuration.md"), encoding="utf-8").read()
    generated = markdown_page()
    stale = [line for line in page.splitlines() if line not in set(generated.splitlines())]
    assert stale == []
    keys = [key for key in _all_keys(Settings)]
    assert [key for key in keys if f"| `{key}` |" not in page] == []


# ----- bounds: declared once with each field, checked by one loop -----

def _bounds_of(cls, prefix=""):
    """(dotted key, low, high) of every field the schema bounds, read from the fields."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _bounds_of(hints[f.name], prefix + f.name + ".")
        elif f.metadata["low"] is not None or f.metadata["high"] is not None:
            yield prefix + f.name, f.metadata["low"], f.metadata["high"]


BOUNDED = list(_bounds_of(Config))


def test_every_count_and_size_has_a_declared_bound():
    keys = {key for key, _, _ in BOUNDED}
    assert {"updates", "n_workers", "worker_steps", "seed", "gamma", "transformer.num_blocks",
            "evaluation.n_seeds", "torch_threads"} <= keys
    assert len(keys) >= 40


@pytest.mark.parametrize("key,low,high", BOUNDED, ids=[key for key, _, _ in BOUNDED])
def test_values_just_outside_a_bound_are_refused_and_on_it_accepted(tmp_path, key, low, high):
    """The bound itself is allowed (inclusive); one step beyond is a ConfigError naming the
    file, the key, the value and a fix."""
    step = 1 if isinstance(low if low is not None else high, int) else 0.5
    for bound, beyond in ((low, -step), (high, step)):
        if bound is None:
            continue
        assert key in config_error(write_config(tmp_path, {key: bound + beyond}))
        try:
            load_config(write_config(tmp_path, {key: bound}))
        except ConfigError as e:     # a combination with another field may refuse it
            assert not any(bounds_problem in str(e) for bounds_problem in (
                "must be at least", "must not be negative", "above the limit")), str(e)


def test_the_reference_lists_each_fields_bounds():
    reference = markdown_reference()
    assert "| `n_workers` | `16` | [1, 4,096] |" in reference
    assert "| `worker_steps` | `64` | >= 1 |" in reference


def _declared_bounds():
    """(dotted key, value past the bound) for every bound a field declares (setting's low and
    high), in every section of every registered memory and the general settings."""
    def walk(cls, prefix):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                yield from walk(hints[f.name], prefix + f.name + ".")
                continue
            low, high = f.metadata.get("low"), f.metadata.get("high")
            step = 1 if int in (hints[f.name], *typing.get_args(hints[f.name])) else 0.5
            if low is not None:
                yield prefix + f.name, low - step
            if high is not None:
                yield prefix + f.name, high + step
    return list(walk(Config, ""))


@pytest.mark.parametrize("key,value", _declared_bounds())
def test_every_declared_bound_is_enforced(key, value):
    """A value past a field's declared bound is refused naming the key, whatever section
    (a memory's included) declares it."""
    data: dict = {}
    *parents, leaf = key.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    with pytest.raises(ConfigError, match=f"{key} = {value}: must be at "):
        config_from_dict(data)
