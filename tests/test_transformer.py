"""The memory's known answers: cached step-by-step inference equals recomputation, episodes
never see each other, GTrXL starts near the identity."""
import itertools
import time

import pytest
import torch

from tests.fakes import (ScriptedPool, assert_training_recomputes_rollout, memory_variants,
                         randomised_model, rollout_setup, tiny_config)
from memories.trxl import KV, TransformerBlock

CPU = torch.device("cpu")
VARIANTS = [(pos, gtrxl, norm) for pos, (gtrxl, norm) in itertools.product(
    ["none", "absolute", "learned", "relative"],
    [(False, "pre"), (False, "post"), (False, "none"), (True, "pre"), (True, "none")])]


@pytest.mark.parametrize("pos,gtrxl,norm,memory_length",
                         [(*v, 5) for v in VARIANTS] + [("relative", False, "pre", 1)])
def test_training_recomputation_equals_rollout(pos, gtrxl, norm, memory_length):
    """Before any optimiser step, segment-wise training recomputes exactly the log-probs and
    values the cached rollout produced, over several rollouts (carried memory, episode
    starts and ends mid-segment, an episode longer than the window)."""
    cfg = tiny_config(positional_encoding=pos, gtrxl=gtrxl, layer_norm=norm, gtrxl_bias=0.5,
                      memory_length=memory_length)
    assert_training_recomputes_rollout(cfg)


