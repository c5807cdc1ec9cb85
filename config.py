"""One typed configuration schema for a training run, loaded from YAML.

Every field is documented where it is declared (the `doc` metadata) and docs/configuration.md,
the field-by-field reference, is generated from these docs (`python config.py --markdown`).

Loading is strict: an unknown key, a wrong type or an impossible combination raises
`ConfigError`, whose message names the file, the key, the value and the fix. Derived sizes
(batch size, segment length, number of segments) are properties computed from the fields and
are never written back into the config.
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Optional

from preflight.refusal import RefusedInput, short
from preflight.typed import ConfigError, build_dataclass
from preflight.yaml_loader import load_yaml


def setting(doc: str, *, low=None, high=None, fix: Optional[str] = None, **kwargs):
    """A documented field with inclusive numeric bounds (None: unbounded), which
    check_bounds enforces for every field of the schema; `fix` replaces the advice its message
    would otherwise derive from the bounds. Exclusive and cross-field bounds are explicit
    checks in _check_combinations."""
    return field(metadata={"doc": doc, "low": low, "high": high, "fix": fix}, **kwargs)


# Far longer than any environment's step or reset (Memory Gym's take well under a second).
STEP_TIMEOUT_SECONDS = 300.0

# Seeds go to numpy's and torch's 32-bit seeding.
SEED_LIMIT = 2**32

# Bounds of a state-dependent log standard deviation (and of its initial value): a head that
# saturates can make the Gaussian neither so narrow that PPO's ratio overflows for a small
# change of the mean, nor so wide that almost every action is clipped at a bound of [-1, 1].
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class Invalid(ValueError):
    """A setting that a check refuses: `key = value: problem. Fix: fix.` The loader adds the
    file's name. Memory and environment checks raise it."""

    def __init__(self, key: str, value: Any, problem: str, fix: str):
        super().__init__(f"{key} = {short(value)}: {problem}. Fix: {fix}.")


@dataclass(frozen=True)
class EnvironmentConfig:
    type: str = setting(
        "Which environment family builds the environment: one of the registered families "
        "listed under Environment families below.", default="proof_of_memory")
    name: str = setting("Environment id within the family, e.g. MiniGrid-MemoryS9-v0, "
                        "MortarMayhem-Grid-v0, CartPole-v1, RepeatPreviousEasy. Ignored for "
                        "proof_of_memory.", default="ProofOfMemory-v0")
    reset_params: dict = setting("Environment-specific reset parameters (Memory Gym: its reset "
                                 "options; proof_of_memory: corridor_length, freeze_steps, "
                                 "max_episode_steps). Passed through unchanged.",
                                 default_factory=dict)
    previous_action: bool = setting(
        "Add the previous action to every observation, one one-hot per action dimension, "
        "all zeros at an episode's first step (as RL^2 and POPGym's baselines do).",
        default=False)
    previous_reward: bool = setting(
        "Add the previous reward to every observation as one scalar, 0 at an episode's "
        "first step.", default=False)
    backend: Literal["auto", "processes", "vector", "jax"] = setting(
        "Where the environments run (env_backends): processes (spawned env processes, "
        "observations in shared memory; for costly or crash-prone envs), vector (a loop in "
        "the trainer's process; for cheap vector envs), jax (jit(vmap(...)) over a JAX "
        "environment in the trainer's process). auto = the family's default (the Backends "
        "column below), or processes where env_processes or max_worker_restarts is set. A "
        "backend the family cannot run, or a process setting without processes, fails at "
        "start-up.", fix="use auto, or one of processes, vector, jax that environment.type runs on",
        default="auto")


@dataclass(frozen=True)
class ScheduleConfig:
    """Polynomial decay from `initial` to `final` over `max_decay_steps` updates, as the
    original episodic-transformer-memory-ppo did; constant `final` afterwards."""
    initial: float = setting("Value at update 0.", low=0.0, default=3.0e-4)
    final: float = setting("Value from update `max_decay_steps` on.", low=0.0, default=3.0e-4)
    power: float = setting("Exponent of the decay (1.0 = linear).", default=1.0)
    max_decay_steps: int = setting(
        "Number of updates over which the value decays.", low=1, default=1,
        fix="use the number of updates to decay over, e.g. the value of updates")


