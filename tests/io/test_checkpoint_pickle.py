"""The pickle format never runs code from a file unless told to trust it."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from netcl.io import _format, _pickle
from netcl.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


class _RunsACommand:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _plant(tmp_path, payload: bytes) -> None:
    """Replace the array file of checkpoint ``c`` and make the record agree."""
    (tmp_path / "c.pkl").write_bytes(payload)
    doc = _format.decode_record((tmp_path / "c.json").read_bytes(), "c.json")
    doc["array_file_size"] = len(payload)
    (tmp_path / "c.json").write_bytes(_format.encode_record(doc))


def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path):
    save_checkpoint({"w": np.ones(3)}, tmp_path / "c", format="pickle")
    marker = tmp_path / "pwned"
    _plant(tmp_path, pickle.dumps({"magic": "x", "arrays": _RunsACommand(str(marker))}))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(None, None, tmp_path / "c")
    assert "system" in str(info.value) and "c.pkl" in str(info.value)
    assert not marker.exists()
    # the same file does run the command when trusted: the payload is live
    with pytest.raises(CheckpointError):
        load_checkpoint(None, None, tmp_path / "c", trusted=True)
    assert marker.exists()


def test_restricted_loader_accepts_arrays_and_containers():
    doc = {
        "a": np.arange(4, dtype=np.int16),
        "b": [1, 2.5, "x", None, (True,)],
        "d": np.dtype("<f4"),
        "c": 1 + 2j,
    }
    back = _pickle.restricted_load(pickle.dumps(doc, protocol=4))
    np.testing.assert_array_equal(back["a"], doc["a"])
    assert back["b"] == doc["b"] and back["d"] == doc["d"] and back["c"] == doc["c"]
    for protocol in (2, 5):
        np.testing.assert_array_equal(
            _pickle.restricted_load(pickle.dumps(doc["a"], protocol=protocol)), doc["a"]
        )


def test_restricted_loader_names_the_refused_global():
    with pytest.raises(_pickle.UnsafePickleError, match="collections.Counter"):
        import collections

        _pickle.restricted_load(pickle.dumps(collections.Counter("ab")))


def test_npz_object_arrays_are_never_unpickled(tmp_path):
    save_checkpoint({"w": np.ones(2)}, tmp_path / "c")
    record = _format.decode_record((tmp_path / "c.json").read_bytes(), "c.json")
    evil = tmp_path / "evil.npz"
    np.savez(evil, w=np.array([_RunsACommand(str(tmp_path / "m"))], dtype=object))
    data = evil.read_bytes()
    (tmp_path / "c.npz").write_bytes(data)
    record["array_file_size"] = len(data)
    (tmp_path / "c.json").write_bytes(_format.encode_record(record))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(None, None, tmp_path / "c")
    assert "pickle" not in str(info.value).lower()
    assert not (tmp_path / "m").exists()