@pytest.mark.parametrize("memory", sorted(memory_variants()))
def test_bootstrap_value_uses_the_next_steps_window(memory):
    """The value bootstrapped at a rollout's end is what step 0 of the next rollout computes
    (the original computed it with the wrong window)."""
    cfg = tiny_config(memory)
    _, model, buffer, sampler = rollout_setup(cfg, [5, 9, 40])
    for _ in range(3):
        _, last_value = sampler.collect()
        sampler.collect()
        torch.testing.assert_close(buffer.values[:, 0], last_value, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("memory", ["trxl", "gru"])
def test_sampling_phases_cover_the_rollout_once(memory):
    """benchmarks/throughput.py splits sampling into phases: every phase gets time, and
    together they account for the rollout without counting any time twice."""
    cfg = tiny_config(memory)
    _, model, _, sampler = rollout_setup(cfg, [3, 4, 5])
    start = time.perf_counter()
    sampler.collect()
    elapsed = time.perf_counter() - start
    times = sampler.times
    phases = [times.acting, times.sending, times.recording, times.waiting]
    assert all(seconds > 0 for seconds in phases)
    assert 0.9 * elapsed < sum(phases) <= elapsed


def test_truncation_value_sees_its_own_episode():
    """The value of an observation a time limit cut off is computed with that episode's
    window, equal to a full recomputation of the episode's last steps plus that observation."""
    cfg = tiny_config(positional_encoding="relative")
    pool, model, buffer, sampler = rollout_setup(cfg, [3, 4, 5])
    sampler.collect()
    M = buffer.memory_slots
    assert pool.truncations, "the script must truncate some episodes"
    for call, w, final_obs in pool.truncations:
        t = call
        memory = buffer.stored[w:w + 1, t + 1:t + 1 + M]                     # (1, M, N, D)
        episode = buffer.slot_episode[w, M + t]
        key_episode = torch.cat([buffer.slot_episode[w, t + 1:t + 1 + M], episode.view(1)])
        with torch.no_grad():
            out = model(torch.from_numpy(final_obs).view(1, 1, -1), memory,
                        key_episode.view(1, -1), buffer.slot_step[w, M + t].view(1, 1) + 1)
        torch.testing.assert_close(buffer.truncation_values[w, t], out.value[0, 0],
                                   atol=1e-5, rtol=1e-5)
        assert buffer.truncated[w, t]


@pytest.mark.parametrize("pos", ["none", "absolute", "learned", "relative"])
def test_no_attention_across_episode_boundary(pos):
    """Changing everything about the previous episode changes nothing in the current one."""
    cfg = tiny_config(positional_encoding=pos)
    pool = ScriptedPool(1, [100])
    model = randomised_model(cfg, pool.spec)
    N, M, G, D = cfg.transformer.num_blocks, 4, 6, cfg.transformer.embed_dim
    key_episode = torch.tensor([[1, 1, 1, 2, 2, 2, 2, 2, 3, 3]])           # M + G = 10 slots
    obs = torch.randn(1, G, 5)
    memory = torch.randn(1, M, N, D)
    query_step = torch.tensor([[1, 2, 3, 4, 0, 1]])
    out = model(obs, memory, key_episode, query_step)
    obs2, memory2 = obs.clone(), memory.clone()
    memory2[:, :3] = torch.randn(1, 3, N, D)           # episode 1, entirely in memory
    obs2[:, 4:] = torch.randn(1, 2, 5)                 # episode 3: a later episode
    memory2[:, 3:] = torch.randn(1, 1, N, D)           # episode 2's own memory does matter
    out2 = model(obs2, memory2, key_episode, query_step)
    assert not torch.allclose(out.value[0, :4], out2.value[0, :4])
    memory2[:, 3:] = memory[:, 3:]
    out3 = model(obs2, memory2, key_episode, query_step)
    torch.testing.assert_close(out3.value[0, :4], out.value[0, :4], atol=1e-6, rtol=0)


@pytest.mark.parametrize("norm", ["pre", "none"])
def test_gtrxl_with_large_gate_bias_is_near_identity(norm):
    cfg = tiny_config(gtrxl=True, gtrxl_bias=20.0, layer_norm=norm)
    torch.manual_seed(0)
    block = TransformerBlock(cfg.transformer)
    x = torch.randn(2, 3, cfg.transformer.embed_dim)
    past = KV(*(torch.randn(2, cfg.transformer.num_heads, 4, 8) for _ in range(2)))
    mask = torch.ones(2, 3, 7, dtype=torch.bool)
    out = block(x, past, mask, torch.zeros(3, 7, dtype=torch.long))
    torch.testing.assert_close(out, x, atol=1e-6, rtol=0)
    # ... while an ordinary residual block changes its input.
    plain = TransformerBlock(tiny_config(layer_norm=norm).transformer)
    assert not torch.allclose(plain(x, past, mask, torch.zeros(3, 7, dtype=torch.long)), x)


def test_acting_sees_weights_a_fused_optimiser_wrote():
    """The relative term's W_r R is cached while acting. A fused AdamW step writes the weights
    without bumping their version counter, so the cache must not outlive the training phase:
    acting after it equals a fresh module holding the same weights."""
    cfg = tiny_config(positional_encoding="relative")
    torch.manual_seed(0)
    block = TransformerBlock(cfg.transformer)
    x = torch.randn(2, 3, cfg.transformer.embed_dim)
    past = KV(*(torch.randn(2, cfg.transformer.num_heads, 4, 8) for _ in range(2)))
    mask = torch.ones(2, 3, 7, dtype=torch.bool)
    offsets = torch.arange(7).flip(0).clamp(max=cfg.transformer.memory_length - 1).expand(3, 7)

    def act(module):
        module.eval()
        with torch.no_grad():
            return module(x, past, mask, offsets)

    act(block)                                     # fills the cache
    block.train()
    optimiser = torch.optim.AdamW(block.parameters(), lr=0.1, fused=True)
    block(x, past, mask, offsets).square().sum().backward()
    optimiser.step()
    fresh = TransformerBlock(cfg.transformer)
    fresh.load_state_dict(block.state_dict())
    torch.testing.assert_close(act(block), act(fresh), atol=0, rtol=0)


def held_bytes(*roots) -> int:
    """Bytes of every distinct tensor storage reachable from roots through attributes,
    lists, tuples and dicts: what the objects really hold, not what they say they hold."""
    seen_objects, storages, stack = set(), {}, list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen_objects:
            continue
        seen_objects.add(id(obj))
        if isinstance(obj, torch.Tensor):
            storage = obj.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and not isinstance(obj, (torch.nn.Module, type)):
            stack.extend(vars(obj).values())
    return sum(storages.values())


def test_buffer_memory_does_not_grow_with_episode_length():
    """An endless episode costs the same buffer and cache memory as a short one:
    sampling through several 100-step episodes, or through a whole 10,000-step one, leaves
    the buffer and the sampler holding the bytes they held after their first rollout."""
    cfg = tiny_config()
    held = {}
    for length in (100, 10_000):
        _, model, buffer, sampler = rollout_setup(cfg, [length] * cfg.n_workers)
        sampler.collect()
        after_one, longest = held_bytes(buffer, sampler), 0
        for _ in range((3 * length if length == 100 else length) // cfg.worker_steps):
            sampler.collect()
            longest = max(longest, int(sampler.agent.episode_step.max()))
        assert longest >= length - cfg.worker_steps       # the episode really got that long
        assert held_bytes(buffer, sampler) == after_one
        held[length] = after_one
    assert held[100] == held[10_000] > 0


PLAYING = [(label, {}) for label in sorted(memory_variants())] + [
    ("trxl", {"positional_encoding": "absolute"}),
    ("trxl", {"memory_dtype": "bfloat16"})]


@pytest.mark.parametrize("memory,changes", PLAYING,
                         ids=[f"{m}-{'-'.join(map(str, c.values()))}" for m, c in PLAYING])
def test_playing_agent_acts_like_the_training_policy(memory, changes):
    """enjoy.py and evaluation use MemoryAgent's sliding window (or recurrent state); over
    whole episodes it must give exactly the values the training sampler computed for the
    same observations."""
    from agent import MemoryAgent
    cfg = tiny_config(memory, **changes)
    # bfloat16 keeps 8 bits of mantissa: the sampler re-projects rounded inputs each rollout
    # where the agent keeps rounded projections, a difference of that order.
    tolerance = 3e-2 if changes.get("memory_dtype") == "bfloat16" else 2e-5
    _, model, buffer, sampler = rollout_setup(cfg, [3, 7, 50])
    M = buffer.memory_slots
    compared = 0
    for _ in range(2):
        sampler.collect()
        for w in range(cfg.n_workers):
            agent, synced = MemoryAgent(model, 1, CPU), False
            for t in range(buffer.steps):
                if buffer.slot_step[w, M + t] == 0:       # an episode starts: follow it
                    agent.reset(0)
                    synced = True
                if not synced:                            # began before this rollout
                    continue
                value = agent.policy(buffer.obs[w, t:t + 1].numpy()).value
                torch.testing.assert_close(value[0], buffer.values[w, t], atol=tolerance, rtol=0)
                compared += 1
    assert compared > buffer.steps * 2
