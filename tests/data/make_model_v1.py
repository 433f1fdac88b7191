"""Write ``model_v1.netcl``, the frozen model file of format version 1.

The file is committed and never rewritten: ``tests/io/test_model_compat.py``
checks that every later netcl still loads it and that the loaded model gives
the outputs stored in its metadata. Run this script only when a new format
version is introduced, under a new name (``model_v2.netcl``...).

The model touches every part of the version-1 format: nested containers with
named children, layers with arguments of several types (ints, pairs, floats,
None), a module shared by two parents (a ``shared`` node), its tied weights
(``same_as`` tensors), batch-norm running statistics with an int64 counter,
evaluation mode, and metadata holding a tuple, a NaN and nested lists.

Usage: ``python tests/data/make_model_v1.py`` from the repository root.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np

import netcl
from netcl import nn
from netcl.io import save_model

HERE = os.path.dirname(os.path.abspath(__file__))


def build() -> nn.Module:
    netcl.manual_seed(1234)
    shared = nn.Linear(16, 16)
    features = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4, momentum=None),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
    )
    head = nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 16),
        nn.LayerNorm(16),
        nn.Tanh(),
        shared,
        nn.GELU(),
        shared,
        nn.Linear(16, 10, bias=False),
    )
    return nn.Sequential(OrderedDict(features=features, head=head))


def main() -> None:
    model = build()
    # A few training batches move the batch-norm statistics off their start.
    rng = np.random.default_rng(7)
    model.train()
    with netcl.no_grad():
        for _ in range(3):
            model(netcl.tensor(rng.random((8, 1, 8, 8), dtype=np.float32)))
    model.eval()

    x = rng.random((2, 1, 8, 8), dtype=np.float32)
    with netcl.no_grad():
        y = model(netcl.tensor(x)).numpy()
    metadata = {
        "input_shape": (1, 8, 8),
        "classes": [str(i) for i in range(10)],
        "note": float("nan"),
        "test_input": x.tolist(),
        "expected_output": y.tolist(),
    }
    save_model(model, os.path.join(HERE, "model_v1.netcl"), metadata=metadata)


if __name__ == "__main__":
    main()
