"""The ``netcl`` command: ``devices``, ``train``, ``predict`` and ``ckpt``."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

__all__ = [
    "DATASETS",
    "UsageError",
    "check_data_folder",
    "choose",
    "device_arg",
    "load_dataset",
    "main",
]

DATASETS = ("digits", "mnist")

# Each subcommand lives in its own module with an ``add_parser(subparsers)``
# that registers it and sets ``func(args) -> exit code``.
_COMMANDS = ("netcl.cli.train", "netcl.cli.predict", "netcl.cli.ckpt")


class UsageError(Exception):
    """Bad input found before any work started: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    # argparse prints the whole usage block on an error; a one-line message
    # that names the problem (and the choices) is easier to read in a log.
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def choose(value: str, choices: tuple, what: str) -> str:
    """``value`` if it is one of ``choices``, else a UsageError listing them."""
    if value not in choices:
        raise UsageError(f"unknown {what} {value!r} (choose from {', '.join(choices)})")
    return value


def device_arg(spec: str):
    """The device a ``--device`` argument names, or a one-line UsageError."""
    from netcl.core.device import DeviceNotFoundError, manager

    try:
        return manager.default(spec)
    except DeviceNotFoundError:
        names = ", ".join(d.name for d in manager.devices())
        raise UsageError(
            f"no device {spec!r} (devices found: {names}; choices: auto, cpu, "
            "cl, cl:N; see `netcl devices`)"
        ) from None


def check_data_folder(dataset: str, data: str | None) -> None:
    """MNIST needs ``--data`` naming an existing folder."""
    if dataset != "mnist":
        return
    if not data:
        raise UsageError("--dataset mnist needs --data DIR with the MNIST IDX files")
    if not os.path.isdir(data):
        what = "is not a folder" if os.path.exists(data) else "does not exist"
        raise UsageError(f"data folder {data!r} {what}")


def load_dataset(name: str, split: str, data: str | None):
    """One split of a dataset named on the command line."""
    from netcl.data import datasets

    choose(name, DATASETS, "dataset")
    choose(split, ("train", "test"), "split")
    if name == "digits":
        return datasets.digits(split)
    check_data_folder(name, data)
    try:
        return datasets.mnist(data, split)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(" ".join(str(exc).split())) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="netcl",
        description="Train, evaluate and inspect netcl models and checkpoints.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    devices = sub.add_parser("devices", help="list the host and every OpenCL device")
    devices.set_defaults(func=_devices)
    for name in _COMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def _devices(args) -> int:
    from netcl.core.device import manager

    print(manager.table())
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if argv is None and args.command != "train" and hasattr(signal, "SIGPIPE"):
            # `netcl ckpt inspect X | head` ends quietly, like other tools.
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"netcl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before training set its own handler
        print("netcl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
