"""The memory table: every shipped memory on every CPU task, from the committed score files.

    python scripts/memory_table.py --list-missing     # cells short of 5 seeds, with CPU estimates
    python scripts/memory_table.py --train            # train those (cheapest first), then write
    python scripts/memory_table.py                    # rewrite docs/results.md's table and plots
    python scripts/memory_table.py --check            # exit 1 unless the page is what it writes

Rows are the memories (TrXL, GTrXL, GRU, LSTM, AGaLiTe, FFM, SHM, the selective SSM and the
memoryless control), columns the tasks (COLUMNS). A cell's runs are RUN_seed0..4, where RUN
is the column's run prefix plus the memory's suffix (`pom_gru`, `pg_count_recall_easy_ffm`;
TrXL has none). Its config is the column's shipped file for that memory
(configs/STEM_KIND.yaml) when there is one, else the TrXL file with the family's memory
settings (MEMORY_SETTINGS), so that every memory of a task trains with the same PPO settings.

Scores come from results/FOLDER/run_scores.csv (committed; it keeps the runs of earlier
checkouts, whose models/ are gone) and from models/RUN/scores.csv. `--train` trains each
missing seed, the cells cheapest to complete first (an interrupted run resumes from its
checkpoint; a finished one is only evaluated), evaluates it on held-out seeds and
aggregates the column's folder with aggregate.py after each run. The page and its plots
depend on the committed files alone: `--check` (the test) regenerates the text without
training or plotting. Parameter counts and each
memory's deviations from the TrXL config are computed from the configs
(results/memory_table/configs.csv, rewritten by every run without --check).
"""
from __future__ import annotations

import argparse
import csv
import glob
import os
import subprocess
import sys
from typing import Any, Iterable, NamedTuple, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

START, END = "<!-- memory-table:start -->", "<!-- memory-table:end -->"
OUT = "results/memory_table"
SEEDS = (0, 1, 2, 3, 4)
MEMORIES = ("trxl", "gtrxl", "gru", "lstm", "agalite", "ffm", "shm", "ssm", "none")
LABELS = {"trxl": "TrXL", "gtrxl": "GTrXL", "gru": "GRU", "lstm": "LSTM", "agalite": "AGaLiTe",
          "ffm": "FFM", "shm": "SHM", "ssm": "SSM", "none": "none"}
# The sections that only say which memory and how large; every other difference from the TrXL
# config is a deviation that the page lists.
MEMORY_KEYS = ("memory", "transformer", "recurrent", "agalite", "ffm", "shm", "ssm", "none",
               "seed", "checkpoint_interval", "step_timeout")
BOOTSTRAP_REPS = 10_000


class Column(NamedTuple):
    """One task of the table: where its configs, runs and scores are."""
    key: str            # the page's column header
    stem: str           # configs/STEM.yaml is TrXL's config, configs/STEM_KIND.yaml another's
    prefix: str         # run names: PREFIX[_KIND]_seedN
    folder: str         # results/FOLDER/run_scores.csv
    task: str           # the task's name in the score files
    low: float          # its worst and best score: normalised = (score - low) / (high - low)
    high: float
    metric: str
    interval: int       # updates between evaluated checkpoints
    evaluate: tuple[str, ...] = ()      # evaluate.py options beyond the config's own
    kind_names: bool = False            # the folder's aggregate names algorithms by memory
    updates: Optional[int] = None       # a CPU budget cut from the shipped config's


POPGYM = (("RepeatPrevious", "repeat_previous_easy", -1.0),
          ("RepeatFirst", "repeat_first_easy", -1.0),
          ("CountRecall", "count_recall_easy", -1.0),
          ("Autoencode", "autoencode_easy", -1.0),
          ("PosOnlyCartPole", "position_only_cartpole_easy", 0.0))
