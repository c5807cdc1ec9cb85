"""Refusing hostile and careless input before any work starts.

A config file the user wrote is trusted; a model file is not (it may come from anyone). This
module holds the checks that keep that line, and that turn bad input into one bounded
`error:` line instead of a traceback or a hang:

- YAML: duplicate keys, alias bombs and deep nesting are refused before anything is built.
- Messages: values are shown shortened (reprlib), every message on one line of bounded length.
- Model files: zip CRCs checked (a flipped byte is found), pickled globals named when refused,
  environment ids that would import a module refused unless the user named them, structure
  and sizes checked before a network is allocated, weights compared by name and shape.
- Sizes: memory estimated from the config and the environment's spaces before allocating.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import reprlib
import zipfile
from dataclasses import dataclass
from typing import Any, Iterable, Optional

import yaml

# An `error:` line longer than this is cut: a value can be arbitrarily long (an alias bomb
# expands to gigabytes), the message must not be.
MAX_MESSAGE_CHARS = 800
# Far above any config (the shipped ones have < 200 values, nested 3 deep), far below what
# hangs the loader or overflows the recursion of its constructor.
MAX_YAML_VALUES = 100_000
MAX_YAML_DEPTH = 32
# Seeds go to numpy's and torch's 32-bit seeding.
SEED_LIMIT = 2**32
# A run id names a file and a folder: short, and free of characters that a shell, glob or
# terminal would interpret.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=@,-]{0,99}")
EXIT_REFUSED = 2

_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlong = 60, 60, 40
_short.maxdict = _short.maxlist = _short.maxtuple = _short.maxset = 4
_short.maxlevel = 3


class RefusedInput(ValueError):
    """Input that is refused with a message (exit status 2 on the command line)."""


def short(value: Any) -> str:
    """repr(value), bounded: a huge or deeply nested value is shown by its beginning."""
    return _short.repr(value)


def error_line(message: object) -> str:
    """`error: ...` on one line of at most MAX_MESSAGE_CHARS characters."""
    text = " ".join(str(message).split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS - 3] + "..."
    return f"error: {text}"


def nonempty(text: str) -> str:
    """argparse type: a string option must not be empty (an empty --resume used to train the
    default config into models/run.nn)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def seed_value(text: str) -> int:
    """argparse type: a seed in [0, 2^32)."""
    seed = int(text)
    if not 0 <= seed < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{seed}: seeds must lie in [0, 2^32)")
    return seed


def check_run_id(run_id: str) -> None:
    if not RUN_ID.fullmatch(run_id):
        raise RefusedInput(
            f"--run-id {short(run_id)}: must be a plain name of at most 100 letters, digits "
            f"and . _ + = @ , - (no slashes, spaces, control or glob characters, not hidden). "
            f"Fix: e.g. --run-id pom_trxl")


# --------------------------------------------------------------------------------------
# YAML
# --------------------------------------------------------------------------------------

