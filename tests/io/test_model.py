"""Model files round-trip every layer and container: same tree, same
arguments, same modes, same bits, same outputs, on the host and OpenCL."""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import netcl
from netcl import nn
from netcl.io import load_model, save_model
from netcl.io.model import describe, read_metadata

RNG = np.random.default_rng(0)


def _images(n=3, c=2, h=6, w=6):
    return RNG.standard_normal((n, c, h, w)).astype(np.float32)


def _features(n=4, f=5):
    return RNG.standard_normal((n, f)).astype(np.float32)


def _trained_batchnorm(cls, shape):
    def make():
        bn = cls(shape[1], momentum=0.3)
        with netcl.no_grad():
            for _ in range(2):
                bn(netcl.tensor(RNG.standard_normal(shape).astype(np.float32)))
        return bn.eval()

    return make


# name -> (factory, input or None). Every built-in layer and container is
# here; test_every_builtin_is_covered keeps the list complete.
CASES = {
    "Linear": (lambda: nn.Linear(5, 3), _features()),
    "Linear-nobias": (lambda: nn.Linear(5, 3, bias=False), _features()),
    "Conv2d": (lambda: nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=1), _images()),
    "MaxPool2d": (lambda: nn.MaxPool2d(2, stride=1), _images()),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, padding=1), _images()),
    "Dropout-eval": (lambda: nn.Dropout(0.4).eval(), _features()),
    "Dropout-train": (lambda: nn.Dropout(0.4), _features()),
    "Embedding": (
        lambda: nn.Embedding(7, 3),
        RNG.integers(0, 7, size=(2, 4), dtype=np.int64),
    ),
    "Flatten": (lambda: nn.Flatten(2), _images()),
    "Identity": (nn.Identity, _features()),
    "ReLU": (nn.ReLU, _features()),
    "GELU": (nn.GELU, _features()),
    "Tanh": (nn.Tanh, _features()),
    "Sigmoid": (nn.Sigmoid, _features()),
    "BatchNorm1d-eval": (_trained_batchnorm(nn.BatchNorm1d, (6, 5)), _features()),
    "BatchNorm1d-train": (lambda: nn.BatchNorm1d(5, affine=False), _features()),
    "BatchNorm2d-eval": (_trained_batchnorm(nn.BatchNorm2d, (4, 2, 3, 3)), _images()),
    "LayerNorm": (lambda: nn.LayerNorm(5, eps=1e-3), _features()),
    "Sequential": (
        lambda: nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2)),
        _features(),
    ),
    "Sequential-named": (
        lambda: nn.Sequential(
            OrderedDict(
                features=nn.Sequential(nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2).eval()),
                head=nn.Sequential(nn.Flatten(), nn.Linear(32, 3)),
            )
        ),
        _images(),
    ),
    "ModuleList": (
        lambda: nn.ModuleList([nn.Linear(2, 2), nn.ModuleList([nn.Tanh()])]),
        None,
    ),
    "ModuleDict": (
        lambda: nn.ModuleDict({"a": nn.Linear(2, 3), "b": nn.ModuleDict({})}),
        None,
    ),
}


@nn.register("tests.Mixer")
class Mixer(nn.Module):
    """A user module with its own arguments (a tuple among them) whose
    constructor builds a ModuleList and a ModuleDict."""

    def __init__(self, width: int, scales: tuple = (1.0, 2.0)):
        super().__init__()
        self.width, self.scales = width, scales
        self.blocks = nn.ModuleList([nn.Linear(width, width) for _ in scales])
        self.heads = nn.ModuleDict({"out": nn.Linear(width, 2)})
        self.register_buffer("offset", netcl.arange(width, dtype=netcl.float32))

    def forward(self, x):
        for scale, block in zip(self.scales, self.blocks):
            x = block(x * scale + self.offset).tanh()
        return self.heads["out"](x)

    def config(self):
        return {"width": self.width, "scales": self.scales}


CASES["registered user module"] = (lambda: Mixer(5, (0.5, 1.0, 3.0)), _features())


def _structure(model):
    return [
        (name, type(m).__name__, m.config(), m.training)
        for name, m in model.named_modules(remove_duplicate=False)
    ]