COLUMNS = (
    Column("ProofOfMemory", "proof_of_memory", "pom", "proof_of_memory", "ProofOfMemory-v0",
           0.0, 1.0, "return", 5),
    Column("MaskedCartPole", "cartpole_masked", "cartpole", "cartpole_masked", "CartPole-v1",
           0.0, 500.0, "return", 25, ("--n-seeds", "10", "--repetitions", "1",
                                      "--deterministic")),
    *(Column(key, f"popgym/{name}", f"pg_{name}", "popgym",
             "".join(w.capitalize() for w in name.split("_")).replace("Cartpole", "CartPole"),
             low, 1.0, "return", 25, kind_names=True) for key, name, low in POPGYM),
    Column("Pendulum-P", "pendulum_velocity_masked", "pendulum", "pendulum_p", "Pendulum-P-v1",
           -1600.0, 0.0, "return", 10),
    Column("HalfCheetah-V", "mujoco/half_cheetah_v", "half_cheetah_v", "half_cheetah_v",
           "HalfCheetah-V-v5", -500.0, 3000.0, "return", 14, updates=98),
)

# Memory sections for a memory without a shipped config of a task: one layer, 64 wide as the
# TrXL configs of these small vector tasks, with the LSTM's, FFM's and SHM's state sized so
# that the network has TrXL's parameter count within 5% on the POPGym tasks (GRU's and the
# SSM's are within 8% as they are). AGaLiTe's two GRU gates (Parisotto et al. 2019) cost
# 6 D^2 each: at width 64 the network had 2.6 times TrXL's parameters, at 36 it matches.
_SMALL = {
    "gtrxl": {"transformer.gtrxl": True, "transformer.layer_norm": "pre"},
    "gru": {"memory": "gru", "recurrent.hidden_size": 64, "recurrent.num_layers": 1},
    "lstm": {"memory": "lstm", "recurrent.hidden_size": 56, "recurrent.num_layers": 1},
    "agalite": {"memory": "agalite", "agalite.num_layers": 1, "agalite.embed_dim": 36,
                "agalite.num_heads": 4, "agalite.head_dim": 9, "agalite.eta": 4,
                "agalite.r": 2, "agalite.ffn_dim": 36},
    "ffm": {"memory": "ffm", "ffm.num_layers": 1, "ffm.embed_dim": 64, "ffm.memory_size": 24,
            "ffm.context_size": 4},
    "shm": {"memory": "shm", "shm.num_layers": 1, "shm.embed_dim": 64, "shm.memory_size": 48},
    "ssm": {"memory": "ssm", "ssm.num_layers": 1, "ssm.embed_dim": 64, "ssm.expand": 2,
            "ssm.head_dim": 16, "ssm.state_size": 16},
    "none": {"memory": "none", "none.embed_dim": 64},
}
MEMORY_SETTINGS: dict[str, dict[str, Any]] = _SMALL


def suffix(kind: str) -> str:
    return "" if kind == "trxl" else f"_{kind}"


def run_name(column: Column, kind: str) -> str:
    return column.prefix + suffix(kind)


# --------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------

class CellConfig(NamedTuple):
    """How a cell's runs are configured: a file and the settings applied to it."""
    path: str                       # relative to the repository root
    settings: dict[str, Any]        # dotted key -> value (train.py --set)

    @property
    def origin(self) -> str:
        sets = " ".join(f"{k}={_yaml_value(v)}" for k, v in self.settings.items())
        return f"{self.path} --set {sets}" if sets else self.path

    def load(self):
        from config import load_config
        return load_config(os.path.join(ROOT, self.path), dict(self.settings))


def _yaml_value(value: Any) -> str:
    from preflight.overrides import value_text
    return value_text(value)


SCHEDULES = ("learning_rate_schedule", "entropy_coefficient_schedule", "clip_range_schedule")


def cell_config(column: Column, kind: str) -> CellConfig:
    """The shipped file of this memory and task, else TrXL's with the memory's settings; a
    column with its own budget anneals the schedules over it."""
    budget = {} if column.updates is None else {
        "updates": column.updates,
        **{f"{name}.max_decay_steps": column.updates for name in SCHEDULES}}
    own = f"configs/{column.stem}{suffix(kind)}.yaml"
    if os.path.exists(os.path.join(ROOT, own)):
        return CellConfig(own, budget)
    return CellConfig(f"configs/{column.stem}.yaml", {**MEMORY_SETTINGS[kind], **budget})


