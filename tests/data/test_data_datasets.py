"""Ready-made datasets: the shipped digits set and its frozen split, and MNIST
read from IDX files that the tests write themselves."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest

import netcl
from netcl.data import TensorDataset, datasets

# ---- digits -------------------------------------------------------------------


def test_digits_shapes_dtypes_and_scaling():
    images, labels = datasets.digits_arrays(None)
    assert images.shape == (1797, 1, 8, 8) and images.dtype == np.float32
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    # Values were 0..16 integers, so 16 * value is integral.
    np.testing.assert_array_equal(images * 16, np.round(images * 16))
    assert np.bincount(labels).tolist() == [
        178, 182, 177, 183, 181, 182, 181, 179, 174, 180,
    ]  # fmt: skip


def test_digits_split_is_stratified_and_disjoint():
    all_x, all_y = datasets.digits_arrays(None)
    train_x, train_y = datasets.digits_arrays("train")
    test_x, test_y = datasets.digits_arrays("test")
    assert (len(train_y), len(test_y)) == (1442, 355)
    assert (np.bincount(test_y) == np.bincount(all_y) // 5).all()

    # Together the splits are the whole set: every sample exactly once.
    def key(x, y):
        return sorted(xi.tobytes() + bytes([yi]) for xi, yi in zip(x, y))

    joined = key(np.concatenate([train_x, test_x]), np.concatenate([train_y, test_y]))
    assert joined == key(all_x, all_y)


def test_digits_split_follows_the_documented_rule_and_never_changes():
    all_x, all_y = datasets.digits_arrays(None)
    test_x, test_y = datasets.digits_arrays("test")
    # The rule, restated: the 5th, 10th, ... sample of each class is a test
    # sample, in file order.
    rank = np.zeros(len(all_y), dtype=np.int64)
    for c in range(10):
        members = np.flatnonzero(all_y == c)
        rank[members] = np.arange(members.size)
    picked = np.flatnonzero(rank % 5 == 4)
    np.testing.assert_array_equal(test_x, all_x[picked])
    np.testing.assert_array_equal(test_y, all_y[picked])
    # Frozen fingerprint of the test indices; if this fails the split changed.
    assert picked[:6].tolist() == [33, 36, 37, 40, 44, 47]
    assert hashlib.sha256(picked.astype("<i8").tobytes()).hexdigest()[:16] == (
        "f169ac7f88a60561"
    )


def test_digits_dataset_is_a_tensor_dataset():
    ds = datasets.digits("train")
    assert isinstance(ds, TensorDataset) and len(ds) == 1442
    x, y = ds[0]
    assert x.shape == (1, 8, 8) and x.dtype is netcl.float32
    assert y.dtype is netcl.int64
    with pytest.raises(ValueError, match="split"):
        datasets.digits("validation")


# ---- MNIST from IDX files -------------------------------------------------------


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write(path, data: bytes, gz: bool) -> None:
    if gz:
        with gzip.open(f"{path}.gz", "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def _fake_mnist(root, prefix: str, n: int, gz: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    _write(root / f"{prefix}-images-idx3-ubyte", _idx_bytes(images), gz)
    _write(root / f"{prefix}-labels-idx1-ubyte", _idx_bytes(labels), gz)
    return images, labels


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_mnist_reads_idx_files(tmp_path, gz):
    train_raw = _fake_mnist(tmp_path, "train", 7, gz, seed=1)
    test_raw = _fake_mnist(tmp_path, "t10k", 3, gz, seed=2)
    for split, (raw_x, raw_y) in (("train", train_raw), ("test", test_raw)):
        ds = datasets.mnist(tmp_path, split)
        x, y = ds.arrays
        assert x.shape == (len(raw_y), 1, 28, 28) and x.dtype == np.float32
        np.testing.assert_allclose(x[:, 0] * 255, raw_x, atol=1e-4)
        assert y.dtype == np.int64 and y.tolist() == raw_y.tolist()


def test_mnist_missing_folder_and_files_name_what_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError) as info:
        datasets.mnist(tmp_path, "test")
    assert "'t10k-images-idx3-ubyte'" in str(info.value)
    assert "'t10k-images-idx3-ubyte.gz'" in str(info.value)

    _fake_mnist(tmp_path, "train", 2, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte.gz"):
        datasets.mnist(tmp_path)


def test_mnist_bad_magic_truncation_and_mismatch_name_the_file(tmp_path):
    images, labels = _fake_mnist(tmp_path, "train", 4, gz=False)
    image_file = tmp_path / "train-images-idx3-ubyte"
    good = image_file.read_bytes()

    image_file.write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*magic"):
        datasets.mnist(tmp_path)

    image_file.write_bytes(_idx_bytes(labels))  # a 1-d file where 3-d belongs
    with pytest.raises(ValueError, match="expected 0x00000803"):
        datasets.mnist(tmp_path)

    image_file.write_bytes(good[:-5])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*truncated"):
        datasets.mnist(tmp_path)

    image_file.write_bytes(good[:10])
    with pytest.raises(ValueError, match="truncated inside its header"):
        datasets.mnist(tmp_path)

    image_file.write_bytes(_idx_bytes(images[:3]))
    with pytest.raises(ValueError, match="3 images but"):
        datasets.mnist(tmp_path)


def test_mnist_corrupt_gzip_names_the_file(tmp_path):
    _fake_mnist(tmp_path, "train", 4, gz=True)
    gz_file = tmp_path / "train-labels-idx1-ubyte.gz"
    gz_file.write_bytes(gz_file.read_bytes()[:-12])
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz"):
        datasets.mnist(tmp_path)


def test_read_idx_handles_other_element_types(tmp_path):
    values = np.array([[1.5, -2.0], [3.25, 4.0]], dtype=">f4")
    path = tmp_path / "floats.idx"
    path.write_bytes(bytes([0, 0, 0x0D, 2, 0, 0, 0, 2, 0, 0, 0, 2]) + values.tobytes())
    out = datasets.read_idx(path)
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, values)
