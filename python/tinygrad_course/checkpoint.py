"""Checkpoints: named arrays in a NumPy .npz file, written atomically, read without pickle.

    checkpoint.save_module("cifar.npz", model, optimizer, epoch=12, test_top1=0.81)
    metadata = checkpoint.load_module("cifar.npz", model, optimizer)

    tinygrad_course.save({"model": model.state_dict(), "epoch": 12}, "cifar.pt")  # torch.save's form
    state = tinygrad_course.load("cifar.pt")

Why this format: an .npz is a zip of .npy files that NumPy (and any zip tool)
can open, and reading it cannot run code, unlike a pickled checkpoint from an
untrusted source. Metadata (epoch, metrics, hyper-parameters) is JSON, stored
as UTF-8 bytes in the "__metadata__" entry.

Why not np.load: `load` reads each member's .npy header itself and checks the
shape and dtype it declares against the member's size, and the member's size
against the file's, before reading any data; np.load would allocate whatever a
tampered header asks for.

Why atomic: the file is written to a temporary file in the same folder,
flushed to disk, then renamed over the target (os.replace is atomic), so a
crash or an error mid-save leaves the previous checkpoint intact instead of a
truncated one.
"""
from __future__ import annotations

import json
import math
import os
import re
import struct
import tempfile
import time
import tokenize
import zipfile
import zlib

import numpy as np

from .device import canonical_device, to_numpy
from .tensor import Tensor

__all__ = ["save", "load", "save_module", "load_module", "save_object", "load_object", "write_atomically",
           "CheckpointError", "METADATA_KEY"]

METADATA_KEY = "__metadata__"
# np.savez takes the arrays as keyword arguments, so these names would clash with its own parameters.
_SAVEZ_PARAMETER_NAMES = ("file", "allow_pickle")


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be read (corrupt, truncated, not an .npz, wrong content)."""


def _as_storable_array(key: str, value) -> np.ndarray:
    arr = to_numpy(value._data if isinstance(value, Tensor) else value)  # np.savez cannot take CuPy arrays
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
    prefix = "." + os.path.basename(path) + "."
    _remove_stale_temporary_files(folder, prefix)
    fd, tmp_path = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
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


# A save that was killed (SIGKILL, power loss) leaves its temporary file behind. The next save of the same
# file removes those that nobody has written to for this long: a live save keeps writing to its file, so
# a concurrent one is never touched, and this needs no lock files and works on shared folders.
STALE_TEMPORARY_SECONDS = 15 * 60
_TEMPORARY_NAME = re.compile(r"[a-z0-9_]{8}\.tmp")  # what tempfile.mkstemp adds after our prefix


def _remove_stale_temporary_files(folder: str, prefix: str) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return  # mkstemp will report an unusable folder
    now = time.time()
    for entry in entries:
        if not (entry.name.startswith(prefix) and _TEMPORARY_NAME.fullmatch(entry.name[len(prefix):])):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and now - entry.stat().st_mtime > STALE_TEMPORARY_SECONDS:
                os.unlink(entry.path)
        except OSError:  # removed meanwhile, or not ours to remove: leave it
            pass


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
    CheckpointError (naming the file) for one that cannot be read. Every size the file declares
    is checked against what the file can hold before anything is allocated, so a small tampered
    file cannot ask for gigabytes.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint file {path!r} does not exist")
    try:
        state = _read_npz(path)
    except CheckpointError:
        raise
    # zipfile raises NotImplementedError for zip versions and features it does not support
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, struct.error, zlib.error, NotImplementedError) as e:
        raise _corrupt(path, f"{type(e).__name__}: {e}") from e
    return state, _parse_metadata(path, state.pop(METADATA_KEY, None))


def _corrupt(path: str, problem: str) -> CheckpointError:
    return CheckpointError(f"cannot read checkpoint file {path!r}: {problem}; the file is corrupt, truncated or "
                           "not a checkpoint (save it again, or load an older copy)")


# Deflate cannot shrink data by more than about 1032:1, so a member declaring more is lying.
_MAX_DEFLATE_RATIO = 1032


def _read_npz(path: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz, each member's declared sizes checked against the file before it is read."""
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            raise CheckpointError(f"checkpoint file {path!r} holds a single array (.npy), not an .npz archive")
        declared_counts = _declared_member_counts(f, file_size)
    arrays = {}
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        # zipfile walks the central directory by its size and ignores the end record's member count, so a
        # damaged length field there could hide a member (the metadata, say) instead of failing.
        if declared_counts is not None and any(count != len(infos) for count in declared_counts):
            raise _corrupt(path, f"the zip end record declares {declared_counts[1]} members, its directory "
                                 f"lists {len(infos)}")
        for info in infos:
            name = info.filename
            if not name.endswith(".npy") or name[:-4] in arrays:
                raise _corrupt(path, f"member {name!r} is not a uniquely named .npy array")
            if info.flag_bits & 0x1:
                raise _corrupt(path, f"member {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _corrupt(path, f"member {name!r} uses zip compression method {info.compress_type}, "
                                     "not stored or deflate")
            if info.header_offset + info.compress_size > file_size:
                raise _corrupt(path, f"member {name!r} declares {info.compress_size} bytes at offset "
                                     f"{info.header_offset}, past the end of the {file_size}-byte file")
            limit = info.compress_size * (_MAX_DEFLATE_RATIO if info.compress_type == zipfile.ZIP_DEFLATED else 1)
            if info.file_size > limit:
                raise _corrupt(path, f"member {name!r} declares {info.file_size} bytes uncompressed, more than "
                                     f"its {info.compress_size} stored bytes can hold")
            with zf.open(info) as member:
                arrays[name[:-4]] = _read_npy(path, name, member, info.file_size)
    return arrays


