"""Broken, foreign and outdated model files fail with a ModelFileError that
names the file, the module inside the model and what is wrong; models that
cannot be described fail to save before anything is written."""

from __future__ import annotations

import io
import json
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netcl
from netcl import nn
from netcl.io import _format, load_model, save_model
from netcl.io.checkpoint import CheckpointError
from netcl.io.model import ModelFileError, describe, read_metadata


def _model():
    netcl.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            features=nn.Sequential(
                nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 4)
            ),
            head=nn.Linear(4, 3),
        )
    )


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "digits.netcl"
    save_model(_model(), path, metadata={"input_shape": [1, 8, 8]})
    return path


def _entries(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _rewrite(path, edit=None, entries=None, checksum=True):
    """Rewrite ``path`` with the record changed by ``edit(record)``; the
    record's checksum is recomputed unless ``checksum`` is False."""
    entries = entries if entries is not None else _entries(path)
    record = json.loads(entries["model.json"])
    if edit is not None:
        edit(record)
    if checksum:
        record.pop("checksum")
        entries["model.json"] = _format.encode_record(record)
    else:
        entries["model.json"] = json.dumps(record).encode()
    with zipfile.ZipFile(path, "w") as archive:
        archive.comment = b"netcl-model"
        for name, data in entries.items():
            archive.writestr(name, data)


def _node(record, path):
    node = record["architecture"]
    for name in path.split("."):
        node = dict(node["children"])[name]
    return node


def _load_error(path) -> str:
    with pytest.raises(ModelFileError) as info:
        load_model(path, device="cpu")
    message = str(info.value)
    assert str(path) in message
    return message


def test_model_file_error_is_a_checkpoint_error_and_a_value_error():
    assert issubclass(ModelFileError, CheckpointError)
    assert issubclass(ModelFileError, ValueError)


# ---- damaged files -------------------------------------------------------------


def test_a_changed_byte_in_a_tensor_names_the_module(saved):
    data = bytearray(saved.read_bytes())
    # Tensors are deflated; flip a byte in the middle of the first entry's data.
    with zipfile.ZipFile(saved) as archive:
        info = archive.getinfo("tensors/features.0.weight.npy")
    offset = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[offset + len(info.extra)] ^= 0x10
    saved.write_bytes(bytes(data))
    message = _load_error(saved)
    assert "module 'features.0'" in message and "'weight'" in message
    assert "damaged" in message


def test_a_changed_tensor_with_a_valid_zip_crc_is_caught_by_the_record(saved):
    entries = _entries(saved)
    raw = bytearray(entries["tensors/head.bias.npy"])
    raw[-1] ^= 0x01
    entries["tensors/head.bias.npy"] = bytes(raw)
    _rewrite(saved, entries=entries)
    message = _load_error(saved)
    assert "module 'head'" in message and "checksum mismatch" in message


def test_a_changed_record_fails_its_checksum(saved):
    _rewrite(saved, lambda r: r["metadata"]["dict"].update(extra=1), checksum=False)
    assert "checksum mismatch" in _load_error(saved)


@pytest.mark.parametrize("keep", [0, 1, 10, 100, 0.5, -22, -1])
def test_truncated_files_are_refused(saved, keep):
    data = saved.read_bytes()
    keep = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    saved.write_bytes(data[:keep])
    message = _load_error(saved)
    assert "truncated" in message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused_or_harmless(tmp_path_factory, position, bit):
    path = tmp_path_factory.mktemp("flip") / "m.netcl"
    model = _model()
    save_model(model, path)
    data = bytearray(path.read_bytes())
    data[int(position * len(data))] ^= 1 << bit
    path.write_bytes(bytes(data))
    try:
        loaded = load_model(path, device="cpu")
    except ModelFileError:
        return
    # The flip hit bytes no reader depends on (a timestamp, padding...).
    for key, value in model.state_dict().items():
        assert loaded.state_dict()[key].numpy().tobytes() == value.numpy().tobytes()


# ---- foreign and newer files ----------------------------------------------------


def test_a_foreign_zip_is_not_a_model(tmp_path):
    path = tmp_path / "arrays.netcl"
    np.savez(path.with_suffix(".npz"), a=np.zeros(3))
    path.with_suffix(".npz").rename(path)
    assert "not a netcl model file" in _load_error(path)


def test_a_zip_with_a_foreign_model_json_is_not_a_model(tmp_path):
    path = tmp_path / "other.netcl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.json", json.dumps({"format": "keras"}))
    assert "not a netcl model file" in _load_error(path)


@pytest.mark.parametrize("content", [b"", b"hello", b"PK\x03\x04" + bytes(40)])
def test_files_that_are_not_zip_archives(tmp_path, content):
    path = tmp_path / "x.netcl"
    path.write_bytes(content)
    assert "not a readable zip archive" in _load_error(path)


def test_a_newer_format_version_asks_for_an_upgrade(saved):
    _rewrite(saved, lambda r: r.update(version=2))
    message = _load_error(saved)
    assert "version 2" in message and "upgrade netcl" in message


def test_a_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "none.netcl")


def test_describe_and_read_metadata_check_the_file_too(saved):
    _rewrite(saved, lambda r: r.update(magic="other"))
    for reader in (describe, read_metadata):
        with pytest.raises(ModelFileError, match="not a netcl model file"):
            reader(saved)


