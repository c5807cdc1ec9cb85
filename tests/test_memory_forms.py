"""Every registered memory whose segments start from one stored entry (a recurrent state, a
state stored per segment) against the same known answers, through the Memory interface
alone: training's form of a segment (`segments`, e.g. a chunked parallel scan) equals the
acting form stepped one step at a time (`step`), in float64 and over several segments with
episode starts anywhere; nothing crosses an episode start; the state does not grow. A new
memory joins these tests by registering (memories.MemoryKind.examples). TrXL, which
attends to a window of stored steps instead, has its own (test_transformer.py)."""
import pytest
import torch

from memories import make_memory, memory_layout
from tests.fakes import tiny_config, variants_where

SEGMENT, SEGMENTS, BATCH = 12, 3, 4
STARTS = {0: [0, 9], 1: [3, 4, 5, 20], 2: [18, 35]}    # row 3: no episode start at all
FROM_ONE_ENTRY = variants_where(lambda c: memory_layout(c).history == 0)


def memory_of(label: str, seed: int = 0):
    torch.manual_seed(seed)
    memory = make_memory(tiny_config(label)).double()
    with torch.no_grad():                         # every weight matters, none sits at 0
        for p in memory.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return memory


def episode_steps(T: int) -> torch.Tensor:
    """(BATCH, T) each step's index in its episode: 0 at the starts of STARTS, otherwise
    counting on from an episode that began 5 steps before the sequence."""
    steps = torch.zeros(BATCH, T, dtype=torch.long)
    for b in range(BATCH):
        count = 5
        for t in range(T):
            count = 0 if t in STARTS.get(b, ()) else count + 1
            steps[b, t] = count
    return steps


def acted(memory, x: torch.Tensor, steps: torch.Tensor):
    """The acting form: outputs (B, T, D) and the stored entry of every step (B, T, *shape)."""
    state = memory.initial_state(BATCH, torch.device("cpu"))
    state = type(state)(*(p.double() if p.is_floating_point() else p for p in state))
    outputs, entries = [], []
    for t in range(x.shape[1]):
        out, state, entry = memory.step(x[:, t], state, steps[:, t])
        outputs.append(out)
        entries.append(entry)
    return torch.stack(outputs, dim=1), torch.stack(entries, dim=1)


def trained(memory, x: torch.Tensor, steps: torch.Tensor, entries: torch.Tensor):
    """The training form, segment by segment from the entry stored at each one's start."""
    outputs = []
    for s in range(0, x.shape[1], SEGMENT):
        part = slice(s, s + SEGMENT)
        episode = torch.zeros(BATCH, SEGMENT, dtype=torch.long)
        outputs.append(memory.segments(x[:, part], entries[:, s:s + 1].double(), episode,
                                       steps[:, part]))
    return torch.cat(outputs, dim=1)


@pytest.mark.parametrize("memory", FROM_ONE_ENTRY)
def test_training_form_equals_the_steps(memory):
    module = memory_of(memory)
    T = SEGMENT * SEGMENTS
    x = torch.randn(BATCH, T, module.input_dim, dtype=torch.float64)
    steps = episode_steps(T)
    with torch.no_grad():
        expected, entries = acted(module, x, steps)
        torch.testing.assert_close(trained(module, x, steps, entries), expected,
                                   atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("memory", FROM_ONE_ENTRY)
def test_nothing_crosses_an_episode_start(memory):
    """Other inputs before an episode start change no output from the start on."""
    module = memory_of(memory)
    T = SEGMENT * SEGMENTS
    x = torch.randn(BATCH, T, module.input_dim, dtype=torch.float64)
    steps = episode_steps(T)
    other = x.clone()
    other[:, :18] = torch.randn(BATCH, 18, module.input_dim, dtype=torch.float64)
    with torch.no_grad():
        out, entries = acted(module, x, steps)
        out_other, entries_other = acted(module, other, steps)
        from_start = trained(module, other, steps, entries_other)[2, 18:]
    torch.testing.assert_close(out_other[2, 18:], out[2, 18:], atol=1e-12, rtol=0)
    torch.testing.assert_close(from_start, out[2, 18:], atol=1e-9, rtol=1e-9)
    assert not torch.allclose(out_other[3], out[3])               # no start: it does matter


@pytest.mark.parametrize("memory", FROM_ONE_ENTRY)
def test_the_state_does_not_grow_with_the_episode(memory):
    module = memory_of(memory)
    x = torch.randn(BATCH, 50, module.input_dim, dtype=torch.float64)
    steps = torch.arange(50).expand(BATCH, 50)
    state = module.initial_state(BATCH, torch.device("cpu"))
    shapes = [p.shape for p in state]
    state = type(state)(*(p.double() if p.is_floating_point() else p for p in state))
    with torch.no_grad():
        for t in range(50):
            _, state, _ = module.step(x[:, t], state, steps[:, t])
    assert [p.shape for p in state] == shapes