def budget_steps(config) -> int:
    return config.updates * config.n_workers * config.worker_steps


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else key))
    return out


def deviations(config, reference) -> list[str]:
    """`key value (TrXL: value)` for every setting outside the memory sections that differs."""
    mine, theirs = _flat(config.to_dict()), _flat(reference.to_dict())
    keys = sorted(k for k in set(mine) | set(theirs)
                  if k.split(".")[0] not in MEMORY_KEYS and mine.get(k) != theirs.get(k))
    return [f"`{k}` {mine.get(k)} (TrXL: {theirs.get(k)})" for k in keys]


class ConfigRow(NamedTuple):
    """What configs.csv keeps of a cell's config."""
    column: str
    memory: str
    origin: str
    steps: int
    parameters: Optional[int]
    deviations: str                 # "; "-joined


def parameters(config) -> Optional[int]:
    """The network's parameter count for the task's spaces; None where the environment cannot
    be built here (a missing optional package)."""
    from environments import make_env, space_spec
    from trainer import count_parameters
    try:
        env = make_env(config.environment)
    except (ImportError, ValueError):
        return None
    try:
        return count_parameters(config, space_spec(env))
    finally:
        env.close()


def config_rows(columns: Iterable[Column] = COLUMNS) -> list[ConfigRow]:
    rows = []
    for column in columns:
        reference = cell_config(column, "trxl").load()
        for kind in MEMORIES:
            cell = cell_config(column, kind)
            config = cell.load()
            rows.append(ConfigRow(column.key, kind, cell.origin, budget_steps(config),
                                  parameters(config), "; ".join(deviations(config, reference))))
    return rows


def write_config_rows(rows: list[ConfigRow], path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(ConfigRow._fields)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])


def read_config_rows(path: str) -> dict[tuple[str, str], ConfigRow]:
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["column"], r["memory"]): ConfigRow(
                    r["column"], r["memory"], r["origin"], int(r["steps"]),
                    int(r["parameters"]) if r["parameters"] else None, r["deviations"])
                for r in csv.DictReader(f)}


# --------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------

def final_scores(root: str, column: Column, with_models: bool) -> dict[str, dict[int, tuple]]:
    """run prefix -> training seed -> (steps, score) of its latest evaluated checkpoint, from
    the folder's run_scores.csv and (with_models) the models' score files, which win."""
    import pandas as pd

    import evaluation as ev
    frames = []
    path = os.path.join(root, "results", column.folder, "run_scores.csv")
    if os.path.exists(path):
        frames.append(ev.read_run_scores(path, column.metric))
    files = glob.glob(os.path.join(root, "models", f"{column.prefix}*_seed*", "scores.csv"))
    if with_models and files:
        fresh = ev.run_scores(ev.load_scores(files), column.metric)
        frames = [ev.merge_earlier(fresh, frames[0]) if frames else fresh]
    if not frames:
        return {}
    table = pd.concat(frames, ignore_index=True)
    table = ev.final_scores(table[table["task"] == column.task])
    result: dict[str, dict[int, tuple]] = {}
    for row in table.itertuples():
        result.setdefault(ev.algorithm_of(row.run), {})[int(row.seed_of_run)] = (
            int(row.steps), float(row.score))
    return result


class Cell(NamedTuple):
    """A cell's runs that finished their budget: training seed -> normalised score."""
    column: Column
    memory: str
    steps: int                      # the budget
    scores: dict[int, float]

    @property
    def missing(self) -> list[int]:
        return [s for s in SEEDS if s not in self.scores]


def cells(root: str, budgets: dict[tuple[str, str], int], with_models: bool = False
          ) -> list[Cell]:
    out = []
    for column in COLUMNS:
        finals = final_scores(root, column, with_models)
        for kind in MEMORIES:
            steps = budgets[column.key, kind]
            runs = finals.get(run_name(column, kind), {})
            scale = column.high - column.low
            out.append(Cell(column, kind, steps, {
                seed: (score - column.low) / scale for seed, (at, score) in runs.items()
                if at >= steps}))
    return out