def test_a_missing_tensor_entry_names_it(saved):
    entries = _entries(saved)
    del entries["tensors/features.3.weight.npy"]
    _rewrite(saved, entries=entries)
    message = _load_error(saved)
    assert "module 'features.3'" in message and "'weight' is missing" in message


def test_a_malformed_record_is_refused(saved):
    _rewrite(saved, lambda r: r.update(tensors={"not": "a list"}))
    assert "malformed record" in _load_error(saved)
    _rewrite(saved, lambda r: r.update(tensors=[]))
    _rewrite(saved, lambda r: _node(r, "features").update(children="x"))
    message = _load_error(saved)
    assert "module 'features'" in message and "malformed" in message


# ---- models that cannot be rebuilt ----------------------------------------------


def test_an_unknown_layer_type_names_the_module_and_how_to_register(saved):
    _rewrite(saved, lambda r: _node(r, "features.3").update(type="FancyLinear"))
    message = _load_error(saved)
    assert "module 'features.3'" in message
    assert "unknown module type 'FancyLinear'" in message
    assert "@netcl.nn.register('FancyLinear')" in message


def test_constructor_arguments_that_no_longer_fit(saved):
    def edit(record):
        config = _node(record, "features.3")["config"]["dict"]
        config["out_features"] = -4
        config["activation"] = "relu"

    _rewrite(saved, edit)
    message = _load_error(saved)
    assert "module 'features.3'" in message
    assert "constructor arguments no longer fit Linear" in message
    assert "'activation': 'relu'" in message


def test_arguments_that_build_but_give_other_shapes(saved):
    _rewrite(saved, lambda r: _node(r, "head")["config"]["dict"].update(out_features=5))
    message = _load_error(saved)
    assert "module 'head'" in message and "do not fit" in message
    assert "shape" in message


@nn.register("tests.Block")
class Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.width = width
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return self.fc(x).relu()

    def config(self):
        return {"width": self.width}


def test_a_missing_registration_names_the_class(tmp_path, monkeypatch):
    from netcl.nn import module as module_mod

    path = tmp_path / "m.netcl"
    save_model(nn.Sequential(nn.Linear(2, 3), Block(3)), path)
    # As in a program that never imported the code defining Block:
    monkeypatch.delitem(module_mod._REGISTRY, "tests.Block")
    message = _load_error(path)
    assert "module '1'" in message and "'tests.Block'" in message
    assert f"{__name__}.Block" in message
    assert "@netcl.nn.register" in message


def test_a_class_whose_children_changed(tmp_path):
    path = tmp_path / "m.netcl"
    save_model(Block(3), path)

    def edit(record):
        record["architecture"]["children"][0][0] = "linear"

    _rewrite(path, edit)
    message = _load_error(path)
    assert "made the submodules ['fc']" in message and "['linear']" in message


# ---- saving what cannot be described --------------------------------------------


class Unregistered(nn.Module):
    def forward(self, x):
        return x


class NoConfig(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.width = width


@nn.register("tests.ArrayConfig")
class ArrayConfig(nn.Module):
    def config(self):
        return {"table": np.zeros(3)}


@pytest.mark.parametrize(
    "child, words",
    [
        (Unregistered(), ["module 'body.1'", "not registered", "@netcl.nn.register"]),
        (nn.register("tests.NoConfig")(NoConfig)(2), ["module 'body.1'", "config()"]),
        (ArrayConfig(), ["module 'body.1'", "array"]),
    ],
    ids=["unregistered", "no config", "array in config"],
)
def test_modules_that_cannot_be_described_fail_before_writing(tmp_path, child, words):
    model = nn.Sequential(OrderedDict(body=nn.Sequential(nn.ReLU(), child)))
    with pytest.raises(TypeError) as info:
        save_model(model, tmp_path / "m.netcl")
    for word in words:
        assert word in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "metadata, words",
    [
        ({"weights": np.ones(2)}, ["metadata", "array"]),
        ({"f": io.BytesIO()}, ["metadata", "BytesIO"]),
        (["input_shape"], ["metadata must be a mapping"]),
    ],
)
def test_metadata_that_is_not_plain_data_fails(tmp_path, metadata, words):
    with pytest.raises(TypeError) as info:
        save_model(nn.ReLU(), tmp_path / "m.netcl", metadata=metadata)
    for word in words:
        assert word in str(info.value)


def test_save_model_wants_a_module(tmp_path):
    with pytest.raises(TypeError, match="expects a netcl.nn.Module"):
        save_model({"weight": netcl.zeros(2)}, tmp_path / "m.netcl")


@netcl.nn.register("SizeLiar")
class _SizeLiar(netcl.nn.Module):
    """Makes ``n`` numbers but can tell the file another ``n``."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.w = netcl.nn.Parameter(netcl.zeros(n))
        self.claimed = n

    def config(self) -> dict:
        return {"n": self.claimed}


def test_a_file_asking_for_a_huge_layer_fails_before_allocating(tmp_path):
    liar = _SizeLiar(4)
    liar.claimed = 10**7  # what a crafted file could say: 40 MB, not 16 bytes
    save_model(nn.Sequential(liar), tmp_path / "m.netcl")
    with pytest.raises(ModelFileError, match=r"module '0'.*larger than the 4 "):
        load_model(tmp_path / "m.netcl", device="cpu")
