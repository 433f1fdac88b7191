"""``netcl predict``: run a saved model file on a dataset or on an array.

``netcl predict MODEL --dataset digits`` prints the model's accuracy on the
dataset's test split; ``netcl predict MODEL --input x.npy`` prints the class
scores the model gives each example of the array. The model runs in
evaluation mode (dropout off, batch norm on its running statistics).
"""

from __future__ import annotations

import os

import numpy as np

from netcl.cli.main import DATASETS, device_arg, load_dataset

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="evaluate a .netcl model file, or score the examples of an array",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("model", help="a model file written by save_model (.netcl)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--dataset", help=f"print accuracy on one of {', '.join(DATASETS)}"
    )
    what.add_argument("--input", help="print class scores for the examples in a .npy")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument("--data", default=None, help="folder of the MNIST IDX files")
    p.add_argument("--device", default="auto", help="auto, cpu, cl, cl:N")
    p.add_argument("--batch-size", type=int, default=500)
    p.set_defaults(func=run)


def run(args) -> int:
    device = device_arg(args.device)
    if args.batch_size < 1:
        raise _usage("--batch-size must be at least 1")
    if args.dataset is not None:
        # Checked before the model is read.
        dataset = load_dataset(args.dataset, args.split, args.data)
        model, metadata = _load(args.model, device)
        return _evaluate(args, model, metadata, dataset, device)
    inputs = _read_inputs(args.input)
    model, metadata = _load(args.model, device)
    return _score(args, model, metadata, inputs, device)


# ---- checks ------------------------------------------------------------------


def _usage(message: str):
    from netcl.cli.main import UsageError

    return UsageError(message)


def _load(path: str, device):
    """The model on ``device`` in evaluation mode, and its metadata."""
    from netcl.io.model import ModelFileError, load_model, read_metadata

    if os.path.isdir(path):
        raise _usage(f"{path!r} is a folder; give a model file such as best.netcl")
    try:
        metadata = read_metadata(path)
        model = load_model(path, device=device)
    except FileNotFoundError:
        raise _usage(f"model file {path!r} does not exist") from None
    except (ModelFileError, OSError) as exc:
        raise _usage(" ".join(str(exc).split())) from None
    return model.eval(), metadata


def _read_inputs(path: str) -> np.ndarray:
    if os.path.isdir(path):
        raise _usage(f"input {path!r} is a folder; give a .npy file")
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise _usage(f"input file {path!r} does not exist") from None
    except (OSError, ValueError) as exc:
        # numpy says "pickled data" for any file that is not .npy or .npz.
        why = "not a .npy file" if "pickle" in str(exc) else str(exc)
        raise _usage(f"cannot read {path!r} as a .npy array: {why}") from None
    if not isinstance(array, np.ndarray):
        raise _usage(f"{path!r} holds several arrays; give one array in a .npy file")
    if array.dtype.kind not in "fiu" or array.ndim == 0:
        raise _usage(
            f"{path!r} holds a {array.dtype} array of shape {array.shape}; "
            "expected numbers with at least one dimension"
        )
    return array


def _input_shape(metadata: dict) -> tuple[int, ...] | None:
    """The shape of one example from the model's metadata, if it has one."""
    shape = metadata.get("input_shape")
    if not isinstance(shape, (list, tuple)):
        return None
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in shape):
        return None
    return tuple(shape)


def _as_batch(inputs: np.ndarray, metadata: dict, path: str) -> np.ndarray:
    """``inputs`` as a batch, checked against the model's ``input_shape``; a
    single example of exactly that shape becomes a batch of one."""
    shape = _input_shape(metadata)
    if shape is None:
        return inputs
    if inputs.shape == shape:
        return inputs[None]
    if inputs.shape[1:] != shape:
        raise _usage(
            f"{path!r} has shape {inputs.shape}, but the model takes a batch of "
            f"shape (N, {', '.join(map(str, shape))}) (its input_shape metadata)"
        )
    return inputs


# ---- the two modes -----------------------------------------------------------


def _evaluate(args, model, metadata, dataset, device) -> int:
    from netcl.cli.train import accuracy

    example = tuple(dataset[0][0].shape)
    expected = _input_shape(metadata)
    if expected is not None and expected != example:
        raise _usage(
            f"the model takes examples of shape {expected} (its input_shape "
            f"metadata), but {args.dataset} examples have shape {example}"
        )
    acc = accuracy(model, dataset, device, batch_size=args.batch_size)
    print(
        f"{args.model}: accuracy {100 * acc:.2f}% on {args.dataset} {args.split} "
        f"({len(dataset)} examples, device {device.name})"
    )
    return 0


def _score(args, model, metadata, inputs, device) -> int:
    import netcl

    batch = _as_batch(inputs, metadata, args.input)
    if len(batch) == 0:
        raise _usage(f"{args.input!r} holds no examples (shape {inputs.shape})")
    if batch.dtype.kind == "f":
        batch = batch.astype(np.float32, copy=False)
    else:
        batch = batch.astype(np.int64, copy=False)
    outputs = []
    with netcl.no_grad():
        for start in range(0, len(batch), args.batch_size):
            x = netcl.tensor(batch[start : start + args.batch_size], device=device)
            outputs.append(np.asarray(model(x).numpy(), dtype=np.float64))
    scores = np.concatenate(outputs)
    print(_score_table(scores, metadata.get("classes")))
    return 0


def _score_table(scores: np.ndarray, classes) -> str:
    scores = scores.reshape(len(scores), -1)
    n = scores.shape[1]
    names = [str(c) for c in classes] if _fits(classes, n) else list(map(str, range(n)))
    width = max(9, *(len(name) + 1 for name in names))
    head = f"{'example':>7}  {'class':>{width}}  " + "".join(
        f"{name:>{width}}" for name in names
    )
    lines = [head]
    for i, row in enumerate(scores):
        cells = "".join(f"{v:>{width}.4f}" for v in row)
        lines.append(f"{i:>7}  {names[int(row.argmax())]:>{width}}  {cells}")
    return "\n".join(lines)


def _fits(classes, n: int) -> bool:
    return isinstance(classes, (list, tuple)) and len(classes) == n
