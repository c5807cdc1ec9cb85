"""Where a run's files go, by name. Output paths come from the run id and the command line,
never from a file's content.

    models/RUN.nn                      the last completed update (what --resume RUN continues)
    models/RUN/update_NNNNNN.nn        every checkpoint_interval updates, for learning curves
    models/RUN/scores.csv              evaluate.py's scores of the run's checkpoints
    summaries/RUN/YYYYmmdd-HHMMSS/     TensorBoard; a resumed run continues its folder
"""
from __future__ import annotations

import glob
import os
import re
import time
from typing import Optional

from preflight.refusal import RefusedInput, short

MODEL_SUFFIX = ".nn"
SCORES_FILE = "scores.csv"
PERIODIC = re.compile(r"update_(\d+)\.nn")
LOG_STAMP = re.compile(r"\d{8}-\d{6}")
# A run id names a file and a folder: short, and free of characters that a shell, glob or
# terminal would interpret.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=@,-]{0,99}")


def check_run_id(run_id: str) -> None:
    """RefusedInput unless `run_id` can name a file and a folder as it is."""
    if not RUN_ID.fullmatch(run_id):
        raise RefusedInput(
            f"--run-id {short(run_id)}: must be a plain name of at most 100 letters, digits "
            f"and . _ + = @ , - (no slashes, spaces, control or glob characters, not hidden). "
            f"Fix: e.g. --run-id pom_trxl")


def model_file(models_dir: str, run: str) -> str:
    return os.path.join(models_dir, f"{run}{MODEL_SUFFIX}")


def run_folder(models_dir: str, run: str) -> str:
    return os.path.join(models_dir, run)


def periodic_file(models_dir: str, run: str, update: int) -> str:
    return os.path.join(run_folder(models_dir, run), f"update_{update:06d}{MODEL_SUFFIX}")


def periodic_files(models_dir: str, run: str) -> list[str]:
    """The run's periodic checkpoints, in update order."""
    return sorted(glob.glob(os.path.join(glob.escape(models_dir), glob.escape(run),
                                         f"update_*{MODEL_SUFFIX}")))


def scores_file(models_dir: str, run: str) -> str:
    return os.path.join(run_folder(models_dir, run), SCORES_FILE)


def new_log_folder(summaries_dir: str, run: str) -> str:
    """summaries/RUN/<now>: a new run's TensorBoard folder."""
    return os.path.join(summaries_dir, run, time.strftime("%Y%m%d-%H%M%S"))


def continued_log_folder(log_folder: str, recorded: object) -> str:
    """The TensorBoard folder a resumed run writes on in: the recorded folder's timestamp
    under this run's summaries/RUN/ (only the timestamp comes from the file, which never
    chooses where anything is written), else `log_folder`."""
    stamp = os.path.basename(str(recorded))
    if LOG_STAMP.fullmatch(stamp):
        return os.path.join(os.path.dirname(log_folder), stamp)
    return log_folder


def latest_model_file(models_dir: str, run: str) -> Optional[str]:
    """The newest of models_dir/RUN.nn and RUN/update_*.nn, or None. Trainer writes the
    periodic file before RUN.nn, so a kill between the two leaves RUN.nn one interval behind."""
    files = [model_file(models_dir, run)] + periodic_files(models_dir, run)
    saved = [path for path in files if os.path.isfile(path)]
    return max(saved, key=os.path.getmtime) if saved else None


def run_paths(models_dir: str, summaries_dir: str, run: str) -> list[str]:
    """The files and folders a run owns: models/RUN.nn, models/RUN/, summaries/RUN/."""
    return [model_file(models_dir, run), run_folder(models_dir, run),
            os.path.join(summaries_dir, run)]


def owned_paths(models_dir: str, summaries_dir: str, run: str) -> list[str]:
    """The run_paths that exist."""
    return [path for path in run_paths(models_dir, summaries_dir, run) if os.path.lexists(path)]


def run_in(path: str, models_dir: str) -> Optional[str]:
    """The run of `models_dir` that `path` is a checkpoint of (models/RUN.nn or
    models/RUN/update_N.nn); None for a file elsewhere."""
    # The file's own name and its run folder's name are not resolved: a link
    # models/alias.nn -> other.nn is run "alias" (whose files are links, which a run refuses
    # to write through), not run "other" continued without a word.
    folder, name = os.path.split(os.path.abspath(path))
    models = os.path.realpath(models_dir)
    if os.path.realpath(folder) == models and name.endswith(MODEL_SUFFIX):
        return name[:-len(MODEL_SUFFIX)]
    if PERIODIC.fullmatch(name) and os.path.realpath(os.path.dirname(folder)) == models:
        return os.path.basename(folder)
    return None


def run_of(path: str) -> tuple[str, str]:
    """(run name, run folder) of a model file wherever it lies: models/RUN.nn and
    models/RUN/update_*.nn are run RUN, whose folder models/RUN/ holds its periodic
    checkpoints and its score file."""
    folder, name = os.path.split(path)
    if PERIODIC.fullmatch(name) and os.path.basename(folder):
        return os.path.basename(folder), folder
    stem = name[:-len(MODEL_SUFFIX)] if name.endswith(MODEL_SUFFIX) else name
    return stem, os.path.join(folder, stem)


def is_model_path(target: str) -> bool:
    """A model file's path rather than a run name (which has no folder and no .nn)."""
    return target.endswith(MODEL_SUFFIX) or "/" in target or os.sep in target


def run_checkpoints(name: str, models_dir: str) -> list[str]:
    """models_dir/NAME/update_*.nn in update order, then models_dir/NAME.nn; a NAME with
    * ? or [ is a pattern over the run names in models_dir. ValueError when none exists."""
    if glob.has_magic(name):
        matches = sorted(glob.glob(model_file(models_dir, name)))
        if not matches:
            raise ValueError(f"no run in {models_dir}/ matches {name!r} (looked for "
                             f"{model_file(models_dir, name)}). Fix: pass run names "
                             f"that train.py wrote, or --models-dir.")
        return [path for match in matches
                for path in run_checkpoints(os.path.basename(match)[:-len(MODEL_SUFFIX)],
                                            models_dir)]
    final = model_file(models_dir, name)
    periodic = periodic_files(models_dir, name)
    if not periodic and not os.path.isfile(final):
        raise ValueError(f"{final}: no such model file, and no periodic checkpoints in "
                         f"{run_folder(models_dir, name)}/. Fix: pass a run name that "
                         f"train.py wrote (see {models_dir}/) or the path of a model file.")
    return periodic + ([final] if os.path.isfile(final) else [])
