"""Exact resume: a run killed at a random step and resumed in a new process
ends with the very same bits as a run that was never interrupted.

The training job is ``tests/resume_job.py``; every run of it here is a child
process, so nothing (seeds, generators, caches) carries over between runs the
way it would not carry over between real jobs.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import netcl
from netcl import amp
from netcl.io.manager import CheckpointManager
from tests import resume_job

JOB = os.path.join(os.path.dirname(__file__), "resume_job.py")
STEPS, EVERY = 30, 4
BATCHES = -(-resume_job.SAMPLES // resume_job.BATCH)  # per epoch, the last short


def job(*args, timeout: float = 240) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, JOB, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done


def run_until_killed(args: list, timeout: float = 240) -> str:
    """Start the job, SIGKILL it once it prints "paused"; return its output."""
    child = subprocess.Popen(
        [sys.executable, JOB, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(timeout, child.kill)
    watchdog.start()
    lines = []
    try:
        for line in child.stdout:
            lines.append(line.strip())
            if lines[-1] == "paused":
                child.send_signal(signal.SIGKILL)
                break
    finally:
        watchdog.cancel()
        child.kill()
        child.wait()
    assert lines and lines[-1] == "paused", child.stderr.read()
    assert child.returncode == -signal.SIGKILL
    return "\n".join(lines)


def assert_same_bits(expected: dict, found: dict, context: str) -> None:
    assert sorted(expected) == sorted(found), context
    for key in expected:
        a, b = expected[key], found[key]
        assert a.dtype == b.dtype and a.shape == b.shape, f"{key}: {context}"
        assert a.tobytes() == b.tobytes(), f"{key} differs: {context}"


def test_killed_run_resumes_bit_exactly(tmp_path, device):
    # A kill step in the middle of an epoch, different on each run of the test,
    # late enough that one background save has surely committed: each save
    # waits for the one before, so the save at step 2 * EVERY waited for the
    # first. The newest write may well be cut off by the kill.
    rng = random.Random()
    kill_at = rng.choice([s for s in range(2 * EVERY + 1, STEPS - 2) if s % BATCHES])
    context = f"device {device}, killed at step {kill_at}"
    common = ["--device", device, "--steps", STEPS]

    job(*common, "--out", tmp_path / "straight.npz")
    ckpt = ["--dir", tmp_path / "ckpt", "--every", EVERY]
    run_until_killed([*common, *ckpt, "--async-save", "--pause-at", kill_at])
    resumed = job(*common, *ckpt, "--out", tmp_path / "resumed.npz").stdout

    first = resumed.splitlines()[0]
    assert first.startswith("resumed "), f"{first!r}: {context}"
    start = int(first.split()[1])
    assert kill_at - 2 * EVERY < start <= kill_at and start % EVERY == 0, context
    with (
        np.load(tmp_path / "straight.npz") as a,
        np.load(tmp_path / "resumed.npz") as b,
    ):
        assert_same_bits(dict(a), dict(b), context)


def _flat(tree) -> dict:
    return resume_job.flat_arrays(tree)


@pytest.fixture
def keep_rng():
    """Put netcl's global generators back as they were after the test."""
    saved = netcl.random.get_rng_state()
    yield
    netcl.random.set_rng_state(saved)


def test_loading_state_advances_nothing(tmp_path, keep_rng):
    # Train a little, then load the state into fresh objects and into the
    # same ones: every state_dict must come back exactly as it was saved.
    trained = resume_job.Job("cpu")
    for x, y in trained.loader:
        trained.train_step(x, y)
        if trained.step == 10:
            break
    scaler = amp.GradScaler(init_scale=1024.0, growth_interval=3)
    saved_scaler = {**scaler.state_dict(), "scale": 512.0, "_growth_tracker": 2}
    scaler.load_state_dict(saved_scaler)
    saved = _flat({**trained.state(), "scaler": scaler.state_dict()})

    with CheckpointManager(tmp_path) as mgr:
        mgr.save(trained.step, {**trained.state(), "scaler": saved_scaler}, force=True)
        tree = mgr.restore()
    for target in (resume_job.Job("cpu"), trained):
        target.load(tree)
        fresh_scaler = amp.GradScaler()
        fresh_scaler.load_state_dict(tree["scaler"])
        again = _flat({**target.state(), "scaler": fresh_scaler.state_dict()})
        assert_same_bits(saved, again, "state changed by loading it")
