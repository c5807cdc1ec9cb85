"""Train a PPO agent with TrXL/GTrXL episodic memory.

    python train.py                                   # the proof-of-memory task
    python train.py --config configs/minigrid_memory.yaml --run-id minigrid --seed 1
    python train.py --config configs/proof_of_memory.yaml --run-id pom --seeds 0 1 2 3 4
    python train.py --config configs/minigrid_memory.yaml --run-id m64 \
        --set transformer.memory_length=64 learning_rate_schedule.initial=1.0e-4
    python train.py --resume models/minigrid.nn      # continue exactly where it stopped
    python train.py --config configs/minigrid_memory.yaml --run-id minigrid --overwrite

--set KEY=VALUE overrides any config value (dotted keys as in docs/configuration.md, YAML
values), checked as the file is; the run's TensorBoard config records what it set. A run id
that exists is refused (resume it, or --overwrite deletes its files first). Bad
input of any kind is refused before a worker starts, with one `error:` line and exit status
2 (docs/reliability.md); so is a second process on a run in use (models/RUN.lock). Ctrl-C,
SIGTERM or SIGHUP saves the last completed update and stops the workers; a second Ctrl-C
exits at once.

    torchrun --nproc-per-node 2 train.py --config configs/minigrid_memory.yaml

runs one data-parallel run of 2 ranks, each stepping half of n_workers (docs/scaling.md);
rank 0 alone checks the command line, holds the run's lock and writes its files.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from typing import Optional

import preflight.process_setup  # noqa: F401  (before torch)
from preflight.refusal import EXIT_REFUSED, RefusedInput, error_line
from runs import paths
from runs.atomic import STOP_SIGNALS

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs",
                              "proof_of_memory.yaml")


def parse_args(argv=None) -> argparse.Namespace:
    from config import BOUNDS
    from preflight.arguments import nonempty, seed_value
    from preflight.overrides import parse_setting, repeated_key
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=nonempty,
                        help="YAML config file (default: the proof-of-memory task)")
    parser.add_argument("--run-id", type=nonempty,
                        help="names models/RUN.nn and summaries/RUN/ (default: run)")
    parser.add_argument("--seed", type=seed_value, help="overrides the config's seed")
    parser.add_argument("--seeds", type=seed_value, nargs="+",
                        help="train one run per seed, one after another: RUN_seedN")
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"],
                        help="overrides the config's device")
    parser.add_argument("--updates", type=int, help="overrides the config's number of updates")
    parser.add_argument("--set", nargs="+", action="extend", default=[], type=parse_setting,
                        metavar="KEY=VALUE",
                        help="override config values: dotted keys as in docs/configuration.md, "
                             "YAML values, e.g. transformer.memory_length=64")
    parser.add_argument("--resume", metavar="MODEL_OR_RUN", type=nonempty,
                        help="continue a run from models/RUN.nn (a path or a run id)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start the run although RUN exists, deleting its models/RUN.nn, "
                             "models/RUN/ and summaries/RUN/ first")
    parser.add_argument("--allow-env-id", action="append", default=[], type=nonempty,
                        metavar="ID", help="trust this module:Env-v0 id although the model "
                                           "file of --resume names it (gym.make imports module)")
    parser.add_argument("--models-dir", default="models", type=nonempty)
    parser.add_argument("--summaries-dir", default="summaries", type=nonempty)
    args = parser.parse_args(argv)
    if args.run_id is not None:
        try:
            paths.check_run_id(args.run_id)
        except RefusedInput as e:
            parser.error(str(e))
    updates = BOUNDS["updates"]
    if args.updates is not None and not updates.low <= args.updates <= updates.high:
        parser.error(f"--updates {args.updates}: must be at least {updates.low} (and at most "
                     f"{updates.high:,})")
    if args.seed is not None and args.seeds:
        parser.error("--seed and --seeds: give one or the other")
    if args.resume and (args.config or args.seeds or args.seed is not None or args.set):
        parser.error("--resume continues a run with its own config and seed: drop --config, "
                     "--seed, --seeds and --set")
    repeated = repeated_key(setting.key for setting in args.set)
    if repeated:
        parser.error(f"--set {repeated}: the key is given twice")
    for setting in args.set:
        flag = {"seed": "--seed", "device": "--device", "updates": "--updates"}.get(setting.key)
        if flag and (getattr(args, setting.key) is not None or flag == "--seed" and args.seeds):
            parser.error(f"--set {setting.text} and {flag}: give one or the other")
    return args


# The stop signals other than Ctrl-C's SIGINT, which raises KeyboardInterrupt by itself, are
# handled like it: a kill's default, and the terminal or SSH session closing (SIGHUP).
# SIGQUIT and SIGUSR1 keep Python's defaults (a core dump, and ending the process).
LIKE_CTRL_C = tuple(signum for signum in STOP_SIGNALS if signum != signal.SIGINT)


class Interrupts:
    """SIGTERM and SIGHUP are handled like Ctrl-C; after the first, a second one exits at
    once. A rank of a torchrun launch (`launched`) ignores the second instead: torchrun
    itself sends it (SIGINT, then SIGTERM to the rest when one rank stops), and kills what
    is left after its own timeout, so the first signal's save must not be cut short."""

    def __init__(self, launched: bool = False):
        self.launched = launched

    def __enter__(self) -> "Interrupts":
        self.previous = {signum: signal.signal(signum, self._first) for signum in LIKE_CTRL_C}
        return self

    def _first(self, signum, frame):
        if self.launched:
            self.escalate()
        raise KeyboardInterrupt

    def escalate(self) -> None:
        if self.launched:
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
            return

        def second(signum, frame):
            print("\nsecond interrupt: exiting now, without saving", file=sys.stderr, flush=True)
            os._exit(130)
        for signum in STOP_SIGNALS:
            signal.signal(signum, second)

    def __exit__(self, *exc) -> None:
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)


