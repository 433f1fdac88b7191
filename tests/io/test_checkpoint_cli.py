"""``netcl ckpt``: inspect, verify, diff and convert."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

import netcl
from netcl.cli import ckpt
from netcl.io.checkpoint import load_checkpoint, save_checkpoint


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    ckpt.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ckpt", *argv])
    return args.func(args)


@pytest.fixture
def two(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    save_checkpoint(
        {"model": {"w": netcl.tensor(w), "b": np.zeros(3, np.float16)}, "epoch": 3},
        tmp_path / "a",
    )
    save_checkpoint(
        {"model": {"w": netcl.tensor(w + 0.5), "c": np.zeros(2)}, "epoch": 4},
        tmp_path / "b",
        format="npy",
    )
    return tmp_path


def test_inspect_table_and_json(two, capsys):
    assert _run("inspect", str(two / "a")) == 0
    out = capsys.readouterr().out
    assert "format:        npz" in out and "'epoch': 3" in out
    assert "model/w  (2, 3)  float32     24" in out
    assert _run("inspect", "--json", str(two / "b.npys")) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "npy" and doc["tree"]["epoch"] == 4
    assert {
        "name": "model/c",
        "shape": [2],
        "dtype": "float64",
        "kind": "ndarray",
        "bytes": 16,
    } in doc["arrays"]


def test_verify_sound_and_damaged(two, capsys):
    assert _run("verify", str(two / "a")) == 0
    assert "ok:" in capsys.readouterr().out
    original = (two / "b.npys").read_bytes()
    record = json.loads((two / "b.json").read_text())
    for where, reason in [(-20, "non-zero bytes after"), (None, "checksum mismatch")]:
        data = bytearray(original)
        where = where or record["arrays"]["model/w"]["offset"] + 130
        data[where] ^= 1
        (two / "b.npys").write_bytes(bytes(data))
        assert _run("verify", str(two / "b")) == 1
        assert reason in capsys.readouterr().err
    assert _run("verify", str(two / "missing")) == 1


def test_diff(two, capsys):
    assert _run("diff", str(two / "a"), str(two / "b")) == 0
    out = capsys.readouterr().out
    assert "added    model/c  (2,) float64" in out
    assert "removed  model/b  (3,) float16" in out
    assert "common   model/w  max |a-b| = 0.5" in out
    assert "['epoch']: 3 -> 4" in out


@pytest.mark.parametrize("fmt", ["npz", "npy", "pickle"])
def test_convert_keeps_values(two, fmt):
    assert _run("convert", str(two / "a"), str(two / "c"), "--format", fmt) == 0
    back = load_checkpoint(None, None, two / "c")
    np.testing.assert_array_equal(
        back["model"]["w"].numpy(), np.arange(6, dtype=np.float32).reshape(2, 3)
    )
    assert back["epoch"] == 3