class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML's last-wins would drop
    a value silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {short(key)} (first at line "
                    f"{seen[key].line + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def _expanded_size(root: yaml.Node) -> tuple[int, int]:
    """(values, depth) of the document with every alias expanded, computed on the node graph
    (shared nodes counted once per use, without expanding them) and without recursion."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        children = [] if isinstance(node, yaml.ScalarNode) else \
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) \
            else list(node.value)
        if not children_done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
            continue
        size[id(node)] = min(1 + sum(size.get(id(c), 1) for c in children), MAX_YAML_VALUES + 1)
        depth[id(node)] = 1 + max((depth.get(id(c), 1) for c in children), default=0)
    return size[id(root)], depth[id(root)]


def check_object_size(value: Any, source: str, limit: int = 10 * MAX_YAML_VALUES) -> None:
    """RefusedInput when a loaded structure (dicts, lists, tuples; anything else counts
    one) expands to more than `limit` values or nests deeper than MAX_YAML_DEPTH. A pickle's
    memo lets a file of a few bytes hold a list that repeats itself 2^60 times, as YAML
    aliases do; printing or copying it (dataclasses.asdict) would never end."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        children = list(node.keys()) + list(node.values()) if isinstance(node, dict) else \
            list(node) if isinstance(node, (list, tuple)) else []
        if not children_done and children:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
            continue
        size[id(node)] = min(1 + sum(size.get(id(c), 1) for c in children), limit + 1)
        depth[id(node)] = 1 + max((depth.get(id(c), 1) for c in children), default=0)
        if depth[id(node)] > MAX_YAML_DEPTH:
            raise RefusedInput(f"{source}: nested more than {MAX_YAML_DEPTH} levels deep. "
                               f"Fix: use a file written by train.py.")
    if size[id(value)] > limit:
        raise RefusedInput(f"{source}: holds more than {limit:,} values (a structure that "
                           f"repeats itself). Fix: use a file written by train.py.")


def load_yaml(stream, source: str) -> Any:
    """The YAML document of `stream` with SafeLoader's types; RefusedInput (naming `source`)
    for syntax errors, duplicate keys, more than MAX_YAML_VALUES values after alias
    expansion, or nesting deeper than MAX_YAML_DEPTH."""
    loader = _StrictLoader(stream)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise RefusedInput(f"{source}: nested too deeply for a config (more than "
                               f"{MAX_YAML_DEPTH} levels). Fix: flatten it.") from None
        if node is None:
            return None
        values, levels = _expanded_size(node)
        if values > MAX_YAML_VALUES:
            raise RefusedInput(f"{source}: expands to more than {MAX_YAML_VALUES:,} values "
                               f"(YAML anchors and aliases). Fix: write the values out; a "
                               f"config needs a few hundred at most.")
        if levels > MAX_YAML_DEPTH:
            raise RefusedInput(f"{source}: nested {levels} levels deep, more than "
                               f"{MAX_YAML_DEPTH}. Fix: flatten it.")
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise RefusedInput(f"{source}: not valid YAML for a config ({' '.join(str(e).split())}). "
                           f"Fix: correct the syntax.") from None
    finally:
        loader.dispose()


# --------------------------------------------------------------------------------------
# Model files: corruption, pickled globals, imports, structure
# --------------------------------------------------------------------------------------

def check_archive(path: str) -> None:
    """RefusedInput unless `path` is an intact zip archive as torch.save writes it: every
    member stored uncompressed (so checking costs one read of the file, and no member can
    expand), every CRC-32 matching (a flipped or lost byte is found)."""
    try:
        with zipfile.ZipFile(path) as archive:
            packed = [i.filename for i in archive.infolist()
                      if i.compress_type != zipfile.ZIP_STORED]
            bad = None if packed else archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError,
            ValueError, OSError) as e:
        raise RefusedInput(f"{path}: not a loadable TrXL-PPO model file (truncated, damaged "
                           f"or not one: its zip structure is broken: "
                           f"{' '.join(str(e).split()) or type(e).__name__}). Fix: use an "
                           f"intact copy written by train.py.") from None
    if packed:
        raise RefusedInput(f"{path}: holds compressed members ({short(packed[0])}); "
                           f"torch.save never compresses. Fix: use a file written by "
                           f"train.py.")
    if bad is not None:
        raise RefusedInput(f"{path}: damaged: the checksum (CRC-32) of its member "
                           f"{short(bad)} does not match its bytes (a flipped or lost byte). "
                           f"Fix: use an intact copy; the last good checkpoint of a run is "
                           f"models/RUN.nn or models/RUN/update_*.nn.")


_BLOCKED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)|global[s]? (?:named )?'?([\w.]+)'?")


def refused_pickle_message(path: str, error: BaseException) -> str:
    """Our message for torch's weights-only refusal: the blocked global's name, and no advice
    to load the file with weights_only=False (which would run whatever the file asks)."""
    text = str(error)
    match = _BLOCKED_GLOBAL.search(text)
    what = f"the global {match.group(1) or match.group(2)}" if match else \
        "objects other than tensors and plain values"
    return (f"{path}: refused: the file asks to load {what}, which could run code. Model "
            f"files hold only tensors, numbers, strings, lists and dicts, so this file was not "
            f"written by train.py. Do not load it another way unless you wrote it yourself.")


# Environment ids the user named on this command line (--allow-env-id): trusted although a
# model file carries them. Process-wide, because every loader of a model file consults it;
# evaluate.py hands it to its worker processes.
_allowed_env_ids: set[str] = set()


def allow_env_ids(ids: Iterable[str]) -> None:
    _allowed_env_ids.update(ids)


def allowed_env_ids() -> frozenset[str]:
    return frozenset(_allowed_env_ids)


