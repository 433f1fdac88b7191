"""OpenCLBackend against HostBackend, primitive by primitive.

Every test runs the same primitive on both backends with the same inputs,
usually views (permuted, expanded, negative-step slices) built by each
backend's own view methods, and compares the values.

Tolerances: integer and bool results must match exactly, and so must results
that only move or select values. Floating results may differ by rounding:
float32 within rtol 1e-5 (OpenCL's exp, log, tanh, ... may be a few ulp off
numpy's, and kernels may fuse a * b + c), float64 within 1e-12, float16 and
bfloat16 within about one unit in their last place.
"""

from __future__ import annotations

import itertools
import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netcl.backends.host import HostBackend
from netcl.core.device import manager

try:
    _CL_DEVICE = manager.default("cl")
except Exception:  # no OpenCL platform, driver or device
    _CL_DEVICE = None

pytestmark = pytest.mark.skipif(_CL_DEVICE is None, reason="no OpenCL device")

HOST = HostBackend()
BF16 = np.dtype(ml_dtypes.bfloat16)
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
FLOATS = [F16, BF16, F32, F64]
INTS = [np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8)]
BOOL = np.dtype(np.bool_)
ALL = FLOATS + INTS + [BOOL]

FEW = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_backend = None


def cl():
    """The backend under test, created once."""
    global _backend
    if _backend is None:
        from netcl.backends.opencl import OpenCLBackend

        _backend = OpenCLBackend(_CL_DEVICE)
    return _backend


def random_array(rng, shape, dt, positive=False):
    """Values that every dtype holds exactly enough to compare."""
    dt = np.dtype(dt)
    if dt == BOOL:
        return rng.random(shape) < 0.5
    if dt in FLOATS:
        a = rng.standard_normal(shape) * 2
        return (np.abs(a) + 0.1 if positive else a).astype(dt)
    lo = 1 if positive else (0 if dt.kind == "u" else -20)
    return rng.integers(lo, 20, shape).astype(dt)


def tolerance(dt):
    dt = np.dtype(dt)
    return {F16: 2e-3, BF16: 1.6e-2, F32: 1e-5, F64: 1e-12}.get(dt, 0)


def assert_matches(got, want, rtol=None, atol=None):
    """``got`` (a CLArray) has ``want``'s shape, dtype and values."""
    host = cl().to_numpy(got)
    want = np.asarray(want)
    assert host.shape == want.shape, (host.shape, want.shape)
    assert host.dtype == want.dtype, (host.dtype, want.dtype)
    rtol = tolerance(want.dtype) if rtol is None else rtol
    if rtol == 0 and atol is None:
        np.testing.assert_array_equal(host, want)
        return
    atol = rtol if atol is None else atol
    np.testing.assert_allclose(
        host.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol
    )