def assert_same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert_same_bits(sa[key].numpy(), sb[key].numpy())


def _outputs(model, x, device):
    netcl.manual_seed(5)  # dropout in train mode draws the same mask twice
    with netcl.no_grad():
        return model(netcl.tensor(x, device=device)).numpy()


def test_every_builtin_is_covered():
    builtin = {
        name
        for name, cls in nn.module_registry().items()
        if cls.__module__.startswith("netcl.")
    }
    covered = {name.split("-")[0] for name in CASES}
    assert builtin <= covered, f"add round-trip cases for {builtin - covered}"


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip(name, device, tmp_path):
    factory, x = CASES[name]
    model = factory().to(device)
    path = tmp_path / "m.netcl"
    save_model(model, path)

    loaded = load_model(path, device=device)

    assert type(loaded) is type(model)
    assert _structure(loaded) == _structure(model)
    assert_same_state(loaded, model)
    assert all(t.device.name == device for t in loaded.state_dict().values())
    if x is not None:
        assert_same_bits(_outputs(loaded, x, device), _outputs(model, x, device))


def test_modes_are_kept_per_module(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.BatchNorm1d(2))
    model[1].eval()
    save_model(model, tmp_path / "m.netcl")
    loaded = load_model(tmp_path / "m.netcl", device="cpu")
    assert [m.training for m in loaded.modules()] == [True, True, False, True]

    # Modules made by a user constructor, and a shared module, keep theirs too.
    shared = nn.Dropout()
    model = nn.Sequential(Mixer(3), shared, nn.Sequential(shared)).eval()
    model[0].blocks[1].train()
    model[2].train()
    shared.eval()
    save_model(model, tmp_path / "m.netcl")
    loaded = load_model(tmp_path / "m.netcl", device="cpu")
    assert _structure(loaded) == _structure(model)
    assert loaded[0].blocks[1].training and not loaded[0].blocks[0].training
    assert loaded[2].training and not loaded[1].training


def test_shared_modules_and_tied_weights_stay_shared(tmp_path):
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.Tanh(), shared, nn.Sequential(shared))
    save_model(model, tmp_path / "m.netcl")
    loaded = load_model(tmp_path / "m.netcl", device="cpu")
    assert loaded[0] is loaded[2] is loaded[3][0]
    assert_same_state(loaded, model)
    with zipfile.ZipFile(tmp_path / "m.netcl") as archive:
        names = archive.namelist()
    assert "tensors/0.weight.npy" in names and "tensors/2.weight.npy" not in names


def test_tied_parameters_of_distinct_modules_are_tied_again(tmp_path):
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    model[1].weight = model[0].weight
    save_model(model, tmp_path / "m.netcl")
    loaded = load_model(tmp_path / "m.netcl", device="cpu")
    assert loaded[1].weight is loaded[0].weight
    assert_same_state(loaded, model)


def test_bfloat16_model_keeps_its_dtype(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).to(netcl.bfloat16)
    save_model(model, tmp_path / "m.netcl")
    loaded = load_model(tmp_path / "m.netcl", device="cpu")
    assert loaded[0].weight.dtype == netcl.bfloat16
    assert loaded[1].num_batches_tracked.dtype == netcl.int64
    assert_same_state(loaded, model)


def test_opencl_file_loads_on_host_and_back(cl_device, tmp_path):
    x = _images(c=1, h=8, w=8)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3),
        _trained_batchnorm(nn.BatchNorm2d, (4, 3, 6, 6))(),
        nn.Flatten(),
        nn.Linear(108, 4),
    ).to(cl_device)
    save_model(model, tmp_path / "cl.netcl")

    on_host = load_model(tmp_path / "cl.netcl", device="cpu")
    assert_same_state(on_host, model)
    np.testing.assert_allclose(
        _outputs(on_host, x, "cpu"), _outputs(model, x, cl_device), rtol=1e-5, atol=1e-6
    )

    save_model(on_host, tmp_path / "host.netcl")
    back = load_model(tmp_path / "host.netcl", device=cl_device)
    assert back[0].weight.device.name == cl_device
    assert_same_bits(_outputs(back, x, cl_device), _outputs(model, x, cl_device))


