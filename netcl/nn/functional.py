"""Stateless neural-network operations on tensors.

These are what the layers of :mod:`netcl.nn` call; use them directly when a
module would only hold hyper-parameters. Everything is built from tensor
operations and a few :mod:`netcl.nn._ops` Functions over backend primitives,
so each op runs on every device. Convolution and linear layers go through
:func:`netcl.matmul` and so follow autocast. Losses compute in float32 at
least: float16 and bfloat16 inputs are cast up first.
"""

from __future__ import annotations

import numpy as np

from netcl.core import dtypes as D
from netcl.core import functions as CF
from netcl.core.autocast import compute_dtype
from netcl.core.autograd import no_grad
from netcl.core.random import Generator, default_generator
from netcl.core.tensor import Tensor, arange, matmul, tensor
from netcl.nn import _ops

__all__ = [
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "cross_entropy",
    "dropout",
    "embedding",
    "gelu",
    "layer_norm",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]

_REDUCTIONS = ("mean", "sum", "none")


# ---- activations ----------------------------------------------------------------


def relu(x: Tensor) -> Tensor:
    """max(x, 0) elementwise."""
    return x.relu()


def gelu(x: Tensor) -> Tensor:
    """The Gaussian error linear unit, x * Phi(x), exact (with erf)."""
    return x.gelu()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """exp(x) normalised to sum to 1 along ``dim``."""
    return x.softmax(dim)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """log(softmax(x)) along ``dim``, computed stably."""
    return x.log_softmax(dim)


