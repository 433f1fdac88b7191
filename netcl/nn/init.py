"""Parameter initialisation: fill a tensor in place with chosen values.

Every function draws from a netcl :class:`~netcl.core.random.Generator`: the
one passed as ``generator``, else the default generator of the tensor's
device. Numbers are drawn in float64 on the host and then cast, so a seed
gives the same initial weights on every device and in every dtype.

The fan-in of a weight is ``shape[1] * receptive field`` and its fan-out
``shape[0] * receptive field`` (the receptive field being the product of
the dims after the second), as PyTorch defines them.
"""

from __future__ import annotations

import math

import numpy as np

from netcl.core.autograd import no_grad
from netcl.core.random import Generator, default_generator
from netcl.core.tensor import Tensor

__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

_LINEAR_GAIN = (
    "linear",
    "identity",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended scale of weights feeding ``nonlinearity``.

    Args:
        nonlinearity: ``"linear"``, ``"conv2d"`` (and the other conv names),
            ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"``, ``"selu"``.
        param: the negative slope for ``"leaky_relu"`` (default: 0.01).

    Returns:
        The gain: 1 for linear ones, 5/3 for tanh, sqrt(2) for relu,
        sqrt(2 / (1 + slope**2)) for leaky relu, 3/4 for selu.

    Raises:
        ValueError: for an unknown nonlinearity or a bad slope.
    """
    if nonlinearity in _LINEAR_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"leaky_relu slope must be a number, got {slope!r}")
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def _fans(t: Tensor) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError(
            f"fan in and fan out need a tensor of at least 2 dims, got shape {t.shape}"
        )
    receptive = int(np.prod(t.shape[2:])) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    with no_grad():
        t.copy_(values)
    return t


def _generator(t: Tensor, generator: Generator | None) -> Generator:
    if generator is None:
        return default_generator(t.device)
    if not isinstance(generator, Generator):
        raise TypeError(
            f"generator must be a netcl Generator, not {type(generator).__name__}"
        )
    return generator


def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Generator | None = None
) -> Tensor:
    """Fill with uniform samples from [a, b); returns ``tensor``."""
    u = _generator(tensor, generator).random(tensor.shape)
    return _fill(tensor, a + (b - a) * u)


def normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    generator: Generator | None = None,
) -> Tensor:
    """Fill with normal samples of ``mean`` and ``std``; returns ``tensor``."""
    z = _generator(tensor, generator).normal(tensor.shape)
    return _fill(tensor, mean + std * z)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``; returns ``tensor``."""
    with no_grad():
        tensor.fill_(val)
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, generator: Generator | None = None
) -> Tensor:
    """Uniform in [-a, a] with a = gain * sqrt(6 / (fan_in + fan_out))
    (Glorot and Bengio, 2010); returns ``tensor``."""
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(
    tensor: Tensor, gain: float = 1.0, generator: Generator | None = None
) -> Tensor:
    """Normal with std = gain * sqrt(2 / (fan_in + fan_out)); returns
    ``tensor``."""
    fan_in, fan_out = _fans(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"cannot initialise a tensor with a zero dim: {tensor.shape}")
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator | None = None,
) -> Tensor:
    """Uniform in [-b, b] with b = gain * sqrt(3 / fan) (He et al., 2015).

    Args:
        tensor: the tensor to fill (at least 2-D).
        a: negative slope of the leaky relu that follows.
        mode: ``"fan_in"`` keeps the forward variance, ``"fan_out"`` the
            backward one.
        nonlinearity: the name passed to :func:`calculate_gain`.
        generator: the netcl Generator to draw from.

    Returns:
        ``tensor``.
    """
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator | None = None,
) -> Tensor:
    """Normal with std = gain / sqrt(fan); arguments as
    :func:`kaiming_uniform_`. Returns ``tensor``."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)
