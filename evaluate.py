"""Play trained checkpoints on held-out environment seeds and write every episode's score.

    python evaluate.py pom_seed0 pom_seed1          # runs: models/RUN.nn + models/RUN/update_*.nn
    python evaluate.py 'pom_seed*'                   # every run models/pom_seed*.nn, the same way
    python evaluate.py models/pom_seed0.nn --n-seeds 20 --repetitions 2 --deterministic

Each checkpoint plays `repetitions` episodes on each environment seed HELD_OUT_SEED_START + i,
i < n_seeds: seeds that no training episode uses. The defaults come from each model's own
config (evaluation: n_seeds, repetitions, deterministic); the options override them.

The scores go to RUN_DIR/scores.csv, one tidy file per run covering all its evaluated
checkpoints (models/RUN.nn -> models/RUN/scores.csv), replacing that file; with --out FILE,
every row goes to FILE. aggregate.py and notebooks/evaluation.ipynb read these files.
"""
from __future__ import annotations

import preflight.process_setup  # noqa: F401  (before torch)

import argparse
import contextlib
import csv
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from config import BOUNDS, EnvironmentConfig, EvaluationConfig
from environments.episodes import (HELD_OUT_SEED_START, check_held_out, held_out_seeds)
from runs import paths
from runs.atomic import atomic_write
from utils import format_duration

# Seconds between two progress lines.
PROGRESS_SECONDS = 5.0


# --------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """How one checkpoint is evaluated."""
    n_seeds: int
    repetitions: int
    deterministic: bool


@dataclass(frozen=True)
class Checkpoint:
    """A model file to evaluate and what identifies its rows in the score file."""
    path: str
    run: str
    scores_path: str        # where its rows go unless --out says otherwise
    config_name: str        # the environment id: rliable's "task"
    seed_of_run: int        # the training seed: rliable's "run" within a configuration
    update: int
    steps: int
    settings: Settings

    @property
    def file_name(self) -> str:
        return os.path.basename(self.path)


@dataclass(frozen=True)
class SeedTask:
    """The unit of work a process gets: every repetition of one env seed of one checkpoint."""
    checkpoint: Checkpoint
    env_seed: int


@dataclass(frozen=True)
class EpisodeScore:
    checkpoint: Checkpoint
    env_seed: int
    repetition: int
    episode_return: float
    length: int
    success: Optional[float]          # None when the environment does not report it
    metrics: dict[str, float]         # the other numbers of the final info (Memory Gym's)

    def row(self) -> dict[str, object]:
        """The score file's row (columns: evaluation.EPISODE_COLUMNS, then the metrics)."""
        c = self.checkpoint
        return {"run": c.run, "config_name": c.config_name, "seed_of_run": c.seed_of_run,
                "checkpoint": c.file_name, "update": c.update, "steps": c.steps,
                "env_seed": self.env_seed, "repetition": self.repetition,
                "deterministic": c.settings.deterministic, "return": self.episode_return,
                "length": self.length, "success": "" if self.success is None else self.success,
                **self.metrics}


# --------------------------------------------------------------------------------------
# Per-episode action seeds
# --------------------------------------------------------------------------------------

def action_seed(seed_of_run: int, update: int, env_seed: int, repetition: int) -> int:
    """The torch seed of one episode's action sampling. It depends on what identifies the
    episode, not on the file's path or on which process plays it, so scores are the same
    for any --processes and after the files are moved."""
    entropy = [seed_of_run, update, env_seed, repetition]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


# --------------------------------------------------------------------------------------
# Which files: run names, patterns, paths
# --------------------------------------------------------------------------------------

def model_paths(targets: list[str], models_dir: str) -> list[str]:
    """Every model file the command line names, each once, in the order given."""
    files: list[str] = []
    for target in targets:
        files += [target] if paths.is_model_path(target) else \
            paths.run_checkpoints(target, models_dir)
    return list(dict.fromkeys(files))


# --------------------------------------------------------------------------------------
# Reading checkpoints (main process): every file is checked before any episode is played
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Overrides:
    """Command-line values that replace the model's config.evaluation (None = keep)."""
    n_seeds: Optional[int] = None
    repetitions: Optional[int] = None
    deterministic: Optional[bool] = None

    def settings(self, evaluation: EvaluationConfig) -> Settings:
        def pick(value, default):
            return default if value is None else value
        return Settings(pick(self.n_seeds, evaluation.n_seeds),
                        pick(self.repetitions, evaluation.repetitions),
                        pick(self.deterministic, evaluation.deterministic))


