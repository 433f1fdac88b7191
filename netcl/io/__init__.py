"""Saving and loading netcl models.

:func:`save_model` writes a model's architecture, weights and modes to one
self-describing ``.netcl`` file, and :func:`load_model` rebuilds the model
from it with no model code (the format is specified in
:mod:`netcl.io.model`). Training checkpoints, which also hold the optimizer
and the rest of the training state, live in :mod:`netcl.io.checkpoint`.
"""

from __future__ import annotations

from netcl.io.model import load_model, save_model

__all__ = ["load_model", "save_model"]
