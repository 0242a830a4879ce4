"""Tests of tinygrad_course.checkpoint: round trips, atomic writes, clear errors, no pickle."""
from __future__ import annotations

import io
import json
import os
import struct
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_course as tg
from tinygrad_course import checkpoint, nn, optim
from tinygrad_course.checkpoint import CheckpointError


def small_state():
    return {
        "weights": np.arange(12, dtype=np.float32).reshape(3, 4),
        "double": np.linspace(0, 1, 5),
        "ints": np.array([1, -2, 3], dtype=np.int64),
        "mask": np.array([True, False]),
        "scalar": 3.5,
        "count": 7,
        "tensor": tg.tensor([1.0, 2.0]),
    }


def test_round_trip_keeps_values_dtypes_and_metadata(tmp_path):
    path = tmp_path / "state.npz"
    metadata = {"epoch": 12, "metrics": {"top1": 0.8126, "top5": [0.98, 0.99]}, "note": "café", "ok": True}
    checkpoint.save(path, small_state(), metadata)
    state, loaded_metadata = checkpoint.load(path)
    assert loaded_metadata == metadata
    expected = small_state()
    assert set(state) == set(expected)
    for key, value in expected.items():
        value = value.data if isinstance(value, tg.Tensor) else np.asarray(value)
        np.testing.assert_array_equal(state[key], value)
        assert state[key].dtype == value.dtype, key
    assert state["scalar"].shape == () and state["scalar"].item() == 3.5
    assert checkpoint.load(str(path))[1] == metadata  # str paths work as well as Path objects
    checkpoint.save(path, {"a": np.ones(1)})
    assert checkpoint.load(path)[1] == {}  # no metadata -> an empty dict


@settings(max_examples=15)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_.]{0,12}", fullmatch=True).filter(
                           lambda k: k not in ("file", "allow_pickle")),  # np.savez's own parameter names
                       st.lists(st.floats(allow_nan=False, width=32), max_size=6), max_size=5))
def test_round_trip_any_float_arrays(tmp_path_factory, entries):
    path = tmp_path_factory.mktemp("ckpt") / "h.npz"
    state = {k: np.array(v, dtype=np.float32) for k, v in entries.items()}
    checkpoint.save(path, state, {"n": len(state)})
    loaded, metadata = checkpoint.load(path)
    assert metadata == {"n": len(state)} and loaded.keys() == state.keys()
    for key in state:
        np.testing.assert_array_equal(loaded[key], state[key])


def test_file_is_a_plain_npz_readable_without_pickle(tmp_path):
    path = tmp_path / "state.npz"
    checkpoint.save(path, small_state(), {"epoch": 1})
    with np.load(path, allow_pickle=False) as npz:  # any NumPy can read it, and no code can run
        assert "weights" in npz.files and npz["__metadata__"].dtype == np.uint8
    with zipfile.ZipFile(path) as zf:
        assert all(name.endswith(".npy") for name in zf.namelist())
    with pytest.raises(TypeError, match="'objects'.*without pickle"):
        checkpoint.save(path, {"objects": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(TypeError, match="JSON"):
        checkpoint.save(path, {"a": np.ones(1)}, {"bad": object()})
    for reserved in ("__metadata__", "file", "allow_pickle"):
        with pytest.raises(ValueError, match="reserved"):
            checkpoint.save(path, {reserved: np.ones(1)})


def test_failed_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    checkpoint.save(path, {"w": np.ones(3)}, {"epoch": 1})
    real_savez = np.savez

    def savez_that_dies_midway(file, **arrays):
        real_savez(file, **{k: v for k, v in list(arrays.items())[:1]})  # part of the data reaches the disk
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", savez_that_dies_midway)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, {"w": np.zeros(3), "extra": np.zeros(1000)}, {"epoch": 2})
    monkeypatch.undo()
    state, metadata = checkpoint.load(path)
    assert metadata == {"epoch": 1}
    np.testing.assert_array_equal(state["w"], np.ones(3))
    assert os.listdir(tmp_path) == ["model.npz"]  # the temporary file was removed


def test_interrupted_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    """A KeyboardInterrupt during the write (not only an Exception) must not corrupt the file."""
    path = tmp_path / "model.npz"
    checkpoint.save(path, {"w": np.ones(3)})

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, {"w": np.zeros(3)})
    monkeypatch.undo()
    np.testing.assert_array_equal(checkpoint.load(path)[0]["w"], np.ones(3))
    assert os.listdir(tmp_path) == ["model.npz"]


def test_missing_file_error_names_the_file(tmp_path):
    path = tmp_path / "nowhere.npz"
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        checkpoint.load(path)


def test_corrupt_files_raise_checkpoint_error_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all" * 10)
    with pytest.raises(CheckpointError, match="garbage.npz"):
        checkpoint.load(garbage)

    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.npz"):
        checkpoint.load(empty)

    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    with pytest.raises(CheckpointError, match="single.npy.*single array"):
        checkpoint.load(single)

    good = tmp_path / "good.npz"
    checkpoint.save(good, {"w": np.arange(1000, dtype=np.float64)})
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip bits inside the array data: the zip CRC catches it
    flipped = tmp_path / "flipped.npz"
    flipped.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="flipped.npz"):
        checkpoint.load(flipped)


