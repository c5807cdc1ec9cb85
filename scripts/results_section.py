"""Write the README's results section from the evaluation outputs, never by hand.

    python scripts/results_section.py            # rewrites README.md between the markers

For every folder results/TASK/ made by aggregate.py it takes the table (table.md), the
probabilities of improvement (improvement.csv), each configuration's training steps
(run_scores.csv) and training time (the runs' TensorBoard speed scalars), and the PNG plots.
"""
from __future__ import annotations

import argparse
import csv
import glob
import logging
import os
import sys

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


def per_algorithm(run_scores: str, summaries: str) -> dict[str, tuple[int, float | None]]:
    """algorithm -> (environment steps of its runs' final checkpoints, mean training
    seconds)."""
    latest: dict[str, dict] = {}
    with open(run_scores, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            best = latest.get(row["run"])
            if best is None or int(row["steps"]) > int(best["steps"]):
                latest[row["run"]] = row
    result = {}
    for algorithm in sorted({r["algorithm"] for r in latest.values()}):
        runs = [r for r in latest.values() if r["algorithm"] == algorithm]
        times = [t for t in (training_seconds(r["run"], summaries) for r in runs) if t]
        result[algorithm] = (int(runs[0]["steps"]), sum(times) / len(times) if times else None)
    return result


def task_section(folder: str, summaries: str) -> str:
    task = os.path.basename(folder.rstrip("/"))
    lines = [f"### {task}", ""]
    with open(os.path.join(folder, "table.md"), encoding="utf-8") as f:
        table, _, caption = f.read().partition("\n\n")
    lines += [table.strip(), "", caption.strip(), ""]
    lines += ["| algorithm | environment steps per run | mean training time per run |",
              "|---|---|---|"]
    for algorithm, (steps, seconds) in per_algorithm(os.path.join(folder, "run_scores.csv"),
                                                     summaries).items():
        lines.append(f"| {algorithm} | {steps:,} | {f'{seconds:.0f} s' if seconds else '–'} |")
    improvement = os.path.join(folder, "improvement.csv")
    if os.path.exists(improvement):
        with open(improvement, newline="", encoding="utf-8") as f:
            lines += [""] + [f"- P({r['x']} > {r['y']}) = {float(r['probability']):.3f} "
                             f"[{float(r['low']):.3f}, {float(r['high']):.3f}]"
                             for r in csv.DictReader(f)]
    lines.append("")
    for png in sorted(glob.glob(os.path.join(folder, "*.png"))):
        rel = os.path.relpath(png, ROOT)
        lines.append(f"![{task}: {os.path.basename(png)[:-4].replace('_', ' ')}]({rel})")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
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
    body += [task_section(os.path.dirname(f), args.summaries) for f in folders]
    with open(args.readme, encoding="utf-8") as f:
        readme = f.read()
    if START not in readme or END not in readme:
        print(f"error: {args.readme} lacks the markers {START} and {END}", file=sys.stderr)
        return 2
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    with open(args.readme, "w", encoding="utf-8") as f:
        f.write(head + START + "\n" + "\n".join(body) + END + tail)
    print(f"wrote the results of {len(folders)} task(s) into {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
