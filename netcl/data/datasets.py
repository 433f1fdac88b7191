"""Ready-made datasets: the small digits set shipped with netcl, and MNIST.

Nothing here downloads anything. ``digits`` reads a file inside the netcl
package; ``mnist`` reads the standard IDX files from a folder you provide.

Digits: the test part of the UCI ML "Optical Recognition of Handwritten
Digits" data set by E. Alpaydin and C. Kaynak (1998), licensed CC BY 4.0:
1797 grey-scale 8x8 images with values 0..16, labels 0..9.

The digits train/test split is fixed by this rule, which never changes
between netcl versions: take the samples of each class in file order and
number them 0, 1, 2, ... within the class; those numbered 4, 9, 14, ...
(number % 5 == 4) form the test split, all others the train split. Both
splits keep file order. That gives 1442 train and 355 test samples, every
class split 4:1.
"""

from __future__ import annotations

import gzip
import os
from importlib import resources

import numpy as np

from netcl.data.dataset import TensorDataset

__all__ = [
    "digits",
    "digits_arrays",
    "mnist",
    "mnist_arrays",
    "read_idx",
]

_SPLITS = ("train", "test")

# Every fifth sample of each class (by its rank within the class) is a test
# sample; see the module docstring.
_DIGITS_TEST_EVERY = 5

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# IDX element type codes (third magic byte) and their big-endian dtypes.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


# ---- digits -------------------------------------------------------------------


def digits_arrays(split: str | None = "train") -> tuple[np.ndarray, np.ndarray]:
    """The digits data as numpy arrays.

    Args:
        split: ``"train"`` (1442 samples), ``"test"`` (355) or None (all
            1797, in file order). The split rule is in this module's docstring.

    Returns:
        ``(images, labels)``: images float32 of shape ``(N, 1, 8, 8)`` (one
        channel) scaled from 0..16 to [0, 1]; labels int64 of shape ``(N,)``.

    Raises:
        ValueError: if ``split`` is not one of the above.
    """
    _check_split(split, allow_none=True)
    with resources.files("netcl.data").joinpath("_files/digits.npz").open("rb") as f:
        with np.load(f) as npz:
            raw_images, raw_labels = npz["images"], npz["labels"]

    images = (raw_images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    labels = raw_labels.astype(np.int64)
    if split is None:
        return images, labels
    test = _digits_test_mask(labels)
    keep = test if split == "test" else ~test
    return images[keep], labels[keep]


def digits(split: str | None = "train") -> TensorDataset:
    """The digits data as a :class:`~netcl.data.TensorDataset` of
    ``(images, labels)``; see :func:`digits_arrays` for shapes and dtypes.

    Example:
        >>> ds = digits("test")
        >>> len(ds), ds[0][0].shape
        (355, (1, 8, 8))
    """
    return TensorDataset(*digits_arrays(split))


def _digits_test_mask(labels: np.ndarray) -> np.ndarray:
    mask = np.zeros(labels.shape, dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)  # file order
        rank = np.arange(members.size)
        mask[members[rank % _DIGITS_TEST_EVERY == _DIGITS_TEST_EVERY - 1]] = True
    return mask


# ---- MNIST --------------------------------------------------------------------


def mnist_arrays(
    root: str | os.PathLike, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST as numpy arrays, read from the standard IDX files in ``root``.

    ``root`` must hold ``train-images-idx3-ubyte`` and
    ``train-labels-idx1-ubyte`` (for ``split="train"``) or
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (for
    ``"test"``), each either plain or gzip-compressed with a ``.gz`` suffix.

    Returns:
        ``(images, labels)``: images float32 of shape ``(N, 1, 28, 28)``
        scaled from 0..255 to [0, 1]; labels int64 of shape ``(N,)``.

    Raises:
        FileNotFoundError: if ``root`` or a file is missing (the message
            names every file name looked for).
        ValueError: if ``split`` is unknown, or a file has a wrong magic
            number, is truncated or otherwise corrupt, or the two files
            disagree on the number of samples (the message names the file).
    """
    _check_split(split, allow_none=False)
    image_name, label_name = _MNIST_FILES[split]
    image_path = _find_idx_file(root, image_name)
    label_path = _find_idx_file(root, label_name)

    images = read_idx(image_path, expect_ndim=3)
    labels = read_idx(label_path, expect_ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"MNIST files disagree: {os.fspath(image_path)!r} has "
            f"{images.shape[0]} images but {os.fspath(label_path)!r} has "
            f"{labels.shape[0]} labels"
        )
    scaled = (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]
    return scaled, labels.astype(np.int64)


def mnist(root: str | os.PathLike, split: str = "train") -> TensorDataset:
    """MNIST as a :class:`~netcl.data.TensorDataset` of ``(images, labels)``;
    see :func:`mnist_arrays` for the files read, shapes and errors."""
    return TensorDataset(*mnist_arrays(root, split))


def _find_idx_file(root: str | os.PathLike, name: str) -> str:
    root = os.fspath(root)
    candidates = (name, name + ".gz")
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"MNIST folder {root!r} does not exist; it should hold "
            f"{candidates[0]!r} or {candidates[1]!r}"
        )
    for candidate in candidates:
        path = os.path.join(root, candidate)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"MNIST file not found in {root!r}: looked for {candidates[0]!r} and "
        f"{candidates[1]!r}"
    )


def read_idx(path: str | os.PathLike, expect_ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (the format MNIST ships in), plain or gzip.

    An IDX file starts with a 4-byte magic number: two zero bytes, a byte
    giving the element type (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64) and a byte giving the number of dimensions.
    The sizes follow as big-endian uint32 values, then the elements,
    big-endian, in C order. A name ending in ``.gz`` is decompressed first.

    Args:
        path: the file.
        expect_ndim: if given, the number of dimensions the file must have.

    Returns:
        The array, in native byte order.

    Raises:
        ValueError: naming the file, if the magic number is wrong, the file is
            truncated or has bytes past its data, or gzip data is corrupt.
    """
    path = os.fspath(path)
    data = _read_bytes(path)

    if len(data) < 4:
        raise ValueError(f"IDX file {path!r} is truncated: {len(data)} bytes")
    magic = int.from_bytes(data[:4], "big")
    zeros, type_code, ndim = data[0:2], data[2], data[3]
    if zeros != b"\x00\x00" or type_code not in _IDX_TYPES:
        raise ValueError(f"{path!r} is not an IDX file: bad magic number 0x{magic:08X}")
    if expect_ndim is not None and ndim != expect_ndim:
        wanted = (0x08 << 8) | expect_ndim
        raise ValueError(
            f"IDX file {path!r} has magic number 0x{magic:08X} ({ndim} "
            f"dimensions); expected 0x{wanted:08X} ({expect_ndim} dimensions)"
        )

    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"IDX file {path!r} is truncated inside its header "
            f"({len(data)} of {header} bytes)"
        )
    shape = tuple(
        int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim)
    )
    dtype = _IDX_TYPES[type_code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its data"
        raise ValueError(
            f"IDX file {path!r} is {what}: shape {shape} needs {expected} "
            f"bytes, the file has {len(data)}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def _read_bytes(path: str) -> bytes:
    if not path.endswith(".gz"):
        with open(path, "rb") as f:
            return f.read()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"gzip file {path!r} is corrupt: {exc}") from exc


def _check_split(split, allow_none: bool) -> None:
    allowed = _SPLITS + ((None,) if allow_none else ())
    if split not in allowed:
        raise ValueError(f"split must be one of {allowed}, got {split!r}")
