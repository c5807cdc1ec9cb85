"""The aggregate table as text: a caption, aligned columns for a terminal, Markdown, and a
frame with one column per number (table.csv)."""
from __future__ import annotations

import pandas as pd

from evaluation.statistics import AggregateTable


def describe(table: AggregateTable) -> str:
    """A caption: what the numbers are."""
    # (score - min) / (max - min) per task; min is 0 unless given, i.e. score / max score.
    scale = " normalised to its task's [min, max] score range" if table.normalised else ""
    tasks = f"{len(table.tasks)} task(s): {', '.join(table.tasks)}"
    return (f"{table.metric}{scale} of each run's latest checkpoint on {tasks}; point estimate "
            f"[{table.confidence:.0%} CI], stratified bootstrap over runs, {table.reps:,} "
            f"resamples")


def table_frame(table: AggregateTable) -> pd.DataFrame:
    """The table with one column per number: algorithm, runs, IQM, IQM_low, IQM_high, ..."""
    rows = []
    for algorithm, estimates in table.estimates.items():
        row = {"algorithm": algorithm, "runs": table.runs[algorithm]}
        for name, e in estimates.items():
            row.update({name: e.point, f"{name}_low": e.low, f"{name}_high": e.high})
        rows.append(row)
    return pd.DataFrame(rows)


def _cells(table: AggregateTable) -> tuple[list[str], list[list[str]]]:
    header = ["algorithm", "runs", *table.aggregates]
    rows = [[algorithm, str(table.runs[algorithm]), *(str(e) for e in estimates.values())]
            for algorithm, estimates in table.estimates.items()]
    return header, rows


def table_text(table: AggregateTable) -> str:
    """The table in aligned columns, for a terminal."""
    header, rows = _cells(table)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    return "\n".join([describe(table), *lines])


def table_markdown(table: AggregateTable) -> str:
    header, rows = _cells(table)
    lines = ["| " + " | ".join(row) + " |" for row in [header, ["---"] * len(header), *rows]]
    return "\n".join([*lines, "", describe(table) + "."])
