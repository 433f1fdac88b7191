"""The built-in layers: linear, convolution, pooling, dropout, embedding,
activations and reshaping.

Each layer keeps its hyper-parameters as attributes, computes with
:mod:`netcl.nn.functional`, and describes itself with ``config()`` so that
``type(layer)(**layer.config())`` builds an equivalent layer. Parameters are
created on the host and initialised as PyTorch does by default; move a
model with ``Module.to(device)``.
"""

from __future__ import annotations

import math

from netcl.core.tensor import Tensor, empty
from netcl.nn import functional as F
from netcl.nn import init
from netcl.nn.module import Module, Parameter, register

__all__ = [
    "GELU",
    "AvgPool2d",
    "Conv2d",
    "Dropout",
    "Embedding",
    "Flatten",
    "Identity",
    "Linear",
    "MaxPool2d",
    "ReLU",
    "Sigmoid",
    "Tanh",
]


class Layer(Module):
    """A module whose repr lists its ``config()``."""

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _pair_config(value, name: str, minimum: int):
    """An int or a pair of ints as stored in config(): an int when both
    entries agree, else a two-element list."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    pair = F._pair(value, name, minimum)
    return pair[0] if pair[0] == pair[1] else list(pair)


def _init_fan_in_uniform(weight: Parameter, bias: Parameter | None) -> None:
    # PyTorch's default: kaiming uniform with a = sqrt(5), which gives a bound
    # of 1 / sqrt(fan_in), and a bias uniform in the same bound.
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = init._fans(weight)[0]
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)


@register
class Linear(Layer):
    """``y = x @ weight.T + bias`` over the last dim.

    Args:
        in_features: size of each input's last dim.
        out_features: size of each output's last dim.
        bias: whether to add a learned bias (default: True).

    Attributes:
        weight: (out_features, in_features), uniform in +-1/sqrt(in_features).
        bias: (out_features,), same bound, or None.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        self.weight = Parameter(empty(out_features, in_features))
        if bias:
            self.bias = Parameter(empty(out_features))
        else:
            self.register_parameter("bias", None)
        _init_fan_in_uniform(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def config(self) -> dict:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
        }


@register
class Conv2d(Layer):
    """2-D convolution (cross-correlation) over (N, C, H, W) inputs.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output (number of filters).
        kernel_size: an int or (kh, kw).
        stride: an int or (sh, sw) (default: 1).
        padding: zeros on each side, an int or (ph, pw) (default: 0).
        bias: whether to add a learned bias per output channel.

    Attributes:
        weight: (out_channels, in_channels, kh, kw), uniform in
            +-1/sqrt(in_channels * kh * kw).
        bias: (out_channels,), same bound, or None.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        bias: bool = True,
    ):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.kernel_size = _pair_config(kernel_size, "kernel_size", 1)
        self.stride = _pair_config(stride, "stride", 1)
        self.padding = _pair_config(padding, "padding", 0)
        kh, kw = F._pair(self.kernel_size, "kernel_size", 1)
        self.weight = Parameter(empty(out_channels, in_channels, kh, kw))
        if bias:
            self.bias = Parameter(empty(out_channels))
        else:
            self.register_parameter("bias", None)
        _init_fan_in_uniform(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def config(self) -> dict:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "bias": self.bias is not None,
        }


class _Pool2d(Layer):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair_config(kernel_size, "kernel_size", 1)
        self.stride = None if stride is None else _pair_config(stride, "stride", 1)
        self.padding = _pair_config(padding, "padding", 0)
        kernel = F._pair(self.kernel_size, "kernel_size", 1)
        padding = F._pair(self.padding, "padding", 0)
        if any(p > k // 2 for p, k in zip(padding, kernel)):
            raise ValueError(
                f"padding {padding} must be at most half the kernel size {kernel}"
            )

    def config(self) -> dict:
        return {
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
        }


@register
class MaxPool2d(_Pool2d):
    """Maximum over 2-D windows (see :func:`netcl.nn.functional.max_pool2d`).

    Args:
        kernel_size: an int or (kh, kw).
        stride: default ``kernel_size``.
        padding: -inf padding on each side, at most half the kernel.
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


@register
class AvgPool2d(_Pool2d):
    """Mean over 2-D windows, padded zeros included in the count (see
    :func:`netcl.nn.functional.avg_pool2d`).

    Args:
        kernel_size: an int or (kh, kw).
        stride: default ``kernel_size``.
        padding: zero padding on each side, at most half the kernel.
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


@register
class Dropout(Layer):
    """Inverted dropout in training mode, identity in eval mode.

    Args:
        p: probability of zeroing each element (default: 0.5).
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        F._check_probability(p)
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def config(self) -> dict:
        return {"p": self.p}


@register
class Embedding(Layer):
    """A lookup table of ``num_embeddings`` vectors of ``embedding_dim``.

    Args:
        num_embeddings: number of rows (valid indices are 0 .. n-1).
        embedding_dim: size of each vector.

    Attributes:
        weight: (num_embeddings, embedding_dim), standard normal.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim")
        self.weight = Parameter(empty(num_embeddings, embedding_dim))
        init.normal_(self.weight)

    def forward(self, indices: Tensor) -> Tensor:
        return F.embedding(indices, self.weight)

    def config(self) -> dict:
        return {
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
        }


@register
class Flatten(Layer):
    """Merge dims ``start_dim`` .. ``end_dim`` into one.

    Args:
        start_dim: first dim to merge (default: 1, keeping the batch dim).
        end_dim: last dim to merge (default: -1).
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def config(self) -> dict:
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}


class _Stateless(Layer):
    def config(self) -> dict:
        return {}


@register
class Identity(_Stateless):
    """Returns its input unchanged."""

    def forward(self, x: Tensor) -> Tensor:
        return x


@register
class ReLU(_Stateless):
    """max(x, 0) elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


@register
class GELU(_Stateless):
    """The exact Gaussian error linear unit, x * Phi(x)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x)


@register
class Tanh(_Stateless):
    """tanh elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


@register
class Sigmoid(_Stateless):
    """1 / (1 + exp(-x)) elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)
