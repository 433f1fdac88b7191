"""Round trips: every value, dtype and bit pattern comes back exactly."""

from __future__ import annotations

import io
import os
import struct

import ml_dtypes
import numpy as np
import pytest

import netcl
from netcl.core import dtypes
from netcl.core.device import manager
from netcl.io import _format, _zip
from netcl.io.checkpoint import load_checkpoint, save_checkpoint

FORMATS = [("npz", True), ("npz", False), ("npy", False), ("pickle", False)]
DATA = os.path.join(os.path.dirname(__file__), "data")


def _bits(a) -> bytes:
    a = a.numpy() if isinstance(a, netcl.Tensor) else np.asarray(a)
    return np.ascontiguousarray(a).tobytes()


def _same(a, b) -> bool:
    a = a.numpy() if isinstance(a, netcl.Tensor) else a
    b = b.numpy() if isinstance(b, netcl.Tensor) else b
    return a.dtype == b.dtype and a.shape == b.shape and _bits(a) == _bits(b)


def test_wiki_example_works_as_written(tmp_path, device):
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (4,), (2, 4), (2,)]
    params = [
        netcl.tensor(rng.standard_normal(s).astype(np.float32), device=device)
        for s in shapes
    ]
    path = str(tmp_path / "checkpoints" / "iter_1000")
    save_checkpoint(
        params,
        path,
        optim_state={"lr": 1e-3, "step": 1000},
        config={"epoch": 5},
        names=["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"],
    )
    assert os.path.exists(path + ".npz") and os.path.exists(path + ".json")
    with np.load(path + ".npz") as npz:
        assert list(npz.keys()) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
        np.testing.assert_array_equal(npz["fc2.weight"], params[2].numpy())

    targets = [netcl.zeros(*s, device=device, requires_grad=True) for s in shapes]
    q = manager.default(device).queue
    state = load_checkpoint(q, targets, path)
    assert state["config"] == {"epoch": 5}
    assert state["optim_state"] == {"lr": 1e-3, "step": 1000}
    for saved, loaded in zip(params, targets):
        assert _same(saved, loaded) and loaded.device is saved.device


@pytest.mark.parametrize("fmt,compress", FORMATS)
def test_every_dtype_bit_exact(tmp_path, fmt, compress):
    rng = np.random.default_rng(1)
    state = {}
    for dt in dtypes.ALL_DTYPES:
        raw = rng.integers(
            0, 256, size=(3, 5) if dt.itemsize > 1 else 15, dtype=np.uint8
        )
        values = np.frombuffer(raw.tobytes() * dt.itemsize, dtype=dt.np)[:15]
        if dt.kind == "b":
            values = values.view(np.uint8) % 2 == 1
        state[dt.name] = netcl.tensor(values.reshape(3, 5), dtype=dt)
    nan_payload = np.array([0x7FF0000000000123, 0xFFF8000000000001], np.uint64)
    state["nan_payload"] = nan_payload.view(np.float64)
    state["neg_zero"] = np.array([-0.0, 0.0], np.float32)
    state["bf16_raw"] = np.array([0x7FC1, 0x8000, 0xFF81, 1], np.uint16).view(
        ml_dtypes.bfloat16
    )
    state["uint64"] = np.array([2**64 - 1], np.uint64)
    state["complex"] = np.array([1 + 2j], np.complex64)
    path = tmp_path / "all"
    save_checkpoint(state, path, format=fmt, compress=compress)
    back = load_checkpoint(None, None, path)
    assert set(back) == set(state)
    for key, value in state.items():
        assert type(back[key]) is type(value), key
        assert _same(value, back[key]), key


