"""``netcl train``: train a classifier on real data, checkpointing as it goes.

Every epoch (or every N steps) the whole training state goes into a
checkpoint: model, optimizer, scheduler, grad scaler, every random generator,
the data loader's position, epoch and step. ``--resume`` picks up the newest
good checkpoint and continues with the numbers an uninterrupted run would
have produced. Ctrl-C saves and stops cleanly.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from netcl.cli.main import (
    DATASETS,
    check_data_folder,
    choose,
    device_arg,
    load_dataset,
)

__all__ = ["add_parser", "build_model", "run"]

log = logging.getLogger(__name__)

MODELS = ("mlp", "cnn")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a classifier with a checkpoint every epoch",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--dataset", default="digits", help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--data", default=None, help="folder of the MNIST IDX files")
    p.add_argument("--model", default="mlp", help=f"one of {', '.join(MODELS)}")
    p.add_argument("--device", default="auto", help="auto, cpu, cl, cl:N")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=None, help="default: 0.05 (sgd)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ckpt-dir", default="runs/digits")
    p.add_argument("--resume", action="store_true", help="continue the newest run")
    p.add_argument("--every-n-steps", type=int, default=None)
    p.add_argument("--keep-last", type=int, default=3)
    p.add_argument("--keep-best", type=int, default=1)
    p.add_argument("--async-save", action="store_true")
    p.add_argument("--amp", action="store_true", help="float16 mixed precision")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


# ---- checks before any training --------------------------------------------


def _check_args(args):
    """Validate everything up front; returns the device. Raises UsageError."""
    from netcl.cli.main import UsageError

    choose(args.dataset, DATASETS, "dataset")
    choose(args.model, MODELS, "model")
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if args.every_n_steps is not None and args.every_n_steps < 1:
        raise UsageError("--every-n-steps must be at least 1")
    if args.keep_last < 1:
        raise UsageError("--keep-last must be at least 1")
    if args.keep_best < 0:
        raise UsageError("--keep-best must be 0 (keep no best) or more")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise UsageError(f"--lr must be a positive finite number, got {args.lr}")
    if args.seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {args.seed}")
    check_data_folder(args.dataset, args.data)
    return device_arg(args.device)


def _check_writable(folder: Path) -> None:
    from netcl.cli.main import UsageError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".netcl-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"checkpoint directory {str(folder)!r} is not writable: {exc.strerror}"
        ) from None


# ---- model and data ----------------------------------------------------------


def build_model(name: str, in_shape: tuple, classes: int = 10):
    """The ``mlp`` or ``cnn`` classifier for inputs of ``in_shape`` (C, H, W)."""
    from netcl import nn

    c, h, w = in_shape
    if name == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * h * w, 128),
            nn.ReLU(),
            nn.Linear(128, 128),
            nn.ReLU(),
            nn.Linear(128, classes),
        )
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(32 * (h // 2) * (w // 2), 64),
        nn.ReLU(),
        nn.Linear(64, classes),
    )


def _datasets(args):
    return (
        load_dataset(args.dataset, "train", args.data),
        load_dataset(args.dataset, "test", args.data),
    )


# ---- the run -----------------------------------------------------------------


class _Run:
    """Everything one training run holds, and its state as one tree."""

    def __init__(self, args, device):
        import netcl
        from netcl import amp, optim
        from netcl.data import DataLoader

        netcl.manual_seed(args.seed)
        self.args, self.device = args, device
        train_set, self.test_set = _datasets(args)
        if args.batch_size > len(train_set):
            from netcl.cli.main import UsageError

            raise UsageError(
                f"--batch-size {args.batch_size} is larger than the training set "
                f"({len(train_set)} examples)"
            )
        in_shape = tuple(train_set[0][0].shape)
        self.model = build_model(args.model, in_shape).to(device)
        lr = args.lr if args.lr is not None else 0.05
        self.opt = optim.SGD(self.model.parameters(), lr=lr, momentum=0.9)
        self.loader = DataLoader(
            train_set,
            batch_size=args.batch_size,
            shuffle=True,
            drop_last=True,
            device=device,
        )
        self.sched = optim.lr_scheduler.CosineAnnealingLR(
            self.opt, T_max=args.epochs * len(self.loader)
        )
        self.scaler = amp.GradScaler(enabled=args.amp)
        self.epoch, self.step = 0, 0
        self.last_acc = None  # test accuracy of the current weights, once known
        self.in_shape = in_shape

    def state(self, metrics=None) -> dict:
        import netcl

        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": netcl.random.get_rng_state(),
            "data": self.loader.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "metrics": metrics or {},
            "run": {"model": self.args.model, "dataset": self.args.dataset},
        }

    def load(self, tree: dict) -> None:
        import netcl
        from netcl.cli.main import UsageError

        saved = tree.get("run", {})
        mine = {"model": self.args.model, "dataset": self.args.dataset}
        if saved != mine:
            raise UsageError(
                f"the newest checkpoint in {self.args.ckpt_dir} is a {saved} run, "
                f"not {mine}; use another --ckpt-dir or drop --resume"
            )
        self.model.load_state_dict(tree["model"])
        self.opt.load_state_dict(tree["optimizer"])
        self.sched.load_state_dict(tree["scheduler"])
        self.scaler.load_state_dict(tree["scaler"])
        netcl.random.set_rng_state(tree["rng"])
        self.loader.load_state_dict(tree["data"])
        self.epoch, self.step = int(tree["epoch"]), int(tree["step"])

    def train_step(self, x, y) -> float:
        from netcl import amp
        from netcl.nn import functional as F

        with amp.autocast(enabled=self.args.amp):
            loss = F.cross_entropy(self.model(x), y)
        self.opt.zero_grad()
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        self.step += 1
        self.last_acc = None
        return loss.item()

    def evaluate(self) -> float:
        return accuracy(self.model, self.test_set, self.device)


def accuracy(model, dataset, device, batch_size: int = 500) -> float:
    """Fraction of ``dataset`` that ``model`` classifies right."""
    import netcl
    from netcl.data import DataLoader

    was_training = model.training
    model.eval()
    right = total = 0
    with netcl.no_grad():
        for x, y in DataLoader(dataset, batch_size=batch_size, device=device):
            pred = model(x).argmax(1).numpy()
            right += int((pred == y.numpy()).sum())
            total += len(pred)
    model.train(was_training)
    return right / max(total, 1)


def _manager(args):
    """The run's CheckpointManager. Epoch ends are saved explicitly (forced),
    so its own cadence only decides the saves inside epochs."""
    from netcl.cli.main import UsageError
    from netcl.io.manager import CheckpointManager, DirectoryLockedError

    _check_writable(Path(args.ckpt_dir))
    try:
        return CheckpointManager(
            args.ckpt_dir,
            keep_last=args.keep_last,
            keep_best=args.keep_best or None,
            metric="test_acc",
            mode="max",
            every_n_steps=args.every_n_steps,
            every_n_epochs=None,
            async_save=args.async_save,
            format="npy",
        )
    except DirectoryLockedError as exc:
        raise UsageError(str(exc)) from None


def _resume(run: _Run, mgr) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tree = mgr.restore()
    for w in caught:
        print(f"resume: {w.message}")
    if tree is None:
        print(f"resume: no checkpoint in {run.args.ckpt_dir}; starting fresh")
        return
    run.load(tree)
    print(
        f"resume: continuing from {mgr.last_restored} "
        f"(epoch {run.epoch}, step {run.step})"
    )


def run(args) -> int:
    device = _check_args(args)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    run_ = _Run(args, device)
    print(
        f"netcl train: {args.model} on {args.dataset}, "
        f"device {device.name} ({device.description})"
    )
    with _manager(args) as mgr:
        if args.resume:
            _resume(run_, mgr)
        elif mgr.latest() is not None:
            from netcl.cli.main import UsageError

            raise UsageError(
                f"{args.ckpt_dir} already holds a run (newest checkpoint: step "
                f"{mgr.latest()}); add --resume to continue it, or pick another "
                "--ckpt-dir"
            )
        stop = _StopFlag()
        try:
            _train(run_, mgr, stop)
        finally:
            stop.restore()
        if stop.requested:
            print(f"stopped at step {run_.step}, saved in {args.ckpt_dir}; ", end="")
            print("rerun with --resume to continue")
            return 130
    _write_models(run_, mgr)
    return 0


class _StopFlag:
    """Turns Ctrl-C and SIGTERM into a flag the loop checks between steps,
    so a checkpoint is never cut off half-written."""

    def __init__(self):
        self.requested = False
        self._old = {
            s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)
        }

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def restore(self):
        for s, h in self._old.items():
            signal.signal(s, h)


def _train(run: _Run, mgr, stop: _StopFlag) -> None:
    args = run.args
    while run.epoch < args.epochs:
        t0 = time.perf_counter()
        batches = iter(run.loader)  # resumes mid-epoch after a restore
        done = run.loader.state_dict()["position"]
        left = len(batches) - done
        bar = _progress(len(batches), done, f"epoch {run.epoch + 1}", args.quiet)
        losses = []
        for k, (x, y) in enumerate(batches):
            losses.append(run.train_step(x, y))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
            if k == left - 1:
                break  # the epoch's last step is saved with the epoch's end
            if args.every_n_steps:
                mgr.save(run.step, run.state())
            if stop.requested:
                bar.close()
                mgr.save(run.step, run.state(), force=True)
                return
        bar.close()
        run.epoch += 1
        _end_epoch(run, mgr, losses, time.perf_counter() - t0)
        if stop.requested:
            return


def _end_epoch(run: _Run, mgr, losses: list, seconds: float) -> None:
    acc = run.last_acc = run.evaluate()
    loss = float(np.mean(losses)) if losses else float("nan")
    metrics = {"test_acc": acc, "train_loss": loss}
    # Always saved: the epoch counter moved even when the step cadence has
    # just saved this step, and a resume must not replay the epoch.
    mgr.save(run.step, run.state(metrics), metrics=metrics, force=True)
    print(
        f"epoch {run.epoch:3d}  train loss {loss:.4f}  "
        f"test acc {100 * acc:6.2f}%  {seconds:6.2f}s"
    )


def _progress(total: int, done: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=done,
        desc=desc,
        leave=False,
        disable=quiet or not sys.stderr.isatty(),
        dynamic_ncols=True,
    )


def _write_models(run: _Run, mgr) -> None:
    """The final model, and the best one by test accuracy, as .netcl files."""
    from netcl.io import save_model

    folder = Path(run.args.ckpt_dir)
    meta = {
        "dataset": run.args.dataset,
        "input_shape": list(run.in_shape),
        "classes": list(range(10)),
    }
    run.model.eval()  # a model file is for inference
    final_acc = run.last_acc if run.last_acc is not None else run.evaluate()
    final = folder / "final.netcl"
    save_model(run.model, final, metadata={**meta, "test_acc": final_acc})
    print(f"model: {final} (test acc {100 * final_acc:.2f}%)")
    best_step = mgr.best()
    if best_step is None:
        return
    run.model.load_state_dict(mgr.restore(step=best_step)["model"])
    best_acc = run.evaluate()
    best = folder / "best.netcl"
    save_model(run.model, best, metadata={**meta, "test_acc": best_acc})
    print(f"model: {best} (test acc {100 * best_acc:.2f}%, step {best_step})")
