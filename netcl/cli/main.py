"""The ``netcl`` command: ``devices``, ``train``, ``predict`` and ``ckpt``."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

__all__ = ["main", "UsageError"]

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
