"""Normalisation layers: batch norm (1-D and 2-D) and layer norm."""

from __future__ import annotations

from netcl.core import dtypes as D
from netcl.core.autograd import no_grad
from netcl.core.tensor import Tensor, ones, tensor, zeros
from netcl.nn import functional as F
from netcl.nn.layers import Layer, _positive_int
from netcl.nn.module import Parameter, register

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm"]


class _BatchNorm(Layer):
    """Shared body of the batch-norm layers; subclasses set the input ranks."""

    ranks: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features")
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        if self.affine:
            self.weight = Parameter(ones(num_features))
            self.bias = Parameter(zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", zeros(num_features))
            self.register_buffer("running_var", ones(num_features))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=D.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        momentum = self.momentum if self.momentum is not None else 0.0
        if self.training and self.track_running_stats:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:
                # A cumulative average: the n-th batch gets weight 1/n.
                momentum = 1.0 / self.num_batches_tracked.item()
        use_batch_stats = self.training or not self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training=use_batch_stats,
            momentum=momentum,
            eps=self.eps,
        )

    def _check_input(self, x: Tensor) -> None:
        if x.ndim not in self.ranks or x.shape[1] != self.num_features:
            dims = " or ".join(f"{r}-D" for r in self.ranks)
            raise ValueError(
                f"{type(self).__name__}({self.num_features}) expected {dims} input "
                f"with {self.num_features} channels in dim 1, found shape {x.shape}"
            )

    def config(self) -> dict:
        return {
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
            "affine": self.affine,
            "track_running_stats": self.track_running_stats,
        }


@register
class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs over all but dim 1.

    Args:
        num_features: C.
        eps: added to the variance (default: 1e-5).
        momentum: weight of each new batch in the running statistics
            (default: 0.1); None for a cumulative average.
        affine: learn a per-channel scale ``weight`` and shift ``bias``.
        track_running_stats: keep ``running_mean``, ``running_var`` (the
            unbiased batch variance, averaged) and ``num_batches_tracked`` as
            buffers and use them in eval mode; if False, batch statistics are
            always used.
    """

    ranks = (2, 3)


@register
class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs per channel; arguments as
    :class:`BatchNorm1d`."""

    ranks = (4,)


@register
class LayerNorm(Layer):
    """Normalise over the trailing ``normalized_shape`` dims of each input.

    Args:
        normalized_shape: an int or a sequence of ints.
        eps: added to the variance (default: 1e-5).
        elementwise_affine: learn ``weight`` (ones) and ``bias`` (zeros) of
            ``normalized_shape``.
    """

    def __init__(
        self,
        normalized_shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
    ):
        super().__init__()
        shape = F._shape_tuple(normalized_shape)
        for n in shape:
            _positive_int(n, "normalized_shape entries")
        self.normalized_shape = shape
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            self.weight = Parameter(ones(*shape))
            self.bias = Parameter(zeros(*shape))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def config(self) -> dict:
        return {
            "normalized_shape": list(self.normalized_shape),
            "eps": self.eps,
            "elementwise_affine": self.elementwise_affine,
        }
