"""Loading into parameters: strict matching, reports, dtype rules."""

from __future__ import annotations

import numpy as np
import pytest

import netcl
from netcl.io.checkpoint import (
    CheckpointError,
    CheckpointWarning,
    load_checkpoint,
    save_checkpoint,
)


def _model(device="cpu", scale=1.0):
    return {
        "fc1.weight": netcl.tensor(np.full((4, 3), scale, np.float32), device=device),
        "fc1.bias": netcl.tensor(np.full(4, scale, np.float32), device=device),
        "steps": netcl.tensor(np.array([3], np.int64), device=device),
    }


def _save(tmp_path, **extra):
    state = {"model": _model(scale=2.0), "epoch": 9, **extra}
    save_checkpoint(state, tmp_path / "ck", format="npy")
    return tmp_path / "ck"


def test_state_dict_mapping_loads_by_name(tmp_path, device):
    path = _save(tmp_path)
    target = _model(device)
    rest = load_checkpoint(None, target, path)
    assert rest == {"epoch": 9}
    assert rest.report.loaded == ["fc1.weight", "fc1.bias", "steps"]
    np.testing.assert_array_equal(target["fc1.weight"].numpy(), 2.0)
    assert target["fc1.weight"].device.name == device


def test_strict_lists_every_problem_and_changes_nothing(tmp_path):
    path = _save(tmp_path)
    target = _model()
    del target["steps"]
    target["fc1.bias"] = netcl.zeros(5)
    target["fc2.weight"] = netcl.zeros(2)
    target["fc1.weight"] = netcl.zeros(4, 3, dtype="int32")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(None, target, path)
    message = str(info.value)
    assert "missing key 'fc2.weight'" in message
    assert "unexpected key 'steps'" in message
    assert "shape mismatch for 'fc1.bias': saved (4,), parameter (5,)" in message
    assert "float32 of 'fc1.weight' does not convert exactly" not in message
    assert "ck.npys" in message and "nothing was loaded" in message
    np.testing.assert_array_equal(target["fc1.bias"].numpy(), 0)
    # 2.0 converts exactly to int32, so only the other problems are reported
    np.testing.assert_array_equal(target["fc1.weight"].numpy(), 0)


def test_inexact_integer_conversion_is_refused(tmp_path):
    save_checkpoint({"model": {"w": np.array([0.5, 1.0], np.float32)}}, tmp_path / "i")
    target = {"w": netcl.zeros(2, dtype="int64")}
    with pytest.raises(
        CheckpointError, match="float32 of 'w' does not convert exactly"
    ):
        load_checkpoint(None, target, tmp_path / "i")
    np.testing.assert_array_equal(target["w"].numpy(), 0)


def test_floating_conversion_is_done_and_reported(tmp_path):
    value = np.array([1 / 3, 2.0], np.float64)
    save_checkpoint({"model": {"w": value}}, tmp_path / "f")
    target = {"w": netcl.zeros(2, dtype="bfloat16")}
    rest = load_checkpoint(None, target, tmp_path / "f")
    assert rest.report.converted == [("w", "float64", "bfloat16")]
    np.testing.assert_array_equal(target["w"].numpy(), value.astype(netcl.bfloat16.np))


def test_non_strict_loads_what_fits_warns_once_and_reports(tmp_path):
    path = _save(tmp_path)
    target = _model()
    target["fc1.bias"] = netcl.zeros(5)
    target["new.head"] = netcl.zeros(2)
    with pytest.warns(CheckpointWarning) as caught:
        rest = load_checkpoint(None, target, path, strict=False)
    assert len(caught) == 1 and caught[0].filename == __file__
    report = rest.report
    assert report.loaded == ["fc1.weight", "steps"]
    assert report.missing == ["new.head"]
    assert report.mismatched == [("fc1.bias", (4,), (5,))]
    np.testing.assert_array_equal(target["fc1.weight"].numpy(), 2.0)
    np.testing.assert_array_equal(target["fc1.bias"].numpy(), 0.0)


def test_prefix_difference_is_explained_and_strippable(tmp_path):
    model = {f"module.{k}": v for k, v in _model(scale=5.0).items()}
    save_checkpoint({"model": model}, tmp_path / "p")
    target = _model()
    with pytest.raises(
        CheckpointError, match="prefix 'module.'.*strip_prefix='module.'"
    ):
        load_checkpoint(None, target, tmp_path / "p")
    load_checkpoint(None, target, tmp_path / "p", strip_prefix="module.")
    np.testing.assert_array_equal(target["fc1.bias"].numpy(), 5.0)


def test_parameter_list_loads_by_position_and_counts_must_match(tmp_path):
    params = [np.arange(3.0), np.ones((2, 2))]
    save_checkpoint(params, tmp_path / "l", names=["a", "b"])
    targets = [np.zeros(3), np.zeros((2, 2))]
    load_checkpoint(None, targets, tmp_path / "l")
    np.testing.assert_array_equal(targets[0], params[0])
    with pytest.raises(CheckpointError, match="missing key '#2"):
        load_checkpoint(None, targets + [np.zeros(1)], tmp_path / "l")


def test_whole_tree_without_params_has_no_model_needed(tmp_path):
    save_checkpoint({"epoch": 1}, tmp_path / "e")
    with pytest.raises(CheckpointError, match="no parameters saved"):
        load_checkpoint(None, [np.zeros(1)], tmp_path / "e")
    assert load_checkpoint(None, None, tmp_path / "e") == {"epoch": 1}
