"""Model files are untrusted (they may come from anyone): damaged, foreign or hostile ones
are refused with RefusedInput naming the file, before anything is built from them.

- zip CRCs are checked, so a flipped or lost byte is found;
- a pickled global is named when torch's weights-only loader refuses it, without the advice
  to load the file another way;
- the loaded structure is bounded in size and depth (a pickle's memo repeats itself freely);
- an environment id that would import a module is refused unless the user named it;
- entries, tensors, int8 records and the observation/action spec are checked by type and
  shape, and weights are compared with the network's by name and shape.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from preflight.refusal import RefusedInput, short
from preflight.structure import MAX_DEPTH, container_parts, extent

# A model file holds a few thousand values (its config, spec and tensor names): far below.
MAX_MODEL_FILE_VALUES = 1_000_000


def check_archive(path: str) -> None:
    """RefusedInput unless `path` is an intact zip archive as torch.save writes it: every
    member stored uncompressed (so checking costs one read of the file, and no member can
    expand), every CRC-32 matching (a flipped or lost byte is found)."""
    try:
        with zipfile.ZipFile(path) as archive:
            packed = [i.filename for i in archive.infolist()
                      if i.compress_type != zipfile.ZIP_STORED]
            # torch.save writes no file attributes; torch's reader takes a member with the
            # MS-DOS directory bit for an empty folder, whose tensor would load as garbage.
            attributes = [i.filename for i in archive.infolist() if i.external_attr]
            bad = None if packed or attributes else archive.testzip()
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
    if attributes:
        raise RefusedInput(f"{path}: damaged: its member {short(attributes[0])} carries file "
                           f"attributes, which torch.save never writes (a flipped byte in "
                           f"the zip directory). Fix: use an intact copy written by "
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


def check_object_size(value: Any, source: str) -> None:
    """RefusedInput when a loaded structure (dicts, lists, tuples; anything else counts
    one) expands to more than MAX_MODEL_FILE_VALUES values or nests deeper than MAX_DEPTH."""
    values, depth, recursive = extent(value, container_parts, MAX_MODEL_FILE_VALUES)
    if recursive:
        raise RefusedInput(f"{source}: holds a list or dict that contains itself. Fix: use a "
                           f"file written by train.py.")
    if depth > MAX_DEPTH:
        raise RefusedInput(f"{source}: nested more than {MAX_DEPTH} levels deep. "
                           f"Fix: use a file written by train.py.")
    if values > MAX_MODEL_FILE_VALUES:
        raise RefusedInput(f"{source}: holds more than {MAX_MODEL_FILE_VALUES:,} values (a "
                           f"structure that repeats itself). Fix: use a file written by "
                           f"train.py.")


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
