"""Training step time with checkpoints saved in the background, in line, or never.

A netcl MLP (784-1024-1024-10, 1.9M parameters; with Adam's two moments the
checkpoint is about 22 MB) trains on random batches and hands its state to a
CheckpointManager every step, which saves every K steps. Three loops run one
after another in this process on the same device: no saves, synchronous
saves (``async_save=False``) and background saves (``async_save=True``).
Each save is fsynced, so all rows pay for durability alike.

    python bench/async_save.py                  # host, 120 steps, save every 10
    python bench/async_save.py --device cl --steps 60 --every 5

The modes take turns for ``--rounds`` rounds. Columns: mean and median step
time over all rounds; the median of the steps that save (every K-th; in the
"none" row the same steps without a save) and of the other steps, where a
background write competes for the CPU; and per run (median of the rounds)
the time spent inside ``save()`` and the wall time including the final wait
for a write in flight.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time

import numpy as np

import netcl
from netcl import nn, optim
from netcl.io.manager import CheckpointManager
from netcl.nn import functional as F


def build(device: str):
    netcl.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(784, 1024),
        nn.ReLU(),
        nn.Linear(1024, 1024),
        nn.ReLU(),
        nn.Linear(1024, 10),
    ).to(device)
    return model, optim.Adam(model.parameters(), lr=1e-3)


def run(mode: str, args, directory: str) -> dict:
    """Train ``args.steps`` steps in ``mode`` ("none", "sync", "async")."""
    model, opt = build(args.device)
    rng = np.random.default_rng(0)
    x = netcl.tensor(
        rng.standard_normal((args.batch, 784), np.float32), device=args.device
    )
    y = netcl.tensor(rng.integers(0, 10, args.batch), device=args.device)
    mgr = None
    if mode != "none":
        mgr = CheckpointManager(
            directory,
            keep_last=2,
            every_n_steps=args.every,
            every_n_epochs=None,
            async_save=mode == "async",
        )
    times, in_save = [], 0.0
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()  # wait for the device
        if mgr is not None:
            t1 = time.perf_counter()
            mgr.save(step, {"model": model.state_dict(), "optimizer": opt.state_dict()})
            in_save += time.perf_counter() - t1
        times.append(time.perf_counter() - t0)
    if mgr is not None:
        mgr.close()  # waits for the write in flight
    wall = time.perf_counter() - start
    return {"times": times, "in_save": in_save, "wall": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--every", type=int, default=10, help="save every K steps")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3, help="runs of each mode")
    p.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = p.parse_args()

    model, opt = build(args.device)
    size = sum(int(np.prod(t.shape)) * 4 for t in model.state_dict().values()) * 3
    print(
        f"device {netcl.get_device(args.device).name}, {args.steps} steps, "
        f"batch {args.batch}, save every {args.every} steps, "
        f"checkpoint ~{size / 2**20:.0f} MiB"
    )
    run("none", args, "")  # warm-up: kernel compilation, allocator
    # The modes take turns, round after round, so that a burst of other load
    # on the machine hits all of them alike; the table pools the rounds.
    runs: dict[str, list[dict]] = {"none": [], "sync": [], "async": []}
    for _ in range(args.rounds):
        for mode in runs:
            directory = tempfile.mkdtemp(prefix="netcl-async-bench-", dir=args.dir)
            try:
                runs[mode].append(run(mode, args, directory))
            finally:
                shutil.rmtree(directory, ignore_errors=True)

    print(
        f"{'saves':6}  {'mean ms':>8}  {'median ms':>9}  {'save steps':>10}  "
        f"{'other steps':>11}  {'in save() s':>11}  {'wall s':>7}"
    )
    for mode, rs in runs.items():
        times = [t for r in rs for t in r["times"]]
        on = [t for r in rs for i, t in enumerate(r["times"], 1) if i % args.every == 0]
        off = [t for r in rs for i, t in enumerate(r["times"], 1) if i % args.every]
        print(
            f"{mode:6}  {1e3 * statistics.fmean(times):8.2f}  "
            f"{1e3 * statistics.median(times):9.2f}  "
            f"{1e3 * statistics.median(on):10.2f}  "
            f"{1e3 * statistics.median(off):11.2f}  "
            f"{statistics.median(r['in_save'] for r in rs):11.3f}  "
            f"{statistics.median(r['wall'] for r in rs):7.2f}"
        )


if __name__ == "__main__":
    main()