@dataclass(frozen=True)
class PlannedRun:
    """A run the command line asks for, checked and its run id claimed."""
    config: object                  # config.Config
    run_id: str
    resume: Optional[dict]          # the checkpoint's payload it continues, if any
    origin: str                     # where the config came from, for the run's summaries
    resume_path: Optional[str] = None   # the checkpoint's file, named when it is refused


def train_one(run: PlannedRun, args, ranks) -> int:
    from trainer import Trainer
    config, run_id = run.config, run.run_id
    with Interrupts(launched=ranks.distributed) as interrupts:
        try:
            trainer = Trainer(config, run_id, args.models_dir, args.summaries_dir, run.resume,
                              origin=run.origin, ranks=ranks)
        except KeyboardInterrupt:
            print("\ninterrupted while starting: nothing to save", file=sys.stderr)
            return 130
        except ValueError as e:     # a checkpoint that does not fit, an env space no model takes
            print(error_line(f"{run.resume_path}: {e}" if run.resume_path else e),
                  file=sys.stderr)
            return EXIT_REFUSED
        if ranks.is_main:
            print(f"run {run_id}: {config.environment.type}/{config.environment.name}, "
                  f"{config.n_workers} workers x {config.worker_steps} steps"
                  f"{f' on {ranks.world_size} ranks' if ranks.distributed else ''}, update "
                  f"{trainer.update}/{config.updates}, device {trainer.device}, "
                  f"{trainer.threads} torch threads, seed {config.seed}; config {run.origin}",
                  flush=True)
        start = time.time()
        status = run_until_stopped(trainer, interrupts, ranks)
        if not ranks.is_main:
            return status
        saved = trainer.snapshot
        try:
            path = trainer.save()
        except OSError as e:
            print(error_line(f"could not save update {saved['update']} to "
                             f"{trainer.model_path}: {describe_os_error(e)}. "
                             f"{kept_checkpoint(args.models_dir, run_id)}"),
                  file=sys.stderr, flush=True)
            return 1
        launcher = f"torchrun --nproc-per-node {ranks.world_size} train.py" \
            if ranks.distributed else "python train.py"
        resume_hint = f"; continue with: {launcher} --resume {path}" if status else ""
        # The saved snapshot's counters: an interrupt can land between an update's counters.
        with contextlib.suppress(OSError):
            print(f"saved {path} after {saved['update']} updates, {saved['steps']:,} steps, "
                  f"{time.time() - start:.0f} s{resume_hint}", flush=True)
        return status