_EVALUATION_FIX = "use e.g. 50 seeds x 3 repetitions"


@dataclass(frozen=True)
class EvaluationConfig:
    """How evaluate.py plays a checkpoint: on held-out environment seeds that no training
    episode uses (environments.episodes.HELD_OUT_SEED_START onwards)."""
    # Far above any evaluation (the shipped configs use 50-100 seeds x 1-3 repetitions), far
    # below what takes hours to list, or reaches 2^32 from HELD_OUT_SEED_START.
    n_seeds: int = setting("Held-out environment seeds per checkpoint.", low=1, high=10**6,
                           fix=_EVALUATION_FIX, default=50)
    repetitions: int = setting("Episodes per seed (differ by the sampled actions).", low=1,
                               high=10_000, fix=_EVALUATION_FIX, default=3)
    deterministic: bool = setting("Take the most probable action instead of sampling.",
                                  default=False)


@dataclass(frozen=True)
class Settings:
    """The settings of every run, whatever its memory. `Config` adds the memory's choice and
    one section per registered memory kind (memories.MemoryKind), after these."""
    environment: EnvironmentConfig = setting("The environment to train on.",
                                             default_factory=EnvironmentConfig)
    gamma: float = setting("Discount factor.", low=0.0, high=1.0,
                           fix="use e.g. 0.99 for gamma", default=0.99)
    gae_lambda: float = setting("GAE lambda.", low=0.0, high=1.0,
                                fix="use e.g. 0.95 for gae_lambda", default=0.95)
    updates: int = setting("Number of PPO updates (rollout + optimisation) to run.", low=1,
                           high=10**9, default=50)
    epochs: int = setting("Passes over each rollout per update.", low=1, high=10_000, default=4)
    n_workers: int = setting("Parallel environments.", low=1, high=4096, default=16)
    worker_steps: int = setting("Steps each environment takes per rollout.", low=1, default=64)
    n_mini_batch: int = setting("Minibatches per epoch (each a set of whole segments).", low=1,
                                default=4)
    segment_length: Optional[int] = setting(
        "Steps per training segment (Transformer-XL style): a segment is recomputed with "
        "gradient and attends to the cached states before it; for a recurrent memory the "
        "truncated-BPTT sequence length. Must divide worker_steps. "
        "null = the largest divisor of worker_steps not above 64.", default=None)
    micro_batch_size: Optional[int] = setting(
        "Most steps forwarded at once while optimising; a larger minibatch is processed in "
        "parts (whole segments) with gradients accumulated: the same update, with activation "
        "memory bounded (Mortar Mayhem Grid, benchmarks/throughput.py: peak 1.4 instead of "
        "2.1 GB at the same speed). "
        "null = the whole minibatch at once.", low=1,
        fix="use e.g. 512, or null for whole minibatches", default=512)
    value_loss_coefficient: float = setting("Weight of the value loss.", low=0.0, default=0.5)
    reconstruction_loss_coefficient: float = setting(
        "Weight of the observation-reconstruction loss (image observations only; 0 = no "
        "decoder). Memory Gym reports TrXL needs it on the finite tasks.", low=0.0, default=0.0)
    hidden_layer_size: int = setting("Width of the layer after the memory.", low=1, default=128)
    max_grad_norm: float = setting("Gradient norm clipping threshold.", low=0.0, default=0.5)
    learning_rate_schedule: ScheduleConfig = setting(
        "AdamW learning rate per update.", default_factory=ScheduleConfig)
    entropy_coefficient_schedule: ScheduleConfig = setting(
        "Entropy bonus weight per update.",
        default_factory=lambda: ScheduleConfig(initial=1e-3, final=1e-3))
    clip_range_schedule: ScheduleConfig = setting(
        "PPO clip range per update.", default_factory=lambda: ScheduleConfig(initial=0.2, final=0.2))
    log_std: Literal["state_independent", "state_dependent"] = setting(
        "Continuous (Box) actions are drawn from a diagonal Gaussian: its log standard "
        "deviation is state_independent (one learned value per action entry, as CleanRL's "
        "and Stable-Baselines3's PPO) or state_dependent (a linear head beside the mean's, "
        "clamped to [-5, 2]).", default="state_independent")
    initial_log_std: float = setting(
        "The Gaussian's log standard deviation at initialisation, in [-5, 2] (0 = standard "
        "deviation 1, the CleanRL and Stable-Baselines3 default).", low=LOG_STD_MIN,
        high=LOG_STD_MAX, fix="use e.g. 0.0 (standard deviation 1) or -0.5", default=0.0)
    normalize_observations: bool = setting(
        "Normalise vector observations by running mean and variance over every worker's "
        "steps, clipped to +-normalization_clip (CleanRL's PPO on MuJoCo; Gymnasium's "
        "NormalizeObservation). The statistics are part of the network: saved in the model "
        "file, used unchanged by evaluate.py and enjoy.py.", default=False)
    scale_rewards: bool = setting(
        "Divide rewards by the running standard deviation of each worker's discounted return "
        "(with gamma), clipped to +-normalization_clip, before advantages are computed "
        "(Gymnasium's NormalizeReward; Engstrom et al. 2020). Logged episode returns stay "
        "the environment's own.", default=False)
    normalization_clip: float = setting(
        "Bound of normalised observations and scaled rewards.", default=10.0)
    seed: int = setting("Run seed: torch, numpy and every worker's environment seed derive from "
                        "it; numpy's seeds lie in [0, 2^32).", low=0, high=SEED_LIMIT - 1,
                        fix="use e.g. 0", default=0)
    on_nonfinite: Literal["stop", "skip"] = setting(
        "When a loss or gradient is not finite: stop (saving the last good checkpoint) or "
        "skip that minibatch's optimiser step and count it (optim/skipped_steps).",
        default="stop")
    max_worker_restarts: int = setting(
        "An environment process that raises or dies is restarted, up to this many times in "
        "a run, instead of stopping it; its running episodes are cut like time-limit "
        "truncations. Counted in TensorBoard (env/worker_restarts). 0 = stop at once.",
        low=0, fix="use 0 to stop at the first failure, or the number of restarts to allow",
        default=0)
    step_timeout: float = setting(
        "Seconds an environment process may take to answer, per step of each of its "
        "environments (resets of ended episodes included; a resumed run's replay gets this "
        "per replayed step). Past it the environment is taken to hang: the run names the "
        "worker, its environment and seed, saves the last completed update and stops (or "
        "restarts the process within max_worker_restarts). Far above Memory Gym's slowest "
        "resets.", low=1.0, high=86400.0,
        fix="use seconds in [1, 86400], e.g. 300", default=STEP_TIMEOUT_SECONDS)
    checkpoint_interval: int = setting(
        "Also save models/RUN/update_NNNNNN.nn every this many updates, for learning curves "
        "evaluated after the fact; 0 = only the final models/RUN.nn.", low=0,
        fix="use the number of updates between checkpoints, or 0 for none", default=0)
    evaluation: EvaluationConfig = setting("Evaluation on held-out seeds (evaluate.py).",
                                           default_factory=EvaluationConfig)
    device: Literal["auto", "cpu", "cuda"] = setting("auto = cuda when available, else cpu.",
                                                     default="auto")
    torch_threads: Optional[int] = setting(
        "Threads torch may use; null = 1 for models under a million parameters (their ops "
        "are too small to pay for a second thread), else the CPU cores this process may use.",
        low=1, high=1024, fix="use null for automatic", default=None)
    compile_acting: bool = setting(
        "Compile the rollout's acting step with torch.compile (inductor; on CPU with its C++ "
        "wrapper). Small models act ~3x faster on CPU (benchmarks/acting_step.py); the first "
        "rollout pays a one-time compile of ~15 s (cached on disk for later runs). Needs a C++ "
        "compiler. Memories whose layers torch.compile cannot trace refuse it (the compiles "
        "column of the memory table below). Training, evaluate.py and enjoy.py stay eager.",
        default=False)
    compile_update: bool = setting(
        "Compile the update's encoder and memory (forward and backward) with torch.compile "
        "(inductor); the first updates pay the compiles. Needs a C++ compiler on CPU "
        "(docs/performance.md).", default=False)
    update_precision: Literal["float32", "bfloat16"] = setting(
        "bfloat16 autocasts the update's encoder and memory (products in bfloat16, float32 "
        "accumulation); heads, loss, optimiser and acting stay float32. Pays on CPUs with AMX "
        "and GPUs with bfloat16 tensor cores (docs/performance.md).", default="float32")
    env_processes: Optional[int] = setting(
        "Processes that step the environments (each steps n_workers/env_processes of them); "
        "null = min(n_workers, CPU cores).", low=1, high=4096, fix="use null for automatic",
        default=None)

    # ----- derived sizes: computed, never stored -----
    @property
    def batch_size(self) -> int:
        return self.n_workers * self.worker_steps

    @property
    def segment_len(self) -> int:
        if self.segment_length is not None:
            return self.segment_length
        return max(d for d in range(1, min(64, self.worker_steps) + 1) if self.worker_steps % d == 0)

    @property
    def n_segments(self) -> int:
        return self.batch_size // self.segment_len

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _memory_choice(names: tuple[str, ...]) -> tuple[str, type, dataclasses.Field]:
    from memories import DEFAULT
    doc = ("The memory between encoder and heads: one of the registered kinds listed under "
           "Memories below, each configured by its section. Everything else (encoder, heads, "
           "losses, evaluation) is shared; docs/memories.md compares them.")
    return "memory", Literal[names], setting(doc, default=DEFAULT)


