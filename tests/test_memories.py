"""Every registered memory against the shared known answers (its variants come from its
registration, memories.MemoryKind.examples), and the recurrent memories, the TrXL gradient
window and bfloat16 cached memory against their own."""
import dataclasses

import pytest
import torch

from buffer import RolloutBuffer
from config import config_from_dict
from agent import cpp_compiler
from memories import kinds, memory_layout
from tests.fakes import (ScriptedPool, assert_training_recomputes_rollout, memory_variants,
                         randomised_model, rollout_setup, tiny_config, variants_where)

CPU = torch.device("cpu")
VARIANTS = sorted(memory_variants())


@pytest.mark.parametrize("memory", VARIANTS)
def test_sequence_training_equals_step_by_step_rollout(memory):
    """Training's recomputation of every segment (truncated BPTT from the stored state, a
    parallel form from the state stored at the segment's start, attention over the cached
    window) gives exactly what the rollout computed one step at a time, with episodes
    starting mid-segment."""
    assert_training_recomputes_rollout(tiny_config(memory))


@pytest.mark.parametrize("window", [1, 2, 3])
def test_gradient_window_recomputes_the_rollout(window):
    """Any gradient window gives the rollout's outputs before the first optimiser step: the
    cached and the recomputed copies of a step are equal then."""
    assert_training_recomputes_rollout(tiny_config(gradient_window=window))


@pytest.mark.parametrize("memory", [label for label, (kind, _) in memory_variants().items()
                                    if "memory_dtype" in
                                    {f.name for f in dataclasses.fields(kind.settings)}])
def test_bfloat16_cached_memory_stays_close(memory):
    """Cached states in bfloat16 (8-bit mantissa): recomputation matches the rollout to a
    tolerance of that precision, and only that."""
    assert_training_recomputes_rollout(tiny_config(memory, memory_dtype="bfloat16"),
                                       atol=3e-2, rtol=3e-2)


def test_bfloat16_halves_the_cached_memory():
    sizes = {}
    for dtype in ("float32", "bfloat16"):
        _, _, buffer, sampler = rollout_setup(tiny_config(memory_dtype=dtype), [5, 9, 40])
        sizes[dtype] = buffer.stored.nbytes + sampler.agent.nbytes()
    assert sizes["bfloat16"] * 2 == sizes["float32"]


@pytest.mark.parametrize("memory", ["gru", "lstm"])
def test_recurrent_state_never_leaks_across_episodes(memory):
    """Whatever came before an episode start (earlier observations, the stored state) does
    not change any output from the start on; it does change the outputs before it."""
    cfg = tiny_config(memory)
    pool = ScriptedPool(1, [100])
    model = randomised_model(cfg, pool.spec)
    N, S = cfg.recurrent.num_layers, model.memory.state_width
    query_step = torch.tensor([[5, 6, 7, 0, 1, 2]])                        # episode starts at 3
    key_episode = torch.tensor([[1, 1, 1, 2, 2, 2]])
    obs, state = torch.randn(1, 6, 5), torch.randn(1, 1, N, S)
    out = model(obs, state, key_episode, query_step)
    obs2 = obs.clone()
    obs2[:, :3] = torch.randn(1, 3, 5)
    out2 = model(obs2, torch.randn(1, 1, N, S), key_episode, query_step)
    assert not torch.allclose(out.value[0, :3], out2.value[0, :3])
    torch.testing.assert_close(out2.value[0, 3:], out.value[0, 3:], atol=0, rtol=0)


@pytest.mark.parametrize("memory", ["gru", "lstm"])
def test_rollout_stores_a_zero_state_at_every_episode_start(memory):
    cfg = tiny_config(memory)
    _, model, buffer, sampler = rollout_setup(cfg, [3, 7, 50])
    for _ in range(2):
        sampler.collect()
        starts = buffer.slot_step == 0                                     # (W, T)
        assert starts.any()
        assert (buffer.stored[starts] == 0).all()
        assert (buffer.stored[~starts] != 0).any(dim=-1).all()


@pytest.mark.parametrize("window", [1, 2, 4])
def test_gradient_reaches_exactly_the_window(window):
    """With gradient window K, each block of query i attends to the recomputed steps
    i-K+1 .. i and to cached copies before them; through N blocks the gradient so reaches
    N(K-1) steps back within the segment, and no further."""
    cfg = tiny_config(gradient_window=window)
    pool = ScriptedPool(1, [100])
    model = randomised_model(cfg, pool.spec)
    N, M, G, D = cfg.transformer.num_blocks, 4, 4, cfg.transformer.embed_dim
    memory = torch.randn(1, M + (G if window < G else 0), N, D)
    key_episode = torch.zeros(1, M + G, dtype=torch.long)
    query_step = torch.arange(10, 10 + G).view(1, G)

    def values(obs):
        return model(obs, memory, key_episode, query_step).value[0]        # (G,)

    jacobian = torch.autograd.functional.jacobian(values, torch.randn(1, G, 5))  # (G, 1, G, 5)
    reach = jacobian.abs().sum(dim=(1, 3)) > 0                              # (G queries, G steps)
    i, j = torch.arange(G).unsqueeze(1), torch.arange(G).unsqueeze(0)
    assert torch.equal(reach, (i - j >= 0) & (i - j <= N * (window - 1)))


