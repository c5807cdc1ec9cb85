"""compile_update and update_precision change how the update's encoder and memory run, not
what they compute (to bfloat16's rounding); the MFU figure's peak is derived as stated."""
import dataclasses

import pytest
import torch

from agent import cpp_compiler
from benchmarks.flops import specified_peak
from tests.fakes import rollout_setup, tiny_config
from trainer import Schedules, accumulate_gradients


def model_and_batch():
    """A randomised tiny TrXL and one minibatch of a scripted rollout."""
    config = tiny_config()
    _, model, buffer, sampler = rollout_setup(config, [4, 9, 30])
    _, last = sampler.collect()
    buffer.compute_advantages(last, 0.99, 0.95)
    return config, model.train(), next(buffer.minibatches(1, torch.Generator().manual_seed(0)))


def gradients(config, model, batch) -> dict:
    model.zero_grad(set_to_none=True)
    accumulate_gradients(model, batch, config, Schedules.at(config, 0))
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_bfloat16_update_is_close_to_float32_and_keeps_float32_outputs():
    config, model, batch = model_and_batch()
    reference = model(batch.obs, batch.memory, batch.key_episode, batch.query_step)
    model.autocast = True
    out = model(batch.obs, batch.memory, batch.key_episode, batch.query_step)
    assert out.value.dtype == torch.float32
    # bfloat16 keeps 8 significant bits: through the randomised (large) weights of every
    # layer the values move by a few percent of their range, never more.
    error = (out.value - reference.value).abs().max()
    assert 0 < error < 0.05 * (reference.value.max() - reference.value.min())
    assert torch.isfinite(torch.cat([g.flatten() for g in
                                     gradients(config, model, batch).values()])).all()


@pytest.mark.skipif(cpp_compiler() is None, reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_update_equals_eager():
    config, model, batch = model_and_batch()
    eager = gradients(config, model, batch)
    model.compile_update = True
    compiled = gradients(config, model, batch)
    assert set(compiled) == set(eager)
    for name, grad in eager.items():
        torch.testing.assert_close(compiled[name], grad, rtol=1e-4, atol=1e-6)


def test_specified_peak_is_cores_clock_lanes_fma():
    info = "cpu MHz\t\t: 2000.000\nflags\t\t: fpu fma avx2 avx512f\n"
    peak, description = specified_peak(2, info)
    assert peak == 2 * 2.0e9 * 16 * 2 * 2
    assert "16 float32 lanes" in description
    assert specified_peak(2, "cpu MHz : 2000\nflags : avx2\n")[0] is None     # no FMA


def test_compiled_update_without_a_cpp_compiler_is_refused(monkeypatch):
    import agent
    from preflight.refusal import RefusedInput
    from train import check_run
    monkeypatch.setattr(agent, "cpp_compiler", lambda: None)
    config = dataclasses.replace(tiny_config(), compile_update=True, device="cpu")
    with pytest.raises(RefusedInput, match="compile_update = True needs a C\\+\\+ compiler"):
        check_run(config, "x.yaml")