def test_truncated_files_raise_checkpoint_error_naming_the_file(tmp_path):
    good = tmp_path / "good.npz"
    checkpoint.save(good, {"w": np.arange(200, dtype=np.float64), "b": np.ones(3)}, {"epoch": 3})
    data = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    for length in sorted({1, 10, 100, len(data) // 3, len(data) // 2, len(data) - 22, len(data) - 1}):
        truncated.write_bytes(data[:length])
        with pytest.raises(CheckpointError, match="truncated.npz"):
            checkpoint.load(truncated)


def npy_bytes(array: np.ndarray, declared_shape=None) -> bytes:
    """An .npy file; declared_shape replaces the shape its header states (the data stays `array`'s)."""
    buf = io.BytesIO()
    header = np.lib.format.header_data_from_array_1_0(array)
    if declared_shape is not None:
        header["shape"] = declared_shape
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + array.tobytes()


def write_npz(path, members: dict, compression=zipfile.ZIP_STORED):
    """A zip of name -> bytes, as np.savez lays it out."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def patch_uncompressed_size(path, size: int):
    """Make the (only) member's local and central headers declare `size` uncompressed bytes."""
    data = bytearray(path.read_bytes())
    local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
    data[local + 22:local + 26] = struct.pack("<I", size)
    data[central + 24:central + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))


def load_with_peak_memory(path):
    """checkpoint.load(path), returning (the exception it raised, peak bytes traced while it ran)."""
    tracemalloc.start()
    try:
        checkpoint.load(path)
    except Exception as e:  # handed to the caller, which checks the type
        return e, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    raise AssertionError(f"{path} loaded without an error")


@pytest.mark.parametrize("case", ["npy header", "zip entry", "deflated zip entry"])
def test_small_file_declaring_a_huge_array_is_refused_without_allocating_it(tmp_path, case):
    """A zip bomb: a few hundred bytes declaring a 4 GiB array must not reach an allocation."""
    path = tmp_path / "bomb.npz"
    small = np.zeros(4, np.float32)
    if case == "npy header":
        write_npz(path, {"w.npy": npy_bytes(small, declared_shape=(2 ** 30,))})
    else:
        compression = zipfile.ZIP_DEFLATED if case == "deflated zip entry" else zipfile.ZIP_STORED
        write_npz(path, {"w.npy": npy_bytes(small)}, compression)
        patch_uncompressed_size(path, 2 ** 32 - 1)
    error, peak = load_with_peak_memory(path)
    assert isinstance(error, CheckpointError) and "bomb.npz" in str(error) and "declares" in str(error), error
    assert peak < 1 << 20  # not the 4 GiB declared


def test_npz_written_by_numpy_loads_compressed_fortran_and_byte_swapped(tmp_path):
    path = tmp_path / "numpy.npz"
    arrays = {"zeros": np.zeros(10 ** 5),  # deflate shrinks this about 1000:1, near its limit
              "fortran": np.asfortranarray(np.arange(12, dtype=">i4").reshape(3, 4)), "text": np.array(["a", "bc"])}
    for save in (np.savez, np.savez_compressed):
        save(path, **arrays)
        state, metadata = checkpoint.load(path)
        assert metadata == {} and state.keys() == arrays.keys()
        for key, value in arrays.items():
            np.testing.assert_array_equal(state[key], value)
            assert state[key].dtype == value.dtype and state[key].flags.writeable
        assert state["fortran"].flags.f_contiguous


@pytest.mark.parametrize("members, message", [
    ({"w.npy": npy_bytes(np.array([{"a": 1}], dtype=object))[:-8]}, "dtype object"),
    ({"w.npy": npy_bytes(np.zeros(2, [("a", "<f4")]))}, "dtype"),
    ({"w.npy": npy_bytes(np.zeros(3))[:-1]}, "declares"),
    ({"w.npy": b"\x93NUMPY\x09\x00" + bytes(20)}, "format version"),
    ({"w.npy": npy_bytes(np.zeros(3)).replace(b"}", b" ", 1)}, "malformed .npy header"),  # numpy's TokenError
    ({"w.txt": npy_bytes(np.zeros(3))}, "'w.txt' is not"),
    ({"__metadata__.npy": npy_bytes(np.frombuffer(b"[1, 2]", np.uint8))}, "JSON list, not an object"),
    ({"__metadata__.npy": npy_bytes(np.frombuffer(b"\xff\xfe{}", np.uint8))}, "not UTF-8 JSON"),
    ({"__metadata__.npy": npy_bytes(np.frombuffer(b"[" * 100_000, np.uint8))}, "not UTF-8 JSON"),
    ({"__metadata__.npy": npy_bytes(np.ones(3))}, "'__metadata__' is float64"),
], ids=["object", "structured", "short data", "npy version", "unclosed header", "not npy", "metadata list", "metadata latin-1",
        "metadata nested", "metadata floats"])
def test_tampered_members_raise_checkpoint_error_naming_file_and_problem(tmp_path, members, message):
    path = tmp_path / "tampered.npz"
    write_npz(path, {"ok.npy": npy_bytes(np.ones(2)), **members})
    with pytest.raises(CheckpointError, match=message) as e:
        checkpoint.load(path)
    assert "tampered.npz" in str(e.value)


def test_every_bit_flip_loads_equal_data_or_raises_checkpoint_error(tmp_path):
    """A flipped bit is caught (CRCs, headers, sizes) or lands in a byte nothing reads; nothing else escapes."""
    good = tmp_path / "good.npz"
    state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    checkpoint.save(good, state, {"epoch": 1})
    data = good.read_bytes()
    flipped = tmp_path / "flipped.npz"
    outcomes = {"loaded": 0, "refused": 0}
    for bit in range(8 * len(data)):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << bit % 8
        flipped.write_bytes(bytes(damaged))
        try:
            loaded, metadata = checkpoint.load(flipped)
        except CheckpointError:
            outcomes["refused"] += 1
            continue
        assert metadata == {"epoch": 1} and loaded.keys() == state.keys(), f"bit {bit}"
        np.testing.assert_array_equal(loaded["w"], state["w"], err_msg=f"bit {bit}")
        assert loaded["w"].dtype == np.float32, f"bit {bit}"
        outcomes["loaded"] += 1
    assert outcomes["refused"] > len(data) * 4  # most flips are caught (the rest hit timestamps and the like)


def test_save_removes_stale_temporary_files_of_the_same_checkpoint_only(tmp_path):
    path = tmp_path / "model.npz"
    stale = tmp_path / ".model.npz.k3j_x9a2.tmp"  # left by a save that was killed
    live = tmp_path / ".model.npz.q8w7e6r5.tmp"  # a concurrent save still writing
    other = tmp_path / ".other.npz.k3j_x9a2.tmp"  # another checkpoint's
    user = tmp_path / ".model.npz.backup.tmp"  # not a name our saves produce
    for p in (stale, live, other, user):
        p.write_bytes(b"partial")
    old = time.time() - checkpoint.STALE_TEMPORARY_SECONDS - 60
    for p in (stale, other, user):
        os.utime(p, (old, old))
    checkpoint.save(path, {"w": np.ones(3)})
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in (path, live, other, user))
    np.testing.assert_array_equal(checkpoint.load(path)[0]["w"], np.ones(3))


