"""The known answers again on a CUDA GPU: cached acting equals recomputation, a resumed run
continues the uninterrupted one, the loss and its gradients match the CPU's. Marked `cuda` and
skipped without a GPU (benchmarks/gpu_check.sh runs them where there is one)."""
import copy
import dataclasses

import pytest
import torch

from buffer import Minibatch, RolloutBuffer
from losses import ppo_loss
from sampler import Sampler
from tests.fakes import ScriptedPool, assert_training_recomputes_rollout, randomised_model, tiny_config
from tests.test_resume import run, tiny
from trainer import Schedules, Trainer, accumulate_gradients
from runs.checkpoint import load_model_file

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
CUDA, CPU = torch.device("cuda"), torch.device("cpu")


@pytest.mark.parametrize("pos,gtrxl,dtype", [("relative", False, "float32"),
                                             ("learned", True, "float32"),
                                             ("relative", False, "bfloat16")])
def test_training_recomputation_equals_rollout_on_cuda(pos, gtrxl, dtype):
    """The KV-cached rollout on the GPU gives the log-probs and values that segment-wise
    training recomputes there. TF32 matmuls would differ from float32 by ~1e-3, so they are
    off here as they are by default in torch; bfloat16 memory rounds the cached states."""
    cfg = tiny_config(positional_encoding=pos, gtrxl=gtrxl, gtrxl_bias=0.5, memory_dtype=dtype)
    tolerance = 2e-5 if dtype == "float32" else 2e-2
    assert_training_recomputes_rollout(cfg, atol=tolerance, rtol=tolerance, device=CUDA)


def test_resumed_run_equals_uninterrupted_run_on_cuda(tmp_path):
    """Weights, optimiser, counters and the CUDA RNG come back from the checkpoint: the resumed
    run ends where the uninterrupted one does (to float tolerance: CUDA's reductions may
    add in another order from run to run)."""
    config = tiny(device="cuda")
    whole = run(Trainer(config, "whole", str(tmp_path / "m"), str(tmp_path / "s")), 4)
    first = run(Trainer(config, "part", str(tmp_path / "m"), str(tmp_path / "s")), 2)
    first.save()
    payload, loaded = load_model_file(str(tmp_path / "m" / "part.nn"))
    second = run(Trainer(loaded, "part", str(tmp_path / "m"), str(tmp_path / "s"), payload), 4)
    assert second.device.type == "cuda"
    assert (second.update, second.steps) == (whole.update, whole.steps)
    for name, tensor in whole.model.state_dict().items():
        torch.testing.assert_close(second.model.state_dict()[name], tensor, atol=1e-5,
                                   rtol=1e-4, msg=name)


def test_loss_terms_on_cuda_equal_the_cpu():
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn(64, generator=generator) for _ in range(7)]
    on_cpu = ppo_loss(*inputs, 0.2, 0.5, 0.01)
    on_gpu = ppo_loss(*(x.to(CUDA) for x in inputs), 0.2, 0.5, 0.01)
    for key, value in on_cpu.detached().items():
        assert on_gpu.detached()[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_gradients_on_cuda_equal_the_cpu():
    """One minibatch's accumulated gradients (micro-batches of one segment) on the GPU are the
    CPU's for the same weights and the same data (a CPU rollout moved to the GPU)."""
    cfg = dataclasses.replace(tiny_config(), micro_batch_size=4)
    pool = ScriptedPool(cfg.n_workers, [4, 9, 30])
    model = randomised_model(cfg, pool.spec)
    buffer = RolloutBuffer(cfg, pool.spec, CPU)
    _, last = Sampler(pool, buffer, cfg, CPU).collect(model)
    buffer.compute_advantages(last, 0.99, 0.95)
    batch = next(buffer.minibatches(1, torch.Generator().manual_seed(0)))
    on_gpu = Minibatch(**{f.name: getattr(batch, f.name).to(CUDA)
                          for f in dataclasses.fields(batch)})
    grads = []
    for net, data in ((model.train(), batch), (copy.deepcopy(model).to(CUDA), on_gpu)):
        net.zero_grad(set_to_none=True)
        accumulate_gradients(net, data, cfg, Schedules.at(cfg, 0))
        grads.append([p.grad.detach().cpu() for p in net.parameters()])
    for cpu, gpu in zip(*grads):
        torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-3)


def test_box_and_binary_actions_recompute_on_cuda():
    assert_training_recomputes_rollout(tiny_config(), device=CUDA, action_nvec=(3,),
                                       action_continuous=2, action_binary=2)


def test_normalised_box_run_resumes_on_cuda(tmp_path):
    """The float64 observation and reward statistics live on the GPU and come back from
    the checkpoint with the rest."""
    from tests.test_normalization import pendulum
    config = pendulum(device="cuda")
    m, s = str(tmp_path / "m"), str(tmp_path / "s")
    whole = run(Trainer(config, "whole", m, s), 4)
    first = run(Trainer(config, "part", m, s), 2)
    first.save()
    payload, loaded = load_model_file(str(tmp_path / "m" / "part.nn"))
    second = run(Trainer(loaded, "part", m, s, payload), 4)
    assert second.model.obs_normalizer.mean.device.type == "cuda"
    for name, tensor in whole.model.state_dict().items():
        torch.testing.assert_close(second.model.state_dict()[name], tensor, atol=1e-5,
                                   rtol=1e-4, msg=name)