@st.composite
def views(draw, dtypes=tuple(ALL), positive=False, min_ndim=1, max_ndim=3):
    """A (host view, OpenCL view) pair of the same values: contiguous,
    permuted, expanded (zero strides) or sliced with negative steps."""
    dt = np.dtype(draw(st.sampled_from(dtypes)))
    shape = tuple(
        draw(st.lists(st.integers(1, 5), min_size=min_ndim, max_size=max_ndim))
    )
    kind = draw(st.sampled_from(["contiguous", "permuted", "expanded", "sliced"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    return make_view(rng, shape, dt, kind, positive)


def make_view(rng, shape, dt, kind, positive=False):
    """Build the same view of the same data on both backends."""
    if kind == "sliced":
        base_shape = tuple(2 * n + 1 for n in shape)
    elif kind == "expanded":
        base_shape = tuple(1 if i % 2 == 0 else n for i, n in enumerate(shape))
    else:
        base_shape = shape[::-1] if kind == "permuted" else shape
    a = random_array(rng, base_shape, dt, positive)
    pair = [a, cl().from_numpy(a)]
    for i, be in enumerate((HOST, cl())):
        if kind == "permuted":
            pair[i] = be.permute(pair[i], tuple(reversed(range(len(shape)))))
        elif kind == "expanded":
            pair[i] = be.expand(pair[i], shape)
        elif kind == "sliced":
            index = tuple(slice(2 * n, 0, -2) for n in shape)
            pair[i] = be.slice(pair[i], index)
    assert pair[0].shape == pair[1].shape == shape
    return pair[0], pair[1]


# ---- creation, transfer and views ----------------------------------------------


@pytest.mark.parametrize("dt", ALL, ids=str)
def test_round_trip_and_write(dt):
    rng = np.random.default_rng(0)
    a = random_array(rng, (3, 4), dt)
    x = cl().from_numpy(a)
    np.testing.assert_array_equal(cl().to_numpy(x), a)
    b = random_array(rng, (3, 4), dt)
    cl().write(x, b)
    assert_matches(x, b, rtol=0)
    # Writing into a view changes only the viewed elements of the base.
    view = cl().slice(x, (slice(None, None, -1), slice(1, 3)))
    c = random_array(rng, (3, 2), dt)
    cl().write(view, c)
    expect = b.copy()
    expect[::-1, 1:3] = c
    assert_matches(x, expect, rtol=0)


@pytest.mark.parametrize("dt", ALL, ids=str)
def test_full_arange_astype_zero_size(dt):
    assert_matches(cl().full((2, 3), 1, dt), HOST.full((2, 3), 1, dt), rtol=0)
    assert_matches(cl().full((), 0, dt), HOST.full((), 0, dt), rtol=0)
    scalar = np.array(1, dt)
    assert_matches(cl().from_numpy(scalar), HOST.from_numpy(scalar), rtol=0)
    want = HOST.arange(0, 7, 2, dt)
    assert_matches(cl().arange(0, 7, 2, dt), want, rtol=0)
    empty = cl().from_numpy(np.zeros((0, 3), dt))
    assert cl().to_numpy(cl().unary("neg" if dt != BOOL else "not", empty)).shape == (
        0,
        3,
    )


@FEW
@given(views(), st.data())
def test_view_ops(pair, data):
    h, c = pair
    assert_matches(cl().contiguous(c), HOST.contiguous(h), rtol=0)
    assert_matches(cl().reshape(c, (-1,)), HOST.reshape(h, (-1,)), rtol=0)
    axes = tuple(data.draw(st.permutations(range(h.ndim))))
    assert_matches(cl().permute(c, axes), HOST.permute(h, axes), rtol=0)
    index = tuple(
        data.draw(
            st.one_of(
                st.integers(0, n - 1),
                st.builds(
                    slice,
                    st.sampled_from([None, n - 1]),
                    st.none(),
                    st.sampled_from([1, -1, 2]),
                ),
            )
        )
        for n in h.shape
    )
    assert_matches(cl().slice(c, index), HOST.slice(h, index), rtol=0)


# ---- elementwise ---------------------------------------------------------------

FLOAT_UNARY = (
    "neg exp sqrt abs tanh sin cos sign recip sigmoid relu gelu log1p erf".split()
)
FLOAT_UNARY += ["log", "not"]
INT_UNARY = ["neg", "abs", "sign", "not", "relu"]


@FEW
@given(views(tuple(FLOATS), positive=True), st.sampled_from(FLOAT_UNARY))
def test_unary_float(pair, op):
    h, c = pair
    if op == "not" and h.dtype in (F16, BF16):
        return  # the host gives float16/bfloat16 here but bool for float32
    assert_matches(cl().unary(op, c), HOST.unary(op, h))


@FEW
@given(
    views(tuple(FLOATS)),
    st.sampled_from(["neg", "abs", "sign", "relu", "sigmoid", "gelu", "tanh", "erf"]),
)
def test_unary_float_negative_inputs(pair, op):
    h, c = pair
    assert_matches(cl().unary(op, c), HOST.unary(op, h))


@FEW
@given(views(tuple(INTS)), st.sampled_from(INT_UNARY))
def test_unary_int(pair, op):
    h, c = pair
    assert_matches(cl().unary(op, c), HOST.unary(op, h))


def test_unary_needs_float():
    x = cl().from_numpy(np.arange(3, dtype=np.int32))
    with pytest.raises(TypeError, match="exp.*int32"):
        cl().unary("exp", x)
    with pytest.raises(NotImplementedError, match="frobnicate"):
        cl().unary("frobnicate", x)


BINARY = "add sub mul div maximum minimum eq ne lt le gt ge and or".split()
GRADS = ["relu_grad", "tanh_grad", "sigmoid_grad", "gelu_grad"]


@st.composite
def binary_pairs(draw, dtypes):
    """Two views of the same shape and dtype, each its own view kind."""
    h1, c1 = draw(views(dtypes))
    kind = draw(st.sampled_from(["contiguous", "permuted", "expanded", "sliced"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    h2, c2 = make_view(rng, h1.shape, h1.dtype, kind, positive=True)
    return (h1, c1), (h2, c2)


@FEW
@given(binary_pairs(tuple(FLOATS)), st.sampled_from(BINARY + GRADS + ["pow"]))
def test_binary_float(pairs, op):
    (ha, ca), (hb, cb) = pairs
    if op == "pow":  # positive bases keep pow real
        ha, ca = hb, cb
    assert_matches(cl().binary(op, ca, cb), HOST.binary(op, ha, hb))


@FEW
@given(binary_pairs(tuple(INTS + [BOOL])), st.sampled_from(BINARY))
def test_binary_int_bool(pairs, op):
    (ha, ca), (hb, cb) = pairs
    if ha.dtype == BOOL and op in ("sub", "div"):
        return  # numpy rejects these on bool
    assert_matches(cl().binary(op, ca, cb), HOST.binary(op, ha, hb))


@FEW
@given(
    views(tuple(FLOATS + [np.dtype(np.int32), np.dtype(np.int64)]), positive=True),
    st.sampled_from(["add", "sub", "mul", "div", "pow", "maximum", "lt", "ge"]),
    st.sampled_from([2, 3.5, 0.25]),
    st.booleans(),
)
def test_binary_with_number(pair, op, number, left):
    h, c = pair
    if op == "pow" and h.dtype.kind == "i" and not isinstance(number, int):
        return
    args_h = (number, h) if left else (h, number)
    args_c = (number, c) if left else (c, number)
    assert_matches(cl().binary(op, *args_c), HOST.binary(op, *args_h))


@FEW
@given(views(tuple(ALL)), st.data())
def test_where_and_clamp(pair, data):
    h, c = pair
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    cond_h, cond_c = make_view(
        rng, h.shape, BOOL, data.draw(st.sampled_from(["contiguous", "sliced"]))
    )
    other_h, other_c = make_view(rng, h.shape, h.dtype, "permuted")
    assert_matches(cl().where(cond_c, c, other_c), HOST.where(cond_h, h, other_h))
    if h.dtype != BOOL:
        assert_matches(cl().where(cond_c, c, 1), HOST.where(cond_h, h, 1))
        assert_matches(cl().where(cond_c, 0, c), HOST.where(cond_h, 0, h))
        for lo, hi in [(-1, 2), (None, 3), (0, None)]:
            assert_matches(cl().clamp(c, lo, hi), HOST.clamp(h, lo, hi))


@pytest.mark.parametrize("src,dst", list(itertools.product(ALL, ALL)), ids=str)
def test_astype(src, dst):
    rng = np.random.default_rng(1)
    positive = dst.kind == "u" or dst == BOOL
    h, c = make_view(rng, (3, 5), src, "sliced", positive=positive)
    if src in FLOATS and dst == BOOL:
        h = h.copy()
        h[0, 0] = 0
        c = cl().from_numpy(h)
    assert_matches(cl().astype(c, dst), HOST.astype(h, dst), rtol=tolerance(dst))


# ---- reductions ----------------------------------------------------------------


@FEW
@given(
    views(tuple(ALL), max_ndim=4),
    st.sampled_from(["sum", "max", "min", "prod"]),
    st.data(),
)
def test_reduce(pair, op, data):
    h, c = pair
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, h.ndim - 1)))))
    keepdim = data.draw(st.booleans())
    if op == "prod" and h.dtype in (F16, BF16):
        h, c = HOST.clamp(h, -1.5, 1.5), cl().clamp(c, -1.5, 1.5)
    assert_matches(cl().reduce(op, c, axes, keepdim), HOST.reduce(op, h, axes, keepdim))


@pytest.mark.parametrize("dt", [F32, F16, np.dtype(np.int64), F64], ids=str)
def test_reduce_large_is_deterministic(dt):
    rng = np.random.default_rng(2)
    h = random_array(rng, (3, 40_000), dt)
    c = cl().from_numpy(h)
    for axes in [(0, 1), (1,), (0,)]:
        first = cl().to_numpy(cl().reduce("sum", c, axes, False))
        again = cl().to_numpy(cl().reduce("sum", c, axes, False))
        np.testing.assert_array_equal(first, again)
        want = HOST.reduce("sum", h.astype(np.float64), axes, False)
        scale = np.abs(h.astype(np.float64)).sum(axis=axes) * tolerance(dt)
        assert np.all(np.abs(first.astype(np.float64) - want) <= scale + 1e-9)
    assert_matches(
        cl().reduce("max", c, (0, 1), True), HOST.reduce("max", h, (0, 1), True)
    )


def test_reduce_nan_and_empty():
    h = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]], np.float32)
    c = cl().from_numpy(h)
    for op in ("max", "min", "sum"):
        assert_matches(cl().reduce(op, c, (1,), False), HOST.reduce(op, h, (1,), False))
    assert_matches(
        cl().argreduce("argmax", c, 1, False), HOST.argreduce("argmax", h, 1, False)
    )
    z = np.zeros((0, 3), np.float32)
    assert_matches(
        cl().reduce("sum", cl().from_numpy(z), (0,), False),
        HOST.reduce("sum", z, (0,), False),
    )


