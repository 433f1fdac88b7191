"""Records that pass their own checksum but hold nonsense are refused cleanly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from netcl.cli.main import main
from netcl.io import _format
from netcl.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def _rewrite(base, change) -> None:
    record = json.loads((base.parent / f"{base.name}.json").read_text())
    change(record)
    record.pop("checksum", None)
    (base.parent / f"{base.name}.json").write_bytes(_format.encode_record(record))


def _nest(depth: int) -> list:
    root = cur = []
    for _ in range(depth):
        cur.append([])
        cur = cur[0]
    return root


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["tree"]["dict"].update(junk=_nest(900)), "nested too deeply"),
        (lambda r: r["tree"]["dict"].update(junk={"pyobj": 1}), "damaged tree"),
        (lambda r: r["tree"]["dict"].update(junk={"array": "nope"}), "nope"),
    ],
)
def test_nonsense_trees_are_refused(tmp_path, capsys, change, message):
    base = tmp_path / "ck"
    save_checkpoint({"w": np.arange(4.0)}, base, format="npy")
    _rewrite(base, change)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(None, None, base)
    assert main(["ckpt", "verify", str(base)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("name", ["", ".", "some/folder/"])
def test_names_that_are_folders_are_refused(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="names a folder"):
        save_checkpoint({"w": np.ones(2)}, name)
    assert list(tmp_path.iterdir()) == []
