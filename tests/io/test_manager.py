"""CheckpointManager: cadence, retention, the latest pointer, restore with
fallback, the directory lock, full disks, async saves and the listing."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

import netcl
from netcl.io import _atomic
from netcl.io import manager as manager_mod
from netcl.io.listing import format_listing, listing_json
from netcl.io.manager import (
    CheckpointManager,
    CheckpointManagerWarning,
    DirectoryLockedError,
)


def state(value: float, epoch: int = 0, device: str = "cpu") -> dict:
    """A small training state whose every array holds ``value``."""
    return {
        "model": {"w": netcl.full((3, 4), value, device=device)},
        "moments": np.full(5, value, np.float32),
        "epoch": epoch,
        "note": "x",
    }


def value_of(tree: dict) -> float:
    w = tree["model"]["w"].numpy()
    assert (w == w.flat[0]).all() and (tree["moments"] == w.flat[0]).all()
    return float(w.flat[0])


def files(directory) -> set[str]:
    return set(os.listdir(directory))


def run_child(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(proc: subprocess.Popen, text: str, timeout: float = 300) -> None:
    """Read the child's output until a line equals ``text``."""
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            if line.strip() == text:
                return
    finally:
        timer.cancel()
    raise AssertionError(f"child ended before {text!r}: {proc.stderr.read()}")


# ---- arguments and cadence ---------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"keep_last": 0},
        {"keep_last": -1},
        {"keep_best": 1},  # no metric
        {"mode": "lowest"},
        {"every_n_steps": 0},
        {"every_n_epochs": 0},
        {"format": "zip"},
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError):
        CheckpointManager(tmp_path, **kwargs)


def test_step_cadence_and_force(tmp_path):
    with CheckpointManager(tmp_path, every_n_steps=5, every_n_epochs=None) as mgr:
        saved = [s for s in range(1, 21) if mgr.save(s, state(s))]
        assert saved == [5, 10, 15, 20]
        assert mgr.save(20, state(20)) is False  # the same step twice
        assert mgr.save(21, state(21), force=True) is True
        assert mgr.latest() == 21