def _build_schema() -> type:
    """Config: Settings, the `memory` choice and one section per registered memory kind
    (kinds sharing a section share its dataclass), in the order the kinds registered."""
    from memories import kinds
    registered = kinds()
    users: dict[str, list[str]] = {}
    for kind in registered.values():
        users.setdefault(kind.section, []).append(kind.name)
    sections = []
    for section, names in users.items():
        settings = registered[names[0]].settings
        doc = f"Settings of memory: {' | '.join(names)}."
        sections.append((section, settings, setting(doc, default_factory=settings)))
    config = dataclasses.make_dataclass(
        "Config", [_memory_choice(tuple(registered)), *sections], bases=(Settings,),
        frozen=True)
    config.__module__ = __name__          # pickle finds it as config.Config
    return config


if TYPE_CHECKING:
    # For readers and type checkers: a Config is Settings plus the memory sections.
    Config = Settings

_schema: Optional[type] = None


def schema() -> type:
    """The Config class, built on first use from the memories registered by then."""
    global _schema
    if _schema is None:
        _schema = _build_schema()
    return _schema


# --------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------

def largest_divisors(n: int, count: int = 8) -> list[int]:
    """Up to `count` largest divisors of n, ascending. They are the cofactors n // d of the
    smallest divisors d, so the scan stops at min(sqrt(n), 10,000): listing every divisor up to
    n hung start-up for a worker_steps of 10**18 (found by the config fuzz test)."""
    small = [d for d in range(1, min(math.isqrt(n), 10_000) + 1) if n % d == 0]
    return sorted({*small, *(n // d for d in small)})[-count:]


@dataclass(frozen=True)
class Bound:
    """A field's inclusive bounds (None: unbounded) and the advice its message gives."""
    low: Any
    high: Any
    fix: Optional[str]

    def problem(self, value) -> Optional[tuple[str, str]]:
        """(what is wrong, the fix) when `value` lies outside the bounds; None inside."""
        if self.low is not None and value < self.low:
            default = "use 0 or a positive number" if self.low == 0 else \
                "use a positive integer" if self.low == 1 else f"use {self.low} or more"
            return f"must be at least {self.low}", self.fix or default
        if self.high is not None and value > self.high:
            return (f"must be at most {self.high:,}",
                    self.fix or f"use a value up to {self.high:,}")
        return None


def _bounds(cls, prefix: str = "") -> dict[str, Bound]:
    """Every bounded field of `cls` and of its sections, by dotted key."""
    hints = typing.get_type_hints(cls)
    found = {}
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            found.update(_bounds(hints[f.name], f"{prefix}{f.name}."))
        elif f.metadata["low"] is not None or f.metadata["high"] is not None:
            found[prefix + f.name] = Bound(f.metadata["low"], f.metadata["high"],
                                           f.metadata["fix"])
    return found


# Counts that cost time before any memory estimate could refuse them (processes, threads,
# Python modules, evaluation episodes) have an upper bound far above any real run. Sizes that
# cost memory (worker_steps, memory_length, embed_dim, hidden_layer_size) are bounded by
# train.py's memory estimate instead, which knows the observation size. Both are computed from
# schema() on first use, once the memories have registered their sections.
_bounds_found: Optional[dict[str, Bound]] = None


def bounds() -> dict[str, Bound]:
    """Every bounded field of the schema by dotted key (BOUNDS)."""
    global _bounds_found
    if _bounds_found is None:
        _bounds_found = _bounds(schema())
    return _bounds_found


def limits() -> dict[str, Any]:
    """The upper bounds among them (LIMITS)."""
    return {key: bound.high for key, bound in bounds().items() if bound.high is not None}


def __getattr__(name: str):
    # `Config`, BOUNDS and LIMITS are built on first use rather than at import: memory files
    # import `setting` from here, and the registry imports the memory files.
    if name == "Config":
        return schema()
    if name == "BOUNDS":
        return bounds()
    if name == "LIMITS":
        return limits()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _field(c: Config, dotted: str):
    value = c
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def check_bounds(c: Config, source: str) -> None:
    """Every field's declared bounds (a null Optional value has none), and a non-empty
    environment name, before anything is built from them."""
    for key, bound in bounds().items():
        value = _field(c, key)
        problem = None if value is None else bound.problem(value)
        if problem:
            raise ConfigError(f"{source}: {key} = {short(value)}: {problem[0]}. "
                              f"Fix: {problem[1]}.")
    if not c.environment.name.strip():
        raise ConfigError(f"{source}: environment.name = '': must not be empty. Fix: name the "
                          f"environment, e.g. CartPole-v1.")


def _check_environment(env: EnvironmentConfig, fail) -> None:
    """What no command can honour: a render mode (training renders nothing and enjoy.py
    chooses its own), an id whose module part is a relative import (which gym.make cannot
    import)."""
    if isinstance(env.reset_params, dict) and "render_mode" in env.reset_params:
        fail("environment.reset_params.render_mode", env.reset_params["render_mode"],
             "the commands choose how an environment renders (training: not at all; "
             "enjoy.py: frames for its window or --video)",
             "remove it, and watch a model with enjoy.py")
    module = env.name.split(":")[0] if ":" in env.name else ""
    if module.startswith("."):
        fail("environment.name", env.name,
             f"the module part {short(module)} is a relative import, which gym.make cannot "
             f"import", "name the module by its full dotted path, e.g. package.module:Env-v0")


def _check_combinations(c: Config, source: str) -> None:
    """Exclusive bounds and constraints between fields; each message names key, value and
    fix."""
    def fail(key: str, value, problem: str, fix: str):
        raise ConfigError(f"{source}: {key} = {short(value)}: {problem}. Fix: {fix}.")

    _check_environment(c.environment, fail)
    if c.normalization_clip <= 0:
        fail("normalization_clip", c.normalization_clip, "must be positive", "use e.g. 10.0")
    for name in ("learning_rate_schedule", "entropy_coefficient_schedule", "clip_range_schedule"):
        s: ScheduleConfig = getattr(c, name)
        if s.power <= 0:
            fail(f"{name}.power", s.power, "must be positive", "use 1.0 for a linear decay")
    if c.learning_rate_schedule.initial <= 0:
        fail("learning_rate_schedule.initial", c.learning_rate_schedule.initial,
             "must be positive", "use e.g. 3.0e-4")
    if c.segment_length is not None:
        if c.segment_length < 1 or c.worker_steps % c.segment_length:
            fail("segment_length", c.segment_length,
                 f"must divide worker_steps = {c.worker_steps}",
                 f"use one of {largest_divisors(c.worker_steps)} or null for automatic")
    if c.n_segments < c.n_mini_batch:
        fail("n_mini_batch", c.n_mini_batch,
             f"more minibatches than training segments ({c.n_segments} = n_workers x "
             f"worker_steps / segment_length {c.segment_len})",
             f"use n_mini_batch <= {c.n_segments} or a shorter segment_length")
    if c.env_processes is not None and c.env_processes > c.n_workers:
        fail("env_processes", c.env_processes, f"must lie in [1, n_workers = {c.n_workers}]",
             "use null for automatic")


def _check_memory(c: Config, source: str) -> None:
    """The memory sections' own checks (every section's, as every section's bounds are
    checked), and whether the chosen memory's acting step compiles."""
    from memories import kinds
    registered = kinds()
    for kind in registered.values():
        if kind.check is not None:
            try:
                kind.check(getattr(c, kind.section), c)
            except ValueError as e:
                raise ConfigError(f"{source}: {e}") from None
    if c.compile_acting and not registered[c.memory].compiles:
        compiling = ", ".join(k.name for k in registered.values() if k.compiles)
        raise ConfigError(f"{source}: compile_acting = True: torch.compile cannot trace the "
                          f"acting step of memory = {c.memory}. Fix: set it to false, or use "
                          f"a memory whose step compiles ({compiling}).")


def _check_family(c: Config, source: str) -> None:
    """environment.type names a registered family, and the family accepts the section."""
    from environments import families
    registered = families()
    family = registered.get(c.environment.type)
    if family is None:
        known = ", ".join(repr(name) for name in registered)
        raise ConfigError(f"{source}: environment.type = {short(c.environment.type)}: not an "
                          f"allowed value. Fix: use one of {known}.")
    if family.check is not None:
        try:
            family.check(c.environment)
        except ValueError as e:
            raise ConfigError(f"{source}: {e}") from None
    from env_backends import backend_problem
    problem = backend_problem(c)
    if problem is not None:
        key, value, what, fix = problem
        raise ConfigError(f"{source}: {key} = {short(value)}: {what}. Fix: {fix}.")


def config_from_dict(data: dict, source: str = "<dict>") -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must hold a YAML mapping of keys to values, "
                          f"found {type(data).__name__}. Fix: start from configs/proof_of_memory.yaml.")
    config = build_dataclass(schema(), data, "", source)
    check_bounds(config, source)
    _check_combinations(config, source)
    _check_memory(config, source)
    _check_family(config, source)
    return config


# The shipped configs have 1-3 KB.
MAX_CONFIG_BYTES = 2**20


def load_config(path: str | os.PathLike, overrides: Optional[dict] = None) -> Config:
    """Read a YAML file into a validated Config; `overrides` (flat dotted keys) win."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        # /dev/zero or a pipe would be read forever.
        raise ConfigError(f"{path}: not a regular file. Fix: pass a YAML config file, e.g. "
                          f"configs/proof_of_memory.yaml.")
    if os.path.isfile(path) and os.path.getsize(path) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {os.path.getsize(path):,} bytes; a config has a few "
                          f"thousand. Fix: pass a YAML config file, e.g. "
                          f"configs/proof_of_memory.yaml.")
    try:
        # Read with a bound: /proc files say they hold 0 bytes and can hold gigabytes.
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: more than {MAX_CONFIG_BYTES:,} bytes; a config has a "
                              f"few thousand. Fix: pass a YAML config file, e.g. "
                              f"configs/proof_of_memory.yaml.")
        data = load_yaml(raw.decode("utf-8"), path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file. Fix: pass an existing file, "
                          f"e.g. configs/proof_of_memory.yaml.") from None
    except RefusedInput as e:
        raise ConfigError(str(e)) from None
    except (OSError, UnicodeDecodeError) as e:   # a folder, no permission, a binary file
        raise ConfigError(f"{path}: cannot be read as a UTF-8 text file ({e}). Fix: pass a "
                          f"YAML config file, e.g. configs/proof_of_memory.yaml.") from None
    if data is None or data == {}:
        # An empty, comment-only or `~` file would train on the schema's defaults.
        raise ConfigError(f"{path}: holds no settings (empty, only comments, or null). Fix: "
                          f"start from a shipped config, e.g. configs/proof_of_memory.yaml.")
    # A non-mapping file or section gets no overrides: config_from_dict reports it.
    for dotted, value in (overrides or {}).items() if isinstance(data, dict) else ():
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            if not isinstance(node.get(p, {}), dict):
                break
            node = node.setdefault(p, {})
        else:
            node[leaf] = value
    return config_from_dict(data, path)


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        from preflight.reference import markdown_page
        print(markdown_page(), end="")
    else:
        for p in sys.argv[1:]:
            print(p, "OK" if load_config(p) else "")