# --- modules and optimizers -------------------------------------------------------------------
def make_model():
    return nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))


def train(model, opt, steps, seed):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = tg.tensor(rng.standard_normal((8, 3)).astype(np.float32))
        y = tg.tensor(rng.integers(0, 2, 8))
        opt.zero_grad()
        nn.CrossEntropyLoss()(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("make_optimizer", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: optim.RMSprop(ps, lr=0.01, centered=True, momentum=0.5),
], ids=["SGD", "Adam", "RMSprop"])
def test_save_and_load_module_resumes_training_exactly(tmp_path, make_optimizer):
    path = tmp_path / "run.npz"
    tg.manual_seed(0)
    model = make_model()
    opt = make_optimizer(model.parameters())
    train(model, opt, 3, seed=1)
    checkpoint.save_module(path, model, opt, epoch=3, lr=0.1)
    train(model, opt, 2, seed=2)

    tg.manual_seed(99)  # a different initialisation, overwritten by the checkpoint
    resumed = make_model()
    resumed_opt = make_optimizer(resumed.parameters())
    metadata = checkpoint.load_module(path, resumed, resumed_opt)
    assert metadata == {"epoch": 3, "lr": 0.1}
    train(resumed, resumed_opt, 2, seed=2)
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_save_module_key_layout_and_model_only_loading(tmp_path):
    path = tmp_path / "model.npz"
    model = make_model()
    opt = optim.Adam(model.parameters())
    train(model, opt, 1, seed=0)
    checkpoint.save_module(path, model, opt)
    state, _ = checkpoint.load(path)
    assert {k for k in state if k.startswith("model.")} == {"model." + k for k in model.state_dict()}
    assert "optim.state.0.exp_avg" in state and "optim.param_groups.0.lr" in state
    assert all(k.startswith(("model.", "optim.")) for k in state)

    fresh = make_model()
    checkpoint.load_module(path, fresh)  # the optimizer part is simply not used
    np.testing.assert_array_equal(fresh[0].weight.data, model[0].weight.data)

    checkpoint.save_module(path, model)  # no optimizer saved
    with pytest.raises(CheckpointError, match="no optimizer state"):
        checkpoint.load_module(path, make_model(), optim.Adam(make_model().parameters()))
    with pytest.raises(RuntimeError, match="missing keys"):
        checkpoint.load_module(path, nn.Sequential(make_model(), nn.Linear(2, 2)))
    checkpoint.save(path, {"w": np.ones(1)})
    with pytest.raises(CheckpointError, match="no model entries"):
        checkpoint.load_module(path, make_model())


