"""The polynomial-decay schedules of the original TrXL-PPO, against hand-computed values."""
import math

from config import ScheduleConfig
from utils import polynomial_decay, worker_seeds


def test_linear_decay_known_values():
    s = ScheduleConfig(initial=1.0, final=0.2, power=1.0, max_decay_steps=4)
    assert [polynomial_decay(s, u) for u in range(6)] == [1.0, 0.8, 0.6000000000000001, 0.4, 0.2, 0.2]


def test_power_two_decay_known_value():
    s = ScheduleConfig(initial=3.0, final=1.0, power=2.0, max_decay_steps=10)
    # (3 - 1) * (1 - 5/10)^2 + 1 = 1.5
    assert math.isclose(polynomial_decay(s, 5), 1.5)


def test_worker_seeds_are_distinct_and_reproducible():
    seeds = worker_seeds(7, 64)
    assert len(set(seeds)) == 64 and seeds == worker_seeds(7, 64) and seeds != worker_seeds(8, 64)
