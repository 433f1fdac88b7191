"""Optimizers and learning-rate schedules.

Optimizers update parameters in place from their ``.grad`` (one fused
backend kernel per parameter); :mod:`netcl.optim.lr_scheduler` changes their
learning rates as training advances. Both save and restore their state
through ``state_dict()`` / ``load_state_dict()``, so training resumes
exactly where a checkpoint left it.

Example:
    >>> import netcl
    >>> w = netcl.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = netcl.optim.SGD([w], lr=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> opt.zero_grad()
    >>> w.tolist()
    [0.0, 0.0]
"""

from __future__ import annotations

from netcl.optim import lr_scheduler
from netcl.optim.adam import Adam, AdamW
from netcl.optim.optimizer import Optimizer
from netcl.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "lr_scheduler"]
