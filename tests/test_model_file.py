"""Model files: a save/load round trip reproduces the agent exactly, anything that is not one
of our files is a ValueError (never code execution, never another exception), and saving is
atomic."""
import os
import pickle

import numpy as np
import pytest
import torch

from runs import checkpoint as model_file
from agent import MemoryAgent, load_agent
from config import ConfigError
from environments import SpaceSpec
from model import ActorCritic
from tests.fakes import tiny_config
from runs.checkpoint import MODEL_FORMAT, load_model_file, save_model_file

CPU = torch.device("cpu")
SPEC = SpaceSpec((5,), "float32", (3, 2))   # two action dimensions: MultiDiscrete


def randomised_model(config, seed=0) -> ActorCritic:
    """Default init leaves the policy near uniform; perturbed weights make every one matter."""
    torch.manual_seed(seed)
    model = ActorCritic(config, SPEC)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


def checkpoint(config, model) -> dict:
    """The payload trainer.Trainer.checkpoint() writes."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return {"config": config.to_dict(), "spec": SPEC.to_dict(), "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "update": 3, "steps": 1234}


@pytest.fixture
def saved(tmp_path):
    """A valid model file of a tiny randomised model: (path, config, model)."""
    config = tiny_config()
    model = randomised_model(config)
    path = str(tmp_path / "run.nn")
    save_model_file(path, checkpoint(config, model))
    return path, config, model


def play(agent: MemoryAgent, observations: np.ndarray) -> list[torch.Tensor]:
    """The policy's parameters and values the agent's network computes over a sequence of
    steps."""
    outputs = []
    step = agent.model.step

    def recording_step(*args, **kwargs):
        out = step(*args, **kwargs)
        outputs.extend([*out.policy.distribution.logits, out.policy.value])
        return out
    agent.model.step = recording_step
    for obs in observations:
        agent.act(obs)
    return outputs


def open_bytes(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def assert_not_loadable(path, match=None):
    with pytest.raises(ValueError, match=match):
        load_model_file(path)


# ----- round trip -----

def test_round_trip_restores_config_spec_and_counters(saved):
    path, config, _ = saved
    payload, loaded = load_model_file(path)
    assert loaded == config
    assert SpaceSpec.from_dict(payload["spec"]) == SPEC
    assert (payload["update"], payload["steps"]) == (3, 1234)
    assert payload["format"] == MODEL_FORMAT


def test_loaded_agent_computes_identical_outputs(saved):
    path, config, model = saved
    loaded_agent, loaded_config, spec = load_agent(path, n_envs=2, device=CPU)
    assert (loaded_config, spec) == (config, SPEC)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded_agent.model.state_dict()[name], tensor), name
    # More steps than the memory window, so the sliding memory is exercised too.
    observations = np.random.default_rng(0).standard_normal(
        (config.transformer.memory_length + 3, 2, 5)).astype(np.float32)
    expected = play(MemoryAgent(model, n_envs=2, device=CPU), observations)
    actual = play(loaded_agent, observations)
    assert len(actual) == len(expected) == 3 * len(observations)
    for a, e in zip(actual, expected):
        assert torch.equal(a, e)


# ----- files that are not ours -----

class CreatesMarker:
    """Unpickling this runs `call(*args)`: what a malicious model file would do."""

    def __init__(self, call, args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def exploits(marker):
    return {"open": CreatesMarker(open, (marker, "w")),
            "os.system": CreatesMarker(os.system, (f"touch '{marker}'",))}


# pickle.dump's default protocol makes torch warn that it expected protocol 2: irrelevant here.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("exploit", ["open", "os.system"])
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_without_running(tmp_path, exploit, writer):
    marker = str(tmp_path / "pwned")
    payload = {"format": MODEL_FORMAT, "version": model_file.MODEL_VERSION,
               "evil": exploits(marker)[exploit]}
    path = str(tmp_path / "evil.nn")
    with open(path, "wb") as f:
        (torch.save if writer == "torch.save" else pickle.dump)(payload, f)
    # torch.save's zip names the blocked global; a bare pickle is not even a zip archive.
    assert_not_loadable(path, r"refused: the file asks to load the global (io|builtins)\.open"
                        r"|refused: the file asks to load the global (posix|os)\.system"
                        if writer == "torch.save" else "not a loadable TrXL-PPO model file")
    assert not os.path.exists(marker)


def test_malicious_pickle_control_really_runs_code(tmp_path):
    # Control for the test above: plain unpickling of the same object does create the marker,
    # so its absence there is due to weights_only, not to a harmless payload.
    marker = str(tmp_path / "pwned")
    pickle.loads(pickle.dumps(exploits(marker)["open"])).close()
    assert os.path.exists(marker)


def test_truncated_files_are_value_errors(saved, tmp_path):
    path, _, _ = saved
    data = open_bytes(path)
    cut = tmp_path / "cut.nn"
    # Every kind of cut: empty, inside the zip header, half, just before the end.
    for length in [0, 1, len(data) // 2, len(data) - 1, *range(0, len(data), len(data) // 40)]:
        cut.write_bytes(data[:length])
        assert_not_loadable(str(cut), "not a loadable TrXL-PPO model file")


def test_random_bytes_are_value_errors(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "noise.nn"
    for size in [1, 2, 8, 100, 1000, 10_000] * 5:
        path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        assert_not_loadable(str(path))


def test_torch_file_that_is_not_ours_names_the_marker(tmp_path):
    path = str(tmp_path / "other.pt")
    torch.save({"a": torch.zeros(1)}, path)
    assert_not_loadable(path, f"no '{MODEL_FORMAT}' marker")


def test_other_version_is_refused(tmp_path, saved):
    _, config, model = saved
    path = str(tmp_path / "future.nn")
    save_model_file(path, {**checkpoint(config, model), "version": model_file.MODEL_VERSION + 1})
    assert_not_loadable(path, f"version {model_file.MODEL_VERSION + 1}")


@pytest.mark.parametrize("key", ["config", "spec", "model"])
def test_missing_part_is_a_value_error(tmp_path, saved, key):
    _, config, model = saved
    payload = checkpoint(config, model)
    del payload[key]
    path = str(tmp_path / f"no_{key}.nn")
    save_model_file(path, payload)
    with pytest.raises(ValueError, match=key):
        load_agent(path, n_envs=1, device=CPU)


def test_embedded_config_with_unknown_key_names_the_key(tmp_path, saved):
    _, config, model = saved
    payload = checkpoint(config, model)
    payload["config"]["transformer"]["num_head"] = 2
    path = str(tmp_path / "bad_config.nn")
    save_model_file(path, payload)
    with pytest.raises(ConfigError, match=r"embedded config.*transformer\.num_head = 2"):
        load_model_file(path)


def test_weights_of_another_architecture_are_a_value_error(tmp_path):
    # The config says embed_dim 32 but the weights were trained with embed_dim 16.
    small = tiny_config(embed_dim=16)
    large = tiny_config(embed_dim=32)
    path = str(tmp_path / "mismatch.nn")
    save_model_file(path, {**checkpoint(small, randomised_model(small)),
                           "config": large.to_dict()})
    with pytest.raises(ValueError, match="do not fit the network"):
        load_agent(path, n_envs=1, device=CPU)




def test_missing_file_is_a_value_error(tmp_path):
    assert_not_loadable(str(tmp_path / "missing.nn"), "no such model file")


# ----- atomic saving -----

def test_save_over_an_existing_file_replaces_it(tmp_path, saved):
    path, config, _ = saved
    other = randomised_model(config, seed=1)
    save_model_file(path, checkpoint(config, other))
    payload, _ = load_model_file(path)
    assert torch.equal(payload["model"]["value_head.weight"], other.value_head.weight)
    assert os.listdir(tmp_path) == ["run.nn"]


def test_crash_during_save_keeps_the_previous_file(tmp_path, saved, monkeypatch):
    path, config, model = saved
    before = open_bytes(path)

    def crashing_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")   # some bytes reach the disk, then the crash
        raise RuntimeError("disk full")
    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(RuntimeError, match="disk full"):
        save_model_file(path, checkpoint(config, randomised_model(config, seed=1)))
    monkeypatch.undo()
    assert open_bytes(path) == before
    payload, _ = load_model_file(path)
    assert torch.equal(payload["model"]["value_head.weight"], model.value_head.weight)
    assert os.listdir(tmp_path) == ["run.nn"]   # no temporary file left behind


def test_save_creates_missing_folders(tmp_path, saved):
    _, config, model = saved
    path = str(tmp_path / "a" / "b" / "run.nn")
    save_model_file(path, checkpoint(config, model))
    assert load_model_file(path)[1] == config


def test_saved_file_has_the_usual_permissions(tmp_path, saved):
    _, config, model = saved
    old = os.umask(0o022)
    try:
        path = str(tmp_path / "shared.nn")
        save_model_file(path, checkpoint(config, model))
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o644   # what torch.save(path) would give


# ----- int8 weights (scripts/ship_model.py --int8) -----

def test_int8_worked_example():
    """One scale per output row, max |w| / 127; an all-zero row gets scale 1, not 0 / 0."""
    w = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0]])
    bias = torch.tensor([0.1, 0.2])
    kept, quantized = model_file.quantize_int8({"w": w, "b": bias, "count": torch.tensor([3])})
    assert set(kept) == {"b", "count"} and kept["b"] is bias     # vectors and ints are kept
    q, scale = quantized["w"]["q"], quantized["w"]["scale"]
    assert q.dtype == torch.int8 and scale.shape == (2, 1)
    # Row 0: scale 2/127; 1 -> 63.5 rounds (half to even) to 64, -2 -> -127, 0.5 -> 31.75 -> 32.
    assert q.tolist() == [[64, -127, 32], [0, 0, 0]]
    assert torch.allclose(scale, torch.tensor([[2 / 127], [1.0]]))
    restored = model_file.dequantize_int8(quantized)["w"]
    assert (restored - w).abs().max() <= 2 / 127 / 2


def test_int8_file_loads_as_float_weights(saved, tmp_path):
    """A file with int8 matrices loads like any other: float32 weights for every parameter,
    each within half its row's scale of the original, and the agent builds from it."""
    payload, _ = load_model_file(saved[0])
    kept, quantized = model_file.quantize_int8(payload["model"])
    path = str(tmp_path / "int8.nn")
    save_model_file(path, {**{k: v for k, v in payload.items() if k not in ("format", "version")},
                           "model": kept, model_file.INT8_KEY: quantized})
    loaded, _ = load_model_file(path)
    assert model_file.INT8_KEY not in loaded
    assert set(loaded["model"]) == set(payload["model"])
    for name, t in payload["model"].items():
        step = quantized[name]["scale"] if name in quantized else 0.0
        assert loaded["model"][name].dtype == t.dtype
        assert ((loaded["model"][name] - t).abs() <= step / 2 + 1e-7).all(), name
    load_agent(path, n_envs=1, device=CPU)