@FEW
@given(views(tuple(ALL), max_ndim=4), st.sampled_from(["argmax", "argmin"]), st.data())
def test_argreduce(pair, op, data):
    h, c = pair
    axis = data.draw(st.integers(0, h.ndim - 1))
    keepdim = data.draw(st.booleans())
    assert_matches(
        cl().argreduce(op, c, axis, keepdim), HOST.argreduce(op, h, axis, keepdim)
    )


# ---- matmul -------------------------------------------------------------------


def _operand(rng, shape, dt, transposed, expanded_batch=False):
    """An operand of ``shape`` on both backends, optionally a transposed
    view of a contiguous matrix or with its batch axis expanded."""
    base = shape[:-2] + (shape[-1], shape[-2]) if transposed else shape
    if expanded_batch and len(shape) == 3:
        base = (1,) + base[1:]
    a = random_array(rng, base, dt)
    pair = [a, cl().from_numpy(a)]
    for i, be in enumerate((HOST, cl())):
        if transposed:
            axes = tuple(range(len(shape) - 2)) + (len(shape) - 1, len(shape) - 2)
            pair[i] = be.permute(pair[i], axes)
        if expanded_batch and len(shape) == 3:
            pair[i] = be.expand(pair[i], shape)
    return pair


@settings(max_examples=20, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 40),
    st.integers(1, 40),
    st.sampled_from([(), (3,)]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**31),
)
def test_matmul_float32(m, k, n, batch, ta, tb, expand, seed):
    rng = np.random.default_rng(seed)
    ha, ca = _operand(rng, batch + (m, k), F32, ta, expand)
    hb, cb = _operand(rng, batch + (k, n), F32, tb)
    assert_matches(cl().matmul(ca, cb), HOST.matmul(ha, hb), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "dt", [F16, BF16, F64, np.dtype(np.int32), np.dtype(np.int64)], ids=str
)
def test_matmul_other_dtypes(dt):
    rng = np.random.default_rng(3)
    ha, ca = _operand(rng, (2, 5, 7), dt, True)
    hb, cb = _operand(rng, (2, 7, 3), dt, False)
    rtol = tolerance(dt)
    assert_matches(cl().matmul(ca, cb), HOST.matmul(ha, hb), rtol=rtol, atol=rtol * 10)