def read_checkpoint(path: str, overrides: Overrides
                    ) -> tuple[Checkpoint, dict, EnvironmentConfig]:
    """The Checkpoint record of a model file, its observation/action spec (a dict) and its
    environment config; ValueError naming the file when it is missing, not a model file, or
    incomplete."""
    from runs.checkpoint import load_model_file
    from runs.integrity import Entry, check_entries
    payload, config = load_model_file(path)
    check_entries(payload, [Entry("update", int), Entry("steps", int)], path)
    run, run_dir = paths.run_of(path)
    checkpoint = Checkpoint(path=path, run=run,
                            scores_path=os.path.join(run_dir, paths.SCORES_FILE),
                            config_name=config.environment.name, seed_of_run=config.seed,
                            update=int(payload["update"]), steps=int(payload["steps"]),
                            settings=overrides.settings(config.evaluation))
    return checkpoint, payload["spec"], config.environment


def check_spec(checkpoint: Checkpoint, spec: dict, env_config: EnvironmentConfig,
               cache: dict[str, dict]) -> None:
    """ValueError when the model's environment now has other observations or actions than
    the model was trained on. `cache` maps an env config's repr to its spec."""
    from env_backends import player_backend
    from runs.checkpoint import check_environment
    key = repr(env_config)
    if key not in cache:
        try:
            env = player_backend(env_config)
        except ValueError as e:
            raise ValueError(f"{checkpoint.path}: cannot build its environment: {e}") from None
        cache[key] = env.spec.to_dict()
        env.close()
    check_environment(checkpoint.path, spec, env_config, cache[key])


def read_checkpoints(files: list[str], overrides: Overrides) -> list[Checkpoint]:
    """Checked records, without a periodic checkpoint that repeats its run's final model
    (train.py writes the same snapshot to both when updates is a multiple of the interval)."""
    checkpoints, specs = [], {}
    for path in files:
        checkpoint, spec, env_config = read_checkpoint(path, overrides)
        check_spec(checkpoint, spec, env_config, specs)
        checkpoints.append(checkpoint)
    finals = {(c.run, c.update) for c in checkpoints
              if not paths.PERIODIC.fullmatch(c.file_name)}
    kept = []
    for c in checkpoints:
        if paths.PERIODIC.fullmatch(c.file_name) and (c.run, c.update) in finals:
            print(f"skipping {c.path}: the same update ({c.update}) as {c.run}.nn", flush=True)
            continue
        kept.append(c)
    return kept


def seed_tasks(checkpoints: list[Checkpoint]) -> list[SeedTask]:
    # Checkpoint by checkpoint, so that a process mostly keeps the model it has loaded.
    return [SeedTask(c, seed) for c in checkpoints for seed in held_out_seeds(c.settings.n_seeds)]


# --------------------------------------------------------------------------------------
# Playing (worker processes)
# --------------------------------------------------------------------------------------

class CheckpointPlayer:
    """Plays episodes of one checkpoint at a time, keeping its agent and environment loaded
    until a task of another checkpoint arrives."""

    def __init__(self):
        self.path: Optional[str] = None     # the checkpoint loaded, if any
        self.agent = None                   # agent.MemoryAgent of one environment
        self.env = None

    def _load(self, checkpoint: Checkpoint) -> None:
        import torch
        from agent import load_agent
        from env_backends import player_backend
        from runs.checkpoint import check_environment
        self.close()
        # Batch of one episode: a GPU would gain nothing, and the CPU keeps results exact.
        self.agent, config, spec = load_agent(checkpoint.path, 1, torch.device("cpu"))
        self.env = player_backend(config.environment, info_masks=spec.action_mask)
        check_environment(checkpoint.path, spec.to_dict(), config.environment,
                          self.env.spec.to_dict())
        self.path = checkpoint.path

    def play(self, task: SeedTask) -> list[EpisodeScore]:
        check_held_out([task.env_seed])
        if self.path != task.checkpoint.path:
            self._load(task.checkpoint)
        return [self._episode(task, repetition)
                for repetition in range(task.checkpoint.settings.repetitions)]

    def _episode(self, task: SeedTask, repetition: int) -> EpisodeScore:
        import torch
        c = task.checkpoint
        torch.manual_seed(action_seed(c.seed_of_run, c.update, task.env_seed, repetition))
        from agent import play_episode
        episode = play_episode(self.agent, self.env, task.env_seed, c.settings.deterministic)
        return EpisodeScore(c, task.env_seed, repetition, episode.total_return, episode.length,
                            episode.success, episode.metrics)

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
        self.path, self.agent, self.env = None, None, None


# The player of this worker process (set by _start_worker).
_player: Optional[CheckpointPlayer] = None


