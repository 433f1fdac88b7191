"""Checkpoint save / load speed, file size and memory, netcl against the rest.

The state is 100M float32 parameters in 150 tensors (50 blocks of a square
matrix and two vectors), about 400 MB. Every save is followed by fsync of the
files and their directory, so all rows pay for durability alike. Loads read
from the page cache after one untimed pass. Each method runs in its own
process so that its peak RSS is its own.

    python bench/checkpoint_io.py            # the whole table
    python bench/checkpoint_io.py --size 10  # 10M parameters, for a quick look
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

METHODS = [
    "netcl npy",
    "netcl npy -> params",
    "netcl npz compress",
    "netcl npz store",
    "netcl pickle",
    "numpy.save",
    "numpy.savez",
    "numpy.savez_compressed",
    "safetensors",
    "torch",
]


def make_state(millions: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    side = int((millions * 1e6 / 50) ** 0.5)
    state = {}
    for block in range(50):
        state[f"block{block}.weight"] = rng.standard_normal((side, side), np.float32)
        state[f"block{block}.bias"] = rng.standard_normal(side, np.float32)
        state[f"block{block}.norm"] = np.ones(side, np.float32)
    return state


def fsync_tree(path: str) -> None:
    paths = (
        [path]
        if os.path.isfile(path)
        else [os.path.join(path, n) for n in os.listdir(path)]
    )
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    fd = os.open(os.path.dirname(paths[0]), os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def _netcl(fmt: str, compress: bool, into: bool = False):
    import netcl
    from netcl.io.checkpoint import load_checkpoint, save_checkpoint

    made: dict[str, dict] = {}

    def prepare(state):
        # Tensors (and load targets) exist before the baseline RSS is taken.
        made["model"] = {k: netcl.tensor(v) for k, v in state.items()}
        if into:
            made["params"] = {k: netcl.zeros(*v.shape) for k, v in state.items()}

    def save(state, root):
        path = os.path.join(root, "ckpt")
        start = time.perf_counter()
        save_checkpoint(
            {"model": made["model"], "step": 1}, path, format=fmt, compress=compress
        )
        return time.perf_counter() - start, path

    def load(path, state):
        start = time.perf_counter()
        load_checkpoint(None, made.get("params"), path)
        return time.perf_counter() - start

    save.prepare = prepare
    return save, load


def _numpy_save():
    def save(state, root):
        folder = os.path.join(root, "arrays")
        os.mkdir(folder)
        start = time.perf_counter()
        for name, value in state.items():
            np.save(os.path.join(folder, name + ".npy"), value)
        fsync_tree(folder)
        return time.perf_counter() - start, folder

    def load(folder, state):
        start = time.perf_counter()
        {n: np.load(os.path.join(folder, n + ".npy")) for n in state}
        return time.perf_counter() - start

    return save, load


def _numpy_savez(function):
    def save(state, root):
        path = os.path.join(root, "arrays.npz")
        start = time.perf_counter()
        function(path, **state)
        fsync_tree(path)
        return time.perf_counter() - start, path

    def load(path, state):
        start = time.perf_counter()
        with np.load(path) as npz:
            {n: npz[n] for n in npz.files}
        return time.perf_counter() - start

    return save, load


def _safetensors():
    from safetensors.numpy import load_file, save_file

    def save(state, root):
        path = os.path.join(root, "model.safetensors")
        start = time.perf_counter()
        save_file(state, path)
        fsync_tree(path)
        return time.perf_counter() - start, path

    def load(path, state):
        start = time.perf_counter()
        load_file(path)
        return time.perf_counter() - start

    return save, load


def _torch():
    import torch

    def save(state, root):
        tensors = {k: torch.from_numpy(v) for k, v in state.items()}
        path = os.path.join(root, "model.pt")
        start = time.perf_counter()
        torch.save(tensors, path)
        fsync_tree(path)
        return time.perf_counter() - start, path

    def load(path, state):
        start = time.perf_counter()
        torch.load(path)
        return time.perf_counter() - start

    return save, load


def method(name: str):
    table = {
        "netcl npy": lambda: _netcl("npy", False),
        "netcl npy -> params": lambda: _netcl("npy", False, into=True),
        "netcl npz compress": lambda: _netcl("npz", True),
        "netcl npz store": lambda: _netcl("npz", False),
        "netcl pickle": lambda: _netcl("pickle", False),
        "numpy.save": _numpy_save,
        "numpy.savez": lambda: _numpy_savez(np.savez),
        "numpy.savez_compressed": lambda: _numpy_savez(np.savez_compressed),
        "safetensors": _safetensors,
        "torch": _torch,
    }
    return table[name]()


def disk_size(path: str) -> int:
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    return sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder))


def run_one(name: str, millions: int) -> str:
    """Run one method in this process; return its result as one line."""
    try:
        save, load = method(name)
    except ImportError:
        return "skip"
    state = make_state(millions)
    nbytes = sum(v.nbytes for v in state.values())
    if hasattr(save, "prepare"):
        save.prepare(state)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    root = tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR"))
    try:
        save(state, root)  # untimed: warms the page cache and the code paths
        shutil.rmtree(root)
        os.mkdir(root)
        save_s, path = save(state, root)
        load(path, state)
        load_s = min(load(path, state) for _ in range(2))
        size = disk_size(path)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return f"{nbytes} {save_s} {load_s} {size} {peak / 1024} {(peak - base_rss) / 1024}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100, help="millions of parameters")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(run_one(args.one, args.size))
        return
    print(f"{args.size}M float32 parameters in 150 tensors; save includes fsync")
    header = f"{'method':24} {'save s':>7} {'MB/s':>6} {'load s':>7} {'MB/s':>6} "
    print(header + f"{'file MB':>8} {'peak RSS MB':>11} {'over start':>10}")
    for name in METHODS:
        cmd = [sys.executable, __file__, "--one", name, "--size", str(args.size)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "error"
        if line in ("skip", "error"):
            print(f"{name:24} {line} {out.stderr.strip()[-200:]}")
            continue
        nbytes, save_s, load_s, size, peak, extra = map(float, line.split())
        mb = nbytes / 1e6
        print(
            f"{name:24} {save_s:7.2f} {mb / save_s:6.0f} {load_s:7.2f} "
            f"{mb / load_s:6.0f} {size / 1e6:8.1f} {peak:11.0f} {extra:10.0f}"
        )


if __name__ == "__main__":
    main()
