"""The README's Python examples run as written, in order, in a fresh folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    # Signatures and sketches with "..." placeholders are not programs.
    return [b for b in blocks if not _is_sketch(b)]


def _is_sketch(block: str) -> bool:
    return "*," in block or any(line.strip() == "..." for line in block.splitlines())


def test_readme_examples_run(tmp_path, monkeypatch, cl_device):
    blocks = _blocks()
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for k, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md python block {k}", "exec"), namespace)
        except Exception as exc:  # name the block that broke
            pytest.fail(f"README python block {k} failed: {exc!r}\n{block}")
    assert (tmp_path / "checkpoints" / "iter_1000.npz").exists()
    assert (tmp_path / "digits.netcl").exists()