def _start_worker(allowed_env_ids: tuple[str, ...] = ()) -> None:
    import torch

    from runs.integrity import allow_env_ids
    allow_env_ids(allowed_env_ids)    # what the command line trusted, in this process too
    # Several processes share the cores; a batch of one gains nothing from more threads.
    torch.set_num_threads(1)
    global _player
    _player = CheckpointPlayer()


def _play_in_worker(task: SeedTask) -> list[EpisodeScore]:
    assert _player is not None, "_start_worker did not run in this process"
    try:
        return _player.play(task)
    except ValueError as e:
        where = task.checkpoint.path
        message = str(e) if str(e).startswith(where) else f"{where}: {e}"
        raise ValueError(f"{message} (env seed {task.env_seed})") from None


def play_all(tasks: list[SeedTask], processes: int, allowed_env_ids: tuple[str, ...] = ()
             ) -> Iterator[list[EpisodeScore]]:
    """Each task's episodes, in the order they finish. One process plays in this one."""
    if processes == 1:
        _start_worker(allowed_env_ids)
        try:
            yield from map(_play_in_worker, tasks)
        finally:
            _player.close()
        return
    with mp.get_context("spawn").Pool(processes, initializer=_start_worker,
                                      initargs=(allowed_env_ids,)) as pool:
        yield from pool.imap_unordered(_play_in_worker, tasks)


# --------------------------------------------------------------------------------------
# Progress and output
# --------------------------------------------------------------------------------------

class Progress:
    """Prints `episodes done/total, episodes/s, ETA` every PROGRESS_SECONDS and at the end."""

    def __init__(self, total: int, every: float = PROGRESS_SECONDS):
        self.total, self.every, self.done = total, every, 0
        self.start = self.last = time.time()

    def add(self, episodes: int) -> None:
        self.done += episodes
        now = time.time()
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate else float("inf")
            print(f"episodes {self.done:>7,}/{self.total:,}  {rate:8.1f} episodes/s  "
                  f"ETA {format_duration(eta)}", flush=True)


def evaluate(checkpoints: list[Checkpoint], processes: int,
             allowed_env_ids: tuple[str, ...] = ()) -> list[EpisodeScore]:
    tasks = seed_tasks(checkpoints)
    total = sum(c.settings.n_seeds * c.settings.repetitions for c in checkpoints)
    processes = max(1, min(processes, len(tasks)))
    runs = len({c.run for c in checkpoints})
    print(f"evaluating {len(checkpoints)} checkpoint(s) of {runs} run(s): {total:,} episodes "
          f"on held-out seeds from {HELD_OUT_SEED_START}, {processes} process(es)", flush=True)
    progress, scores = Progress(total), []
    for episodes in play_all(tasks, processes, allowed_env_ids):
        scores += episodes
        progress.add(len(episodes))
    return scores


def _sort_key(score: EpisodeScore):
    c = score.checkpoint
    return c.run, c.steps, c.file_name, score.env_seed, score.repetition


def write_csv(path: str, scores: list[EpisodeScore]) -> None:
    """Write atomically (a temporary file renamed), rows in a fixed order whatever order the
    processes finished in, so that two evaluations give identical files."""
    from evaluation.scores import EPISODE_COLUMNS
    metrics = sorted({key for s in scores for key in s.metrics} - set(EPISODE_COLUMNS))
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*EPISODE_COLUMNS, *metrics], restval="")
        writer.writeheader()
        for score in sorted(scores, key=_sort_key):
            writer.writerow(score.row())


def group_by_file(scores: list[EpisodeScore], out: Optional[str]) -> dict[str, list[EpisodeScore]]:
    files: dict[str, list[EpisodeScore]] = {}
    for score in scores:
        files.setdefault(out or score.checkpoint.scores_path, []).append(score)
    return files


def summary_line(path: str, scores: list[EpisodeScore]) -> str:
    """What was written, with each run's latest checkpoint's mean return (and success)."""
    checkpoints = {s.checkpoint for s in scores}
    parts = [f"wrote {path}: {len(scores):,} episodes of {len(checkpoints)} checkpoint(s)"]
    for run in sorted({c.run for c in checkpoints}):
        latest = max((c for c in checkpoints if c.run == run), key=lambda c: (c.steps, c.path))
        mine = [s for s in scores if s.checkpoint == latest]
        text = f"{run} {latest.file_name} ({latest.steps:,} steps): return " \
               f"{np.mean([s.episode_return for s in mine]):.3f}"
        successes = [s.success for s in mine if s.success is not None]
        if successes:
            text += f", success {np.mean(successes):.3f}"
        parts.append(text)
    return "\n  ".join(parts)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

