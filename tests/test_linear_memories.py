"""The linear-recurrent memories' known answers: the parallel (training) form equals the
step-by-step (acting) recurrence, nothing crosses an episode start, segments with carried
state equal one pass, the state does not grow with the sequence, and small cases worked by
hand."""
import math

import pytest
import torch

from memories.agalite import (AGaLiTe, AGaLiTeConfig, GatedLinearAttention, Segment,
                              oscillator_period)
from memories.ffm import FFM, FFMConfig, FFMLayer
from memories.linear_scan import episode_ticks, linear_scan

D = 16
MEMORIES = {
    "agalite": lambda: AGaLiTe(AGaLiTeConfig(num_layers=2, embed_dim=D, num_heads=2,
                                             head_dim=4, eta=2, r=1, ffn_dim=8)),
    "agalite_r3": lambda: AGaLiTe(AGaLiTeConfig(num_layers=2, embed_dim=D, num_heads=2,
                                                head_dim=4, eta=3, r=3, ffn_dim=8)),
    "galite": lambda: AGaLiTe(AGaLiTeConfig(num_layers=2, embed_dim=D, num_heads=2, head_dim=4,
                                            eta=2, ffn_dim=8, exact=True)),
    "ffm": lambda: FFM(FFMConfig(num_layers=2, embed_dim=D, memory_size=6, context_size=3,
                                 max_period=32)),
}


