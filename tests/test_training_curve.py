"""scripts/training_curve.py against a hand-written TensorBoard log: every log folder of a run
counts, the later folder wins a step both cover, and the CSV holds the raw values."""
import csv
import os
import sys

from torch.utils.tensorboard import SummaryWriter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import training_curve as tc  # noqa: E402


def test_a_resumed_run_is_one_curve_and_the_later_folder_wins(tmp_path):
    for folder, points in (("20260101-000000", {0: 1.0, 10: 2.0, 20: 3.0}),
                           ("20260101-010000", {20: 5.0, 30: 7.0})):
        with SummaryWriter(str(tmp_path / "s" / "run" / folder)) as w:
            for step, value in points.items():
                w.add_scalar("episode/return", value, step)
    assert tc.scalars("run", str(tmp_path / "s"), "episode/return") == \
        [(0, 1.0), (10, 2.0), (20, 5.0), (30, 7.0)]
    assert tc.smooth([1.0, 3.0, 5.0], 2) == [1.0, 2.0, 4.0]
    out = tmp_path / "out" / "curve.png"
    assert tc.main(["run", "--summaries", str(tmp_path / "s"), "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    with open(tmp_path / "out" / "curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], float(r["episode/return"])) for r in rows][-1] == ("30", 7.0)
    assert tc.main(["missing", "--summaries", str(tmp_path / "s"), "--out", str(out)]) == 2