# ---- linear and convolution ----------------------------------------------------


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` over the last dim of ``x``.

    Args:
        x: input of shape (..., in_features).
        weight: (out_features, in_features).
        bias: (out_features,) or None.

    Returns:
        A tensor of shape (..., out_features).

    Raises:
        ValueError: if the last dim of ``x`` is not ``in_features``.
    """
    if weight.ndim != 2:
        raise ValueError(f"linear weight must be 2-D, got shape {weight.shape}")
    out_features, in_features = weight.shape
    if x.ndim == 0 or x.shape[-1] != in_features:
        raise ValueError(
            f"linear expected input with last dim {in_features}, "
            f"found input of shape {x.shape}"
        )
    # One fused 2-D node for any number of leading dims.
    lead = x.shape[:-1]
    dt = compute_dtype(D.promote(x.dtype, weight.dtype))
    args = [x.reshape(-1, in_features).to(dt), weight.to(dt)]
    if bias is not None:
        args.append(bias.to(dt))
    out = _ops.Linear.apply(*args)
    return out.reshape(*lead, out_features)


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    """2-D cross-correlation of an (N, C, H, W) input with (O, C, kh, kw)
    filters, zero padding.

    Computed as one matrix product of the filters with the input's patches
    (im2col), so it follows autocast.

    Args:
        x: input of shape (N, C, H, W).
        weight: filters of shape (O, C, kh, kw).
        bias: (O,) or None.
        stride: step between windows, an int or (sh, sw).
        padding: zeros added on each side, an int or (ph, pw).

    Returns:
        A tensor of shape (N, O, OH, OW).

    Raises:
        ValueError: if shapes do not fit (wrong rank, channel count, or a
            kernel larger than the padded input).
    """
    if x.ndim != 4:
        raise ValueError(f"conv2d expects a 4-D (N, C, H, W) input, got {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d weight must be (O, C, kh, kw), got {weight.shape}")
    o, c, kh, kw = weight.shape
    if x.shape[1] != c:
        raise ValueError(
            f"conv2d expected input with {c} channels, found {x.shape[1]} "
            f"(input shape {x.shape}, weight shape {weight.shape})"
        )
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    n = x.shape[0]
    oh, ow = _out_hw(x.shape, (kh, kw), stride, padding, "conv2d")

    # Patch extraction in the dtype the product will use.
    x = x.to(compute_dtype(x.dtype))
    cols = _ops.Im2col.apply(x, kh=kh, kw=kw, stride=stride, padding=padding)

    # (O, C*kh*kw) @ (C*kh*kw, N*OH*OW), then back to (N, O, OH, OW).
    cols = cols.permute(1, 0, 2).reshape(c * kh * kw, n * oh * ow)
    out = matmul(weight.reshape(o, c * kh * kw), cols)
    out = out.reshape(o, n, oh, ow).permute(1, 0, 2, 3)
    if bias is not None:
        out = out + bias.to(out.dtype).reshape(1, o, 1, 1)
    return out


# ---- pooling ------------------------------------------------------------------


def max_pool2d(
    x: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    """Maximum over 2-D windows of an (N, C, H, W) input.

    Args:
        x: input of shape (N, C, H, W).
        kernel_size: window size, an int or (kh, kw).
        stride: step between windows (default: ``kernel_size``).
        padding: implicit -inf padding on each side, at most half the kernel.

    Returns:
        A tensor of shape (N, C, OH, OW).

    Raises:
        ValueError: on a non-4-D input, a padding over half the kernel, or a
            window larger than the padded input.
    """
    kernel, stride, padding = _pool_args(x, kernel_size, stride, padding, "max_pool2d")
    return _ops.MaxPool2d.apply(x, kernel=kernel, stride=stride, padding=padding)


def avg_pool2d(
    x: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    """Mean over 2-D windows of an (N, C, H, W) input; padded zeros count
    towards the mean (PyTorch's ``count_include_pad=True``).

    Args and Raises: as :func:`max_pool2d`.

    Returns:
        A tensor of shape (N, C, OH, OW).
    """
    kernel, stride, padding = _pool_args(x, kernel_size, stride, padding, "avg_pool2d")
    n, c, h, w = x.shape
    oh, ow = _out_hw(x.shape, kernel, stride, padding, "avg_pool2d")

    # Each channel as its own one-channel image: the patches of a window are
    # then one column, and the mean over it is the pooled value.
    planes = x.reshape(n * c, 1, h, w)
    cols = _ops.Im2col.apply(
        planes, kh=kernel[0], kw=kernel[1], stride=stride, padding=padding
    )
    return cols.mean(1).reshape(n, c, oh, ow)


def _pool_args(x: Tensor, kernel_size, stride, padding, name: str):
    if x.ndim != 4:
        raise ValueError(f"{name} expects a 4-D (N, C, H, W) input, got {x.shape}")
    kernel = _pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else _pair(stride, "stride", 1)
    padding = _pair(padding, "padding", 0)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(
            f"{name} padding {padding} must be at most half the kernel size {kernel}"
        )
    _out_hw(x.shape, kernel, stride, padding, name)
    return kernel, stride, padding


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _out_hw(x_shape, kernel, stride, padding, name: str) -> tuple[int, int]:
    h, w = x_shape[2], x_shape[3]
    oh = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    ow = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    if oh < 1 or ow < 1:
        raise ValueError(
            f"{name}: kernel {kernel} is larger than the padded input "
            f"({h + 2 * padding[0]}, {w + 2 * padding[1]}) of input shape {x_shape}"
        )
    return oh, ow


# ---- dropout and embedding ----------------------------------------------------


def dropout(
    x: Tensor, p: float = 0.5, training: bool = True, generator: Generator | None = None
) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by
    1 / (1 - p) (inverted dropout), in training only.

    The mask comes from float64 uniform numbers drawn on the host from
    ``generator`` (the default generator of ``x``'s device), so one seed
    gives the same mask on every device.

    Args:
        x: a floating tensor.
        p: drop probability in [0, 1].
        training: when False, ``x`` is returned unchanged.
        generator: a netcl Generator to draw the mask from.

    Returns:
        A tensor of ``x``'s shape and dtype.

    Raises:
        ValueError: if ``p`` is outside [0, 1].
        TypeError: if ``x`` is not floating point.
    """
    _check_probability(p)
    if not x.dtype.is_floating:
        raise TypeError(f"dropout needs a floating tensor, got {x.dtype.name}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    gen = generator if generator is not None else default_generator(x.device)
    keep = tensor(gen.random(x.shape) >= p, device=x.device)
    return x * (keep.to(x.dtype) * (1.0 / (1.0 - p)))


def _check_probability(p) -> None:
    if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p!r}")


def embedding(indices: Tensor, weight: Tensor) -> Tensor:
    """Rows of ``weight`` picked by integer ``indices``.

    Args:
        indices: an integer tensor of any shape.
        weight: (num_embeddings, embedding_dim).

    Returns:
        A tensor of shape ``indices.shape + (embedding_dim,)``.

    Raises:
        TypeError: if ``indices`` is not an integer tensor.
        IndexError: naming the first index out of [0, num_embeddings).
    """
    if weight.ndim != 2:
        raise ValueError(f"embedding weight must be 2-D, got shape {weight.shape}")
    if indices.dtype.is_floating or indices.dtype is D.bool_:
        raise TypeError(f"embedding indices must be integers, got {indices.dtype.name}")
    _check_indices(indices, weight.shape[0], "embedding index", None)
    flat = indices.to(D.int64).reshape(-1).contiguous().detach()
    rows = CF.Take.apply(weight, flat, axis=0)
    return rows.reshape(*indices.shape, weight.shape[1])


def _check_indices(idx: Tensor, n: int, what: str, ignore_index: int | None) -> bool:
    """Raise IndexError naming the first value of ``idx`` outside [0, n)
    (``ignore_index`` allowed); return whether every value is in [0, n)."""
    if idx.numel() == 0:
        return True
    B, axes = idx.device.backend, tuple(range(idx.ndim))
    lo = int(B.to_numpy(B.reduce("min", idx._data, axes, False)))
    hi = int(B.to_numpy(B.reduce("max", idx._data, axes, False)))
    if 0 <= lo and hi < n:
        return True
    values = idx.numpy().reshape(-1)
    bad = (values < 0) | (values >= n)
    if ignore_index is not None:
        bad &= values != ignore_index
    if bad.any():
        first = int(values[np.flatnonzero(bad)[0]])
        raise IndexError(f"{what} {first} is out of range [0, {n})")
    return False


# ---- normalisation --------------------------------------------------------------


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (dim 1) of ``x`` over the other dims.

    In training, the batch's own mean and (biased) variance are used, and
    the running statistics, if given, are updated in place without recording
    a graph: ``running = (1 - momentum) * running + momentum * batch``, with
    the unbiased variance. Otherwise the running statistics are used.

    Args:
        x: input of shape (N, C) or (N, C, ...).
        running_mean, running_var: (C,) tensors or None.
        weight, bias: (C,) affine parameters or None.
        training: use batch statistics (and update the running ones).
        momentum: weight of the new batch in the running statistics.
        eps: added to the variance for stability.

    Returns:
        A tensor of ``x``'s shape and dtype.

    Raises:
        ValueError: on a channel count that does not fit, missing running
            statistics in eval mode, or a single value per channel in training.
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm expects (N, C, ...) input, got shape {x.shape}")
    c = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and t.shape != (c,):
            raise ValueError(
                f"batch_norm {name} must have shape ({c},) for input {x.shape}, "
                f"found {t.shape}"
            )
    axes = (0,) + tuple(range(2, x.ndim))
    stat_shape = (1, c) + (1,) * (x.ndim - 2)
    xf = _at_least_float32(x)

    if training:
        count = x.numel() // max(c, 1)
        if count <= 1:
            raise ValueError(
                f"batch_norm in training needs more than 1 value per channel, "
                f"got input shape {x.shape}"
            )
        mean = xf.mean(axes, keepdim=True)
        var = xf.var(axes, correction=0, keepdim=True)
        _update_running(running_mean, running_var, mean, var, count, momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError(
                "batch_norm in eval mode needs running_mean and running_var"
            )
        mean = running_mean.to(xf.dtype).reshape(stat_shape)
        var = running_var.to(xf.dtype).reshape(stat_shape)

    out = (xf - mean) / (var + eps).sqrt()
    out = _affine(out, weight, bias, stat_shape)
    return out.to(x.dtype) if x.dtype.is_floating else out


def _update_running(running_mean, running_var, mean, var, count, momentum) -> None:
    with no_grad():
        if running_mean is not None:
            new = mean.reshape(-1).to(running_mean.dtype)
            running_mean.copy_(running_mean * (1.0 - momentum) + new * momentum)
        if running_var is not None:
            unbiased = var.reshape(-1).to(running_var.dtype) * (count / (count - 1))
            running_var.copy_(running_var * (1.0 - momentum) + unbiased * momentum)


def layer_norm(
    x: Tensor,
    normalized_shape: int | tuple[int, ...],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dims of ``x``.

    Args:
        x: input whose trailing dims equal ``normalized_shape``.
        normalized_shape: an int or a tuple of ints.
        weight, bias: affine parameters of shape ``normalized_shape`` or None.
        eps: added to the variance for stability.

    Returns:
        A tensor of ``x``'s shape and dtype.

    Raises:
        ValueError: if the trailing dims of ``x`` differ from
            ``normalized_shape``.
    """
    shape = _shape_tuple(normalized_shape)
    k = len(shape)
    if x.shape[x.ndim - k :] != shape or x.ndim < k:
        raise ValueError(
            f"layer_norm expected input ending in dims {shape}, found input "
            f"of shape {x.shape}"
        )
    axes = tuple(range(x.ndim - k, x.ndim))
    xf = _at_least_float32(x)
    mean = xf.mean(axes, keepdim=True)
    var = xf.var(axes, correction=0, keepdim=True)
    out = (xf - mean) / (var + eps).sqrt()
    out = _affine(out, weight, bias, shape)
    return out.to(x.dtype) if x.dtype.is_floating else out


def _affine(x: Tensor, weight, bias, shape: tuple) -> Tensor:
    if weight is not None:
        x = x * weight.to(x.dtype).reshape(shape)
    if bias is not None:
        x = x + bias.to(x.dtype).reshape(shape)
    return x


def _shape_tuple(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(n) for n in shape)


def _at_least_float32(x: Tensor) -> Tensor:
    if x.dtype is D.float32 or x.dtype is D.float64:
        return x
    return x.to(D.float32)


# ---- losses ----------------------------------------------------------------------


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
) -> Tensor:
    """Softmax cross-entropy between logits and integer class targets.

    One fused operation: the backward pass is ``softmax - one_hot`` (scaled),
    without building the graph of ``log_softmax`` and a gather.

    Args:
        logits: (N, C), or (N, C, d1, ...) for per-position classes.
        target: class indices of shape (N,) or (N, d1, ...).
        reduction: ``"mean"`` (over targets that are not ignored), ``"sum"``
            or ``"none"`` (one loss per target).
        label_smoothing: in [0, 1]; mixes the one-hot target with the
            uniform distribution over the C classes.
        ignore_index: a target value that contributes no loss or gradient.

    Returns:
        A float32 (float64 for float64 logits) scalar, or a tensor of the
        target's shape when ``reduction="none"``.

    Raises:
        ValueError: on a bad reduction or label_smoothing, or shapes that do
            not fit.
        TypeError: if ``target`` is not an integer tensor.
        IndexError: naming the first target value outside [0, C).
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    flat_logits, flat_target, out_shape = _class_rows(logits, target, "cross_entropy")
    n_classes = flat_logits.shape[1]
    in_range = _check_indices(flat_target, n_classes, "target", ignore_index)
    hard = in_range and not label_smoothing and flat_logits.shape[0] > 0
    if hard and not 0 <= ignore_index < n_classes:
        loss = _ops.HardCrossEntropy.apply(
            _at_least_float32(flat_logits), flat_target, reduction=reduction
        )
        return loss.reshape(out_shape) if reduction == "none" else loss
    loss = _ops.CrossEntropy.apply(
        _at_least_float32(flat_logits),
        flat_target,
        reduction=reduction,
        label_smoothing=float(label_smoothing),
        ignore_index=int(ignore_index),
    )
    return loss.reshape(out_shape) if reduction == "none" else loss


def nll_loss(
    log_probs: Tensor,
    target: Tensor,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> Tensor:
    """Negative log-likelihood of integer targets under log-probabilities.

    Args:
        log_probs: (N, C) or (N, C, d1, ...), e.g. from :func:`log_softmax`.
        target: class indices of shape (N,) or (N, d1, ...).
        reduction: ``"mean"`` (over targets that are not ignored), ``"sum"``
            or ``"none"``.
        ignore_index: a target value that contributes no loss or gradient.

    Returns:
        A scalar, or a tensor of the target's shape when ``reduction="none"``.

    Raises:
        As :func:`cross_entropy`.
    """
    _check_reduction(reduction)
    flat, flat_target, out_shape = _class_rows(log_probs, target, "nll_loss")
    c = flat.shape[1]
    _check_indices(flat_target, c, "target", ignore_index)
    flat = _at_least_float32(flat)
    per_row = -(flat * _one_hot(flat_target, c, flat.dtype)).sum(1)
    if reduction == "none":
        return per_row.reshape(out_shape)
    if reduction == "sum":
        return per_row.sum()
    count = (flat_target != ignore_index).sum().to(flat.dtype)
    return per_row.sum() / count


def _one_hot(target: Tensor, c: int, dtype: D.DType) -> Tensor:
    """(M, C) rows with 1 at each target's class (all 0 for ignored targets)."""
    with no_grad():
        classes = arange(c, device=target.device).reshape(1, c)
        return (classes == target.reshape(-1, 1)).to(dtype)


def _class_rows(x: Tensor, target: Tensor, name: str):
    """(N, C, d...) scores and (N, d...) targets as (M, C) rows and M targets."""
    if not isinstance(target, Tensor):
        raise TypeError(f"{name} target must be a Tensor, not {type(target).__name__}")
    if target.dtype.is_floating or target.dtype is D.bool_:
        raise TypeError(
            f"{name} target must hold integer class indices, got {target.dtype.name}"
        )
    if x.ndim < 2 or target.shape != (x.shape[0],) + x.shape[2:]:
        raise ValueError(
            f"{name} expected input (N, C, ...) and target (N, ...), found input "
            f"{x.shape} and target {target.shape}"
        )
    out_shape = target.shape
    if x.ndim > 2:
        # Move the class dim last so each position is one row.
        x = x.permute(0, *range(2, x.ndim), 1)
    rows = x.reshape(-1, x.shape[-1])
    flat_target = target.to(D.int64).reshape(-1).contiguous().detach()
    return rows, flat_target, out_shape


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or elementwise) squared error.

    Args:
        input, target: tensors of one shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or a tensor of the inputs' shape for ``"none"``.

    Raises:
        ValueError: if the shapes differ or the reduction is unknown.
    """
    _check_reduction(reduction)
    if not isinstance(target, Tensor):
        target = tensor(target, device=input.device)
    if input.shape != target.shape:
        raise ValueError(
            f"mse_loss expected input and target of one shape, found "
            f"{input.shape} and {target.shape}"
        )
    diff = _at_least_float32(input) - _at_least_float32(target)
    sq = diff * diff
    if reduction == "none":
        return sq
    return sq.sum() if reduction == "sum" else sq.mean()


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"reduction must be one of {', '.join(map(repr, _REDUCTIONS))}, "
            f"got {reduction!r}"
        )
