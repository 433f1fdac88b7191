"""Damaged files, failed writes and killed saves never cost a checkpoint."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from netcl.io import _atomic, _format
from netcl.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

FORMATS = [("npz", True), ("npz", False), ("npy", False), ("pickle", False)]
EXT = {"npz": ".npz", "npy": ".npys", "pickle": ".pkl"}


def _state(seed: int, n: int = 5000) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "model": {
            f"layer{i}.w": rng.standard_normal(n).astype(np.float32) for i in range(4)
        },
        "seed": seed,
    }


def _loads_as(path, *states) -> int:
    """Which of ``states`` the checkpoint at ``path`` equals, bit for bit."""
    back = load_checkpoint(None, None, path)
    for index, state in enumerate(states):
        if back["seed"] == state["seed"]:
            for key, value in state["model"].items():
                assert back["model"][key].tobytes() == value.tobytes(), key
            return index
    raise AssertionError(f"loaded neither state: seed {back['seed']}")


def _leftovers(directory) -> list[str]:
    return [n for n in os.listdir(directory) if n.endswith(".tmp") or ".prev." in n]


# --- damaged and foreign files ----------------------------------------------


@pytest.mark.parametrize("fmt,compress", FORMATS)
def test_flipped_byte_in_any_array_is_caught(tmp_path, fmt, compress):
    save_checkpoint(_state(0), tmp_path / "c", format=fmt, compress=compress)
    array_file = tmp_path / f"c{EXT[fmt]}"
    data = bytearray(array_file.read_bytes())
    record = json.loads((tmp_path / "c.json").read_text())
    if fmt == "npy":
        where = record["arrays"]["model/layer2.w"]["offset"] + 1000
    else:
        where = len(data) // 2
    data[where] ^= 0x10
    array_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(None, None, tmp_path / "c")
    assert str(array_file) in str(info.value)
    assert "pickle" not in str(info.value).lower() or fmt == "pickle"
    if fmt == "npy":
        assert "'model/layer2.w'" in str(info.value)
        assert "checksum mismatch" in str(info.value)


@pytest.mark.parametrize("fmt,compress", FORMATS)
@pytest.mark.parametrize("damage", ["truncate", "empty", "foreign"])
def test_truncated_empty_or_foreign_array_file(tmp_path, fmt, compress, damage):
    save_checkpoint(_state(0), tmp_path / "c", format=fmt, compress=compress)
    array_file = tmp_path / f"c{EXT[fmt]}"
    data = array_file.read_bytes()
    replacement = {
        "truncate": data[: len(data) // 3],
        "empty": b"",
        "foreign": b"PK\x05\x06" + bytes(len(data) - 4),
    }[damage]
    array_file.write_bytes(replacement)
    with pytest.raises(CheckpointError, match=str(array_file).replace("\\", ".")):
        load_checkpoint(None, None, tmp_path / "c")


@pytest.mark.parametrize("damage", ["flip", "empty", "truncate", "garbage"])
def test_damaged_record(tmp_path, damage):
    save_checkpoint(_state(0), tmp_path / "c")
    record = tmp_path / "c.json"
    text = record.read_text()
    record.write_text(
        {
            "flip": text.replace('"seed": 0', '"seed": 1'),
            "empty": "",
            "truncate": text[:100],
            "garbage": "\x00\x01hello",
        }[damage]
    )
    with pytest.raises(CheckpointError, match="c.json"):
        load_checkpoint(None, None, tmp_path / "c")


def test_newer_format_version_is_refused_with_a_clear_message(tmp_path):
    save_checkpoint(_state(0), tmp_path / "c")
    doc = _format.decode_record((tmp_path / "c.json").read_bytes(), "c.json")
    doc["version"] = 2
    (tmp_path / "c.json").write_bytes(_format.encode_record(doc))
    with pytest.raises(CheckpointError, match="format version 2.*upgrade netcl"):
        load_checkpoint(None, None, tmp_path / "c")


def test_mismatched_pair_is_detected(tmp_path):
    save_checkpoint(_state(0), tmp_path / "a")
    save_checkpoint(_state(0), tmp_path / "b")
    os.replace(tmp_path / "b.npz", tmp_path / "a.npz")
    with pytest.raises(CheckpointError, match="different saves"):
        load_checkpoint(None, None, tmp_path / "a")


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.json.*nothing\.npz"):
        load_checkpoint(None, None, tmp_path / "nothing")
    save_checkpoint(_state(0), tmp_path / "c")
    os.unlink(tmp_path / "c.json")
    with pytest.raises(CheckpointError, match="save did not complete"):
        load_checkpoint(None, None, tmp_path / "c")


# --- failures while saving --------------------------------------------------


class _Faults:
    """Makes the n-th write, flush, fsync, link or replace fail with ENOSPC."""

    def __init__(self, monkeypatch, fail_at: int) -> None:
        self.count, self.fail_at, self.hit = 0, fail_at, False
        for name in ("fsync", "replace", "link"):
            monkeypatch.setattr(os, name, self._wrap(getattr(os, name)))
        real_open = open

        def fake_open(path, mode="r", *args, **kwargs):
            return _FaultyFile(real_open(path, mode, *args, **kwargs), self)

        monkeypatch.setattr(_atomic, "open", fake_open, raising=False)

    def step(self) -> None:
        self.count += 1
        if self.count == self.fail_at:
            self.hit = True
            raise OSError(errno.ENOSPC, "No space left on device")

    def _wrap(self, function):
        def wrapped(*args, **kwargs):
            self.step()
            return function(*args, **kwargs)

        return wrapped


class _FaultyFile:
    def __init__(self, file, faults: _Faults) -> None:
        self._file, self._faults = file, faults

    def write(self, data):
        self._faults.step()
        return self._file.write(data)

    def flush(self):
        self._faults.step()
        return self._file.flush()

    def __getattr__(self, name):
        return getattr(self._file, name)


@pytest.mark.parametrize(
    "fmt,compress", [("npz", True), ("npy", False), ("pickle", False)]
)
def test_a_fault_at_every_step_leaves_old_or_new(tmp_path, monkeypatch, fmt, compress):
    old, new = _state(1, 300), _state(2, 300)
    path = tmp_path / "c"
    save_checkpoint(old, path, format="npz")
    step = 1
    while True:
        with monkeypatch.context() as patch:
            faults = _Faults(patch, step)
            try:
                save_checkpoint(new, path, format=fmt, compress=compress)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC and str(tmp_path) in str(exc.filename)
        if not faults.hit:
            break
        which = _loads_as(path, old, new)
        assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")], step
        if which == 1:  # the failure came after the commit; start again from old
            save_checkpoint(old, path, format="npz")
        step += 1
    assert step > 8  # every write, flush, fsync, link and replace was hit
    assert _loads_as(path, old, new) == 1
    assert _leftovers(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["c.json", f"c{EXT[fmt]}"]


def test_leftovers_of_a_killed_save_are_cleaned_by_the_next(tmp_path):
    save_checkpoint(_state(0), tmp_path / "c")
    (tmp_path / ".c.npz.deadbeef.tmp").write_bytes(b"partial")
    (tmp_path / ".c.json.deadbeef.tmp").write_bytes(b"{")
    save_checkpoint(_state(1), tmp_path / "c")
    assert sorted(os.listdir(tmp_path)) == ["c.json", "c.npz"]


def test_array_file_replaced_before_record_loads_old_then_repairs(tmp_path):
    old, new = _state(1), _state(2)
    save_checkpoint(old, tmp_path / "c")
    os.link(tmp_path / "c.npz", tmp_path / "c.prev.npz")
    save_checkpoint(new, tmp_path / "n")
    os.replace(tmp_path / "n.npz", tmp_path / "c.npz")  # crash before step 5
    assert _loads_as(tmp_path / "c", old, new) == 0
    save_checkpoint(new, tmp_path / "c", format="npy")
    assert _loads_as(tmp_path / "c", old, new) == 1
    assert "c.npz" not in os.listdir(tmp_path)


# --- killed saves -----------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from netcl.io.checkpoint import save_checkpoint

    path, fmt = sys.argv[1], sys.argv[2]
    states = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        model = {f"layer{i}.w": rng.standard_normal(n).astype(np.float32)
                 for i, n in enumerate([3_000_000, 1000, 2_000_000, 10])}
        states.append({"model": model, "seed": seed})
    print("ready", flush=True)
    i = 1
    while True:
        save_checkpoint(states[i % 2], path, format=fmt)
        i += 1
    """
)


def _big_state(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    model = {
        f"layer{i}.w": rng.standard_normal(n).astype(np.float32)
        for i, n in enumerate([3_000_000, 1000, 2_000_000, 10])
    }
    return {"model": model, "seed": seed}


@pytest.mark.parametrize("fmt", ["npy", "npz"])
def test_sigkill_at_many_moments_leaves_old_or_new(tmp_path, fmt):
    states = [_big_state(1), _big_state(2)]
    path = str(tmp_path / "big")
    save_checkpoint(states[0], path, format=fmt)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(
        os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    rng = np.random.default_rng(0)
    seen = set()
    for delay in rng.uniform(0.0, 0.6, size=8):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, path, fmt], stdout=subprocess.PIPE, env=env
        )
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        seen.add(_loads_as(path, *states))
    assert seen  # each kill left a loadable checkpoint, old or new
    save_checkpoint(states[1], path, format=fmt)
    assert _leftovers(tmp_path) == []