def test_loading_leaves_the_random_state_alone(tmp_path):
    save_model(nn.Sequential(nn.Linear(30, 30), nn.Dropout()), tmp_path / "m.netcl")
    netcl.manual_seed(3)
    expected = netcl.rand(5).numpy()
    netcl.manual_seed(3)
    load_model(tmp_path / "m.netcl", device="cpu")
    assert_same_bits(netcl.rand(5).numpy(), expected)


def test_metadata_round_trips(tmp_path):
    metadata = {
        "input_shape": (1, 8, 8),
        "classes": ["zero", "one"],
        "metrics": {"test_acc": 0.975, "loss": math.inf, "nested": [1, None, True]},
        "note": "ünïcode",
        "step": np.int64(12),
    }
    save_model(nn.ReLU(), tmp_path / "m.netcl", metadata=metadata)
    found = read_metadata(tmp_path / "m.netcl")
    assert found == {**metadata, "step": 12}
    assert isinstance(found["input_shape"], tuple)
    assert read_metadata(_saved(tmp_path, nn.ReLU())) == {}


def _saved(tmp_path, model, name="plain.netcl", **kwargs):
    path = tmp_path / name
    save_model(model, path, **kwargs)
    return path


def test_the_file_opens_with_standard_tools_and_holds_no_pickle(tmp_path):
    model = CASES["Sequential-named"][0]()
    path = _saved(tmp_path, model, metadata={"input_shape": [2, 6, 6]})

    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert archive.comment == b"netcl-model"
        record = json.loads(archive.read("model.json"))
    assert record["magic"] == "netcl-model" and record["version"] == 1
    assert set(record) == {
        "magic", "version", "netcl_version", "created", "architecture",
        "tensors", "metadata", "checksum",
    }  # fmt: skip
    assert record["architecture"]["children"][0][0] == "features"
    assert [row["key"] for row in record["tensors"]] == list(model.state_dict())

    with np.load(path, allow_pickle=False) as npz:
        for key, value in model.state_dict().items():
            assert_same_bits(npz[f"tensors/{key}"], value.numpy())
    assert b"pickle" not in path.read_bytes()


def test_save_replaces_atomically_and_leaves_no_temporary_files(tmp_path):
    path = _saved(tmp_path, nn.Linear(2, 2), "m.netcl")
    save_model(nn.Linear(3, 1), path)
    assert load_model(path, device="cpu").config()["in_features"] == 3
    assert os.listdir(tmp_path) == ["m.netcl"]

    class Unregistered(nn.Module):
        pass

    with pytest.raises(TypeError):
        save_model(nn.Sequential(Unregistered()), path)
    assert load_model(path, device="cpu").config()["in_features"] == 3
    assert os.listdir(tmp_path) == ["m.netcl"]


def test_save_makes_missing_directories(tmp_path):
    path = tmp_path / "a" / "b" / "m.netcl"
    save_model(nn.Tanh(), str(path))
    assert isinstance(load_model(path, device="cpu"), nn.Tanh)


def test_describe_shows_the_tree_counts_and_metadata(tmp_path):
    path = _saved(
        tmp_path,
        CASES["Sequential-named"][0]().eval(),
        metadata={"input_shape": [2, 6, 6], "classes": ["a", "b", "c"]},
    )
    text = describe(path)
    lines = text.splitlines()
    assert "mode: eval" in text
    rows = [line.split(maxsplit=2) for line in lines]
    assert ["141", "Sequential"] in rows
    assert ["42", "(features)", "Sequential"] in rows
    assert ["4", "(1)", "BatchNorm2d(num_features=2, eps=1e-05, momentum=0.1, "
            "affine=True, track_running_stats=True)"] in rows  # fmt: skip
    assert ["99", "(1)", "Linear(in_features=32, out_features=3, bias=True)"] in rows
    assert ["141", "total"] in rows
    assert lines[lines.index("metadata:") - 1] == "buffers: 3 tensors, 5 values"
    assert "  input_shape: [2, 6, 6]" in lines
    assert "  classes: ['a', 'b', 'c']" in lines