def run_until_stopped(trainer, interrupts: Interrupts, ranks) -> int:
    """Train to the end (status 0) or until a signal, an OS error or a failure stops the
    run (130 or 1), then close the workers and summaries. A stop signal that lands while
    the run is already stopping on an error (a rank whose collective failed gets torchrun's
    SIGTERM as it starts to save) only confirms the stop."""
    try:
        return _train_and_close(trainer, interrupts, ranks)
    except KeyboardInterrupt:
        interrupts.escalate()
        return 130


def _train_and_close(trainer, interrupts: Interrupts, ranks) -> int:
    from trainer import NonFiniteError
    status = 0
    try:
        trainer.run()
    except KeyboardInterrupt:
        interrupts.escalate()
        if ranks.is_main:   # rank 0 saves every rank's state; the others just stop
            # After SIGHUP the terminal may be gone: the save must not depend on printing.
            with contextlib.suppress(OSError):
                print(f"\ninterrupted: saving update {trainer.snapshot['update']}", flush=True)
        status = 130
    except OSError as e:
        # models/ or summaries/ became read-only or full: stop, keep what is on disk.
        interrupts.escalate()
        print(error_line(f"the run stopped on an OS error after update "
                         f"{trainer.snapshot['update']}: {describe_os_error(e)}"),
              file=sys.stderr, flush=True)
        status = 1
    except (NonFiniteError, RuntimeError) as e:
        # On several ranks also a collective that failed: another rank stopped.
        interrupts.escalate()
        saving = f"saving the last completed update ({trainer.snapshot['update']})" \
            if ranks.is_main else f"rank {ranks.rank} stops"
        print(f"error: {e}\n{saving}", file=sys.stderr, flush=True)
        status = 1
    finally:
        try:
            trainer.close()
        except OSError as e:     # the last TensorBoard events could not be flushed
            print(error_line(f"closing the summaries failed: {describe_os_error(e)}"),
                  file=sys.stderr, flush=True)
            status = status or 1
    return status


def describe_os_error(e: OSError) -> str:
    where = f" ({e.filename})" if e.filename else ""
    return f"{e.strerror or e}{where}"


def kept_checkpoint(models_dir: str, run_id: str) -> str:
    """What a failed save left on disk, and the command that continues from it."""
    from runs.checkpoint import load_model_file
    path = paths.latest_model_file(models_dir, run_id)
    if path is None:
        return "No checkpoint of this run is on disk. Fix: free space or make the folders " \
               "writable, then train again."
    try:
        update = load_model_file(path)[0]["update"]
    except ValueError:
        return f"{path} is on disk but does not load."
    return (f"Kept: {path} (update {update}). Fix: free space or make the folders writable, "
            f"then continue with: python train.py --resume {run_id} --models-dir {models_dir}")


def own_run(run: str, args, locks: contextlib.ExitStack, new: bool) -> None:
    """Take run `run` for this process: its lock (held until `locks` closes, so a second
    trainer of the run is refused, with --overwrite too), its files checked to be its own
    (no links), the temporaries a killed save of it left removed; for a `new` run, refuse
    to start over an existing one (or with --overwrite delete it first)."""
    from runs.atomic import remove_stale_temporaries
    from runs.lock import check_not_linked, run_lock
    locks.enter_context(run_lock(paths.run_folder(args.models_dir, run), run,
                                 "a second train.py"))
    check_not_linked(paths.run_paths(args.models_dir, args.summaries_dir, run))
    remove_stale_temporaries(args.models_dir, [os.path.basename(
        paths.model_file(args.models_dir, run))])
    remove_stale_temporaries(paths.run_folder(args.models_dir, run))
    if new:
        claim_run_id(run, args)


def claim_run_id(run: str, args) -> None:
    """Refuse to start a run over an existing one (two runs' checkpoints would mix in
    models/RUN/), or with --overwrite delete the old run's files first (the caller holds
    the run's lock)."""
    existing = paths.owned_paths(args.models_dir, args.summaries_dir, run)
    if not existing:
        return
    if not args.overwrite:
        raise RefusedInput(
            f"--run-id {run}: a run of that name exists ({', '.join(existing)}). Fix: continue "
            f"it with: python train.py --resume {run} --models-dir {args.models_dir} "
            f"--summaries-dir {args.summaries_dir}; or choose another --run-id; or pass "
            f"--overwrite to delete its files and start again.")
    for path in existing:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    print(f"--overwrite: deleted {', '.join(existing)}", flush=True)


