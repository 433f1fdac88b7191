"""The table of a run directory's checkpoints (``netcl ckpt ls``).

Reads only and takes no lock, so it can watch a run that is writing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

from netcl.io import _load
from netcl.io.manager import CheckpointInfo, StrPath, _infos, _mark, _meta_of

__all__ = ["format_listing", "listing_json"]


def listing_json(
    directory: StrPath,
    *,
    verify: bool = True,
    metric: str | None = None,
    mode: str | None = None,
) -> str:
    """The checkpoints of a managed directory as JSON text.

    Reads only; takes no lock, so it can watch a run that is writing.

    Args:
        directory: the manager's directory.
        verify: check every array's checksum (default), else only that the
            files are whole and belong together.
        metric, mode: what ranks the best; by default what the newest
            checkpoint's manager used.

    Returns:
        ``{"directory", "metric", "mode", "latest", "best", "checkpoints":
        [{"step", "epoch", "metrics", "size", "valid", "error", "path",
        "latest", "best"}, ...]}``, oldest first; non-finite metric values
        appear as strings (``"nan"``, ``"inf"``).
    """
    return json.dumps(_listing(directory, verify, metric, mode), indent=1)


def format_listing(
    directory: StrPath,
    *,
    verify: bool = True,
    metric: str | None = None,
    mode: str | None = None,
) -> str:
    """The checkpoints of a managed directory as a table, one per line.

    Columns: step, epoch, each metric, size, valid, and a note marking the
    latest (what a resume would load) and the best. Damaged checkpoints are
    explained below the table. Arguments as for :func:`listing_json`.

    Example:
        >>> print(format_listing("runs/digits"))  # doctest: +SKIP
        step  epoch  test_acc  train_loss     size  valid
         120      1    0.9120      0.3100  1.2 MiB  yes    best
         240      2    0.9050      0.2010  1.2 MiB  yes    latest
    """
    doc = _listing(directory, verify, metric, mode)
    rows = doc["checkpoints"]
    if not rows:
        return f"no checkpoints in {doc['directory']}"
    names = sorted({k for r in rows for k in r["metrics"]})
    table = [["step", "epoch", *names, "size", "valid", ""]]
    for r in rows:
        note = [w for w in ("latest", "best") if r[w]]
        table.append(
            [
                str(r["step"]),
                "-" if r["epoch"] is None else str(r["epoch"]),
                *(_cell(r["metrics"].get(k)) for k in names),
                _size(r["size"]),
                "yes" if r["valid"] else "NO",
                " ".join(note),
            ]
        )
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    left = {len(widths) - 2, len(widths) - 1}
    lines = [
        "  ".join(
            cell.ljust(w) if c in left else cell.rjust(w)
            for c, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in table
    ]
    for r in rows:
        if not r["valid"]:
            lines.append(f"step {r['step']}: {r['error']}")
    return "\n".join(lines)


def _listing(directory: StrPath, verify: bool, metric: Any, mode: Any) -> dict:
    directory = os.fspath(directory)
    infos = _infos(directory, verify, {})
    if metric is None or mode is None:
        saved = _saved_ranking(infos)
        metric = saved.get("metric") if metric is None else metric
        mode = (saved.get("mode") or "min") if mode is None else mode
    marked = _mark(infos, metric, mode)
    return {
        "directory": directory,
        "metric": metric,
        "mode": mode,
        "latest": next((i.step for i in marked if i.latest), None),
        "best": next((i.step for i in marked if i.best), None),
        "checkpoints": [
            {**dataclasses.asdict(i), "metrics": _json_safe(i.metrics)} for i in marked
        ],
    }


def _saved_ranking(infos: list[CheckpointInfo]) -> dict:
    """The metric and mode the newest checkpoint's manager ranked by."""
    for info in reversed(infos):
        if not info.valid:
            continue
        meta = _meta_of(_load.read_record(info.path))
        by = meta.get("best_by")
        return by if isinstance(by, dict) else {}
    return {}


def _json_safe(metrics: dict) -> dict:
    return {
        k: str(v) if isinstance(v, float) and not math.isfinite(v) else v
        for k, v in metrics.items()
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _size(n: float) -> str:
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            break
    return f"{n:.1f} {unit}"