@pytest.mark.parametrize("fmt,compress", FORMATS)
def test_nested_tree_keeps_every_type(tmp_path, fmt, compress):
    weight = netcl.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    state = {
        "model": {"enc.weight": weight, "dec.weight": weight},  # shared
        "optimizer": {
            "state": {0: {"step": 7, "exp_avg": np.ones(3)}},
            "groups": [
                {"lr": 0.1, "betas": (0.9, 0.999), "nesterov": False, "name": None}
            ],
        },
        "epoch": 5,
        "loss": float("nan"),
        "best": float("-inf"),
        "zero": -0.0,
        "scalar": np.array(2.5, np.float16),
        "empty": np.zeros((0, 4), np.int64),
        "view": np.arange(20.0).reshape(4, 5)[::2, 1::2],
        "big_int": 2**70,
        "text": "héllo \x00 \u2603",
        "flag": True,
        "rng": {"state": np.array([1, 2**63], np.uint64), "seed": np.uint64(7)},
    }
    save_checkpoint(state, tmp_path / "tree", format=fmt, compress=compress)
    back = load_checkpoint(None, None, tmp_path / "tree")
    assert back["model"]["enc.weight"] is back["model"]["dec.weight"]
    assert _same(back["model"]["enc.weight"], weight)
    assert back["optimizer"]["state"][0]["step"] == 7
    assert isinstance(back["optimizer"]["groups"][0]["betas"], tuple)
    assert back["optimizer"]["groups"][0] == {
        "lr": 0.1,
        "betas": (0.9, 0.999),
        "nesterov": False,
        "name": None,
    }
    assert np.isnan(back["loss"]) and back["best"] == float("-inf")
    assert struct.pack("<d", back["zero"]) == struct.pack("<d", -0.0)
    assert back["scalar"].shape == () and back["scalar"] == 2.5
    assert back["empty"].shape == (0, 4) and back["empty"].dtype == np.int64
    np.testing.assert_array_equal(back["view"], state["view"])
    assert back["big_int"] == 2**70 and back["text"] == state["text"]
    assert back["flag"] is True and back["epoch"] == 5
    assert back["rng"]["seed"] == 7 and type(back["rng"]["seed"]) is int
    assert _same(back["rng"]["state"], state["rng"]["state"])


def test_view_stores_only_its_elements(tmp_path):
    base = np.arange(1_000_000, dtype=np.float64)
    save_checkpoint({"v": base[10:20:3]}, tmp_path / "v", format="npy")
    size = os.path.getsize(tmp_path / "v.npys")
    assert size < 1024
    np.testing.assert_array_equal(
        load_checkpoint(None, None, tmp_path / "v")["v"], base[10:20:3]
    )


def test_names_with_any_characters(tmp_path):
    names = ["a.b", "with space", "ünï", "x\\y", "50%", "", "tab\tnew\nline", "a/b"]
    params = [np.full(2, i, np.float32) for i in range(len(names))]
    save_checkpoint(params, tmp_path / "n", names=names, format="npy")
    back = load_checkpoint(None, None, tmp_path / "n")
    assert list(back["params"]) == names
    for name, value in zip(names, params):
        np.testing.assert_array_equal(back["params"][name], value)


def test_colliding_names_are_refused_before_writing(tmp_path):
    state = {"a/b": np.zeros(1), "a": {"b": np.ones(1)}}
    with pytest.raises(ValueError, match="would both be stored as 'a/b'"):
        save_checkpoint(state, tmp_path / "c")
    assert os.listdir(tmp_path) == []


def test_unstorable_value_names_its_key_path(tmp_path):
    state = {"model": {"w": np.zeros(2)}, "opt": {"groups": [{"fn": print}]}}
    with pytest.raises(TypeError, match=r"\['opt'\]\['groups'\]\[0\]\['fn'\]"):
        save_checkpoint(state, tmp_path / "bad")
    with pytest.raises(TypeError, match="dtype"):
        save_checkpoint({"o": np.array(["x"], object)}, tmp_path / "bad")
    with pytest.raises(TypeError, match="keys must be strings or integers"):
        save_checkpoint({(1, 2): 3}, tmp_path / "bad")
    assert os.listdir(tmp_path) == []


def test_metadata_scalars_become_plain_numbers(tmp_path):
    config = {
        "epoch": np.int32(5),
        "lr": np.float32(0.5),
        "t": netcl.tensor(3.0),
        "z": np.array(2),
        "nan": float("nan"),
        "inf": np.float64("inf"),
    }
    save_checkpoint([np.zeros(1)], tmp_path / "m", config=config, names=["p"])
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    config_back = load_checkpoint(None, None, tmp_path / "m")["config"]
    assert config_back["epoch"] == 5 and type(config_back["epoch"]) is int
    assert config_back["lr"] == 0.5 and type(config_back["lr"]) is float
    assert config_back["t"] == 3.0 and config_back["z"] == 2
    assert np.isnan(config_back["nan"]) and config_back["inf"] == float("inf")