def build(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return MEMORIES[name]().double()


def random_state(memory, batch: int):
    """A non-zero carried state: the memory after a random warm-up segment."""
    x = torch.randn(batch, 5, D, dtype=torch.float64)
    resets = torch.zeros(batch, 5, dtype=torch.bool)
    state = memory.initial_state(batch)
    state = type(state)(*(part.double() if part.is_floating_point() else part for part in state))
    return memory.parallel(x, state, resets)[1]


def resets_pattern(T: int) -> torch.Tensor:
    """Episode starts: at t = 0 (row 0), twice in a row (row 1), at the last step and
    mid-segment (row 2), none at all (row 3)."""
    resets = torch.zeros(4, T, dtype=torch.bool)
    resets[0, [0, 9]] = True
    resets[1, [3, 4, 5, 20]] = True
    resets[2, [T // 2, T - 1]] = True
    return resets


def step_by_step(memory, x, state, resets):
    outputs = []
    for t in range(x.shape[1]):
        out, state = memory.step(x[:, t], state, resets[:, t])
        outputs.append(out)
    return torch.stack(outputs, dim=1), state


def assert_states_close(a, b, **tolerance):
    assert type(a) is type(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, **tolerance)


@pytest.mark.parametrize("name", MEMORIES)
def test_parallel_equals_step_by_step(name):
    """The segment's associative scan (log2 T rounds) computes what T acting steps compute,
    over a segment that is not a power of two, from a carried non-zero state."""
    memory = build(name)
    T = 37
    x = torch.randn(4, T, D, dtype=torch.float64)
    resets = resets_pattern(T)
    state = random_state(memory, 4)
    parallel_out, parallel_state = memory.parallel(x, state, resets)
    step_out, step_state = step_by_step(memory, x, state, resets)
    torch.testing.assert_close(parallel_out, step_out, atol=1e-10, rtol=1e-9)
    assert_states_close(parallel_state, step_state, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("name", MEMORIES)
def test_float32_parallel_equals_step_by_step(name):
    """The same in the dtype training uses, within float32 rounding."""
    torch.manual_seed(1)
    memory = MEMORIES[name]()
    x = torch.randn(4, 40, D)
    resets = resets_pattern(40)
    state = memory.initial_state(4)
    parallel_out, _ = memory.parallel(x, state, resets)
    step_out, _ = step_by_step(memory, x, state, resets)
    torch.testing.assert_close(parallel_out, step_out, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("name", MEMORIES)
def test_nothing_crosses_an_episode_start(name):
    """Changing every input before an episode start, and the carried state, leaves every
    output from the start on unchanged."""
    memory = build(name)
    T = 24
    x = torch.randn(4, T, D, dtype=torch.float64)
    resets = resets_pattern(T)
    starts = [9, 20, T - 1]                                   # last start of rows 0, 1, 2
    state = random_state(memory, 4)
    out, _ = memory.parallel(x, state, resets)
    other_x = x.clone()
    for row, start in enumerate(starts + [5]):
        other_x[row, :start] = torch.randn(start, D, dtype=torch.float64) * 3
    # Another past: every float of the carried state redrawn (the tick is the episode step).
    other_state = state._replace(**{field: torch.randn_like(part) for field, part
                                    in state._asdict().items() if field != "tick"})
    other_out, _ = memory.parallel(other_x, other_state, resets)
    for row, start in enumerate(starts):
        torch.testing.assert_close(out[row, start:], other_out[row, start:], atol=1e-12, rtol=0)
    # The row without an episode start does see its past: the test can tell.
    assert not torch.allclose(out[3, 5:], other_out[3, 5:])


@pytest.mark.parametrize("name", MEMORIES)
def test_segments_with_carried_state_equal_one_pass(name):
    """A long sequence processed in segments, each starting from the state the previous one
    ended with (as training over consecutive segments does), equals one pass."""
    memory = build(name)
    T = 96
    x = torch.randn(4, T, D, dtype=torch.float64)
    resets = torch.cat([resets_pattern(32), torch.zeros(4, 32, dtype=torch.bool),
                        resets_pattern(32).roll(7, dims=1)], dim=1)
    state = random_state(memory, 4)
    whole, whole_state = memory.parallel(x, state, resets)
    parts = []
    for a in range(0, T, 20):                                 # uneven: 20, 20, 20, 20, 16
        out, state = memory.parallel(x[:, a:a + 20], state, resets[:, a:a + 20])
        parts.append(out)
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, atol=1e-10, rtol=1e-9)
    assert_states_close(state, whole_state, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("name", MEMORIES)
def test_state_size_does_not_grow_with_the_sequence(name):
    memory = build(name)
    initial = memory.initial_state(3)
    for T in (1, 7, 64):
        _, state = memory.parallel(torch.randn(3, T, D, dtype=torch.float64),
                                   random_state(memory, 3), torch.zeros(3, T, dtype=torch.bool))
        assert [part.shape for part in state] == [part.shape for part in initial]
        assert all(part.shape[0] == 3 for part in state)      # batch-first


@pytest.mark.parametrize("name", MEMORIES)
def test_gradients_are_finite_and_reach_every_weight(name):
    torch.manual_seed(2)
    memory = MEMORIES[name]()
    x = torch.randn(4, 64, D, requires_grad=True)
    resets = resets_pattern(64)
    state = memory.initial_state(4)
    out, final = memory.parallel(x, state, resets)
    (out.square().mean() + sum(part.square().mean() for part in final
                               if part.is_floating_point() and part.requires_grad)).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name_, p in memory.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name_
        assert p.grad.abs().sum() > 0, name_


def test_scan_known_answer():
    """y_t = a_t y_{t-1} + x_t by hand: a = (0.5, 0, 2), x = (1, 2, 3), y_{-1} = 4."""
    a = torch.tensor([[0.5, 0.0, 2.0]])
    x = torch.tensor([[1.0, 2.0, 3.0]])
    y = linear_scan(a, x, torch.tensor([4.0]))
    torch.testing.assert_close(y, torch.tensor([[3.0, 2.0, 7.0]]))


@pytest.mark.parametrize("T", [2, 3, 4, 5, 8, 9, 17, 64])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_scan_equals_the_loop_for_every_chunking(T, dtype):
    """Every split into chunks (T = c n, padded, a single chunk) computes the loop's answer,
    with decays of 0 (episode starts) and a decay broadcast over a state dimension."""
    torch.manual_seed(T)
    decay = torch.rand(3, T, 1, 2, dtype=dtype) * (torch.rand(3, T, 1, 2) > 0.2)
    x, initial = torch.randn(3, T, 4, 2, dtype=dtype), torch.randn(3, 4, 2, dtype=dtype)
    expected, y = [], initial
    for t in range(T):
        y = decay[:, t] * y + x[:, t]
        expected.append(y)
    torch.testing.assert_close(linear_scan(decay, x, initial), torch.stack(expected, dim=1))


def hand_attention(r: int, exact: bool) -> GatedLinearAttention:
    """One head, dh = eta = 1, D = 2: v_t = x_t[0], key feature relu(2) relu(1) = 2, query
    feature 3, beta = sigmoid(0) = 1/2, gamma = sigmoid(0) sigmoid(40) = 1/2; the output
    projection returns the attended value in channel 0."""
    attention = GatedLinearAttention(AGaLiTeConfig(embed_dim=2, num_heads=1, head_dim=1, eta=1,
                                                   r=r, exact=exact))
    # inputs rows: k, q, v, beta, gamma, p1, p2, p3
    with torch.no_grad():
        attention.inputs.weight.zero_()
        attention.inputs.weight[2, 0] = 1.0
        attention.inputs.bias.copy_(torch.tensor([2.0, 3.0, 0.0, 0.0, 0.0, 1.0, 1.0, 40.0]))
        attention.out.weight.copy_(torch.tensor([[1.0], [0.0]]))
        attention.out.bias.zero_()
    return attention


def run_hand_case(attention: GatedLinearAttention, state: list) -> torch.Tensor:
    """Values 1, 2, 4 at steps 1-3; an episode starts again at step 3 (t = 1, 2, 1)."""
    x = torch.tensor([[[1.0, 0.0], [2.0, 0.0], [4.0, 0.0]]])
    keep = torch.tensor([1.0, 1.0, 0.0]).view(1, 3, 1, 1)
    cos = torch.cos(torch.tensor([1.0, 2.0, 1.0]) * -math.pi).view(1, 3, 1, 1, 1)
    out, _ = attention(x, Segment(keep, None, cos), state)
    return out[0, :, 0]


def test_galite_known_answer():
    """C_1 = beta v_1 gamma k = 0.5, s_1 = gamma k = 1: a_1 = C q / s q = 0.5.
    C_2 = (1/2)(1/2) C_1 + 0.5 * 2 * 1 = 1.125, s_2 = (1/2) 1 + 1 = 1.5: a_2 = 0.75.
    An episode starts at step 3: a_3 = beta v_3 = 2."""
    attention = hand_attention(r=1, exact=True)
    out = run_hand_case(attention, [torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1)])
    torch.testing.assert_close(out, torch.tensor([0.5, 0.75, 2.0]), atol=1e-5, rtol=1e-5)


def test_agalite_known_answer():
    """r = 1: w = -pi, cos(w t) = -1, +1 at t = 1, 2.
    v~_1 = -0.5, k~_1 = -1, s_1 = 1: a_1 = v~ (k~ q) / (2 r s q) = (-0.5)(-3) / 6 = 0.25.
    v~_2 = 0.5 (-0.5) + 0.5 * 2 = 0.75, k~_2 = 0.5 (-1) + 1 = 0.5, s_2 = 1.5:
    a_2 = 0.75 * 1.5 / 9 = 0.125. Step 3 starts an episode (t = 1 again): a_3 = 0.25 * 4."""
    attention = hand_attention(r=1, exact=False)
    zeros = [torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1)]
    out = run_hand_case(attention, zeros)
    torch.testing.assert_close(out, torch.tensor([0.25, 0.125, 1.0]), atol=1e-5, rtol=1e-5)


def test_agalite_ticks_count_episode_steps_modulo_the_period():
    """r = 3: w = (-pi, 0, pi), the cosines repeat every 2 (r - 1) = 4 steps; the carried
    tick 2 was the step before the segment."""
    assert oscillator_period(3) == 4 and oscillator_period(1) == 2
    resets = torch.tensor([[False, False, True, False, False, False, False, True]])
    ticks = episode_ticks(resets, torch.tensor([2.0]), 4)
    assert ticks.tolist() == [[3, 0, 1, 2, 3, 0, 1, 1]]
    steps = [episode_ticks(resets[:, t:t + 1], torch.tensor([float(tick)]), 4).item()
             for t, tick in enumerate([2] + ticks[0, :-1].tolist())]
    assert steps == ticks[0].tolist()
    omegas = torch.linspace(-math.pi, math.pi, 3)
    torch.testing.assert_close(torch.cos(omegas * 5), torch.cos(omegas * 1))


def test_ffm_aggregator_known_answer():
    """gamma = 0.5 i (|gamma| = 1/2, a quarter turn per step), x~ = 1, 2, 3:
    S_1 = 1, S_2 = 0.5i + 2, S_3 = 0.5i (0.5i + 2) + 3 = 2.75 + 1i."""
    layer = FFMLayer(FFMConfig(embed_dim=2, memory_size=1, context_size=1))
    with torch.no_grad():
        layer.alpha.fill_(math.log(2.0))
        layer.omega.fill_(math.pi / 2)
        layer.input_gate.weight.zero_()
        layer.input_gate.weight[0, 0] = 1.0
        layer.input_gate.bias.copy_(torch.tensor([0.0, 40.0]))     # sigmoid(40) = 1
    x = torch.tensor([[[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]])
    zeros = torch.zeros(1, 1, 1)
    _, real, imag = layer.parallel(x, torch.zeros(1, 3, dtype=torch.bool), zeros, zeros)
    torch.testing.assert_close(real.flatten(), torch.tensor([2.75]))
    torch.testing.assert_close(imag.flatten(), torch.tensor([1.0]))


@pytest.mark.parametrize("key", ["agalite.eta", "agalite.num_heads", "ffm.memory_size"])
def test_configs_reject_impossible_sizes(key):
    from config import ConfigError, config_from_dict
    section, field = key.split(".")
    with pytest.raises(ConfigError, match=f"{key} = 0: must be at least 1"):
        config_from_dict({section: {field: 0}})