def _declared_member_counts(f, file_size: int):
    """(members on this disk, members in all) from the zip end record; None where there is none (zipfile
    then reports the file) or for zip64 archives, which keep their counts elsewhere."""
    tail_size = min(file_size, 22 + 0xFFFF)  # the end record is 22 bytes plus a comment of at most 64 KiB
    f.seek(file_size - tail_size)
    tail = f.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    counts = struct.unpack("<HH", tail[at + 8:at + 12])
    return None if 0xFFFF in counts else counts


def _read_npy(path: str, name: str, f, size: int) -> np.ndarray:
    """One .npy member of `size` bytes; its header's shape and dtype must account for exactly those bytes."""
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise _corrupt(path, f"member {name!r} has .npy format version {version}, expected 1.0 or 2.0")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        shape, fortran_order, dtype = read_header(f)
    # numpy parses the header as a Python literal (and tokenizes it when that fails), so a damaged one
    # raises any of these; the CRC that would catch the damage is only checked at the member's end
    except (ValueError, TypeError, SyntaxError, tokenize.TokenError, RecursionError) as e:
        raise _corrupt(path, f"member {name!r} has a malformed .npy header ({type(e).__name__}: {e})") from None
    if dtype.kind not in "biufcUS" or dtype.hasobject or dtype.itemsize == 0:
        raise _corrupt(path, f"member {name!r} has dtype {dtype}; checkpoints hold only numeric, bool and "
                             "string arrays")
    nbytes = math.prod(shape) * dtype.itemsize
    if f.tell() + nbytes != size:
        raise _corrupt(path, f"member {name!r} declares a {dtype} array of shape {shape} ({nbytes} bytes) but "
                             f"holds {size - f.tell()} bytes of data")
    data = f.read(nbytes)  # reading to the member's end also checks its CRC
    if len(data) != nbytes:
        raise _corrupt(path, f"member {name!r} ends after {len(data)} of its {nbytes} bytes")
    order = "F" if fortran_order else "C"
    return np.frombuffer(data, dtype).reshape(shape, order=order).copy(order=order)  # a writable array


