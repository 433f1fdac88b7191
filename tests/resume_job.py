"""A small training job that the resume tests run in child processes.

It trains a tiny MLP (with dropout) on a synthetic dataset whose size is not
a multiple of the batch size, with Adam, a step LR schedule and a shuffling
DataLoader. Everything that decides the numbers (model, optimizer, schedule,
random generators, the loader's position) goes into each checkpoint.

    python tests/resume_job.py --device cpu --steps 40 --out final.npz
    python tests/resume_job.py --device cpu --steps 40 --dir ckpt --every 3 \\
        --pause-at 17     # prints "paused" at step 17 and waits to be killed
    python tests/resume_job.py --device cpu --steps 40 --dir ckpt --every 3 \\
        --out final.npz   # resumes from the newest good checkpoint

With ``--out`` the final parameters and optimizer state are written as raw
arrays, one per key path, so the test can compare them bit for bit.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import netcl
from netcl import nn, optim
from netcl.data import DataLoader, TensorDataset
from netcl.io.manager import CheckpointManager
from netcl.nn import functional as F

SAMPLES, FEATURES, CLASSES, BATCH = 52, 8, 3, 8  # 7 batches, the last of 4


class Job:
    """The model, optimizer, schedule and data of one run."""

    def __init__(self, device: str) -> None:
        netcl.manual_seed(1234)
        rng = np.random.default_rng(99)
        x = rng.standard_normal((SAMPLES, FEATURES)).astype(np.float32)
        y = rng.integers(0, CLASSES, SAMPLES)
        self.model = nn.Sequential(
            nn.Linear(FEATURES, 16),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(16, CLASSES),
        ).to(device)
        self.opt = optim.Adam(self.model.parameters(), lr=0.01)
        self.sched = optim.lr_scheduler.StepLR(self.opt, step_size=5, gamma=0.7)
        self.loader = DataLoader(
            TensorDataset(x, y), batch_size=BATCH, shuffle=True, device=device
        )
        self.step = 0

    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "rng": netcl.random.get_rng_state(),
            "data": self.loader.state_dict(),
            "epoch": self.loader.epoch,
            "step": self.step,
        }

    def load(self, tree: dict) -> None:
        self.model.load_state_dict(tree["model"])
        self.opt.load_state_dict(tree["optimizer"])
        self.sched.load_state_dict(tree["scheduler"])
        netcl.random.set_rng_state(tree["rng"])
        self.loader.load_state_dict(tree["data"])
        self.step = int(tree["step"])

    def train_step(self, x, y) -> None:
        loss = F.cross_entropy(self.model(x), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.sched.step()
        self.step += 1


def flat_arrays(tree, prefix: str = "") -> dict[str, np.ndarray]:
    """Every tensor, array and number of ``tree`` as a host array by key path."""
    out = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.update(flat_arrays(value, f"{prefix}/{key}"))
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            out.update(flat_arrays(value, f"{prefix}/{i}"))
    elif isinstance(tree, netcl.Tensor):
        out[prefix] = np.array(tree.numpy())
    elif tree is not None and not isinstance(tree, str):
        out[prefix] = np.array(tree)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--dir", default=None, help="checkpoint directory")
    p.add_argument("--every", type=int, default=3)
    p.add_argument("--async-save", action="store_true")
    p.add_argument("--pause-at", type=int, default=None)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    job = Job(args.device)
    mgr = None
    if args.dir:
        mgr = CheckpointManager(
            args.dir,
            keep_last=2,
            every_n_steps=args.every,
            every_n_epochs=None,
            async_save=args.async_save,
        )
        tree = mgr.restore(queue=netcl.get_device(args.device))
        if tree is not None:
            job.load(tree)
            print(f"resumed {job.step}", flush=True)

    while job.step < args.steps:
        for x, y in job.loader:
            job.train_step(x, y)
            if mgr is not None:
                mgr.save(job.step, job.state())
            print(f"step {job.step}", flush=True)
            if job.step == args.pause_at:
                print("paused", flush=True)
                time.sleep(600)  # the test kills us here
            if job.step >= args.steps:
                break

    if mgr is not None:
        mgr.close()
    if args.out:
        final = {"model": job.model.state_dict(), "optimizer": job.opt.state_dict()}
        np.savez(args.out, **flat_arrays(final))
    return 0


if __name__ == "__main__":
    sys.exit(main())
