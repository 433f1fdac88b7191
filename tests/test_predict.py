"""``netcl predict``: accuracy on a dataset, scores for an array, and
one-line errors (exit status 2) for every bad input."""

from __future__ import annotations

import numpy as np
import pytest

import netcl
from netcl import nn
from netcl.cli.main import main
from netcl.data import datasets
from netcl.io import save_model


def _classifier():
    netcl.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


def _fit(model, steps=60):
    """A few steps of plain gradient descent on the digits train split."""
    from netcl.nn import functional as F

    x, y = datasets.digits_arrays("train")
    x, y = netcl.tensor(x), netcl.tensor(y)
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        with netcl.no_grad():
            for p in model.parameters():
                p.sub_(p.grad * 0.5)
    return model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("predict") / "digits.netcl"
    metadata = {"input_shape": [1, 8, 8], "classes": [f"d{i}" for i in range(10)]}
    save_model(_fit(_classifier()).eval(), path, metadata=metadata)
    return path


def _run(capsys, *argv):
    code = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(capsys, *argv) -> str:
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("netcl predict: error: ") and err.count("\n") == 1
    return err


def test_accuracy_on_digits(capsys, model_file, device):
    code, out, _ = _run(capsys, model_file, "--dataset", "digits", "--device", device)
    assert code == 0
    assert "on digits test (355 examples" in out and f"device {device}" in out
    accuracy = float(out.split("accuracy ")[1].split("%")[0])
    assert accuracy > 80


def test_scores_for_an_array(capsys, model_file, tmp_path):
    x, _ = datasets.digits_arrays("test")
    np.save(tmp_path / "x.npy", x[:4])
    code, out, _ = _run(capsys, model_file, "--input", tmp_path / "x.npy")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["example", "class"] + [f"d{i}" for i in range(10)]
    assert len(lines) == 5

    model = _fit(_classifier())
    with netcl.no_grad():
        expected = model(netcl.tensor(x[:4])).numpy()
    for line, row in zip(lines[1:], expected):
        cells = line.split()
        assert cells[1] == f"d{row.argmax()}"
        np.testing.assert_allclose([float(c) for c in cells[2:]], row, atol=1e-4)


def test_a_single_example_is_a_batch_of_one(capsys, model_file, tmp_path):
    np.save(tmp_path / "one.npy", np.zeros((1, 8, 8), dtype=np.float64))
    code, out, _ = _run(capsys, model_file, "--input", tmp_path / "one.npy")
    assert code == 0 and len(out.splitlines()) == 2


def test_without_input_shape_metadata_any_shape_goes_to_the_model(capsys, tmp_path):
    save_model(nn.Linear(3, 2), tmp_path / "m.netcl")
    np.save(tmp_path / "x.npy", np.ones((5, 3), dtype=np.float32))
    code, out, _ = _run(capsys, tmp_path / "m.netcl", "--input", tmp_path / "x.npy")
    assert code == 0
    assert out.splitlines()[0].split() == ["example", "class", "0", "1"]


def test_an_array_of_the_wrong_shape(capsys, model_file, tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((3, 64), dtype=np.float32))
    err = _one_line_error(capsys, model_file, "--input", tmp_path / "flat.npy")
    assert "has shape (3, 64)" in err and "(N, 1, 8, 8)" in err


@pytest.mark.parametrize(
    "array, words",
    [
        (np.array(["a", "b"]), "expected numbers"),
        (np.array(3.0), "expected numbers"),
        (np.array([{"a": 1}], dtype=object), "cannot read"),
    ],
)
def test_arrays_that_are_not_inputs(capsys, model_file, tmp_path, array, words):
    np.save(tmp_path / "x.npy", array, allow_pickle=True)
    assert words in _one_line_error(capsys, model_file, "--input", tmp_path / "x.npy")


def test_a_missing_input_file(capsys, model_file, tmp_path):
    err = _one_line_error(capsys, model_file, "--input", tmp_path / "none.npy")
    assert "does not exist" in err


def test_a_missing_model_file(capsys, tmp_path):
    err = _one_line_error(capsys, tmp_path / "none.netcl", "--dataset", "digits")
    assert "none.netcl" in err and "does not exist" in err


def test_a_damaged_model_file(capsys, model_file, tmp_path):
    broken = tmp_path / "broken.netcl"
    broken.write_bytes(model_file.read_bytes()[:-100])
    err = _one_line_error(capsys, broken, "--dataset", "digits")
    assert "broken.netcl" in err


def test_a_model_for_other_inputs(capsys, tmp_path):
    save_model(nn.Linear(3, 2), tmp_path / "m.netcl", metadata={"input_shape": [3]})
    err = _one_line_error(capsys, tmp_path / "m.netcl", "--dataset", "digits")
    assert "shape (3,)" in err and "(1, 8, 8)" in err


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--dataset", "cifar"], "unknown dataset 'cifar'"),
        (["--dataset", "digits", "--split", "val"], "unknown split 'val'"),
        (["--dataset", "digits", "--device", "tpu:9"], "no device 'tpu:9'"),
        (["--dataset", "digits", "--batch-size", "0"], "--batch-size"),
        (["--dataset", "mnist"], "--data DIR"),
    ],
)
def test_bad_arguments(capsys, model_file, extra, words):
    assert words in _one_line_error(capsys, model_file, *extra)


def test_dataset_or_input_is_required(capsys, model_file):
    with pytest.raises(SystemExit) as info:
        main(["predict", str(model_file)])
    assert info.value.code == 2
    assert "--dataset" in capsys.readouterr().err