def _parse_metadata(path: str, raw) -> dict:
    """The JSON object stored in the metadata entry ({} when there is none)."""
    if raw is None:
        return {}
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _corrupt(path, f"entry {METADATA_KEY!r} is {raw.dtype} of shape {raw.shape}, not UTF-8 bytes")
    try:
        metadata = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _corrupt(path, f"entry {METADATA_KEY!r} is not UTF-8 JSON ({type(e).__name__}: {e})") from None
    if not isinstance(metadata, dict):
        raise _corrupt(path, f"entry {METADATA_KEY!r} holds a JSON {type(metadata).__name__}, not an object")
    return metadata


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
    """The inverse of _flatten_optimizer_state, checking each entry's kind and shape (naming the entry)."""
    state: dict[int, dict] = {}
    groups: dict[int, dict] = {}
    for key, value in flat.items():
        parts = key.split(".", 3)
        if len(parts) != 4 or parts[1] not in ("state", "param_groups") or not parts[2].isdigit():
            raise CheckpointError(f"checkpoint file {path!r} has an unrecognised optimizer entry {key!r}")
        if value.dtype.kind not in "biuf":
            raise CheckpointError(f"checkpoint file {path!r}: optimizer entry {key!r} has dtype {value.dtype}, "
                                  "expected a number or a numeric array")
        if parts[1] == "param_groups" and value.ndim > 1:
            raise CheckpointError(f"checkpoint file {path!r}: optimizer entry {key!r} has shape {value.shape}, "
                                  "expected a number or a 1-D list")
        if parts[1:4:2] == ["param_groups", "params"] and (value.ndim != 1 or value.dtype.kind not in "iu"):
            raise CheckpointError(f"checkpoint file {path!r}: optimizer entry {key!r} must be a 1-D array of "
                                  f"parameter indices, got {value.dtype} of shape {value.shape}")
        target = state if parts[1] == "state" else groups
        target.setdefault(int(parts[2]), {})[parts[3]] = value
    if sorted(groups) != list(range(len(groups))):
        raise CheckpointError(f"checkpoint file {path!r} has param groups {sorted(groups)}, expected 0..n-1")
    for g, group in groups.items():
        if "params" not in group:
            raise CheckpointError(f"checkpoint file {path!r} lacks the entry 'optim.param_groups.{g}.params'")
    return {"state": state, "param_groups": [groups[g] for g in range(len(groups))]}


def save_module(path, module, optimizer=None, **metadata) -> None:
    """Save a model's state_dict ("model.<name>") and optionally an optimizer's ("optim.<...>")."""
    state = {f"model.{name}": value for name, value in module.state_dict().items()}
    if optimizer is not None:
        state.update(_flatten_optimizer_state(optimizer.state_dict()))
    save(path, state, metadata)


def load_module(path, module, optimizer=None, strict: bool = True) -> dict:
    """Load a checkpoint written by `save_module` into `module` (and `optimizer`); returns the metadata.

    All or nothing: a file that cannot be read, optimizer entries of the wrong kind or shape, or
    optimizer state that does not fit `optimizer` raise CheckpointError naming the file, a model
    that does not fit raises RuntimeError (as PyTorch's load_state_dict), and neither is changed.
    """
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
        except (ValueError, TypeError) as e:  # the optimizer's own checks of what it was given
            module.load_state_dict(previous)  # all or nothing: do not leave a half-loaded pair
            raise CheckpointError(f"checkpoint file {path!r}: its optimizer state does not fit this "
                                  f"{type(optimizer).__name__}: {e}") from e
        except BaseException:
            module.load_state_dict(previous)
            raise
    return metadata


# --- torch.save / torch.load: nested state dicts -----------------------------------------------
# The object's structure is JSON in the metadata; each tensor or array is an entry named by its
# position ("0", "1", ...). Containers are tagged JSON objects so that tuples, dicts with int keys
# (an optimizer's state) and tensors come back as they were: {"dict": [[key, value], ...]},
# {"tuple": [...]}, {"tensor": entry, "requires_grad": bool, "device": name}, {"array": entry}.
# Lists, strings, numbers, booleans and None are themselves.
_OBJECT_KEY = "tinygrad_course.save"
_JSON_SCALARS = (str, int, float, bool, type(None))


def save_object(obj, path) -> None:
    """torch.save(obj, path) without pickle: nested dicts, lists and tuples of tensors, arrays and numbers.

    Anything else (a model, a function, a custom class) would need pickle: TypeError naming where it is.
    Written atomically, as `save`.
    """
    path = _object_path("save", path)
    arrays = {}

    def encode(value, where):
        if isinstance(value, Tensor):
            arrays[str(len(arrays))] = value._data
            return {"tensor": str(len(arrays) - 1), "requires_grad": value.requires_grad, "device": value.device}
        if isinstance(value, (np.ndarray, np.generic)):
            if value.dtype.kind not in "biufcUS":
                raise TypeError(f"save: {where} is an array of dtype {value.dtype}, which would need pickle; "
                                "save numeric, bool or string arrays")
            arrays[str(len(arrays))] = value
            return {"array": str(len(arrays) - 1), "scalar": isinstance(value, np.generic)}
        if isinstance(value, _JSON_SCALARS):
            return value
        if isinstance(value, (list, tuple)):
            items = [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return items if isinstance(value, list) else {"tuple": items}
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, _JSON_SCALARS):
                    raise TypeError(f"save: key {key!r} of {where} is a {type(key).__name__}; keys must be "
                                    "strings, numbers, booleans or None")
            return {"dict": [[k, encode(v, f"{where}[{k!r}]")] for k, v in value.items()]}
        raise TypeError(f"save: {where} is a {type(value).__name__}, which would need pickle; save tensors, "
                        "arrays, numbers, strings and lists, tuples or dicts of them (for a model, its "
                        "state_dict())")

    try:
        structure = encode(obj, "obj")
    except RecursionError:
        raise TypeError("save: the object is nested too deeply, or contains itself") from None
    save(path, arrays, {_OBJECT_KEY: structure})


