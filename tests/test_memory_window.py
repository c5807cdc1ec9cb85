"""Memory windows and masks against small worked examples (pictures in memories/window.py)."""
import torch

from memories.window import INVALID_EPISODE, gradient_window_mask, relative_offsets, segment_mask


def rows(mask):
    return ["".join("x" if v else "." for v in row) for row in mask.tolist()]


def test_segment_mask_band_inside_one_episode():
    # M = 4 memory slots, G = 3 queries, all one episode: the docstring picture.
    key_episode = torch.zeros(1, 7, dtype=torch.long)
    assert rows(segment_mask(key_episode, 4)[0]) == ["xxxxx..", ".xxxxx.", "..xxxxx"]


def test_segment_mask_episode_start_in_memory():
    # The episode of the queries began at memory slot 2: slots 0-1 belong to the last one.
    key_episode = torch.tensor([[6, 6, 7, 7, 7, 7, 7]])
    assert rows(segment_mask(key_episode, 4)[0]) == ["..xxx..", "..xxxx.", "..xxxxx"]


def test_segment_mask_episode_ends_mid_segment():
    # Query 1 (slot 5) starts a new episode: it sees only itself, query 2 itself and query 1.
    key_episode = torch.tensor([[3, 3, 3, 3, 3, 4, 4]])
    assert rows(segment_mask(key_episode, 4)[0]) == ["xxxxx..", ".....x.", ".....xx"]


def test_segment_mask_never_attends_to_empty_slots():
    # The first rollout of a run: memory slots hold no step yet.
    key_episode = torch.tensor([[INVALID_EPISODE] * 4 + [0, 0, 0]])
    assert rows(segment_mask(key_episode, 4)[0]) == ["....x..", "....xx.", "....xxx"]


def test_window_slides_with_memory_length_one():
    # L = 1: no memory, each step attends to itself only.
    assert rows(segment_mask(torch.zeros(1, 3, dtype=torch.long), 0)[0]) == ["x..", ".x.", "..x"]


def test_relative_offsets_are_distances():
    # Query i is key slot M + i; distance to key j is M + i - j, clamped to [0, M].
    assert relative_offsets(3, 2).tolist() == [[2, 1, 0, 0, 0], [2, 2, 1, 0, 0], [2, 2, 2, 1, 0]]
    # A rollout step (G = 1) sees its window oldest first: distances M .. 0.
    assert relative_offsets(1, 3).tolist() == [[3, 2, 1, 0]]


def test_gradient_window_mask_picture():
    # window.py's picture: M = 3, G = 3, K = 2; keys are [cached c0..c5 | recomputed r0..r2].
    mask, offsets = gradient_window_mask(torch.zeros(1, 6, dtype=torch.long), 3, 2)
    assert rows(mask[0]) == ["xxx...x..", ".xx...xx.", "..xx...xx"]
    # Each query sees every distance 0 .. M exactly once, cached or recomputed.
    for i, row in enumerate(mask[0]):
        assert sorted(offsets[i][row].tolist()) == [0, 1, 2, 3]


def test_gradient_window_mask_respects_episodes():
    # Query 1 starts episode 5: it sees only its own recomputed step; query 2 sees query 1
    # recomputed and nothing cached of the episode before.
    key_episode = torch.tensor([[4, 4, 4, 4, 5, 5]])
    mask, _ = gradient_window_mask(key_episode, 3, 2)
    assert rows(mask[0]) == ["xxx...x..", ".......x.", ".......xx"]
