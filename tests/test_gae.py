"""GAE against a hand-written per-worker loop, with terminations, truncations and rollout ends."""
import numpy as np
import torch

from buffer import gae


def reference_gae(r, v, term, trunc, trunc_v, last_v, gamma, lam):
    W, T = r.shape
    adv = np.zeros((W, T))
    for w in range(W):
        a = 0.0
        for t in reversed(range(T)):
            if term[w, t]:
                next_v, a = 0.0, 0.0
            elif trunc[w, t]:
                next_v, a = trunc_v[w, t], 0.0
            else:
                next_v = v[w, t + 1] if t + 1 < T else last_v[w]
            delta = r[w, t] + gamma * next_v - v[w, t]
            a = delta + gamma * lam * a
            adv[w, t] = a
    return adv


def test_gae_matches_hand_written_loop():
    rng = np.random.default_rng(0)
    W, T = 4, 9
    r, v, trunc_v = (rng.standard_normal((W, T)) for _ in range(3))
    last_v = rng.standard_normal(W)
    term = np.zeros((W, T), bool)
    trunc = np.zeros((W, T), bool)
    term[0, 3] = term[1, 8] = term[2, 0] = True
    trunc[0, 6] = trunc[3, 8] = trunc[2, 4] = True
    expected = reference_gae(r, v, term, trunc, trunc_v, last_v, 0.97, 0.9)
    t = lambda a: torch.tensor(a, dtype=torch.float64)
    got = gae(t(r), t(v), torch.tensor(term), torch.tensor(trunc), t(trunc_v), t(last_v), 0.97, 0.9)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_gae_single_step_known_values():
    # One step, no episode end: A = r + gamma * V(next) - V.
    one = lambda x: torch.tensor([[x]])
    adv = gae(one(1.0), one(0.5), one(False), one(False), one(0.0), torch.tensor([2.0]), 0.9, 0.8)
    assert torch.allclose(adv, one(1.0 + 0.9 * 2.0 - 0.5))
    # Truncated: bootstraps with the cut-off observation's value, not the rollout end's.
    adv = gae(one(1.0), one(0.5), one(False), one(True), one(3.0), torch.tensor([2.0]), 0.9, 0.8)
    assert torch.allclose(adv, one(1.0 + 0.9 * 3.0 - 0.5))
    # Terminated: no bootstrap.
    adv = gae(one(1.0), one(0.5), one(True), one(False), one(3.0), torch.tensor([2.0]), 0.9, 0.8)
    assert torch.allclose(adv, one(0.5))
