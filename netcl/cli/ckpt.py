"""``netcl ckpt``: inspect, verify, compare and convert checkpoints.

Each subcommand reads a checkpoint by its name (``runs/iter_1000``, with or
without an extension) and returns an exit status: 0 when all is well, 1 when
the checkpoint is missing, damaged or (for ``verify``) unsound.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any

import numpy as np

from netcl.io import _format, _load, _tree
from netcl.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``ckpt`` and its subcommands on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "ckpt", help="inspect, verify, diff, convert and list checkpoints"
    )
    sub = parser.add_subparsers(dest="ckpt_command", required=True)

    inspect = sub.add_parser("inspect", help="show what a checkpoint holds")
    inspect.add_argument("path")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(func=_run(_inspect))

    verify = sub.add_parser("verify", help="check every checksum and the file pair")
    verify.add_argument("path")
    verify.set_defaults(func=_run(_verify))

    diff = sub.add_parser("diff", help="compare two checkpoints")
    diff.add_argument("a")
    diff.add_argument("b")
    diff.set_defaults(func=_run(_diff))

    convert = sub.add_parser("convert", help="rewrite a checkpoint in another format")
    convert.add_argument("src")
    convert.add_argument("dst")
    convert.add_argument("--format", choices=sorted(_format.EXTENSIONS), required=True)
    convert.add_argument("--no-compress", action="store_true", help="npz: store only")
    convert.set_defaults(func=_run(_convert))
    ls = sub.add_parser("ls", help="list a run directory's checkpoints")
    ls.add_argument("directory")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.add_argument("--fast", action="store_true", help="skip the checksums")
    ls.set_defaults(func=_run(_ls))
    return parser


def _ls(args: argparse.Namespace) -> int:
    from netcl.io.listing import format_listing, listing_json

    if not os.path.isdir(args.directory):
        raise FileNotFoundError(2, "no such checkpoint directory", args.directory)
    show = listing_json if args.json else format_listing
    print(show(args.directory, verify=not args.fast))
    return 0


def _run(command):
    """Wrap a subcommand so that a missing or bad checkpoint exits with 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (CheckpointError, OSError) as exc:
            print(f"netcl ckpt {args.ckpt_command}: {exc}", file=sys.stderr)
            return 1
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            # A record that passes its own checksum but holds nonsense.
            what = f"{type(exc).__name__}: {exc}"
            print(
                f"netcl ckpt {args.ckpt_command}: damaged checkpoint: {what}",
                file=sys.stderr,
            )
            return 1

    return run


# --- inspect ----------------------------------------------------------------


def _inspect(args: argparse.Namespace) -> int:
    if args.path.endswith(".netcl"):
        return _inspect_model(args.path)
    base = _format.base_path(args.path)
    summary = _summary(base)
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    print(f"checkpoint {base}")
    for key in ("format", "version", "id", "created", "netcl_version"):
        print(f"  {key + ':':15}{summary[key]}")
    print(f"  {'size:':15}{summary['size']:,} bytes")
    print("tree:")
    _print_tree(summary["tree"], "  ")
    print(_array_table(summary["arrays"]))
    return 0


def _inspect_model(path: str) -> int:
    try:
        model_io = importlib.import_module("netcl.io.model")
        describe = model_io.describe
    except (ImportError, AttributeError):
        print(f"netcl ckpt inspect: cannot describe {path}: no netcl.io.model.describe")
        return 1
    print(describe(path))
    return 0


def _summary(base: str) -> dict:
    record = _load.read_record(base)
    files = [base + ".json", os.path.join(os.path.dirname(base), record["array_file"])]
    arrays = [
        {
            "name": name,
            "shape": info["shape"],
            "dtype": info["dtype"],
            "kind": info["kind"],
            "bytes": info["nbytes"],
        }
        for name, info in record["arrays"].items()
    ]
    return {
        "path": base,
        "format": record["format"],
        "version": record["version"],
        "id": record["id"],
        "size": sum(os.path.getsize(f) for f in files if os.path.exists(f)),
        "created": record.get("created"),
        "netcl_version": record.get("netcl_version"),
        "tree": _tree.unflatten(record["tree"], _array_label(record["arrays"])),
        "arrays": arrays,
    }


def _array_label(arrays: dict):
    def label(name: str) -> str:
        info = arrays.get(name, {})
        return f"<{info.get('dtype')} {tuple(info.get('shape', ()))} {name!r}>"

    return label


def _print_tree(value: Any, indent: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list, tuple)) and item:
                print(f"{indent}{key!r}:")
                _print_tree(item, indent + "  ")
            else:
                print(f"{indent}{key!r}: {_scalar(item)}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _print_tree({i: item}, indent)
    else:
        print(f"{indent}{_scalar(value)}")


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) and value.startswith("<") else repr(value)