def test_load_module_is_all_or_nothing(tmp_path):
    path = tmp_path / "sgd.npz"
    model = make_model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train(model, opt, 1, seed=0)
    checkpoint.save_module(path, model, opt)
    target = make_model()
    before = target.state_dict()
    adam = optim.Adam(target.parameters())
    with pytest.raises(ValueError, match="another optimizer"):
        checkpoint.load_module(path, target, adam)  # SGD state does not fit Adam
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    assert adam.state == {}


@pytest.mark.parametrize("tamper, message", [
    (lambda s: s.pop("optim.param_groups.0.params"), "lacks the entry 'optim.param_groups.0.params'"),
    (lambda s: s.update({"optim.param_groups.0.params": np.array([0.5, 1.5])}), "'optim.param_groups.0.params' must"),
    (lambda s: s.update({"optim.param_groups.0.lr": np.array("fast")}), "'optim.param_groups.0.lr' has dtype"),
    (lambda s: s.update({"optim.param_groups.0.betas": np.ones((2, 2))}), "'optim.param_groups.0.betas' has shape"),
    (lambda s: s.update({"optim.param_groups.0.betas": np.array(0.9)}), "does not fit this Adam"),
    (lambda s: s.update({"optim.param_groups.0.lr": np.array(np.nan)}), "does not fit this Adam.*learning rate"),
    (lambda s: s.update({"optim.state.0.exp_avg": np.full((5, 3), "x")}), "'optim.state.0.exp_avg' has dtype"),
    (lambda s: s.update({"optim.state.0.step": np.arange(3)}), "does not fit this Adam.*'step'"),
    (lambda s: s.update({"optim.param_groups.1.lr": np.array(0.1)}), "lacks the entry 'optim.param_groups.1.params'"),
], ids=["no params", "float params", "string lr", "2-D betas", "scalar betas", "NaN lr", "string state",
        "vector step", "extra group"])
def test_tampered_optimizer_entries_raise_checkpoint_error_naming_the_entry(tmp_path, tamper, message):
    path = tmp_path / "run.npz"
    model = make_model()
    opt = optim.Adam(model.parameters())
    train(model, opt, 1, seed=0)
    checkpoint.save_module(path, model, opt, epoch=1)
    state, metadata = checkpoint.load(path)
    tamper(state)
    checkpoint.save(path, state, metadata)
    target = make_model()
    before = target.state_dict()
    with pytest.raises(CheckpointError, match=message) as e:
        checkpoint.load_module(path, target, optim.Adam(target.parameters()))
    assert "run.npz" in str(e.value)
    for key, value in target.state_dict().items():  # nothing was loaded
        np.testing.assert_array_equal(value, before[key], err_msg=key)