# --------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------

def cell_estimate(cell: Cell, reps: int = BOOTSTRAP_REPS, seed: int = 0):
    """IQM with a 95% percentile bootstrap interval over the cell's runs: on one task the
    stratified bootstrap (rliable) is a plain one, here drawn at once with numpy."""
    import numpy as np
    from scipy.stats import trim_mean

    import evaluation as ev
    scores = np.array([cell.scores[s] for s in sorted(cell.scores)])
    draws = np.random.default_rng(seed).integers(0, len(scores), (reps, len(scores)))
    # (reps, runs) resampled scores -> (reps,) IQMs: the mean of the middle 50%
    iqms = trim_mean(scores[draws], 0.25, axis=1)
    low, high = np.percentile(iqms, [2.5, 97.5])
    return ev.Estimate(float(trim_mean(scores, 0.25)), float(low), float(high))


def complete_columns(table: list[Cell]) -> list[Column]:
    """The columns in which every memory has all of SEEDS: what the aggregate covers."""
    return [c for c in COLUMNS
            if all(not cell.missing for cell in table if cell.column == c)]


def aggregate_matrices(table: list[Cell]):
    """rliable's input over the complete columns: memory -> (seeds, columns)."""
    import numpy as np

    import evaluation as ev
    columns = complete_columns(table)
    if not columns:
        return None
    by = {(cell.column.key, cell.memory): cell for cell in table}
    scores = {kind: np.array([[by[c.key, kind].scores[s] for c in columns] for s in SEEDS])
              for kind in MEMORIES}
    return ev.ScoreMatrices(scores, dict.fromkeys(MEMORIES, SEEDS),
                            tuple(c.key for c in columns), "normalised score", True)


# --------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------

def _cell_text(cell: Cell) -> str:
    if not cell.scores:
        return "not run"
    estimate = cell_estimate(cell)
    text = f"{estimate.point:.2f} [{estimate.low:.2f}, {estimate.high:.2f}]"
    n = len(cell.scores)
    return text if n == len(SEEDS) else f"{text} ({n}/{len(SEEDS)}, training)"