def _array_table(arrays: list[dict]) -> str:
    rows = [("name", "shape", "dtype", "bytes")]
    rows += [
        (a["name"], str(tuple(a["shape"])), a["dtype"], f"{a['bytes']:,}")
        for a in arrays
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    name, shape, dtype, size = widths
    lines = [
        f"{r[0]:{name}}  {r[1]:{shape}}  {r[2]:{dtype}}  {r[3]:>{size}}" for r in rows
    ]
    total = sum(a["bytes"] for a in arrays)
    return "\n".join([f"arrays: {len(arrays)}, {total:,} bytes", *lines])


# --- verify -----------------------------------------------------------------


def _verify(args: argparse.Namespace) -> int:
    if args.path.endswith(".netcl"):
        return _verify_model(args.path)
    base = _format.base_path(args.path)
    record, arrays = _load.open_pair(base)
    try:
        for name in record["arrays"]:
            arrays.read(name, verify=True)
    finally:
        arrays.close()
    _check_tree(base, record)
    total = sum(info["nbytes"] for info in record["arrays"].values())
    print(
        f"ok: {base}: {len(record['arrays'])} arrays, {total:,} bytes, checksums "
        f"and file pair sound ({arrays.path})"
    )
    return 0


def _check_tree(base: str, record: dict) -> None:
    """Every array the tree names is in the file, and every node is known."""

    def ref(name: str) -> None:
        if name not in record["arrays"]:
            raise CheckpointError(
                f"{base}: the tree refers to array {name!r}, which the file lacks"
            )

    try:
        _tree.unflatten(record["tree"], ref)
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError(f"{base}: damaged tree (nested too deeply)") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{base}: damaged tree ({exc})") from None


def _verify_model(path: str) -> int:
    from netcl.io import load_model

    load_model(path, device="cpu")
    print(f"ok: {path}: model file sound (checksums verified, model rebuilt)")
    return 0


# --- diff -------------------------------------------------------------------


def _diff(args: argparse.Namespace) -> int:
    bases = [_format.base_path(p) for p in (args.a, args.b)]
    opened = [_load.open_pair(b) for b in bases]
    (rec_a, file_a), (rec_b, file_b) = opened
    arrays_a, arrays_b = rec_a["arrays"], rec_b["arrays"]
    for name in (n for n in arrays_b if n not in arrays_a):
        print(f"added    {name}  {_shape_dtype(arrays_b[name])}")
    for name in (n for n in arrays_a if n not in arrays_b):
        print(f"removed  {name}  {_shape_dtype(arrays_a[name])}")
    for name in (n for n in arrays_a if n in arrays_b):
        print(_compare(name, file_a, file_b))
    for line in _scalar_changes(rec_a, rec_b):
        print(line)
    for _, arrays in opened:
        arrays.close()
    return 0


def _shape_dtype(info: dict) -> str:
    return f"{tuple(info['shape'])} {info['dtype']}"


def _compare(name: str, file_a: _format.ArrayFile, file_b: _format.ArrayFile) -> str:
    info_a, info_b = file_a.arrays[name], file_b.arrays[name]
    shape_a, shape_b = tuple(info_a["shape"]), tuple(info_b["shape"])
    if shape_a != shape_b or info_a["dtype"] != info_b["dtype"]:
        return (
            f"changed  {name}  {shape_a} {info_a['dtype']} -> "
            f"{shape_b} {info_b['dtype']}"
        )
    a = _as_float64(file_a, name)
    b = _as_float64(file_b, name)
    with np.errstate(invalid="ignore"):
        biggest = float(np.max(np.abs(a - b))) if a.size else 0.0
    return f"common   {name}  max |a-b| = {biggest:.6g}"


def _as_float64(file: _format.ArrayFile, name: str) -> np.ndarray:
    from netcl.io import _tensors

    data = _tensors.from_storage(file.read(name), file.arrays[name]["dtype"])
    return data.astype(np.complex128 if data.dtype.kind == "c" else np.float64)


def _scalar_changes(rec_a: dict, rec_b: dict) -> list[str]:
    leaves_a, leaves_b = _scalars(rec_a["tree"], ""), _scalars(rec_b["tree"], "")
    lines = []
    for path in sorted(leaves_a.keys() | leaves_b.keys()):
        old, new = leaves_a.get(path, "(absent)"), leaves_b.get(path, "(absent)")
        if repr(old) != repr(new):
            lines.append(f"value    {path}: {old!r} -> {new!r}")
    return lines


def _scalars(node: Any, path: str) -> dict[str, Any]:
    value = _tree.unflatten(node, lambda name: None)
    found: dict[str, Any] = {}

    def walk(item: Any, where: str) -> None:
        if isinstance(item, dict):
            for key, sub in item.items():
                walk(sub, f"{where}[{key!r}]")
        elif isinstance(item, (list, tuple)):
            for i, sub in enumerate(item):
                walk(sub, f"{where}[{i}]")
        elif item is not None:
            found[where] = item

    walk(value, path)
    return found


# --- convert ----------------------------------------------------------------


def _convert(args: argparse.Namespace) -> int:
    src = _format.base_path(args.src)
    record = _load.read_record(src)
    state = load_checkpoint(None, None, src)
    options = {"format": args.format, "compress": not args.no_compress}
    if record.get("layout") == "params":
        params = state["params"]
        save_checkpoint(
            list(params.values()),
            args.dst,
            state["optim_state"],
            state["config"],
            list(params),
            **options,
        )
    else:
        save_checkpoint(dict(state), args.dst, **options)
    print(f"wrote {_format.base_path(args.dst)} as {args.format}")
    return 0