def _object_path(name, path) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: the file must be a path (str or os.PathLike), got {type(path).__name__}; "
                        "file objects such as io.BytesIO are not supported")
    return os.fspath(path)


def _device_for(map_location, saved: str, array) -> str:
    """Where a tensor saved from device `saved` is loaded, by torch.load's map_location forms: None (where
    it was), a device name, a dict {saved device: device}, or `lambda storage, location: storage` (cpu)."""
    if map_location is None:
        return saved
    if isinstance(map_location, str):
        return canonical_device(map_location)
    if isinstance(map_location, dict):
        for key, value in map_location.items():
            if isinstance(key, str) and key.strip().lower() in (saved, f"{saved}:0"):
                return canonical_device(value)
        return saved
    try:  # a function
        result = map_location(array, "cuda:0" if saved == "cuda" else saved)
    except Exception as e:  # e.g. storage.cuda(): NumPy arrays have no such method
        raise TypeError(f"load: map_location function failed ({type(e).__name__}: {e}); only "
                        "`lambda storage, location: storage` or one returning a device name works here") from e
    return "cpu" if result is array else canonical_device(result)


def load_object(path, map_location=None, weights_only=None):
    """torch.load(path): what `save_object` wrote. Tensors go where `map_location` says ("cpu", "cuda",
    a device, a dict {"cuda:0": "cpu"}, `lambda storage, location: storage`), else to the device they
    were saved from. `weights_only` is accepted for PyTorch's sake: nothing here is ever unpickled, so
    every load is weights-only."""
    path = _object_path("load", path)
    if not (map_location is None or isinstance(map_location, (str, dict)) or callable(map_location)):
        raise TypeError(f"load: map_location must be a device name, a dict or a function, got "
                        f"{type(map_location).__name__}")
    arrays, metadata = load(path)
    if _OBJECT_KEY not in metadata:
        raise CheckpointError(f"checkpoint file {path!r} was not written by tinygrad_course.save; read it with "
                              "checkpoint.load or checkpoint.load_module")

    def entry(name):
        if not isinstance(name, str) or name not in arrays:
            raise _corrupt(path, f"the object refers to a missing entry {name!r}")
        return arrays[name]

    def decode(value):
        if isinstance(value, list):
            return [decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"tuple"} and isinstance(value["tuple"], list):
            return tuple(decode(v) for v in value["tuple"])
        if set(value) == {"dict"} and isinstance(value["dict"], list):
            if not all(isinstance(kv, list) and len(kv) == 2 and isinstance(kv[0], _JSON_SCALARS)
                       for kv in value["dict"]):
                raise _corrupt(path, "a dict of the object is not a list of [key, value] pairs")
            return {k: decode(v) for k, v in value["dict"]}
        if set(value) == {"array", "scalar"}:
            array = entry(value["array"])
            return array[()] if value["scalar"] is True and array.ndim == 0 else array
        if set(value) == {"tensor", "requires_grad", "device"} and isinstance(value["device"], str):
            array = entry(value["tensor"])
            try:
                saved = canonical_device(value["device"])
            except ValueError as e:
                raise _corrupt(path, f"entry {value['tensor']!r} has a bad device ({e})") from None
            device = _device_for(map_location, saved, array)
            try:
                return Tensor(array, requires_grad=value["requires_grad"] is True, device=device)
            except TypeError as e:  # a tampered dtype
                raise _corrupt(path, f"entry {value['tensor']!r} is not a valid tensor ({e})") from None
        raise _corrupt(path, f"the object holds an unrecognised record {sorted(value)}")

    try:
        return decode(metadata[_OBJECT_KEY])
    except RecursionError:
        raise _corrupt(path, "the object is nested too deeply") from None
