"""`netcl train` end to end: argument errors, checkpoints, exact resume."""

from __future__ import annotations

import numpy as np
import pytest

from netcl.cli.main import main
from netcl.io import load_model
from netcl.io.manager import CheckpointManager


def train(tmp_path, *args: str, name: str = "run") -> int:
    argv = ["train", "--quiet", "--device", "cpu", "--ckpt-dir", str(tmp_path / name)]
    return main(argv + list(args))


def weights(path) -> dict:
    return {
        k: v.numpy() for k, v in load_model(path, device="cpu").state_dict().items()
    }


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "cifar"], "unknown dataset 'cifar' (choose from digits, mnist)"),
        (["--model", "rnn"], "unknown model 'rnn' (choose from mlp, cnn)"),
        (["--device", "cl:99"], "no device 'cl:99'"),
        (["--dataset", "mnist"], "--dataset mnist needs --data DIR"),
        (["--dataset", "mnist", "--data", "/nonexistent-netcl"], "does not exist"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--batch-size", "5000"], "larger than the training set (1442 examples)"),
        (["--lr", "nan"], "--lr must be a positive finite number"),
        (["--lr", "-1"], "--lr must be a positive finite number"),
        (["--seed", "-3"], "--seed must be 0 or more"),
        (["--keep-last", "0"], "--keep-last must be at least 1"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert train(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing started, nothing written


def test_unwritable_checkpoint_directory(tmp_path, capsys):
    (tmp_path / "afile").write_text("not a folder")
    assert main(["train", "--quiet", "--ckpt-dir", str(tmp_path / "afile" / "x")]) == 2
    assert "is not writable" in capsys.readouterr().err


def test_a_run_writes_checkpoints_and_models(tmp_path, capsys):
    assert train(tmp_path, "--epochs", "2") == 0
    out = capsys.readouterr().out
    assert "epoch   2" in out and "test acc" in out
    with CheckpointManager(tmp_path / "run") as mgr:
        infos = mgr.list(verify=True)
        assert [i.epoch for i in infos] == [1, 2] and all(i.valid for i in infos)
        assert set(infos[-1].metrics) == {"test_acc", "train_loss"}
    assert (tmp_path / "run" / "final.netcl").exists()
    assert (tmp_path / "run" / "best.netcl").exists()


def test_a_second_run_in_the_same_directory_is_refused(tmp_path, capsys):
    assert train(tmp_path, "--epochs", "1") == 0
    assert train(tmp_path, "--epochs", "1") == 2
    assert "already holds a run" in capsys.readouterr().err


def test_a_directory_in_use_is_refused(tmp_path, capsys):
    with CheckpointManager(tmp_path / "run"):
        assert train(tmp_path, "--epochs", "1", "--resume") == 2
    assert "in use by another" in capsys.readouterr().err


def test_resume_from_every_kind_of_step_is_exact(tmp_path):
    # 22 steps an epoch: step 22 ends epoch 1, 23 is inside epoch 2.
    common = ("--epochs", "3", "--every-n-steps", "1", "--keep-last", "1000")
    assert train(tmp_path, *common, name="straight") == 0
    straight = weights(tmp_path / "straight" / "final.netcl")
    for stop in (21, 22, 23, 66):
        folder = tmp_path / f"cut{stop}"
        _copy_until(tmp_path / "straight", folder, stop)
        assert train(tmp_path, *common, "--resume", name=folder.name) == 0
        resumed = weights(folder / "final.netcl")
        for key, value in straight.items():
            assert np.array_equal(value, resumed[key]), (stop, key)


def _copy_until(src, dst, last_step: int) -> None:
    """A copy of a run directory as it was when step ``last_step`` committed."""
    import shutil

    dst.mkdir()
    for f in src.iterdir():
        if f.name.startswith("step_") and int(f.name[5:13]) <= last_step:
            shutil.copy2(f, dst / f.name)
