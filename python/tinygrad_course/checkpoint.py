"""Checkpoints: named arrays in a NumPy .npz file, written atomically, read without pickle.

    checkpoint.save_module("cifar.npz", model, optimizer, epoch=12, test_top1=0.81)
    metadata = checkpoint.load_module("cifar.npz", model, optimizer)

Why this format: an .npz is a zip of .npy files that NumPy (and any zip tool)
can open, and loading it with allow_pickle=False cannot run code, unlike a
pickled checkpoint from an untrusted source. Metadata (epoch, metrics,
hyper-parameters) is JSON, stored as UTF-8 bytes in the "__metadata__" entry.

Why atomic: the file is written to a temporary file in the same folder,
flushed to disk, then renamed over the target (os.replace is atomic), so a
crash or an error mid-save leaves the previous checkpoint intact instead of a
truncated one.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
import zipfile

import numpy as np

from .device import to_numpy
from .tensor import Tensor

__all__ = ["save", "load", "save_module", "load_module", "write_atomically", "CheckpointError", "METADATA_KEY"]

METADATA_KEY = "__metadata__"
# np.savez takes the arrays as keyword arguments, so these names would clash with its own parameters.
_SAVEZ_PARAMETER_NAMES = ("file", "allow_pickle")


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be read (corrupt, truncated, not an .npz, wrong content)."""


def _as_storable_array(key: str, value) -> np.ndarray:
    arr = to_numpy(value.data if isinstance(value, Tensor) else value)  # np.savez cannot take CuPy arrays
    if arr.dtype.kind not in "biufcUS":  # object arrays would need pickle to be read back
        raise TypeError(f"checkpoint entry {key!r} has dtype {arr.dtype}; only numeric, bool and string "
                        "arrays can be saved without pickle")
    return arr


def save(path, state: dict, metadata: dict | None = None) -> None:
    """Write `state` (name -> array, Tensor or number) and JSON `metadata` to `path` atomically.

    The file name is used as given (no ".npz" is appended).
    """
    path = os.fspath(path)
    arrays = {}
    for key, value in state.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"checkpoint keys must be non-empty strings, got {key!r}")
        if key == METADATA_KEY or key in _SAVEZ_PARAMETER_NAMES:
            raise ValueError(f"checkpoint key {key!r} is reserved; choose another name")
        arrays[key] = _as_storable_array(key, value)
    if metadata is not None:
        try:
            text = json.dumps(metadata)
        except (TypeError, ValueError) as e:
            raise TypeError(f"checkpoint metadata must be JSON-serialisable: {e}") from None
        arrays[METADATA_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    write_atomically(path, lambda f: np.savez(f, **arrays))


def write_atomically(path, write, mode: str = "wb") -> None:
    """Call `write(file)` on a temporary file in `path`'s folder, flush it to disk, then rename it over `path`.

    A crash or an exception inside `write` leaves any previous file at `path` untouched. `mode` is "wb" or
    "w" (text, UTF-8). Used for checkpoints and for the training logs.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint written by `save`: (name -> array, metadata dict).

    Numbers come back as 0-d arrays. Raises FileNotFoundError for a missing file and
    CheckpointError (naming the file) for one that cannot be read.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint file {path!r} does not exist")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise CheckpointError(f"checkpoint file {path!r} holds a single array (.npy), not an .npz archive")
        with npz:
            state = {key: npz[key] for key in npz.files}  # read everything now: errors surface here
        raw = state.pop(METADATA_KEY, None)
        metadata = json.loads(raw.tobytes().decode("utf-8")) if raw is not None else {}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, struct.error) as e:
        raise CheckpointError(f"cannot read checkpoint file {path!r}: it is corrupt, truncated or not a "
                              f"checkpoint ({type(e).__name__}: {e})") from e
    return state, metadata


# --- modules and optimizers -------------------------------------------------------------------
def _flatten_optimizer_state(state_dict: dict) -> dict:
    """Optimizer.state_dict() -> flat "optim.state.<i>.<name>" / "optim.param_groups.<g>.<option>" keys."""
    flat = {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            flat[f"optim.state.{index}.{name}"] = value
    for g, group in enumerate(state_dict["param_groups"]):
        for option, value in group.items():
            if value is None:
                raise TypeError(f"optimizer option {option!r} is None, which a checkpoint cannot store")
            flat[f"optim.param_groups.{g}.{option}"] = np.asarray(value)
    return flat


def _unflatten_optimizer_state(flat: dict, path: str) -> dict:
    state: dict[int, dict] = {}
    groups: dict[int, dict] = {}
    for key, value in flat.items():
        parts = key.split(".", 3)
        if len(parts) != 4 or parts[1] not in ("state", "param_groups") or not parts[2].isdigit():
            raise CheckpointError(f"checkpoint file {path!r} has an unrecognised optimizer entry {key!r}")
        target = state if parts[1] == "state" else groups
        target.setdefault(int(parts[2]), {})[parts[3]] = value
    if sorted(groups) != list(range(len(groups))):
        raise CheckpointError(f"checkpoint file {path!r} has param groups {sorted(groups)}, expected 0..n-1")
    return {"state": state, "param_groups": [groups[g] for g in range(len(groups))]}


def save_module(path, module, optimizer=None, **metadata) -> None:
    """Save a model's state_dict ("model.<name>") and optionally an optimizer's ("optim.<...>")."""
    state = {f"model.{name}": value for name, value in module.state_dict().items()}
    if optimizer is not None:
        state.update(_flatten_optimizer_state(optimizer.state_dict()))
    save(path, state, metadata)


def load_module(path, module, optimizer=None, strict: bool = True) -> dict:
    """Load a checkpoint written by `save_module` into `module` (and `optimizer`); returns the metadata."""
    path = os.fspath(path)
    state, metadata = load(path)
    model_state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    if not model_state:
        raise CheckpointError(f"checkpoint file {path!r} has no model entries (keys starting with 'model.')")
    optim_state = None
    if optimizer is not None:
        flat = {k: v for k, v in state.items() if k.startswith("optim.")}
        if not flat:
            raise CheckpointError(f"checkpoint file {path!r} has no optimizer state (it was saved without one)")
        optim_state = _unflatten_optimizer_state(flat, path)
    previous = module.state_dict() if optimizer is not None else None
    module.load_state_dict(model_state, strict=strict)  # checks everything before copying anything
    if optimizer is not None:
        try:
            optimizer.load_state_dict(optim_state)
        except Exception:
            module.load_state_dict(previous)  # all or nothing: do not leave a half-loaded pair
            raise
    return metadata