def test_matmul_large_blocks():
    rng = np.random.default_rng(4)
    for ta, tb in itertools.product([False, True], repeat=2):
        ha, ca = _operand(rng, (67, 129), F32, ta)
        hb, cb = _operand(rng, (129, 45), F32, tb)
        assert_matches(cl().matmul(ca, cb), HOST.matmul(ha, hb), rtol=1e-5, atol=1e-4)


# ---- indexing ------------------------------------------------------------------


@FEW
@given(views(tuple(ALL), max_ndim=3), st.data())
def test_take_and_index_add(pair, data):
    h, c = pair
    axis = data.draw(st.integers(0, h.ndim - 1))
    idx_shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    idx = rng.integers(0, h.shape[axis], idx_shape).astype(np.int64)
    taken = cl().take(c, cl().from_numpy(idx), axis)
    assert_matches(taken, HOST.take(h, idx, axis), rtol=0)
    if h.dtype != BOOL:
        src_h = HOST.take(h, idx, axis)
        got = cl().index_add(h.shape, axis, cl().from_numpy(idx), taken)
        assert_matches(got, HOST.index_add(h.shape, axis, idx, src_h))


def test_index_add_repeats_in_order():
    idx = np.array([2, 0, 2, 2, 1], np.int64)
    src = np.array([1e8, 1.0, 1.0, -1e8, 3.0], np.float32)
    got = cl().index_add((4,), 0, cl().from_numpy(idx), cl().from_numpy(src))
    assert_matches(got, HOST.index_add((4,), 0, idx, src), rtol=0)