def test_epoch_cadence_reads_state_epoch(tmp_path):
    with CheckpointManager(tmp_path, every_n_epochs=2, keep_last=None) as mgr:
        saved = [s for s in range(12) if mgr.save(s, state(s, epoch=s // 3))]
    # epochs 0,0,0,1,1,1,2,... : saves once epoch has grown by 2 since the last
    assert saved == [6]
    with CheckpointManager(tmp_path, every_n_epochs=2, keep_last=None) as mgr:
        # a restarted manager counts from the newest checkpoint's epoch (2)
        assert not mgr.save(12, state(0, epoch=3))
        assert mgr.save(13, state(0, epoch=4))


def test_epoch_cadence_without_epoch_warns_once(tmp_path):
    with CheckpointManager(tmp_path) as mgr:
        with pytest.warns(CheckpointManagerWarning, match="epoch"):
            assert not mgr.save(1, {"w": np.zeros(2)})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert not mgr.save(2, {"w": np.zeros(2)})
            assert mgr.save(3, {"w": np.zeros(2)}, force=True)


def test_reserved_key_and_bad_values(tmp_path):
    with CheckpointManager(tmp_path) as mgr:
        with pytest.raises(ValueError, match="reserved"):
            mgr.save(1, {"__manager__": 1}, force=True)
        with pytest.raises(TypeError):
            mgr.save(1, {"w": object()}, force=True)
        with pytest.raises(TypeError):
            mgr.save(1, state(1), metrics={"acc": "a b".split()}, force=True)
        with pytest.raises(ValueError):
            mgr.save(-1, state(1), force=True)
    with CheckpointManager(tmp_path, async_save=True) as mgr:
        with pytest.raises(TypeError, match="object"):  # raised at the call
            mgr.save(1, {"w": object()}, force=True)


# ---- naming, ordering, retention ---------------------------------------------


def test_steps_are_ordered_by_number(tmp_path):
    steps = [9, 100_000_000, 10, 99_999_999, 100]
    with CheckpointManager(tmp_path, keep_last=None) as mgr:
        for s in steps:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CheckpointManagerWarning)
                mgr.save(s, state(s), force=True)
        assert [i.step for i in mgr.list()] == sorted(steps)
        assert mgr.latest() == 100_000_000
        assert value_of(mgr.restore()) == 100_000_000
    assert "step_100000000.json" in files(tmp_path)
    assert "step_00000009.json" in files(tmp_path)


def test_keep_last_counts(tmp_path):
    with CheckpointManager(tmp_path, keep_last=3, every_n_steps=1) as mgr:
        for s in range(1, 11):
            mgr.save(s, state(s))
        assert [i.step for i in mgr.list()] == [8, 9, 10]
    with CheckpointManager(tmp_path / "all", keep_last=None, every_n_steps=1) as mgr:
        for s in range(1, 11):
            mgr.save(s, state(s))
        assert len(mgr.list()) == 10


def test_keep_best_survives_restart(tmp_path):
    acc = {1: 0.5, 2: 0.9, 3: 0.6, 4: 0.7, 5: 0.8, 6: 0.1, 7: 0.2}
    kwargs = dict(keep_last=2, keep_best=1, metric="acc", mode="max")
    with CheckpointManager(tmp_path, **kwargs) as mgr:
        for s in (1, 2, 3, 4):
            mgr.save(s, state(s), metrics={"acc": acc[s]}, force=True)
        assert mgr.best() == 2
        assert [i.step for i in mgr.list()] == [2, 3, 4]
    # A new manager (a restarted job) rebuilds the ranking from the files.
    with CheckpointManager(tmp_path, **kwargs) as mgr:
        assert mgr.best() == 2
        for s in (5, 6, 7):
            mgr.save(s, state(s), metrics={"acc": acc[s]}, force=True)
        assert [i.step for i in mgr.list()] == [2, 6, 7]
        assert value_of(mgr.restore(step=mgr.best())) == 2
    with CheckpointManager(tmp_path, metric="acc", mode="min") as mgr:
        assert mgr.best() == 6


@pytest.mark.parametrize("fmt", ["npy", "npz", "pickle"])
def test_every_array_format(tmp_path, fmt):
    with CheckpointManager(tmp_path, format=fmt, keep_last=1) as mgr:
        for s in (1, 2):
            mgr.save(s, state(s), force=True)
        assert [(i.step, i.valid) for i in mgr.list(verify=True)] == [(2, True)]
        assert value_of(mgr.restore()) == 2
    assert len(files(tmp_path)) == 4  # .lock, latest, one record, one array file


def test_metrics_epoch_and_size_in_list(tmp_path):
    with CheckpointManager(tmp_path, metric="loss") as mgr:
        mgr.save(
            4,
            state(1, epoch=2),
            metrics={"loss": np.float32(0.25), "acc": netcl.tensor(0.5), "n": None},
            force=True,
        )
        (info,) = mgr.list()
    assert info.step == 4 and info.epoch == 2 and info.valid and info.latest
    assert info.metrics == {"loss": 0.25, "acc": 0.5, "n": None}
    assert info.size == sum(
        os.path.getsize(tmp_path / f"step_00000004{ext}") for ext in (".json", ".npys")
    )


def test_other_files_are_never_touched(tmp_path):
    keep = {
        "notes.txt": b"mine",
        "step_5.json": b"{}",
        "step_00000005.txt": b"mine",
        "step_00000007.npys": b"not netcl at all",  # looks like an orphan array file
        ".step_notes.tmp": b"mine",
        "latest.json": b"{}",
        "step_00000002.json": b'{"mine": true}',  # a checkpoint's name, not one
    }
    for name, data in keep.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "step_00000001.json").write_bytes(b"x")
    with CheckpointManager(tmp_path, keep_last=1, every_n_steps=1) as mgr:
        for s in range(10, 16):
            mgr.save(s, state(s))
        assert [(i.step, i.valid) for i in mgr.list()] == [(2, False), (15, True)]
    for name, data in keep.items():
        assert (tmp_path / name).read_bytes() == data
    assert (tmp_path / "sub" / "step_00000001.json").read_bytes() == b"x"


# ---- latest pointer, half-written and damaged checkpoints --------------------


def test_pointer_is_written_and_scanning_covers_for_it(tmp_path):
    with CheckpointManager(tmp_path, keep_last=None) as mgr:
        for s in (1, 2, 3):
            mgr.save(s, state(s), force=True)
    pointer = json.loads((tmp_path / "latest").read_text())
    assert pointer == {"step": 3, "name": "step_00000003"}

    (tmp_path / "latest").write_text('{"step": 1, "name": "step_00000001"}')  # stale
    with CheckpointManager(tmp_path) as mgr:
        assert mgr.latest() == 3 and value_of(mgr.restore()) == 3
    (tmp_path / "latest").unlink()
    with CheckpointManager(tmp_path) as mgr:
        assert mgr.latest() == 3 and value_of(mgr.restore()) == 3
    (tmp_path / "latest").write_bytes(b"\x00garbage")
    with CheckpointManager(tmp_path) as mgr:
        assert value_of(mgr.restore()) == 3


def test_half_written_checkpoints_are_ignored_and_cleaned(tmp_path):
    with CheckpointManager(tmp_path, keep_last=2) as mgr:
        for s in (1, 2):
            mgr.save(s, state(s), force=True)
        mgr.save(3, state(3), force=True)
    # Make step 3 look cut off between its array file and its record, and
    # leave temporaries like a killed save would.
    (tmp_path / "step_00000003.json").unlink()
    (tmp_path / ".step_00000004.npys.0123456789ab.tmp").write_bytes(b"partial")
    (tmp_path / ".step_00000004.json.ba9876543210.tmp").write_bytes(b"{")
    with CheckpointManager(tmp_path, keep_last=2) as mgr:
        assert files(tmp_path) == {
            ".lock",
            "latest",
            "step_00000002.json",
            "step_00000002.npys",
        }
        assert mgr.latest() == 2
        assert value_of(mgr.restore()) == 2
        assert mgr.save(3, state(33), force=True)  # the same step, not blocked
        assert value_of(mgr.restore()) == 33
        assert [i.step for i in mgr.list()] == [2, 3]


@pytest.mark.parametrize("damage", ["array", "record", "truncate", "missing"])
def test_damaged_newest_is_skipped_with_a_warning(tmp_path, damage):
    with CheckpointManager(tmp_path, keep_last=None, every_n_steps=1) as mgr:
        for s in (1, 2, 3):
            mgr.save(s, state(s))
    newest = tmp_path / "step_00000003"
    array_file = newest.with_suffix(".npys")
    if damage == "array":  # one flipped bit in the data: only checksums see it
        data = bytearray(array_file.read_bytes())
        data[-3] ^= 0x10
        array_file.write_bytes(bytes(data))
    elif damage == "record":
        text = newest.with_suffix(".json").read_text()
        newest.with_suffix(".json").write_text(text.replace('"x"', '"y"'))
    elif damage == "truncate":
        array_file.write_bytes(array_file.read_bytes()[:100])
    else:
        array_file.unlink()
    with CheckpointManager(tmp_path) as mgr:
        with pytest.warns(CheckpointManagerWarning, match="step_00000003") as caught:
            tree = mgr.restore()
        assert len(caught) == 1
        assert value_of(tree) == 2
        assert mgr.last_restored == f"step 2 ({tmp_path / 'step_00000002'})"
        bad = {i.step: i for i in mgr.list(verify=True)}[3]
        assert not bad.valid and bad.error
        with pytest.raises(ValueError):
            mgr.restore(step=3)


def test_cadence_counts_from_the_restored_checkpoint(tmp_path):
    with CheckpointManager(tmp_path, keep_last=None) as mgr:
        for epoch in (1, 2, 3):
            mgr.save(10 * epoch, state(epoch, epoch=epoch))
    (tmp_path / "step_00000030.npys").write_bytes(b"junk")
    with CheckpointManager(tmp_path, keep_last=None) as mgr:
        with pytest.warns(CheckpointManagerWarning, match="step_00000030"):
            assert value_of(mgr.restore()) == 2
        # The run went back to the end of epoch 2, so epoch 3 is due again
        # (and its save replaces the damaged one).
        assert mgr.save(30, state(33, epoch=3))
        assert value_of(mgr.restore()) == 33


def test_restore_when_there_is_nothing(tmp_path):
    with CheckpointManager(tmp_path) as mgr:
        assert mgr.restore() is None
        assert mgr.latest() is None and mgr.best() is None and mgr.list() == []
        with pytest.raises(FileNotFoundError, match="step 5"):
            mgr.restore(step=5)


def test_restore_all_damaged_returns_none(tmp_path):
    with CheckpointManager(tmp_path) as mgr:
        mgr.save(1, state(1), force=True)
    (tmp_path / "step_00000001.npys").write_bytes(b"junk")
    with CheckpointManager(tmp_path) as mgr:
        with pytest.warns(CheckpointManagerWarning):
            assert mgr.restore() is None
        assert mgr.last_restored is None


def test_restore_onto_a_device(tmp_path, device):
    with CheckpointManager(tmp_path) as mgr:
        mgr.save(1, state(7, device=device), force=True)
        tree = mgr.restore(queue=netcl.get_device(device))
    assert tree["model"]["w"].device is netcl.get_device(device)
    assert value_of(tree) == 7 and tree["note"] == "x" and tree["epoch"] == 0
    assert "__manager__" not in tree


# ---- full disk ---------------------------------------------------------------


def _full_disk(monkeypatch):
    def no_space(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_atomic.PendingFile, "finish", no_space)


@pytest.mark.parametrize("async_save", [False, True])
def test_full_disk_raises_and_keeps_earlier_checkpoints(
    tmp_path, monkeypatch, async_save
):
    with CheckpointManager(tmp_path, keep_last=2, async_save=async_save) as mgr:
        for s in (1, 2):
            mgr.save(s, state(s), force=True)
        mgr.wait()
        before = {n: (tmp_path / n).read_bytes() for n in files(tmp_path)}
        with monkeypatch.context() as patch:
            _full_disk(patch)
            with pytest.raises(OSError) as err:
                mgr.save(3, state(3), force=True)
                mgr.wait()  # async: the background error comes out here
        assert err.value.errno == errno.ENOSPC
        assert "step_00000003" in str(err.value) and "disk is full" in str(err.value)
        after = {n: (tmp_path / n).read_bytes() for n in files(tmp_path)}
        assert after == before  # nothing lost, no temporaries left
        assert mgr.latest() == 2 and value_of(mgr.restore()) == 2
        # Training goes on: the next save works.
        assert mgr.save(4, state(4), force=True)
        mgr.wait()
        assert [i.step for i in mgr.list()] == [2, 4]


# ---- the lock ----------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from netcl.io.manager import CheckpointManager
mgr = CheckpointManager(sys.argv[1])
print("locked", flush=True)
time.sleep(60)
"""


def test_second_manager_in_this_process_is_refused(tmp_path):
    with CheckpointManager(tmp_path):
        with pytest.raises(DirectoryLockedError, match=f"pid {os.getpid()}"):
            CheckpointManager(tmp_path)
    with CheckpointManager(tmp_path):  # released by close()
        pass


def test_second_process_gets_the_holders_pid(tmp_path):
    child = run_child(HOLD_LOCK, tmp_path)
    try:
        wait_for_line(child, "locked")
        with pytest.raises(DirectoryLockedError, match=f"process id {child.pid}"):
            CheckpointManager(tmp_path)
    finally:
        child.kill()
        child.wait()
    # The holder died without closing: its lock must not block us.
    assert (tmp_path / ".lock").read_text().strip() == str(child.pid)
    with CheckpointManager(tmp_path) as mgr:
        assert mgr.save(1, state(1), force=True)
    assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())


def test_closed_manager_refuses_to_save_but_still_reads(tmp_path):
    mgr = CheckpointManager(tmp_path, metric="acc")
    mgr.save(1, state(1), metrics={"acc": 1.0}, force=True)
    mgr.close()
    mgr.close()
    with pytest.raises(RuntimeError, match="closed"):
        mgr.save(2, state(2), force=True)
    assert mgr.latest() == 1 and mgr.best() == 1
    assert value_of(mgr.restore(step=1)) == 1
    with CheckpointManager(tmp_path):  # the directory is free again
        pass


# ---- async saves -------------------------------------------------------------


class _Gate:
    """Holds every background write until opened."""

    def __init__(self, monkeypatch):
        self.open = threading.Event()
        self.started = threading.Event()
        real = manager_mod.save_checkpoint

        def gated(*args, **kwargs):
            self.started.set()
            assert self.open.wait(30)
            return real(*args, **kwargs)

        monkeypatch.setattr(manager_mod, "save_checkpoint", gated)


def test_async_save_snapshots_the_state_at_the_call(tmp_path, monkeypatch, device):
    gate = _Gate(monkeypatch)
    tree = state(1, device=device)
    with CheckpointManager(tmp_path, async_save=True) as mgr:
        assert mgr.save(1, tree, force=True)
        assert gate.started.wait(30)
        # Training changes everything in place while the write waits.
        tree["model"]["w"].fill_(5.0)
        tree["moments"][:] = 5.0
        assert mgr.latest() is None  # not committed yet
        gate.open.set()
        mgr.wait()
        assert mgr.latest() == 1
        restored = mgr.restore()
    assert value_of(restored) == 1
    assert json.loads((tmp_path / "latest").read_text())["step"] == 1


def test_async_one_write_in_flight(tmp_path, monkeypatch):
    gate = _Gate(monkeypatch)
    with CheckpointManager(tmp_path, async_save=True, keep_last=None) as mgr:
        mgr.save(1, state(1), force=True)
        assert gate.started.wait(30)
        second = threading.Thread(
            target=mgr.save, args=(2, state(2)), kwargs={"force": True}
        )
        second.start()
        time.sleep(0.2)
        assert second.is_alive()  # waiting for the first write
        assert mgr.list() == []
        gate.open.set()
        second.join(30)
        mgr.wait()
        assert [i.step for i in mgr.list()] == [1, 2]


def test_async_error_is_raised_by_close(tmp_path, monkeypatch):
    mgr = CheckpointManager(tmp_path, async_save=True)
    with monkeypatch.context() as patch:
        _full_disk(patch)
        mgr.save(1, state(1), force=True)
        mgr._thread.join()
    with pytest.raises(OSError, match="step_00000001"):
        mgr.close()
    assert mgr.restore() is None  # no half checkpoint appeared


def test_async_error_is_raised_by_the_next_save(tmp_path, monkeypatch):
    with CheckpointManager(tmp_path, async_save=True, every_n_steps=1) as mgr:
        with monkeypatch.context() as patch:
            _full_disk(patch)
            assert mgr.save(1, state(1))
            mgr._thread.join()
        with pytest.raises(OSError, match="step_00000001"):
            mgr.save(2, state(2))  # the very next call, due or not
        assert mgr.save(3, state(3))  # raised once; training goes on
        mgr.wait()
        assert [i.step for i in mgr.list()] == [3]


EXIT_WHILE_WRITING = """
import sys, time
import numpy as np
from netcl.io import manager
real = manager.save_checkpoint
def slow(*args, **kwargs):
    time.sleep(1.0)
    return real(*args, **kwargs)
manager.save_checkpoint = slow
mgr = manager.CheckpointManager(sys.argv[1], async_save=True)
mgr.save(7, {"w": np.arange(1000.0)}, force=True)
print("returned", flush=True)
"""


def test_interpreter_exit_waits_for_the_write(tmp_path):
    child = run_child(EXIT_WHILE_WRITING, tmp_path)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.strip() == "returned"
    with CheckpointManager(tmp_path) as mgr:
        assert mgr.latest() == 7
        np.testing.assert_array_equal(mgr.restore()["w"], np.arange(1000.0))


# ---- killed saves ------------------------------------------------------------

KILLED_SAVE = """
import sys, time
import numpy as np
from netcl.io import _atomic
from netcl.io.manager import CheckpointManager
where, directory = sys.argv[1], sys.argv[2]
mgr = CheckpointManager(directory, keep_last=None)
mgr.save(1, {"w": np.full(50_000, 1.0)}, force=True)
real = {"finish": _atomic.PendingFile.finish, "commit": _atomic.PendingFile.commit}
calls = []
def pause(name):
    def hooked(self, *args, **kwargs):
        calls.append(name)
        if calls.count(name) == {"finish": 1, "commit": 1, "record": 2}[where]:
            print("mid-save", flush=True)
            time.sleep(60)
        return real[name](self, *args, **kwargs)
    return hooked
hook = "commit" if where == "record" else where
setattr(_atomic.PendingFile, hook, pause(hook))
mgr.save(int(sys.argv[3]), {"w": np.full(50_000, 2.0)}, force=True)
"""


@pytest.mark.parametrize(
    "where, step",
    [
        ("finish", 2),  # while writing the array file
        ("commit", 2),  # before anything is renamed into place
        ("record", 2),  # array file in place, record not yet
        ("record", 1),  # overwriting step 1 itself, between its two renames
    ],
)
def test_killed_save_leaves_the_previous_checkpoint(tmp_path, where, step):
    child = run_child(KILLED_SAVE, where, tmp_path, step)
    try:
        wait_for_line(child, "mid-save")
    finally:
        child.kill()
        child.wait()
    with CheckpointManager(tmp_path, keep_last=None) as mgr:
        assert mgr.latest() == 1
        tree = mgr.restore()
        assert (tree["w"] == 1.0).all()
        assert [i.step for i in mgr.list(verify=True)] == [1]
        assert mgr.save(2, {"w": np.full(3, 2.0)}, force=True)
        assert (mgr.restore()["w"] == 2.0).all()
    assert not [n for n in files(tmp_path) if n.endswith(".tmp")]


KILLED_ANYWHERE = """
import sys
import numpy as np
from netcl.io.manager import CheckpointManager
mgr = CheckpointManager(sys.argv[1], keep_last=2, every_n_steps=1)
first = step = (mgr.latest() or 0) + 1
while True:
    mgr.save(step, {"w": np.full(20_000, float(step)), "step": step})
    if step == first:
        print("go", flush=True)  # from here on there is something to restore
    step += 1
"""


def test_killed_at_random_times_always_restores_a_whole_checkpoint(tmp_path):
    rng = np.random.default_rng()
    delays = rng.uniform(0.05, 0.4, size=3)
    for delay in delays:
        child = run_child(KILLED_ANYWHERE, tmp_path)
        try:
            wait_for_line(child, "go")
            time.sleep(delay)
        finally:
            child.kill()
            child.wait()
        with CheckpointManager(tmp_path) as mgr:
            tree = mgr.restore()
            assert tree is not None, f"nothing to restore after {delay:.3f}s"
            assert (tree["w"] == tree["step"]).all()
            assert tree["step"] == mgr.latest()


# ---- the listing -------------------------------------------------------------


def test_format_listing_and_json(tmp_path):
    assert format_listing(tmp_path) == f"no checkpoints in {tmp_path}"
    with CheckpointManager(
        tmp_path, keep_last=None, metric="test_acc", mode="max"
    ) as mgr:
        for s, acc in ((10, 0.5), (20, 0.9), (30, 0.7)):
            mgr.save(s, state(s, epoch=s // 10), metrics={"test_acc": acc}, force=True)
        mgr.save(40, state(40, epoch=4), metrics={"test_acc": float("nan")}, force=True)
    (tmp_path / "step_00000040.npys").write_bytes(b"junk")

    text = format_listing(tmp_path)
    lines = text.splitlines()
    assert lines[0].split() == ["step", "epoch", "test_acc", "size", "valid"]
    assert lines[1].split()[:3] == ["10", "1", "0.5000"]
    assert lines[2].endswith("yes    best")
    assert lines[3].endswith("yes    latest")
    assert " NO" in lines[4]
    assert lines[5].startswith("step 40: ")

    doc = json.loads(listing_json(tmp_path))
    assert doc["latest"] == 30 and doc["best"] == 20
    assert doc["metric"] == "test_acc" and doc["mode"] == "max"
    assert [c["step"] for c in doc["checkpoints"]] == [10, 20, 30, 40]
    assert doc["checkpoints"][3]["valid"] is False
    assert doc["checkpoints"][3]["metrics"] == {"test_acc": "nan"}
    assert (
        json.loads(listing_json(tmp_path, metric="test_acc", mode="min"))["best"] == 10
    )