@dataclass(frozen=True)
class Resumed:
    """A checkpoint to resume, and the run it belongs to in --models-dir (None: the file is
    not one of that folder's runs, so resuming it starts a new run)."""
    path: str
    payload: dict
    config: object
    run_id: str
    own_run: Optional[str]


def resumed(args, world_size: int = 1) -> Resumed:
    """The checkpoint of --resume PATH or RUN, checked; RefusedInput when it cannot be
    resumed, or when it is a periodic checkpoint older than its run's latest (resuming it
    would overwrite the later updates)."""
    from runs.checkpoint import load_model_file
    from runs.resume import check_training_state, check_world_size
    if args.resume.endswith(paths.MODEL_SUFFIX) or os.sep in args.resume:
        path = args.resume
    else:
        path = paths.latest_model_file(args.models_dir, args.resume) or \
            paths.model_file(args.models_dir, args.resume)
    payload, config = load_model_file(path)
    check_training_state(payload, path)
    check_world_size(payload, path, world_size)
    own_run = paths.run_in(path, args.models_dir)
    if own_run is None:                         # a file from elsewhere: a new run
        stem = os.path.splitext(os.path.basename(path))[0]
        return Resumed(path, payload, config, args.run_id or stem, None)
    latest = paths.latest_model_file(args.models_dir, own_run)
    if (args.run_id in (None, own_run) and latest is not None
            and os.path.realpath(latest) != os.path.realpath(path)):
        newest = load_model_file(latest)[0].get("update")
        if isinstance(newest, int) and newest > payload["update"]:
            raise RefusedInput(
                f"--resume {path}: update {payload['update']} of run {own_run}, whose latest "
                f"checkpoint is update {newest} ({latest}); continuing from here would "
                f"overwrite updates {payload['update'] + 1}..{newest}. Fix: --resume {own_run} "
                f"continues from update {newest}; add --run-id NEW to branch a new run from "
                f"update {payload['update']}.")
    return Resumed(path, payload, config, args.run_id or own_run, own_run)


def check_run(config, source: str, resume: Optional[Resumed] = None) -> None:
    """Everything that can be refused before a worker process starts: the device, the
    environment (built once here, reset once with its reset_params), its spaces, the network
    (built on the meta device: no memory), whether a resumed checkpoint fits it, and the
    memory the run needs."""
    import torch

    from agent import cpp_compiler
    from env_backends import player_backend
    from memories import kind_of
    from preflight.memory_estimate import check_fits, training_memory
    from preflight.refusal import short
    from runs.checkpoint import check_environment
    from runs.resume import check_resumable
    from trainer import build_model
    from utils import resolve_device
    try:
        device = resolve_device(config.device)
    except RuntimeError as e:
        raise RefusedInput(f"{source}: {e}") from None
    if config.compile_update and device.type == "cpu" and cpp_compiler() is None:
        raise RefusedInput(f"{source}: compile_update = True needs a C++ compiler on CPU "
                           f"(inductor builds the kernels with it), and none was found. Fix: "
                           f"install one (e.g. apt install g++, or set CXX), or set "
                           f"compile_update: false.")
    env_config = config.environment
    what = f"environment {env_config.type}/{short(env_config.name)}"
    try:
        env = player_backend(env_config)       # in this process, whatever the run's backend
    except Exception as e:   # noqa: BLE001 - gym.make raises its own error types, importing
        # a user's module anything at all; the user must learn which config entry to fix.
        raise RefusedInput(f"{source}: {what} cannot be built: {reason(e)} Fix: check "
                           f"environment.name and environment.reset_params.") from None
    try:
        spec = env.spec
        env.reset([0])
    except Exception as e:   # noqa: BLE001 - as above, from the environment's own reset
        raise RefusedInput(f"{source}: {what} fails to reset: {reason(e)} Fix: check "
                           f"environment.reset_params.") from None
    finally:
        env.close()
    if resume is not None:      # before building a network for spaces it was not made for
        check_environment(resume.path, resume.payload["spec"], env_config, spec.to_dict())
    try:
        with torch.device("meta"):
            model = build_model(config, spec, torch.device("meta"))
    except ValueError as e:
        raise RefusedInput(f"{source}: {e}") from None
    parameters = sum(p.numel() for p in model.parameters())
    if resume is not None:
        rng = {"torch": torch.get_rng_state(), "shuffle": torch.Generator().get_state()}
        check_resumable(resume.payload, resume.path, env_config, spec.to_dict(),
                        model.state_dict(), list(model.parameters()), rng)
    section = kind_of(config).section
    check_fits(training_memory(config, spec, parameters),
               f"{source}: this run ({parameters:,} parameters)",
               f"lower n_workers, worker_steps, hidden_layer_size, micro_batch_size "
               f"or the sizes in the {section} section")