@FEW
@given(views(tuple(ALL)), st.data())
def test_assign_and_put(pair, data):
    h, c = pair
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    base_h = random_array(rng, tuple(n + 2 for n in h.shape), h.dtype)
    base_c = cl().from_numpy(base_h)
    index = tuple(slice(n, 0, -1) for n in h.shape)
    dst_h, dst_c = HOST.slice(base_h, index), cl().slice(base_c, index)
    HOST.assign(dst_h, h)
    cl().assign(dst_c, c)
    assert_matches(base_c, base_h, rtol=0)
    HOST.assign(dst_h, 1)
    cl().assign(dst_c, 1)
    assert_matches(base_c, base_h, rtol=0)
    flat = rng.choice(h.size, size=min(3, h.size), replace=False).astype(np.int64)
    values = random_array(rng, (flat.size,), h.dtype)
    HOST.put(dst_h, flat, values)
    cl().put(dst_c, cl().from_numpy(flat), cl().from_numpy(values))
    assert_matches(base_c, base_h, rtol=0)
    HOST.put(dst_h, flat, 0)
    cl().put(dst_c, cl().from_numpy(flat), 0)
    assert_matches(base_c, base_h, rtol=0)


# ---- neural-network kernels ----------------------------------------------------

conv_params = st.tuples(
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(0, 1),
    st.integers(1, 2),
)


@FEW
@given(conv_params, st.sampled_from([F32, F16, F64]), st.integers(0, 99))
def test_im2col_col2im(params, dt, seed):
    kh, kw, s, p, d = params
    rng = np.random.default_rng(seed)
    h, c = make_view(rng, (2, 3, 6, 7), dt, "permuted")
    cols_h = HOST.im2col(h, kh, kw, (s, s), (p, p), (d, d))
    cols_c = cl().im2col(c, kh, kw, (s, s), (p, p), (d, d))
    assert_matches(cols_c, cols_h, rtol=0)
    back_h = HOST.col2im(cols_h, h.shape, kh, kw, (s, s), (p, p), (d, d))
    back_c = cl().col2im(cols_c, h.shape, kh, kw, (s, s), (p, p), (d, d))
    assert_matches(back_c, back_h)


