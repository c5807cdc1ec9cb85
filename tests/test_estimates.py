"""The memory refusal's estimate (preflight.memory_estimate.training_memory, from memories.memory_bytes) against
what a run of every registered memory allocates: the stored entries and the acting state
exactly, the activations of one micro-batch's backward pass within a factor of FACTOR."""
import dataclasses

import pytest
import torch

from buffer import RolloutBuffer
from memories import make_memory, memory_bytes, state_nbytes
from tests.fakes import ScriptedPool, memory_variants, tiny_config

CPU = torch.device("cpu")
# The estimate of the activations lies within [measured / FACTOR, measured * FACTOR].
FACTOR = 2.0
# Enough segments that activations, not weights, dominate what autograd keeps.
RUN = {"n_workers": 8, "worker_steps": 64, "segment_length": 16, "n_mini_batch": 1,
       "micro_batch_size": 512}


def config_of(label: str, size: str):
    """The memory's tiny test variant, or its section's defaults, in a run of RUN's size."""
    kind, _ = memory_variants()[label]
    config = tiny_config(label)
    if size == "default":
        config = dataclasses.replace(config, **{kind.section: kind.settings()})
    return dataclasses.replace(config, **RUN)


def saved_bytes(module: torch.nn.Module, forward) -> int:
    """Bytes autograd keeps for the backward pass of forward(), each storage once, the
    module's weights left out (the estimate counts them apart)."""
    weights = {p.untyped_storage().data_ptr() for p in module.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()
    return sum(storages.values())


def micro_batch(layout, config, width: int, *shape: int):
    """Random inputs of one micro-batch: x (B, G, *shape or width), stored entries,
    episode ids and steps."""
    G = config.segment_len
    segments = config.micro_batch_size // G
    x = torch.randn(segments, G, *(shape or (width,)), requires_grad=not shape)
    stored = torch.randn(segments, layout.keys, *layout.shape)
    key_episode = torch.zeros(segments, layout.history + G, dtype=torch.long)
    query_step = (torch.arange(G) + 1).expand(segments, G)
    return x, stored, key_episode, query_step


def saved_activations(memory, config) -> int:
    """What one micro-batch through the memory's `segments` keeps for the backward pass."""
    inputs = micro_batch(memory.layout(), config, memory.input_dim)
    return saved_bytes(memory, lambda: memory.segments(*inputs))


@pytest.mark.parametrize("size", ["tiny", "default"])
@pytest.mark.parametrize("label", sorted(memory_variants()))
def test_estimate_matches_what_the_memory_allocates(label, size):
    config = config_of(label, size)
    estimate = memory_bytes(config)
    pool = ScriptedPool(config.n_workers, [10] * config.n_workers)
    buffer = RolloutBuffer(config, pool.spec, CPU)
    assert estimate.stored == buffer.stored.nbytes
    torch.manual_seed(0)
    memory = make_memory(config)
    assert estimate.state == state_nbytes(memory.initial_state(config.n_workers, CPU))
    measured = saved_activations(memory, config)
    assert measured / FACTOR <= estimate.activations <= measured * FACTOR, \
        (estimate.activations, measured)


@pytest.mark.parametrize("label", sorted(memory_variants()))
def test_refusal_counts_the_whole_networks_activations(label):
    """preflight.memory_estimate.training_memory's activations: the memory's and the rest of the network's,
    against a forward pass of the whole network on a micro-batch."""
    from preflight.memory_estimate import training_memory
    from model import ActorCritic
    config = config_of(label, "default")
    spec = ScriptedPool(1, [10]).spec
    torch.manual_seed(0)
    model = ActorCritic(config, spec)
    inputs = micro_batch(model.memory.layout(), config, 0, *spec.obs_shape)
    measured = saved_bytes(model, lambda: model(*inputs))
    estimate = training_memory(config, spec, 0).activations
    assert measured / FACTOR <= estimate <= measured * FACTOR, (estimate, measured)