def check_untrusted_environment(environment, source: str, allowed: Iterable[str]) -> None:
    """RefusedInput when an environment id from an untrusted source (a model file) would make
    gym.make import a module: ids of the form `module:Env-v0` import `module` first, unless
    the user names them (`--allow-env-id`). An id without a module part can only name an
    environment that is registered already (gym.make imports nothing for it)."""
    name = environment.name
    if ":" in name and name not in set(allowed):
        raise RefusedInput(
            f"{source}: environment.name = {short(name)} would import the module "
            f"{short(name.split(':')[0])}, and ids from a model file never choose what is "
            f"imported. Fix: if you trust that module, pass --allow-env-id {short(name)}.")


@dataclass(frozen=True)
class Entry:
    """A payload entry that must exist with this type; `fix` says what to do otherwise."""
    key: str
    kind: type
    fix: str = "use a file written by train.py"


def check_entries(payload: dict, entries: Iterable[Entry], path: str) -> None:
    """RefusedInput naming the first entry that is missing or of the wrong type."""
    for entry in entries:
        if entry.key not in payload:
            raise RefusedInput(f"{path}: the model file lacks its {entry.key!r} entry. "
                               f"Fix: {entry.fix}.")
        value = payload[entry.key]
        if not isinstance(value, entry.kind) or isinstance(value, bool) and entry.kind is int:
            raise RefusedInput(f"{path}: its {entry.key!r} entry is a {type(value).__name__}, "
                               f"not a {entry.kind.__name__}. Fix: {entry.fix}.")


def check_tensor_dict(value: Any, what: str, path: str) -> None:
    """RefusedInput unless `value` is a dict of str -> tensor."""
    import torch
    if not isinstance(value, dict):
        raise RefusedInput(f"{path}: its {what} entry is a {type(value).__name__}, not a dict "
                           f"of tensors. Fix: use a file written by train.py.")
    for name, tensor in value.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise RefusedInput(f"{path}: its {what} entry maps {short(name)} to a "
                               f"{type(tensor).__name__}, not a tensor. Fix: use a file "
                               f"written by train.py.")


def check_int8_entry(value: Any, path: str) -> None:
    """RefusedInput unless `value` is {name: {"q": int8 tensor, "scale": float tensor}} with
    a scale that broadcasts over the rows of q (scripts/ship_model.py --int8 writes it)."""
    import torch
    if not isinstance(value, dict):
        raise RefusedInput(f"{path}: its int8 weights entry is a {type(value).__name__}, "
                           f"not a dict. Fix: write it again with scripts/ship_model.py --int8.")
    for name, record in value.items():
        ok = isinstance(record, dict) and set(record) == {"q", "scale"} and \
            all(isinstance(record[k], torch.Tensor) for k in record)
        ok = ok and record["q"].dtype == torch.int8 and record["scale"].is_floating_point() \
            and record["q"].dim() >= 2 and record["scale"].dim() == record["q"].dim() \
            and record["scale"].shape[0] == record["q"].shape[0] \
            and all(n == 1 for n in record["scale"].shape[1:])
        if not ok:
            raise RefusedInput(f"{path}: its int8 weight {short(name)} is not an int8 tensor "
                               f"with one scale per row. Fix: write it again with "
                               f"scripts/ship_model.py --int8.")


def state_dict_mismatch(expected: dict, found: dict) -> Optional[str]:
    """None when `found` has exactly `expected`'s tensor names and shapes; else the first
    differences, by name: torch's own message stops at "Error(s) in loading state_dict"."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k} is {list(found[k].shape)} in the file, {list(expected[k].shape)} in the "
              f"network" for k in expected if k in found and found[k].shape != expected[k].shape]
    problems = []
    if shapes:
        problems.append("shape mismatch: " + "; ".join(shapes[:3]) +
                        (f" (and {len(shapes) - 3} more)" if len(shapes) > 3 else ""))
    for label, names in (("missing", missing), ("unexpected", unexpected)):
        if names:
            problems.append(f"{label} {', '.join(short(n) for n in names[:3])}" +
                            (f" (and {len(names) - 3} more)" if len(names) > 3 else ""))
    return "; ".join(problems) or None


# --------------------------------------------------------------------------------------
# Memory estimate
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run allocates at least, by part (a lower bound: activations of the backward
    pass beyond the attention scores, allocator slack and the environments are left out)."""
    parameters: int      # weights, gradients and AdamW's two moments
    rollout: int         # observations and per-step records of one rollout
    memory: int          # the cached memory stream and the acting step's key/value cache
    activations: int     # one micro-batch's memory window and attention scores

    @property
    def total(self) -> int:
        return self.parameters + self.rollout + self.memory + self.activations

    def describe(self) -> str:
        parts = ", ".join(f"{name} {gib(getattr(self, name))}" for name in
                          ("parameters", "rollout", "memory", "activations"))
        return f"about {gib(self.total)} ({parts})"


def gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"


def available_memory() -> int:
    """MemAvailable of /proc/meminfo (Linux), else the physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def training_memory(config, spec, parameters: int) -> MemoryEstimate:
    """The lower bound of what training `config` on `spec` allocates (bytes). Sizes come
    from buffer.py's layout: the stream holds memory_length + worker_steps slots per worker."""
    W, T = config.n_workers, config.worker_steps
    obs = math.prod(spec.obs_shape) * (1 if spec.is_image else 4)
    rollout = W * T * (obs + 8 * spec.action_width + spec.mask_size + 7 * 4)
    t = config.transformer
    micro = config.micro_batch_size or config.batch_size // config.n_mini_batch
    if config.memory == "trxl":
        width = 2 if t.memory_dtype == "bfloat16" else 4
        L, N, D, H = t.memory_length, t.num_blocks, t.embed_dim, t.num_heads
        memory = W * (L + T) * N * D * width + 2 * W * N * L * D * 4      # stream + K/V cache
        activations = micro * N * L * (3 * D + H) * 4                     # window, K, V, scores
    else:
        layers, width = config.recurrent.num_layers, config.recurrent.hidden_size
        memory = W * (T + 1) * layers * 2 * width * 4
        activations = micro * layers * 2 * width * 4 * 4
    return MemoryEstimate(16 * parameters, rollout, memory, activations)


def playing_memory(model, config, n_envs: int) -> MemoryEstimate:
    """What an agent of `model` (built on the meta device) allocates for `n_envs`
    environments: its parameters and buffers (a sinusoid table per window position), and
    the key/value window of memory_length - 1 steps per block (agent.MemoryAgent)."""
    tensors = [*model.parameters(), *model.buffers()]
    weights = sum(t.numel() * t.element_size() for t in tensors)
    memory = 0
    if config.memory == "trxl":
        t = config.transformer
        width = 2 if t.memory_dtype == "bfloat16" else 4
        memory = 2 * n_envs * t.num_blocks * (t.memory_length - 1) * t.embed_dim * width
    return MemoryEstimate(weights, 0, memory, 0)


def check_fits(estimate: MemoryEstimate, what: str, fix: str) -> None:
    """RefusedInput when `estimate` exceeds the memory available now."""
    free = available_memory()
    if estimate.total > free:
        raise RefusedInput(f"{what} needs {estimate.describe()}, but {gib(free)} are "
                           f"available. Fix: {fix}.")



# Far above any environment's action dimensions (Memory Gym has 2), far below what makes
# building one policy head per dimension take minutes.
MAX_ACTION_DIMS = 1024


def spec_from_file(value: Any, path: str):
    """The SpaceSpec a model file records, checked: RefusedInput naming the file."""
    from environments import SpaceSpec
    try:
        if isinstance(value, dict) and any(
                isinstance(n, int) and n > MAX_ACTION_DIMS for n in (
                    len(value.get("action_nvec", ())), value.get("action_continuous", 0),
                    value.get("action_binary", 0))):
            raise ValueError(f"more than {MAX_ACTION_DIMS} action dimensions")
        return SpaceSpec.from_dict(value)
    except (ValueError, TypeError, OverflowError) as e:
        raise RefusedInput(f"{path}: its 'spec' entry is not a usable observation/action "
                           f"description ({short(str(e))}). Fix: use a file written by "
                           f"train.py.") from None