def score_table(table: list[Cell]) -> list[str]:
    by = {(cell.column.key, cell.memory): cell for cell in table}
    lines = ["| memory | " + " | ".join(c.key for c in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    for kind in MEMORIES:
        lines.append(f"| {LABELS[kind]} | "
                     + " | ".join(_cell_text(by[c.key, kind]) for c in COLUMNS) + " |")
    return lines


def aggregate_lines(table: list[Cell]) -> list[str]:
    import evaluation as ev
    matrices = aggregate_matrices(table)
    if matrices is None:
        return ["No column has all memories at 5 seeds yet: no aggregate."]
    estimates = ev.aggregate_estimates(matrices, BOOTSTRAP_REPS)
    lines = [f"Over the {len(matrices.tasks)} column(s) where every memory has 5 seeds "
             f"({', '.join(matrices.tasks)}), normalised scores:", "",
             "| memory | IQM | mean | optimality gap |", "|---|---|---|---|"]
    for kind in MEMORIES:
        e = estimates.estimates[kind]
        lines.append(f"| {LABELS[kind]} | {e['IQM']} | {e['mean']} | {e['optimality gap']} |")
    return lines


def budget_lines(rows: dict[tuple[str, str], ConfigRow]) -> list[str]:
    lines = ["| column | task | environment steps per run | TrXL config | scores |",
             "|---|---|---|---|---|"]
    for c in COLUMNS:
        steps = sorted({rows[c.key, kind].steps for kind in MEMORIES})
        lines.append(f"| {c.key} | {c.task} | {' / '.join(f'{s:,}' for s in steps)} | "
                     f"`{rows[c.key, 'trxl'].origin}` | {c.metric} in "
                     f"[{c.low:g}, {c.high:g}] |")
    return lines


def parameter_lines(rows: dict[tuple[str, str], ConfigRow]) -> list[str]:
    lines = ["| memory | " + " | ".join(c.key for c in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    for kind in MEMORIES:
        counts = [rows[c.key, kind].parameters for c in COLUMNS]
        lines.append(f"| {LABELS[kind]} | "
                     + " | ".join("–" if n is None else f"{n:,}" for n in counts) + " |")
    return lines


def deviation_lines(rows: dict[tuple[str, str], ConfigRow]) -> list[str]:
    """The memories that train TrXL's config with settings (grouped by the settings) and the
    settings outside the memory sections in which a config differs from TrXL's."""
    derived: dict[tuple[str, str], list[str]] = {}
    lines = []
    for c in COLUMNS:
        for kind in MEMORIES:
            row = rows[c.key, kind]
            path, _, sets = row.origin.partition(" --set ")
            budget = set(rows[c.key, "trxl"].origin.partition(" --set ")[2].split())
            if kind != "trxl" and path == f"configs/{c.stem}.yaml":
                own = " ".join(s for s in sets.split() if s not in budget)
                derived.setdefault((kind, own), []).append(c.key)
            if row.deviations:
                lines.append(f"- {c.key}, {LABELS[kind]} deviates: {row.deviations}")
    derived_lines = [f"- {LABELS[kind]} on {', '.join(columns)}: TrXL's config `--set {sets}`"
                     for (kind, sets), columns in derived.items()]
    return derived_lines + lines or ["- none"]


def page_section(table: list[Cell], rows: dict[tuple[str, str], ConfigRow],
                 page_dir: str) -> str:
    pngs = [(name, os.path.relpath(os.path.join(ROOT, OUT, f"{name}.png"), page_dir))
            for name in ("performance_profile", "probability_of_improvement")]
    body = [
        f"IQM of the normalised final score [95% bootstrap CI] over training seeds "
        f"{SEEDS[0]}-{SEEDS[-1]}, each evaluated on held-out seeds; a cell with fewer seeds "
        f"says how many it has. Generated by `python scripts/memory_table.py` from "
        f"results/*/run_scores.csv.", "", *score_table(table), "",
        "#### Aggregate over tasks", "", *aggregate_lines(table), "",
        *[f"![memory table: {name.replace('_', ' ')}]({rel})" for name, rel in pngs], "",
        "#### Budgets and configs", "", *budget_lines(rows), "",
        "Memories without a shipped config of a task train TrXL's config with these "
        "settings, and configs that differ from TrXL's outside the memory sections are "
        "listed:", "", *deviation_lines(rows), "",
        "#### Parameters", "", "Parameters of the whole network (encoder, memory, heads) "
        "for each task's observation and action spaces:", "", *parameter_lines(rows), ""]
    return "\n".join(body)


def rendered_page(page: str, section: str) -> str:
    if START not in page or END not in page:
        raise ValueError(f"the page lacks the markers {START} and {END}")
    head, rest = page.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + START + "\n" + section + END + tail


# --------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------

def write_plots(table: list[Cell], out: str) -> list[str]:
    """The performance profile and the matrix of P(row > column) over the complete columns."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from rliable import metrics as rm

    import evaluation as ev
    matrices = aggregate_matrices(table)
    if matrices is None:
        return []
    os.makedirs(out, exist_ok=True)
    colors = ev.algorithm_colors(MEMORIES)
    profile = ev.performance_profile(matrices)
    written = [os.path.join(out, "performance_profile.png"),
               os.path.join(out, "probability_of_improvement.png")]
    ev.plot_performance_profile(profile, colors).savefig(written[0], dpi=150,
                                                         bbox_inches="tight")
    p = np.array([[rm.probability_of_improvement(matrices.scores[x], matrices.scores[y])
                   if x != y else np.nan for y in MEMORIES] for x in MEMORIES])
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(p, vmin=0, vmax=1, cmap="RdBu")
    labels = [LABELS[k] for k in MEMORIES]
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i, j in np.ndindex(p.shape):
        if i != j:
            ax.text(j, i, f"{p[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if abs(p[i, j] - 0.5) > 0.3 else "black")
    fig.colorbar(image, label="P(row > column)")
    ax.set_title(f"Probability of improvement ({', '.join(matrices.tasks)})", fontsize=9)
    fig.savefig(written[1], dpi=150, bbox_inches="tight")
    plt.close("all")
    return written


# --------------------------------------------------------------------------------------
# Training the missing cells
# --------------------------------------------------------------------------------------

class Job(NamedTuple):
    """One missing run and its cost estimate."""
    column: Column
    memory: str
    seed: int
    seconds: float

    @property
    def run(self) -> str:
        return f"{run_name(self.column, self.memory)}_seed{self.seed}"


# Where a folder has no time of a memory yet: seconds per 100k steps on 2 busy cores.
FALLBACK_SECONDS_PER_100K = 150.0


def estimated_seconds(column: Column, kind: str, steps: int) -> float:
    """From results/FOLDER/training_time.csv: the memory's mean, else the slowest known
    memory of the folder (scaled to the steps), else FALLBACK_SECONDS_PER_100K."""
    path = os.path.join(ROOT, "results", column.folder, "training_time.csv")
    known: dict[str, float] = {}
    if os.path.exists(path):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                known[row["algorithm"]] = float(row["mean_seconds"]) * steps / int(row["steps"])
    name = kind if column.kind_names else run_name(column, kind)
    if name in known:
        return known[name]
    return max(known.values()) if known else FALLBACK_SECONDS_PER_100K * steps / 100_000


def missing_jobs(table: list[Cell]) -> list[Job]:
    """The runs the table lacks, the cells that are cheapest to complete first (a cell that
    lacks two seeds before one that lacks five), each cell's seeds in order."""
    jobs = []
    for cell in table:
        seconds = estimated_seconds(cell.column, cell.memory, cell.steps)
        jobs += [Job(cell.column, cell.memory, seed, seconds) for seed in cell.missing]
    cost = {}
    for j in jobs:
        cost[j.column.key, j.memory] = cost.get((j.column.key, j.memory), 0.0) + j.seconds
    return sorted(jobs, key=lambda j: (cost[j.column.key, j.memory], j.column.key,
                                       MEMORIES.index(j.memory), j.seed))


def _python() -> str:
    return os.environ.get("PYTHON", os.path.join(ROOT, ".venv", "bin", "python"))


def trained(run: str, updates: int) -> bool:
    """Has models/RUN.nn trained its budget?"""
    from runs.checkpoint import load_model_file
    path = os.path.join(ROOT, "models", f"{run}.nn")
    return os.path.exists(path) and load_model_file(path)[0]["update"] >= updates


def train_job(job: Job, step_timeout: Optional[int]) -> None:
    """Train (or resume) one run to its budget and evaluate every checkpoint of it."""
    cell = cell_config(job.column, job.memory)
    config = cell.load()
    models = os.path.join(ROOT, "models")
    started = (os.path.exists(os.path.join(models, f"{job.run}.nn"))
               or glob.glob(os.path.join(models, job.run, "update_*.nn")))
    if not trained(job.run, config.updates):
        if started:
            command = ["train.py", "--resume", job.run]
        else:
            sets = {**cell.settings, "checkpoint_interval": job.column.interval}
            if step_timeout:
                sets["step_timeout"] = step_timeout
            command = ["train.py", "--config", cell.path, "--run-id", job.run, "--seed",
                       str(job.seed), "--overwrite", "--set",
                       *(f"{k}={_yaml_value(v)}" for k, v in sets.items())]
        subprocess.run([_python(), *command], cwd=ROOT, check=True)
    subprocess.run([_python(), "evaluate.py", job.run, *job.column.evaluate], cwd=ROOT,
                   check=True)


def aggregate_folder(folder: str) -> None:
    """aggregate.py over a folder's runs (the models' score files and the committed
    run_scores.csv), so its own table, plots and run_scores.csv take the new runs in."""
    columns = [c for c in COLUMNS if c.folder == folder]
    prefixes = {run_name(c, kind) for c in columns for kind in MEMORIES}
    files = sorted(f for f in glob.glob(os.path.join(ROOT, "models", "*_seed*", "scores.csv"))
                   if os.path.basename(os.path.dirname(f)).rsplit("_seed", 1)[0] in prefixes)
    earlier = os.path.join(ROOT, "results", folder, "run_scores.csv")
    command = [_python(), "aggregate.py", *files, "--metric", columns[0].metric,
               "--out", os.path.join("results", folder), "--complete-only",
               "--max-score", *(f"{c.task}={c.high:g}" for c in columns),
               "--min-score", *(f"{c.task}={c.low:g}" for c in columns)]
    if os.path.exists(earlier):
        command += ["--earlier", earlier]
    name = (lambda kind: kind) if columns[0].kind_names else (
        lambda kind: run_name(columns[0], kind))
    if columns[0].kind_names:
        command += [f"--rename={run_name(c, k)}={k}" for c in columns for k in MEMORIES]
    for kind in MEMORIES[1:]:
        command += ["--compare", name("trxl"), name(kind)]
    for kind in MEMORIES[1:-1]:
        command += ["--compare", name(kind), name("none")]
    subprocess.run(command, cwd=ROOT, check=True)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def budgets_from(rows: dict[tuple[str, str], ConfigRow]) -> dict[tuple[str, str], int]:
    return {key: row.steps for key, row in rows.items()}


def print_missing(jobs: list[Job]) -> None:
    total = sum(j.seconds for j in jobs)
    for j in jobs:
        print(f"{j.column.key:16} {LABELS[j.memory]:8} seed {j.seed}  ~{j.seconds / 60:5.1f} min"
              f"  {j.run}")
    print(f"{len(jobs)} missing run(s), ~{total / 3600:.1f} CPU hours on 2 busy cores")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--list-missing", "--dry-run", action="store_true",
                      help="print the missing runs and their estimated CPU time; change nothing")
    mode.add_argument("--train", action="store_true",
                      help="train and evaluate the missing runs, then write the page")
    mode.add_argument("--check", action="store_true",
                      help="exit 1 unless the page's table is what the committed files give")
    parser.add_argument("--columns", nargs="+", metavar="COLUMN",
                        help="train only these columns (default: all)")
    parser.add_argument("--limit", type=int, help="train at most this many runs")
    parser.add_argument("--step-timeout", type=int,
                        help="step_timeout of new runs (86400 for background jobs)")
    parser.add_argument("--page", default=os.path.join(ROOT, "docs", "results.md"))
    args = parser.parse_args(argv)
    unknown = set(args.columns or ()) - {c.key for c in COLUMNS}
    if unknown:
        parser.error(f"--columns {' '.join(sorted(unknown))}: no such column; columns: "
                     f"{' '.join(c.key for c in COLUMNS)}")
    configs = os.path.join(ROOT, OUT, "configs.csv")
    if not args.check:
        write_config_rows(config_rows(), configs)
    rows = read_config_rows(configs)
    if args.list_missing or args.train:
        jobs = [j for j in missing_jobs(cells(ROOT, budgets_from(rows), with_models=True))
                if not args.columns or j.column.key in args.columns][:args.limit]
        print_missing(jobs)
        if args.list_missing:
            return 0
        for job in jobs:
            train_job(job, args.step_timeout)
            # After every run, not once at the end: a queue stopped with its session leaves
            # results/ (what is committed) up to date with the runs that finished.
            aggregate_folder(job.column.folder)
        if jobs:       # the per-task sections at the page's end, from the folders just written
            subprocess.run([_python(), "scripts/results_section.py", "--page", args.page],
                           cwd=ROOT, check=True)
    table = cells(ROOT, budgets_from(rows))
    with open(args.page, encoding="utf-8") as f:
        page = f.read()
    new = rendered_page(page, page_section(table, rows, os.path.dirname(args.page)))
    if args.check:
        if new != page:
            print(f"{args.page}: the memory table is not what the committed score files give; "
                  f"run python scripts/memory_table.py", file=sys.stderr)
            return 1
        return 0
    write_plots(table, os.path.join(ROOT, OUT))
    with open(args.page, "w", encoding="utf-8") as f:
        f.write(new)
    print(f"wrote the memory table into {args.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
