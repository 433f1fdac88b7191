"""Files written by earlier versions of the model format keep loading.

``tests/data/model_v1.netcl`` was written once, by format version 1 (see
``tests/data/make_model_v1.py``), and is never rewritten. Every later netcl
must rebuild the same model from it and give the outputs stored in its
metadata.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import netcl
from netcl import nn
from netcl.io import load_model
from netcl.io.model import describe, read_metadata

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "data", "model_v1.netcl")


@pytest.fixture(scope="module")
def metadata():
    return read_metadata(FIXTURE)


def test_v1_metadata(metadata):
    assert metadata["input_shape"] == (1, 8, 8)
    assert metadata["classes"] == [str(i) for i in range(10)]
    assert np.isnan(metadata["note"])


def test_v1_rebuilds_the_same_architecture():
    model = load_model(FIXTURE, device="cpu")
    assert not any(m.training for m in model.modules())
    assert [name for name, _ in model.named_children()] == ["features", "head"]
    assert type(model.features[1]) is nn.BatchNorm2d
    assert model.features[1].config()["momentum"] is None
    assert model.head[4] is model.head[6]  # one module used twice
    assert model.head[7].bias is None
    assert int(model.features[1].num_batches_tracked.item()) == 3
    assert len(model.state_dict()) == 16


def test_v1_outputs_equal_the_stored_ones(device, metadata):
    model = load_model(FIXTURE, device=device)
    x = netcl.tensor(np.array(metadata["test_input"], dtype=np.float32), device=device)
    with netcl.no_grad():
        y = model(x).numpy()
    expected = np.array(metadata["expected_output"], dtype=np.float32)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_v1_file_is_the_frozen_one():
    # The fixture must never be regenerated: its record checksum is pinned.
    with zipfile.ZipFile(FIXTURE) as archive:
        names = archive.namelist()
        record = json.loads(archive.read("model.json"))
        assert archive.comment == b"netcl-model"
    assert record["version"] == 1 and record["checksum"] == 1295526777
    # 16 state-dict keys, two of them tied (``same_as``), plus the record.
    assert len(names) == 16 - 2 + 1 and names[-1] == "model.json"
    assert "format version 1" in describe(FIXTURE)
