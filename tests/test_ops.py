"""Every tensor op against numpy, by finite differences, and on each device.

Each entry of OPS names an op, the netcl call, the numpy reference and the
input shapes. Three checks run per entry:

- forward on the host in float64 against numpy;
- backward on the host against central differences (float64);
- forward and backward on every OpenCL device against the host in float32.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import netcl
from tests.gradcheck import analytic_grads, check_grads

_erf = np.vectorize(math.erf)


def _pos(shape, rng):
    return rng.uniform(0.5, 2.0, shape)


def _any(shape, rng):
    return rng.standard_normal(shape)


def _away0(shape, rng):
    # Kinks (abs, relu, max) are not differentiable at 0 or at ties.
    x = rng.uniform(0.3, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    return x + np.arange(x.size).reshape(shape) * 1e-3


def _lse(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


# name, netcl fn, numpy fn, shapes, input maker
OPS = [
    ("add", lambda a, b: a + b, np.add, [(3, 4), (4,)], _any),
    ("sub_bcast", lambda a, b: a - b, np.subtract, [(2, 1, 3), (4, 1)], _any),
    ("mul", lambda a, b: a * b, np.multiply, [(3, 4), (3, 1)], _any),
    ("div", lambda a, b: a / b, np.divide, [(3, 4), (3, 4)], _pos),
    ("pow", lambda a, b: a**b, np.power, [(3, 4), (3, 4)], _pos),
    ("pow_scalar", lambda a: a**3, lambda a: a**3, [(5,)], _any),
    ("rpow_scalar", lambda a: 2.0**a, lambda a: 2.0**a, [(5,)], _any),
    ("rsub_scalar", lambda a: 1.5 - a, lambda a: 1.5 - a, [(5,)], _any),
    ("rdiv_scalar", lambda a: 2.0 / a, lambda a: 2.0 / a, [(5,)], _pos),
    ("maximum", lambda a, b: a.maximum(b), np.maximum, [(3, 4), (4,)], _away0),
    ("minimum", lambda a, b: a.minimum(b), np.minimum, [(3, 4), (3, 4)], _away0),
    ("neg", lambda a: -a, np.negative, [(3, 4)], _any),
    ("exp", lambda a: a.exp(), np.exp, [(3, 4)], _any),
    ("log", lambda a: a.log(), np.log, [(3, 4)], _pos),
    ("sqrt", lambda a: a.sqrt(), np.sqrt, [(3, 4)], _pos),
    ("abs", lambda a: a.abs(), np.abs, [(3, 4)], _away0),
    ("tanh", lambda a: a.tanh(), np.tanh, [(3, 4)], _any),
    ("sigmoid", lambda a: a.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), [(3, 4)], _any),
    ("relu", lambda a: a.relu(), lambda a: np.maximum(a, 0), [(3, 4)], _away0),
    (
        "gelu",
        lambda a: a.gelu(),
        lambda a: 0.5 * a * (1 + _erf(a / math.sqrt(2))),
        [(3, 4)],
        _any,
    ),
    ("sin", lambda a: a.sin(), np.sin, [(3, 4)], _any),
    ("cos", lambda a: a.cos(), np.cos, [(3, 4)], _any),
    (
        "clamp",
        lambda a: a.clamp(-0.5, 0.7),
        lambda a: np.clip(a, -0.5, 0.7),
        [(4, 5)],
        _away0,
    ),
    (
        "where",
        lambda a, b: netcl.where(a > 0, a, b),
        lambda a, b: np.where(a > 0, a, b),
        [(3, 4), (4,)],
        _away0,
    ),
    ("sum_all", lambda a: a.sum(), np.sum, [(3, 4)], _any),
    ("sum_dim", lambda a: a.sum(1), lambda a: a.sum(1), [(2, 3, 4)], _any),
    (
        "sum_dims_keep",
        lambda a: a.sum((0, 2), keepdim=True),
        lambda a: a.sum((0, 2), keepdims=True),
        [(2, 3, 4)],
        _any,
    ),
    ("mean", lambda a: a.mean(-1), lambda a: a.mean(-1), [(3, 4)], _any),
    ("var", lambda a: a.var(0), lambda a: a.var(0, ddof=1), [(5, 3)], _any),
    (
        "var_biased",
        lambda a: a.var(1, correction=0, keepdim=True),
        lambda a: a.var(1, keepdims=True),
        [(3, 5)],
        _any,
    ),
    ("max_dim", lambda a: a.max(1), lambda a: a.max(1), [(3, 5)], _away0),
    ("min_all", lambda a: a.min(), np.min, [(3, 5)], _away0),
    (
        "max_keep",
        lambda a: a.max(0, keepdim=True),
        lambda a: a.max(0, keepdims=True),
        [(3, 5)],
        _away0,
    ),
    ("matmul", lambda a, b: a @ b, np.matmul, [(3, 4), (4, 5)], _any),
    ("matmul_batched", lambda a, b: a @ b, np.matmul, [(2, 3, 4), (2, 4, 2)], _any),
    ("matmul_bcast", lambda a, b: a @ b, np.matmul, [(2, 3, 4), (4, 2)], _any),
    ("matmul_vec", lambda a, b: a @ b, np.matmul, [(3, 4), (4,)], _any),
    ("matmul_T", lambda a, b: a.T @ b, lambda a, b: a.T @ b, [(4, 3), (4, 2)], _any),
    ("reshape", lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1), [(2, 6)], _any),
    (
        "permute",
        lambda a: a.permute(2, 0, 1),
        lambda a: a.transpose(2, 0, 1),
        [(2, 3, 4)],
        _any,
    ),
    ("transpose", lambda a: a.transpose(0, 1), lambda a: a.T, [(3, 4)], _any),
    (
        "squeeze_unsqueeze",
        lambda a: a.unsqueeze(1).squeeze(0),
        lambda a: a[:, None].squeeze(0),
        [(1, 4)],
        _any,
    ),
    ("flatten", lambda a: a.flatten(1), lambda a: a.reshape(2, -1), [(2, 3, 4)], _any),
    (
        "expand",
        lambda a: a.expand(2, 3, 4),
        lambda a: np.broadcast_to(a, (2, 3, 4)),
        [(3, 1)],
        _any,
    ),
    ("slice", lambda a: a[1:, ::2], lambda a: a[1:, ::2], [(4, 5)], _any),
    ("slice_neg", lambda a: a[::-1, 2], lambda a: a[::-1, 2], [(4, 5)], _any),
    (
        "newaxis",
        lambda a: a[None, ..., 1:3],
        lambda a: a[None, ..., 1:3],
        [(3, 4)],
        _any,
    ),
    ("int_array", lambda a: a[[2, 0, 2]], lambda a: a[[2, 0, 2]], [(3, 4)], _any),
    (
        "mixed_index",
        lambda a: a[1:, [0, 3, 3]],
        lambda a: a[1:, [0, 3, 3]],
        [(3, 4)],
        _any,
    ),
    ("bool_mask", lambda a: a[a > 0], lambda a: a[a > 0], [(3, 4)], _away0),
    (
        "cat",
        lambda a, b: netcl.cat([a, b, a], 1),
        lambda a, b: np.concatenate([a, b, a], 1),
        [(2, 3), (2, 2)],
        _any,
    ),
    (
        "stack",
        lambda a, b: netcl.stack([a, b], -1),
        lambda a, b: np.stack([a, b], -1),
        [(2, 3), (2, 3)],
        _any,
    ),
    (
        "split",
        lambda a: a.split([1, 3], 1)[1] * 2,
        lambda a: np.split(a, [1], 1)[1] * 2,
        [(2, 4)],
        _any,
    ),
    (
        "softmax",
        lambda a: a.softmax(-1),
        lambda a: np.exp(a - _lse(a, -1)),
        [(3, 5)],
        _any,
    ),
    (
        "log_softmax",
        lambda a: a.log_softmax(0),
        lambda a: a - _lse(a, 0),
        [(4, 3)],
        _any,
    ),
]

IDS = [op[0] for op in OPS]


def _inputs(op, seed=0):
    rng = np.random.default_rng(seed)
    _, _, _, shapes, maker = op
    return [maker(s, rng) for s in shapes]


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_forward_matches_numpy(op):
    name, fn, ref, _, _ = op
    arrays = _inputs(op)
    with netcl.no_grad():
        out = fn(*[netcl.tensor(a) for a in arrays])
    assert out.dtype is netcl.float64
    np.testing.assert_allclose(out.numpy(), ref(*arrays), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_backward_matches_finite_differences(op):
    check_grads(op[1], _inputs(op, seed=1))


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_opencl_matches_host(op, cl_device):
    fn = op[1]
    arrays = [a.astype(np.float32) for a in _inputs(op, seed=2)]
    weight = np.random.default_rng(3).standard_normal(
        fn(*[netcl.tensor(a) for a in arrays]).shape
    )
    host_out, host_grads = analytic_grads(fn, arrays, weight, "cpu", netcl.float32)
    cl_out, cl_grads = analytic_grads(fn, arrays, weight, cl_device, netcl.float32)
    np.testing.assert_allclose(cl_out, host_out, rtol=1e-5, atol=1e-6)
    for k, (c, h) in enumerate(zip(cl_grads, host_grads)):
        np.testing.assert_allclose(c, h, rtol=1e-4, atol=1e-5, err_msg=f"grad {k}")