def test_memory_choice_is_config_checked():
    from config import ConfigError
    with pytest.raises(ConfigError, match="memory = 'rnn'.*not an allowed value"):
        config_from_dict({"memory": "rnn"})
    with pytest.raises(ConfigError, match=r"transformer.gradient_window = 9.*\[1, segment length = 4\]"):
        tiny_config(gradient_window=9)


@pytest.mark.parametrize("memory", ["gru", "lstm", "none"])
def test_buffer_of_a_recurrent_memory_holds_one_state_per_step(memory):
    cfg = tiny_config(memory)
    spec = ScriptedPool(1, [10]).spec
    buffer = RolloutBuffer(cfg, spec, CPU)
    width = {"gru": 16, "lstm": 32, "none": 0}[memory]
    layers = 0 if memory == "none" else 2
    assert buffer.stored.shape == (cfg.n_workers, cfg.worker_steps, layers, width)


@pytest.mark.parametrize("memory", sorted(kinds()))
def test_a_saved_model_of_every_memory_plays_held_out_episodes(tmp_path, memory):
    """Checkpoints and evaluation are shared: a trained model file of every memory loads and
    plays, as evaluate.py and enjoy.py use it."""
    from agent import load_agent, play_episode
    from config import load_config
    from environments import make_env
    from trainer import Trainer
    kind, values = memory_variants()[memory]
    config = load_config("configs/proof_of_memory.yaml",
                         {"n_workers": 4, "worker_steps": 16, "segment_length": 8,
                          "n_mini_batch": 2, "updates": 1, "env_processes": 1,
                          "memory": memory,
                          **{f"{kind.section}.{key}": v for key, v in values.items()}})
    trainer = Trainer(config, "rnn", str(tmp_path / "m"), str(tmp_path / "s"))
    try:
        trainer.run()
    finally:
        trainer.close()
    agent, loaded, _ = load_agent(trainer.save(), 1, CPU)
    assert loaded.memory == memory
    result = play_episode(agent, make_env(loaded.environment), seed=2**30, deterministic=True)
    assert 1 <= result.length <= 16


@pytest.mark.parametrize("memory", variants_where(lambda c: memory_layout(c).history == 0))
def test_truncation_value_continues_the_episodes_state(memory):
    """The value of an observation a time limit cut off is computed from the state its own
    episode reached: equal to running the whole episode, then that observation."""
    cfg = tiny_config(memory)
    pool, model, buffer, sampler = rollout_setup(cfg, [3, 4, 5])
    sampler.collect()
    assert pool.truncations, "the script must truncate some episodes"
    for t, w, final_obs in pool.truncations:
        start = t - int(buffer.slot_step[w, t])                           # the episode's first step
        obs = torch.cat([buffer.obs[w, start:t + 1], torch.from_numpy(final_obs).view(1, -1)])
        steps = torch.arange(len(obs)).view(1, -1)                         # (1, episode + 1)
        state = torch.zeros(1, 1, *buffer.stored.shape[2:])
        with torch.no_grad():
            out = model(obs.unsqueeze(0), state, steps, steps)
        torch.testing.assert_close(buffer.truncation_values[w, t], out.value[0, -1],
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(cpp_compiler() is None, reason="torch.compile on CPU needs a C++ compiler")
@pytest.mark.parametrize("memory", variants_where(lambda c: kinds()[c.memory].compiles))
def test_compiled_acting_step_computes_what_training_recomputes(memory):
    """compile_acting changes how the step runs, not what it computes; and the window's
    sliding position in the KV cache must not recompile the step (one graph per run)."""
    from dataclasses import replace
    from torch._dynamo.utils import counters
    torch._dynamo.reset()
    counters.clear()
    assert_training_recomputes_rollout(replace(tiny_config(memory), compile_acting=True),
                                       atol=1e-4, rtol=1e-4)
    assert counters["stats"]["unique_graphs"] == 1


@pytest.mark.parametrize("memory", [k.name for k in kinds().values() if not k.compiles])
def test_compiled_acting_step_is_refused_where_it_cannot_compile(memory):
    with pytest.raises(ValueError, match=f"compile_acting = True: torch.compile cannot trace "
                                         f"the acting step of memory = {memory}"):
        config_from_dict({"memory": memory, "compile_acting": True})


def test_compiled_acting_step_names_a_missing_compiler(monkeypatch):
    from agent import acting_step
    monkeypatch.setenv("CXX", "no-such-compiler")
    with pytest.raises(RuntimeError, match="'no-such-compiler'.*Fix: install one"):
        acting_step(True, CPU)


@pytest.mark.parametrize("memory", variants_where(lambda c: memory_layout(c).per_segment))
def test_buffer_of_a_per_segment_memory_holds_one_state_per_segment(memory):
    """A large state is stored where training needs it, before each segment's first step:
    T / G entries of the whole state per worker; the first rollout's first is the zero state."""
    cfg = tiny_config(memory)
    _, model, buffer, sampler = rollout_setup(cfg, [3, 7, 50])
    numbers = sum(part[0].numel() for part in sampler.agent.state)
    assert buffer.stored.shape == (cfg.n_workers, cfg.worker_steps // cfg.segment_len, numbers)
    sampler.collect()
    assert (buffer.stored[:, 0] == 0).all() and (buffer.stored[:, 1:] != 0).any(dim=-1).all()