# Far above any machine's cores.
MAX_PROCESSES = 1024


def parse_args(argv=None) -> argparse.Namespace:
    from preflight.arguments import nonempty
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="MODEL_OR_RUN", type=nonempty,
                        help="model files (*.nn), run names (models/RUN.nn and every "
                             "models/RUN/update_*.nn) or run-name patterns ('pom_seed*')")
    parser.add_argument("--n-seeds", type=int,
                        help="held-out env seeds per checkpoint (default: the model's "
                             "config.evaluation.n_seeds)")
    parser.add_argument("--repetitions", type=int,
                        help="episodes per seed (default: config.evaluation.repetitions)")
    parser.add_argument("--deterministic", action=argparse.BooleanOptionalAction,
                        help="most probable actions instead of sampled ones (default: "
                             "config.evaluation.deterministic)")
    parser.add_argument("--processes", type=int, default=min(2, len(os.sched_getaffinity(0))),
                        help="worker processes (default: %(default)s)")
    parser.add_argument("--out", type=nonempty,
                        help="write every row to this CSV file instead of RUN_DIR/scores.csv "
                             "per run")
    parser.add_argument("--models-dir", default="models", type=nonempty,
                        help="where run names are looked up (default: %(default)s)")
    parser.add_argument("--allow-env-id", action="append", default=[], type=nonempty,
                        metavar="ID", help="trust this module:Env-v0 id although a model "
                                           "file names it (gym.make imports module)")
    args = parser.parse_args(argv)
    # The counts the config's evaluation section bounds, with the same bounds.
    for name, limit in (("n_seeds", BOUNDS["evaluation.n_seeds"].high),
                        ("repetitions", BOUNDS["evaluation.repetitions"].high),
                        ("processes", MAX_PROCESSES)):
        value = getattr(args, name)
        if value is not None and not 1 <= value <= limit:
            parser.error(f"--{name.replace('_', '-')} {value}: must lie in [1, {limit:,}]")
    if args.out is not None and (os.path.isdir(args.out) or not args.out.endswith(".csv")):
        parser.error(f"--out {args.out}: must name a .csv file, not a folder")
    return args


def check_outputs(checkpoints: list[Checkpoint], out: Optional[str],
                  locks: contextlib.ExitStack) -> None:
    """Every score file must be writable before the first episode is played. A run's own
    score file (models/RUN/scores.csv) is written under the run's lock, held until `locks`
    closes: not while train.py trains the run (its --overwrite would delete the folder), not
    through a linked run folder (the scores would land in another run)."""
    from preflight.outputs import check_writable_file
    from runs.lock import check_not_linked, run_lock
    if out is not None:
        check_writable_file(out, "--out")
        return
    for path in sorted({c.scores_path for c in checkpoints}):
        folder = os.path.dirname(path)
        locks.enter_context(run_lock(folder, os.path.basename(folder),
                                     f"evaluate.py writing {path}"))
        check_not_linked([folder, path])
        check_writable_file(path, f"the score file of {folder}:")


def main(argv=None) -> int:
    from runs.integrity import allow_env_ids
    args = parse_args(argv)
    allow_env_ids(args.allow_env_id)
    overrides = Overrides(args.n_seeds, args.repetitions, args.deterministic)
    start = time.time()
    with contextlib.ExitStack() as locks:      # the locks of the runs whose scores it writes
        return evaluate_and_write(args, overrides, locks, start)


def evaluate_and_write(args: argparse.Namespace, overrides: Overrides,
                       locks: contextlib.ExitStack, start: float) -> int:
    from preflight.refusal import EXIT_REFUSED, error_line
    from runs.integrity import allowed_env_ids
    try:
        checkpoints = read_checkpoints(model_paths(args.models, args.models_dir), overrides)
        check_outputs(checkpoints, args.out, locks)
        if any(c.settings.deterministic and c.settings.repetitions > 1 for c in checkpoints):
            print("note: deterministic actions on a seeded environment repeat the same episode: "
                  "use --repetitions 1, or sampled actions", file=sys.stderr)
        scores = evaluate(checkpoints, args.processes, tuple(allowed_env_ids()))
    except ValueError as e:
        print(error_line(e), file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print("\ninterrupted: no score file written", file=sys.stderr)
        return 130
    for path, rows in group_by_file(scores, args.out).items():
        try:
            write_csv(path, rows)
        except OSError as e:
            print(error_line(f"writing {path} failed after the episodes were played: "
                             f"{e.strerror or e}"), file=sys.stderr)
            return 1
        print(summary_line(path, rows), flush=True)
    print(f"done in {format_duration(time.time() - start)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