@pytest.mark.parametrize("fmt,compress", FORMATS)
def test_saved_on_one_device_loads_on_another(tmp_path, cl_device, fmt, compress):
    source = netcl.tensor(
        np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        dtype="bfloat16",
        device=cl_device,
    )
    save_checkpoint(
        {"model": {"w": source}}, tmp_path / "x", format=fmt, compress=compress
    )
    on_host = load_checkpoint(None, None, tmp_path / "x")["model"]["w"]
    assert on_host.device.name == "cpu" and _same(on_host, source)
    q = manager.default(cl_device).queue
    on_cl = load_checkpoint(q, None, tmp_path / "x")["model"]["w"]
    assert on_cl.device.name == cl_device and _same(on_cl, source)
    host_param = netcl.zeros(3, 4, dtype="bfloat16")
    load_checkpoint(None, {"w": host_param}, tmp_path / "x")
    assert _same(host_param, source)


def test_npy_header_is_numpy_s_own(tmp_path):
    for dtype, shape in [("<f4", (2, 3)), ("|b1", ()), ("<u2", (7,)), ("<i8", (0, 5))]:
        ours = _format.npy_header(np.dtype(dtype), shape)
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buffer, {"descr": dtype, "fortran_order": False, "shape": shape}
        )
        assert ours == buffer.getvalue()
    golden = (
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, "
        b"'shape': (2, 3), }" + b" " * 58 + b"\n"
    )
    assert _format.npy_header(np.dtype("<f4"), (2, 3)) == golden


def test_npys_records_open_with_numpy_at_their_offset(tmp_path):
    state = {"a": np.arange(10, dtype=np.int16), "b": np.eye(3, dtype=np.float32)}
    save_checkpoint(state, tmp_path / "f", format="npy")
    record = _format.decode_record((tmp_path / "f.json").read_bytes(), "f.json")
    with open(tmp_path / "f.npys", "rb") as f:
        assert f.read(8) == b"NETCLNPS"
        for name, value in state.items():
            f.seek(record["arrays"][name]["offset"])
            np.testing.assert_array_equal(np.load(f), value)


def test_zip64_records_open_with_numpy(tmp_path, monkeypatch):
    monkeypatch.setattr(_zip, "ZIP64_LIMIT", 0)
    state = {"a": np.arange(1000, dtype=np.float32), "b": np.ones((3, 3))}
    for compress in (True, False):
        save_checkpoint(state, tmp_path / "z", compress=compress)
        with np.load(tmp_path / "z.npz") as npz:
            np.testing.assert_array_equal(npz["a"], state["a"])
        back = load_checkpoint(None, None, tmp_path / "z")
        np.testing.assert_array_equal(back["b"], state["b"])


def test_stored_npz_entries_are_aligned_and_compressed_ones_smaller(tmp_path):
    weights = {
        "w": np.random.default_rng(2).standard_normal(100_000).astype(np.float32)
    }
    save_checkpoint(weights, tmp_path / "s", compress=False)
    save_checkpoint(weights, tmp_path / "c", compress=True)
    import zipfile

    with zipfile.ZipFile(tmp_path / "s.npz") as archive:
        info = archive.getinfo("w.npy")
        with open(tmp_path / "s.npz", "rb") as f:
            f.seek(info.header_offset + 26)
            name_len, extra_len = struct.unpack("<HH", f.read(4))
        assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0
    assert os.path.getsize(tmp_path / "c.npz") < 0.95 * os.path.getsize(
        tmp_path / "s.npz"
    )


def test_mmap_load_is_lazy_and_read_only(tmp_path):
    state = {"w": np.arange(1000, dtype=np.float32)}
    save_checkpoint(state, tmp_path / "m", format="npy")
    back = load_checkpoint(None, None, tmp_path / "m", mmap=True, verify=False)
    assert isinstance(back["w"], np.ndarray) and not back["w"].flags.writeable
    np.testing.assert_array_equal(back["w"], state["w"])


def test_frozen_version_1_files_still_load():
    back = load_checkpoint(None, None, os.path.join(DATA, "v1_small"))
    assert back["epoch"] == 3 and back["name"] == "frozen"
    np.testing.assert_array_equal(
        back["model"]["w"].numpy(), np.arange(6, dtype=np.float32).reshape(2, 3)
    )
    assert back["model"]["b"].dtype.name == "bfloat16"
    np.testing.assert_array_equal(
        back["model"]["b"].numpy().view(np.uint16), [0x3F80, 0xC000, 0x7FC1]
    )