def reason(e: Exception) -> str:
    """An exception as a sentence: our ValueErrors say what to fix already; anything else
    (an environment's own assertion, say) is named by its type."""
    text = " ".join(str(e).split())
    return text if isinstance(e, ValueError) else f"{type(e).__name__}: {text}."


def prepare(args, locks: contextlib.ExitStack, ranks) -> list[PlannedRun]:
    """Every run the command line asks for, each checked and its run id claimed (its lock
    held until `locks` closes); RefusedInput (or ConfigError) otherwise. Rank 0's work
    alone on several ranks (`ranks`)."""
    from distributed import worker_share
    from preflight.outputs import check_output_folders
    from preflight.overrides import load_with
    # Flags that are checked as they are parsed, and that a resumed run may change too.
    overrides = {k: v for k, v in (("seed", args.seed), ("device", args.device),
                                   ("updates", args.updates)) if v is not None}
    if args.resume:
        resume = resumed(args, ranks.world_size)
        config = dataclasses.replace(resume.config, **overrides)
        paths.check_run_id(resume.run_id)
        check_run(config, resume.path, resume)
        check_output_folders(args.models_dir, args.summaries_dir)
        payload = resume.payload
        branched = resume.run_id != resume.own_run     # a new run from the checkpoint
        own_run(resume.run_id, args, locks, new=branched)
        if branched:
            payload = {k: v for k, v in payload.items() if k != "log_dir"}
        return [PlannedRun(config, resume.run_id, payload, f"{resume.path} (resumed)",
                           resume.path)]
    source = args.config or DEFAULT_CONFIG
    config = dataclasses.replace(load_with(source, args.set, "--set"), **overrides)
    origin = source + "".join(f" --set {setting.text}" for setting in args.set)
    run_id = args.run_id or "run"
    runs = [(config, run_id)] if not args.seeds else \
        [(dataclasses.replace(config, seed=seed), f"{run_id}_seed{seed}") for seed in args.seeds]
    for _, run in runs:
        paths.check_run_id(run)
    worker_share(config.n_workers, ranks)
    check_run(config, source)
    check_output_folders(args.models_dir, args.summaries_dir)
    for _, run in runs:
        own_run(run, args, locks, new=True)
    return [PlannedRun(config, run, None, origin) for config, run in runs]


def main(argv=None) -> int:
    args = parse_args(argv)
    from runs.integrity import allow_env_ids
    allow_env_ids(args.allow_env_id)
    import distributed
    try:
        ranks = distributed.ranks_from_environment()
    except ValueError as e:
        print(error_line(e), file=sys.stderr)
        return EXIT_REFUSED
    distributed.start(ranks)
    try:
        return train_all(args, ranks)
    finally:
        distributed.stop()


def train_all(args, ranks) -> int:
    """Rank 0 checks the command line and claims the runs; every rank then trains them."""
    from distributed import Collectives
    with contextlib.ExitStack() as locks:      # the runs' locks, held until the end
        refusal, runs = None, None
        if ranks.is_main:
            try:
                runs = prepare(args, locks, ranks)
            except ValueError as e:   # ConfigError, RefusedInput, a model file's ValueError
                refusal = error_line(e)
                print(refusal, file=sys.stderr)
        refusal, runs = Collectives(ranks).broadcast((refusal, runs))
        if refusal:
            return EXIT_REFUSED
        for run in runs:
            status = train_one(run, args, ranks)
            if status:
                return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
