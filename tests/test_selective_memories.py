"""SHM's and the selective SSM's own known answers, beyond the shared ones every memory
meets (tests/test_memory_forms.py): the SSM's chunked scan equals a plain loop over the
recurrence for every chunk size, and SHM's step t of an episode calibrates with row t mod L
of its table, in acting and training alike."""
import pytest
import torch

from memories.shm import SHM, SHMConfig
from memories.ssm import SSM, SSMConfig, chunked_scan


def recurrence(v, log_a, b, c, resets, h):
    """h_t = a_t h_{t-1} + v_t (x) b_t, zeroed before an episode start; y_t = h_t c_t."""
    outputs = []
    for t in range(v.shape[1]):
        keep = (~resets[:, t]).double().view(-1, 1, 1, 1)
        a = torch.exp(log_a[:, t])[..., None, None]                        # (B, K, 1, 1)
        h = keep * a * h + v[:, t].unsqueeze(-1) * b[:, t, None, None]     # (B, K, P, S)
        outputs.append((h * c[:, t, None, None]).sum(-1))                  # (B, K, P)
    return torch.stack(outputs, dim=1), h


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 12, 13, 40])
def test_chunked_scan_equals_the_recurrence_for_every_chunk_size(chunk):
    torch.manual_seed(0)
    B, T, K, P, S = 3, 12, 2, 3, 4
    v = torch.randn(B, T, K, P, dtype=torch.float64)
    log_a = -torch.rand(B, T, K, dtype=torch.float64) * 3                  # decays in (e^-3, 1]
    b, c = torch.randn(B, T, S, dtype=torch.float64), torch.randn(B, T, S, dtype=torch.float64)
    resets = torch.zeros(B, T, dtype=torch.bool)
    resets[0, [0, 5]] = True
    resets[1, [4, 5, 11]] = True                            # row 2: none, from a carried state
    h = torch.randn(B, K, P, S, dtype=torch.float64)
    expected, final = recurrence(v, log_a, b, c, resets, h)
    y, h_after = chunked_scan(v, log_a, b, c, resets, h, chunk)
    torch.testing.assert_close(y, expected, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(h_after, final, atol=1e-12, rtol=1e-12)


def test_ssm_chunk_size_changes_nothing_but_the_cost():
    """The same weights with chunk sizes 1 .. T give the same outputs and state."""
    cfg = dict(num_layers=2, embed_dim=8, head_dim=4, state_size=3, conv_width=3)
    x = torch.randn(2, 10, 8, dtype=torch.float64)
    resets = torch.zeros(2, 10, dtype=torch.bool)
    resets[1, 6] = True
    results = []
    for chunk in (1, 4, 10):
        torch.manual_seed(0)
        ssm = SSM(SSMConfig(chunk_size=chunk, **cfg)).double()
        state = ssm.initial_state(2)
        state = type(state)(*(p.double() for p in state))
        results.append(ssm.parallel(x, state, resets))
    for out, state in results[1:]:
        torch.testing.assert_close(out, results[0][0], atol=1e-12, rtol=1e-12)
        torch.testing.assert_close(state.h, results[0][1].h, atol=1e-12, rtol=1e-12)


def test_shm_step_t_calibrates_with_row_t_mod_L():
    """Changing row r of the table changes nothing before the first step of the episode
    whose index is r mod L (index 1 at an episode start), in both forms."""
    L, T = 4, 9
    torch.manual_seed(0)
    shm = SHM(SHMConfig(num_layers=1, embed_dim=6, memory_size=3, num_thetas=L)).double()
    x = torch.randn(1, T, 6, dtype=torch.float64)
    resets = torch.zeros(1, T, dtype=torch.bool)
    resets[0, 0] = True
    state = shm.initial_state(1)
    state = type(state)(*(p.double() for p in state))
    with torch.no_grad():
        before, _ = shm.parallel(x, state, resets)
        shm.layers[0].thetas[3].add_(1.0)                   # row 3: step index 3 (t = 2) on
        after, _ = shm.parallel(x, state, resets)
        stepped, s = [], state
        for t in range(T):
            out, s = shm.step(x[:, t], s, resets[:, t])
            stepped.append(out)
    torch.testing.assert_close(after[:, :2], before[:, :2], atol=0, rtol=0)
    assert not torch.allclose(after[:, 2], before[:, 2])
    torch.testing.assert_close(torch.stack(stepped, dim=1), after, atol=1e-12, rtol=1e-12)