@FEW
@given(
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(0, 1),
    st.sampled_from([F32, F16, np.dtype(np.int32)]),
    st.integers(0, 99),
)
def test_max_pool2d(k, s, p, dt, seed):
    p = min(p, k // 2)
    rng = np.random.default_rng(seed)
    h, c = make_view(rng, (2, 3, 5, 6), dt, "sliced")
    vh, ah = HOST.max_pool2d(h, (k, k), (s, s), (p, p))
    vc, ac = cl().max_pool2d(c, (k, k), (s, s), (p, p))
    assert_matches(vc, vh, rtol=0)
    assert_matches(ac, ah, rtol=0)
    if dt != np.int32:
        g = random_array(rng, vh.shape, dt)
        want = HOST.max_pool2d_backward(g, ah, h.shape)
        assert_matches(cl().max_pool2d_backward(cl().from_numpy(g), ac, h.shape), want)


@FEW
@given(views(tuple(FLOATS), max_ndim=3), st.data())
def test_softmax(pair, data):
    h, c = pair
    axis = data.draw(st.integers(0, h.ndim - 1))
    assert_matches(cl().softmax(c, axis), HOST.softmax(h, axis))
    assert_matches(
        cl().log_softmax(c, axis),
        HOST.log_softmax(h, axis),
        atol=2 * tolerance(h.dtype) + 1e-6,
    )
    big = cl().binary("mul", c, 1000.0)
    got = cl().to_numpy(cl().log_softmax(big, axis))
    assert np.all(np.isfinite(got.astype(np.float64)))


@pytest.mark.parametrize("dt", [F32, F16, F64], ids=str)
@pytest.mark.parametrize(
    "momentum,nesterov,wd,first",
    [
        (0, False, 0, False),
        (0.9, False, 0.01, True),
        (0.9, True, 0.0, False),
        (0.5, False, 0.1, False),
    ],
)
def test_sgd_step(dt, momentum, nesterov, wd, first):
    rng = np.random.default_rng(5)
    p, g, buf = (random_array(rng, (7, 9), dt) for _ in range(3))
    cp, cg, cb = (cl().from_numpy(a) for a in (p, g, buf))
    kw = dict(
        lr=0.1, momentum=momentum, dampening=0.1, nesterov=nesterov, wd=wd, first=first
    )
    HOST.sgd_step(p, g, buf, **kw)
    cl().sgd_step(cp, cl().permute(cl().from_numpy(g.T.copy()), (1, 0)), cb, **kw)
    assert_matches(cp, p, atol=2 * tolerance(dt) + 1e-6)
    if momentum:
        assert_matches(cb, buf, atol=2 * tolerance(dt) + 1e-6)


@pytest.mark.parametrize("dt", [F32, BF16, F64], ids=str)
@pytest.mark.parametrize("wd,decoupled", [(0, False), (0.01, False), (0.01, True)])
def test_adam_step(dt, wd, decoupled):
    rng = np.random.default_rng(6)
    p, g = random_array(rng, (5, 6), dt), random_array(rng, (5, 6), dt)
    m, v = random_array(rng, (5, 6), dt), np.abs(random_array(rng, (5, 6), dt))
    cp, cg, cm, cv = (cl().from_numpy(a) for a in (p, g, m, v))
    view = cl().slice(cp, (slice(None, None, -1),))
    kw = dict(
        lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, wd=wd, decoupled=decoupled, step=3
    )
    HOST.adam_step(p[::-1], g, m, v, **kw)
    cl().adam_step(view, cg, cm, cv, **kw)
    for got, want in ((cp, p), (cm, m), (cv, v)):
        assert_matches(got, want, atol=2 * tolerance(dt) + 1e-6)


# ---- errors ----------------------------------------------------------------------


def test_float64_needs_fp64():
    from netcl.backends.opencl import OpenCLBackend

    backend = OpenCLBackend(_CL_DEVICE)
    backend.kernels.has_fp64 = False
    x = backend.from_numpy(np.ones(3, np.float64))
    with pytest.raises(TypeError, match="cl_khr_fp64.*float"):
        backend.unary("neg", x)


def test_shape_mismatch_messages():
    a = cl().from_numpy(np.ones((2, 3), np.float32))
    b = cl().from_numpy(np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match="operands differ"):
        cl().binary("add", a, b)
    with pytest.raises(ValueError, match="inner sizes"):
        cl().matmul(a, a)
    with pytest.raises(ValueError, match="write"):
        cl().write(a, np.ones((3, 2), np.float32))
    cl().synchronize()
    assert math.prod(a.shape) == a.size == 6 and a.nbytes == 24