def structure_mismatch(expected: Any, found: Any, where: str, exact_shapes: bool = True
                       ) -> Optional[str]:
    """None when `found` has the structure of `expected` (a fresh run's state): the same
    dict keys, list lengths, tensor dtypes and shapes (inside lists, which hold one tensor
    per running episode, only the number of dimensions), numbers of the same kind; else
    where the first difference is."""
    import torch
    if isinstance(expected, torch.Tensor):
        if not isinstance(found, torch.Tensor):
            return f"{where} is a {type(found).__name__}, not a tensor"
        if found.dtype != expected.dtype or found.dim() != expected.dim() or (
                exact_shapes and found.shape != expected.shape):
            return (f"{where} is {found.dtype} {list(found.shape)}, the run needs "
                    f"{expected.dtype} {list(expected.shape)}")
        return None
    if isinstance(expected, dict):
        if not isinstance(found, dict):
            return f"{where} is a {type(found).__name__}, not a dict"
        if set(found) != set(expected):
            keys = sorted(map(str, set(found) ^ set(expected)))
            return f"{where} has other entries than the run's (differing: {short(keys)})"
        for key in expected:
            problem = structure_mismatch(expected[key], found[key], f"{where}.{key}",
                                         exact_shapes)
            if problem:
                return problem
        return None
    if isinstance(expected, (list, tuple)):
        if not isinstance(found, (list, tuple)) or len(found) != len(expected):
            return f"{where} is not a list of {len(expected)} entries"
        for i, (e, f) in enumerate(zip(expected, found)):
            problem = structure_mismatch(e, f, f"{where}[{i}]", exact_shapes=False)
            if problem:
                return problem
        return None
    numbers = (int, float)
    if isinstance(expected, numbers) and not isinstance(expected, bool):
        ok = isinstance(found, numbers) and not isinstance(found, bool)
    else:
        ok = type(found) is type(expected)
    return None if ok else f"{where} is a {type(found).__name__}, not a {type(expected).__name__}"


def optimizer_mismatch(parameters: list, state: dict) -> Optional[str]:
    """None when an AdamW state_dict fits `parameters` (in order); else the first problem."""
    import torch
    groups = state.get("param_groups")
    if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], dict) \
            or len(groups[0].get("params", ())) != len(parameters):
        return f"'optimizer' does not hold one parameter group of {len(parameters)} parameters"
    moments = state.get("state")
    if not isinstance(moments, dict):
        return "'optimizer' has no per-parameter state"
    for index, record in moments.items():
        if not isinstance(index, int) or not 0 <= index < len(parameters):
            return f"'optimizer' has state for a parameter {short(index)} the network lacks"
        shape = parameters[index].shape
        for key in ("exp_avg", "exp_avg_sq"):
            value = record.get(key) if isinstance(record, dict) else None
            if not isinstance(value, torch.Tensor) or value.shape != shape:
                return f"'optimizer' state {index}.{key} does not have its parameter's " \
                       f"shape {list(shape)}"
    return None


def check_writable_file(path: str, flag: str) -> None:
    """RefusedInput unless a file can be created at `path` (its folder exists or can be
    created, and takes a new file): checked before the work whose result it will hold."""
    import tempfile
    if os.path.isdir(path):
        raise RefusedInput(f"{flag} {short(path)}: is a folder. Fix: name a file.")
    if os.path.lexists(path) and not os.path.isfile(path):
        # A device, pipe or dangling link: the rename that completes the write would
        # replace it.
        raise RefusedInput(f"{flag} {short(path)}: exists and is not a regular file. Fix: "
                           f"name a new or regular file.")
    folder = os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise RefusedInput(f"{flag} {short(path)}: {existing} is a file, not a folder. Fix: "
                           f"choose another place.")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-test-"):
            pass
    except OSError as e:
        raise RefusedInput(f"{flag} {short(path)}: cannot write in {existing}/ "
                           f"({e.strerror}). Fix: choose a writable place.") from None
    if existing != folder and not os.access(existing, os.W_OK | os.X_OK):
        raise RefusedInput(f"{flag} {short(path)}: cannot create {folder}/. Fix: choose a "
                           f"writable place.")


def checkpoint_mismatch(model_state: dict, parameters: list, rng: dict, payload: dict,
                        sampler: Optional[dict] = None) -> Optional[str]:
    """The first entry of a checkpoint that does not fit the run about to continue it: its
    network's state (`model_state`, `parameters`, possibly on the meta device), its generator
    states `rng` and, once the workers run, its sampler's state; None when all fit. A CUDA
    generator state is compared only when the run has one (a GPU checkpoint resumes on a CPU)."""
    found_rng = payload["rng"]
    return state_dict_mismatch(model_state, payload["model"]) or \
        optimizer_mismatch(parameters, payload["optimizer"]) or \
        structure_mismatch(rng, {k: found_rng.get(k) for k in rng}, "'rng'") or \
        (structure_mismatch(sampler, payload["sampler"], "'sampler'") if sampler is not None
         else None)
