"""Write the generated part of docs/results.md from the evaluation outputs, never by hand.

    python scripts/results_section.py            # rewrites docs/results.md between the markers

For every folder results/TASK/ made by aggregate.py it takes the table (table.md), the
probabilities of improvement (improvement.csv), each configuration's training steps
(run_scores.csv) and training time (the runs' TensorBoard speed scalars), and the PNG plots.

summaries/ is not committed, so each task's training times are also kept in
results/TASK/training_time.csv: a checkout without the summaries of earlier runs
still shows their times, and a new seed's time is averaged with the stored ones.
"""
from __future__ import annotations

import argparse
import csv
import glob
import logging
import os
import sys
from typing import NamedTuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START, END = "<!-- results:start -->", "<!-- results:end -->"
MACHINE = "2 CPU cores (AMD EPYC, AVX2), 24 GiB, no GPU; torch 2.13.0+cpu"


def training_seconds(run: str, summaries: str) -> float | None:
    """The sum, over the newest TensorBoard folder of `run`, of each update's sampling and
    optimisation seconds. A pause between a stop and its resume does not count: the span of
    the event times did (12,965 s for Mortar Mayhem's control, trained for ~2,450 s).
    Checkpoint saves and logging, about 1% of a run, are left out."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    folders = sorted(glob.glob(os.path.join(summaries, run, "*")))
    if not folders:
        return None
    events = EventAccumulator(folders[-1]).Reload()
    if "speed/sampling_seconds" not in events.Tags()["scalars"]:
        return None
    return sum(e.value for tag in ("speed/sampling_seconds", "speed/optimisation_seconds")
               for e in events.Scalars(tag))


TIMES = "training_time.csv"     # algorithm, runs (space-separated), steps, mean_seconds


class Training(NamedTuple):
    """One configuration's runs, as the table reports them."""
    steps: int                 # environment steps of its runs' final checkpoints
    seconds: float | None      # mean training time per run; None when not known
    runs: list[str]


def stored_times(folder: str) -> dict[str, dict]:
    """algorithm -> its row of results/TASK/training_time.csv, as last written."""
    path = os.path.join(folder, TIMES)
    if not os.path.exists(path):
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {row["algorithm"]: row for row in csv.DictReader(f)}


def mean_seconds(runs: list[str], steps: int, measured: dict[str, float],
                 stored: dict | None) -> float | None:
    """Mean training time of `runs`, each trained to `steps`: from their summaries where
    every run has one, else the stored mean of the runs that lost theirs, if it was taken at
    the same steps, weighted with the runs measured now. None when neither covers a run."""
    if all(r in measured for r in runs):
        return sum(measured[r] for r in runs) / len(runs)
    if stored is None or int(stored["steps"]) != steps:
        return None
    old = set(stored["runs"].split())
    new = set(runs) - old
    if not old <= set(runs) or not new <= set(measured):
        return None
    return (float(stored["mean_seconds"]) * len(old) + sum(measured[r] for r in new)) / len(runs)


def per_algorithm(folder: str, summaries: str) -> dict[str, Training]:
    """algorithm -> its steps, mean training time and runs."""
    latest: dict[str, dict] = {}
    with open(os.path.join(folder, "run_scores.csv"), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            best = latest.get(row["run"])
            if best is None or int(row["steps"]) > int(best["steps"]):
                latest[row["run"]] = row
    stored = stored_times(folder)
    result = {}
    for algorithm in sorted({r["algorithm"] for r in latest.values()}):
        runs = sorted(r["run"] for r in latest.values() if r["algorithm"] == algorithm)
        steps = int(latest[runs[0]]["steps"])
        measured = {r: t for r in runs if (t := training_seconds(r, summaries))}
        result[algorithm] = Training(
            steps, mean_seconds(runs, steps, measured, stored.get(algorithm)), runs)
    return result


def write_times(folder: str, rows: dict[str, Training]) -> None:
    """Keep the times that are known for a later checkout without summaries/ (no file when
    none is known)."""
    if not any(row.seconds for row in rows.values()):
        return
    with open(os.path.join(folder, TIMES), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["algorithm", "runs", "steps", "mean_seconds"])
        for algorithm, row in rows.items():
            if row.seconds:
                writer.writerow([algorithm, " ".join(row.runs), row.steps, f"{row.seconds:.1f}"])


def task_section(folder: str, summaries: str, page_dir: str) -> str:
    """One task's tables and plots; image links are relative to `page_dir`, the folder of the
    page they go into, so they render on a code host."""
    task = os.path.basename(folder.rstrip("/"))
    lines = [f"### {task}", ""]
    with open(os.path.join(folder, "table.md"), encoding="utf-8") as f:
        table, _, caption = f.read().partition("\n\n")
    lines += [table.strip(), "", caption.strip(), ""]
    lines += ["| algorithm | environment steps per run | mean training time per run |",
              "|---|---|---|"]
    rows = per_algorithm(folder, summaries)
    write_times(folder, rows)
    for algorithm, row in rows.items():
        seconds = f"{row.seconds:.0f} s" if row.seconds else "–"
        lines.append(f"| {algorithm} | {row.steps:,} | {seconds} |")
    improvement = os.path.join(folder, "improvement.csv")
    if os.path.exists(improvement):
        with open(improvement, newline="", encoding="utf-8") as f:
            lines += [""] + [f"- P({r['x']} > {r['y']}) = {float(r['probability']):.3f} "
                             f"[{float(r['low']):.3f}, {float(r['high']):.3f}]"
                             for r in csv.DictReader(f)]
    lines.append("")
    for png in sorted(glob.glob(os.path.join(folder, "*.png"))):
        rel = os.path.relpath(png, page_dir)
        lines.append(f"![{task}: {os.path.basename(png)[:-4].replace('_', ' ')}]({rel})")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--page", default=os.path.join(ROOT, "docs", "results.md"),
                        help="the Markdown file whose text between the markers is replaced")
    parser.add_argument("--summaries", default=os.path.join(ROOT, "summaries"))
    parser.add_argument("--results", default=os.path.join(ROOT, "results"),
                        help="aggregate.py's output folders, one per task")
    args = parser.parse_args(argv)
    # A resumed run's folder holds a purge marker, which TensorBoard's reader reports as an
    # "out of order" warning per run: expected here, and it buried the script's output.
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    folders = sorted(glob.glob(os.path.join(args.results, "*", "table.md")))
    if not folders:
        print(f"error: no {args.results}/*/table.md; run aggregate.py first", file=sys.stderr)
        return 2
    body = [f"Machine: {MACHINE}.", ""]
    page_dir = os.path.dirname(os.path.abspath(args.page))
    body += [task_section(os.path.dirname(f), args.summaries, page_dir) for f in folders]
    with open(args.page, encoding="utf-8") as f:
        page = f.read()
    if START not in page or END not in page:
        print(f"error: {args.page} lacks the markers {START} and {END}", file=sys.stderr)
        return 2
    head, rest = page.split(START, 1)
    _, tail = rest.split(END, 1)
    with open(args.page, "w", encoding="utf-8") as f:
        f.write(head + START + "\n" + "\n".join(body) + END + tail)
    print(f"wrote the results of {len(folders)} task(s) into {args.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
