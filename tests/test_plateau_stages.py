"""scripts/plateau_stages.py against a hand-written TensorBoard log of a run that walks at
random, settles on the plateau, learns to use the cue, to look, and solves the task."""
import csv
import os
import sys

import pytest
from torch.utils.tensorboard import SummaryWriter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import plateau_stages as ps  # noqa: E402

# (first update, success, cue_seen, explained variance, entropy, value loss) of each phase;
# 10 steps an update.
PHASES = [(0, 0.3, 0.7, -1.0, 1.0, 0.1), (20, 0.5, 0.17, 0.0, 0.5, 0.2),
          (60, 0.58, 0.17, 0.25, 0.3, 0.1), (100, 0.8, 0.7, 0.3, 0.2, 0.05),
          (140, 1.0, 1.0, 0.5, 0.1, 0.0)]
TAGS = ("episode/success", "episode/cue_seen", "value/explained_variance", "loss/entropy",
        "loss/value")


def write_run(summaries, run, phases, updates):
    with SummaryWriter(str(summaries / run / "20260101-000000")) as w:
        for update in range(updates):
            values = [p for p in phases if p[0] <= update][-1][1:]
            for tag, value in zip(TAGS, values):
                w.add_scalar(tag, value, update * 10)


def test_each_mark_is_the_first_step_its_trailing_mean_reaches_after_the_plateau(tmp_path):
    write_run(tmp_path / "s", "solved", PHASES, 180)
    write_run(tmp_path / "s", "stuck", PHASES[:2], 180)
    write_run(tmp_path / "s", "never_settles", PHASES[:1], 30)
    curves = {tag: ps.scalars("solved", str(tmp_path / "s"), tag) for tag in ps.PANELS}
    # The trailing mean of 10 updates crosses a threshold midway into the next phase: cue_seen
    # 0.7 -> 0.17 reaches 0.3 once 8 of 10 updates are 0.17 (update 27); explained variance
    # 0 -> 0.25 reaches 0.15 at 6 of 10 (update 65); cue_seen 0.17 -> 0.7 reaches 0.5 at 7 of
    # 10 (106); success 0.8 -> 1.0 reaches 0.9 at 5 of 10 (144).
    marks = ps.stages(curves)
    assert marks == {"plateau": 270, "uses the cue": 650, "looks": 1060, "solved": 1440}
    # On the plateau, updates 27-64: 33 of the second phase, 5 of the third.
    means = ps.plateau_means(curves, marks)
    assert means["entropy on it"] == pytest.approx((33 * 0.5 + 5 * 0.3) / 38)
    assert means["value loss on it"] == pytest.approx((33 * 0.2 + 5 * 0.1) / 38)
    out = tmp_path / "out" / "stages.png"
    assert ps.main(["solved", "stuck", "never_settles", "--summaries", str(tmp_path / "s"),
                    "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    with open(tmp_path / "out" / "stages.csv", newline="") as f:
        rows = {r["run"]: r for r in csv.DictReader(f)}
    assert rows["solved"]["solved"] == "1440" and rows["solved"]["steps"] == "1790"
    assert rows["stuck"]["plateau"] == "270" and rows["stuck"]["looks"] == ""
    assert float(rows["stuck"]["entropy on it"]) == pytest.approx(0.5)   # to the end
    assert rows["never_settles"]["plateau"] == "" and rows["never_settles"]["entropy on it"] == ""
    assert ps.main(["missing", "--summaries", str(tmp_path / "s"), "--out", str(out)]) == 2
