"""netcl.nn.functional against numpy references, finite differences, and
the host on each OpenCL device.

Each entry of CASES names an op, a netcl function of float tensors, its
numpy reference, and the input shapes. Three checks run per entry:

- forward on the host in float64 against the numpy reference;
- backward on the host against central differences (float64);
- forward and backward on the OpenCL device against the host (float32).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netcl
from netcl.nn import functional as F
from tests.gradcheck import analytic_grads, check_grads

# ---- numpy references ----------------------------------------------------------


def ref_conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0)):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            out[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w)
    if b is not None:
        out += b.reshape(1, o, 1, 1)
    return out


def _windows(x, k, s, p, fill):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=fill)
    oh = (h + 2 * p[0] - k[0]) // s[0] + 1
    ow = (w + 2 * p[1] - k[1]) // s[1] + 1
    out = np.empty((n, c, oh, ow, k[0] * k[1]))
    for i in range(oh):
        for j in range(ow):
            win = xp[:, :, i * s[0] : i * s[0] + k[0], j * s[1] : j * s[1] + k[1]]
            out[:, :, i, j] = win.reshape(n, c, -1)
    return out


def ref_max_pool2d(x, k, s, p=(0, 0)):
    return _windows(x, k, s, p, -np.inf).max(-1)


def ref_avg_pool2d(x, k, s, p=(0, 0)):
    return _windows(x, k, s, p, 0.0).mean(-1)


def ref_layer_norm(x, w, b, k, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    mu = x.mean(axes, keepdims=True)
    var = x.var(axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def ref_batch_norm(x, w, b, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mu = x.mean(axes, keepdims=True)
    var = x.var(axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w.reshape(shape) + b.reshape(shape)


def ref_log_softmax(x):
    m = x.max(1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(1, keepdims=True))


def ref_cross_entropy(x, t, reduction="mean", smoothing=0.0, ignore=-100):
    logp = ref_log_softmax(x)
    n, c = x.shape
    valid = t != ignore
    q = np.zeros_like(x)
    q[np.arange(n)[valid], t[valid]] = 1.0
    q = q * (1 - smoothing) + valid[:, None] * smoothing / c
    per = -(q * logp).sum(1)
    if reduction == "none":
        return per
    return per.sum() if reduction == "sum" else per.sum() / valid.sum()


# ---- the cases -------------------------------------------------------------------

TARGET = np.array([2, 0, 3, 1, 3])
TARGET_IGNORE = np.array([2, -100, 3, 1, -100])


def _ce(reduction="mean", smoothing=0.0, target=TARGET):
    def fn(x):
        t = netcl.tensor(target, device=x.device)
        return F.cross_entropy(x, t, reduction, label_smoothing=smoothing)

    def ref(x):
        return ref_cross_entropy(x, target, reduction, smoothing)

    return fn, ref


CASES = [
    (
        "linear",
        lambda x, w, b: F.linear(x, w, b),
        lambda x, w, b: x @ w.T + b,
        [(2, 3, 4), (5, 4), (5,)],
    ),
    (
        "conv2d",
        lambda x, w, b: F.conv2d(x, w, b),
        lambda x, w, b: ref_conv2d(x, w, b),
        [(2, 2, 5, 5), (3, 2, 3, 3), (3,)],
    ),
    (
        "conv2d_stride_pad",
        lambda x, w: F.conv2d(x, w, None, stride=(2, 1), padding=(1, 2)),
        lambda x, w: ref_conv2d(x, w, None, (2, 1), (1, 2)),
        [(1, 2, 5, 4), (2, 2, 3, 2)],
    ),
    (
        "max_pool2d",
        lambda x: F.max_pool2d(x, 2),
        lambda x: ref_max_pool2d(x, (2, 2), (2, 2)),
        [(2, 2, 4, 6)],
    ),
    (
        "max_pool2d_pad",
        lambda x: F.max_pool2d(x, (3, 2), stride=(2, 1), padding=(1, 1)),
        lambda x: ref_max_pool2d(x, (3, 2), (2, 1), (1, 1)),
        [(1, 2, 5, 4)],
    ),
    (
        "avg_pool2d",
        lambda x: F.avg_pool2d(x, 2),
        lambda x: ref_avg_pool2d(x, (2, 2), (2, 2)),
        [(2, 2, 4, 6)],
    ),
    (
        "avg_pool2d_pad",
        lambda x: F.avg_pool2d(x, 3, stride=2, padding=1),
        lambda x: ref_avg_pool2d(x, (3, 3), (2, 2), (1, 1)),
        [(1, 2, 5, 4)],
    ),
    (
        "layer_norm",
        lambda x, w, b: F.layer_norm(x, (3, 4), w, b),
        lambda x, w, b: ref_layer_norm(x, w, b, 2),
        [(2, 3, 4), (3, 4), (3, 4)],
    ),
    (
        "batch_norm_1d",
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        ref_batch_norm,
        [(6, 3), (3,), (3,)],
    ),
    (
        "batch_norm_2d",
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        ref_batch_norm,
        [(2, 3, 2, 3), (3,), (3,)],
    ),
    ("cross_entropy", *_ce(), [(5, 4)]),
    ("cross_entropy_sum", *_ce("sum"), [(5, 4)]),
    ("cross_entropy_none", *_ce("none"), [(5, 4)]),
    ("cross_entropy_smooth", *_ce("mean", 0.2), [(5, 4)]),
    ("cross_entropy_ignore", *_ce("mean", 0.1, TARGET_IGNORE), [(5, 4)]),
    (
        "nll_loss",
        lambda x: F.nll_loss(x, netcl.tensor(TARGET, device=x.device)),
        lambda x: -x[np.arange(5), TARGET].mean(),
        [(5, 4)],
    ),
    (
        "nll_loss_ignore_sum",
        lambda x: F.nll_loss(
            x, netcl.tensor(TARGET_IGNORE, device=x.device), reduction="sum"
        ),
        lambda x: -x[[0, 2, 3], TARGET_IGNORE[[0, 2, 3]]].sum(),
        [(5, 4)],
    ),
    (
        "mse_loss",
        lambda a, b: F.mse_loss(a, b),
        lambda a, b: ((a - b) ** 2).mean(),
        [(3, 4), (3, 4)],
    ),
    (
        "embedding",
        lambda w: F.embedding(netcl.tensor([[1, 3], [3, 0]], device=w.device), w),
        lambda w: w[np.array([[1, 3], [3, 0]])],
        [(4, 3)],
    ),
    ("gelu", F.gelu, None, [(3, 4)]),
    ("softmax", lambda x: F.softmax(x, 1), None, [(3, 4)]),
]

IDS = [c[0] for c in CASES]


def _inputs(shapes, seed=0):
    rng = np.random.default_rng(seed)
    # Spread values apart so no two entries of a pooling window tie.
    return [
        rng.standard_normal(s) + np.arange(int(np.prod(s))).reshape(s) * 1e-3
        for s in shapes
    ]


@pytest.mark.parametrize("name, fn, ref, shapes", CASES, ids=IDS)
def test_forward_matches_numpy(name, fn, ref, shapes):
    if ref is None:
        pytest.skip("covered by the tensor op tests")
    arrays = _inputs(shapes)
    with netcl.no_grad():
        out = fn(*[netcl.tensor(a) for a in arrays])
    np.testing.assert_allclose(out.numpy(), ref(*arrays), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, fn, ref, shapes", CASES, ids=IDS)
def test_backward_matches_finite_differences(name, fn, ref, shapes):
    check_grads(fn, _inputs(shapes, seed=1))


@pytest.mark.opencl
@pytest.mark.parametrize("name, fn, ref, shapes", CASES, ids=IDS)
def test_opencl_matches_host(name, fn, ref, shapes, cl_device):
    arrays = _inputs(shapes, seed=2)
    rng = np.random.default_rng(3)
    with netcl.no_grad():
        shape = fn(*[netcl.tensor(a, dtype=netcl.float32) for a in arrays]).shape
    weight = rng.standard_normal(shape)
    host_out, host_grads = analytic_grads(fn, arrays, weight, "cpu", netcl.float32)
    cl_out, cl_grads = analytic_grads(fn, arrays, weight, cl_device, netcl.float32)
    np.testing.assert_allclose(cl_out, host_out, rtol=1e-4, atol=1e-5)
    for k, (c, h) in enumerate(zip(cl_grads, host_grads)):
        np.testing.assert_allclose(
            c, h, rtol=1e-4, atol=1e-5, err_msg=f"gradient of input {k}"
        )


# ---- properties and special cases ------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    o=st.integers(1, 3),
    hw=st.tuples(st.integers(3, 7), st.integers(3, 7)),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
)
def test_conv2d_any_geometry_matches_numpy(n, c, o, hw, k, stride, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c) + hw)
    w = rng.standard_normal((o, c) + k)
    out = F.conv2d(netcl.tensor(x), netcl.tensor(w), None, stride, padding)
    np.testing.assert_allclose(
        out.numpy(), ref_conv2d(x, w, None, stride, padding), rtol=1e-10, atol=1e-12
    )


def test_conv2d_wrong_channels_names_expected_and_found():
    x, w = netcl.zeros(1, 3, 5, 5), netcl.zeros(2, 4, 3, 3)
    with pytest.raises(ValueError, match="expected input with 4 channels, found 3"):
        F.conv2d(x, w)


def test_conv2d_follows_autocast():
    from netcl.core.autocast import set_autocast_dtype

    x, w = netcl.randn(1, 2, 4, 4), netcl.randn(3, 2, 3, 3)
    prev = set_autocast_dtype(netcl.float16)
    try:
        out = F.conv2d(x, w, netcl.zeros(3))
    finally:
        set_autocast_dtype(prev)
    assert out.dtype is netcl.float16
    ref = ref_conv2d(x.numpy().astype(np.float64), w.numpy().astype(np.float64))
    np.testing.assert_allclose(out.numpy().astype(np.float64), ref, atol=0.05)


def test_cross_entropy_out_of_range_target_names_the_value():
    logits = netcl.zeros(3, 4)
    with pytest.raises(IndexError, match="target 7 is out of range"):
        F.cross_entropy(logits, netcl.tensor([0, 7, 1]))
    with pytest.raises(IndexError, match="target -2 is out of range"):
        F.cross_entropy(logits, netcl.tensor([0, -2, 1]))


def test_cross_entropy_rejects_bad_arguments():
    logits = netcl.zeros(3, 4)
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(logits, netcl.zeros(3))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(logits, netcl.tensor([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match="target"):
        F.cross_entropy(logits, netcl.tensor([0, 1]))


def test_cross_entropy_per_position_targets():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 3))
    t = rng.integers(0, 4, (2, 3))
    out = F.cross_entropy(netcl.tensor(x), netcl.tensor(t), reduction="none")
    rows = x.transpose(0, 2, 1).reshape(-1, 4)
    ref = ref_cross_entropy(rows, t.reshape(-1), "none").reshape(2, 3)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)


def test_losses_compute_in_float32_for_half_inputs():
    x = netcl.randn(4, 3).half().requires_grad_()
    loss = F.cross_entropy(x, netcl.tensor([0, 1, 2, 0]))
    assert loss.dtype is netcl.float32
    loss.backward()
    assert x.grad.dtype is netcl.float16
    assert F.mse_loss(x, x.detach() * 0).dtype is netcl.float32


def test_embedding_out_of_range_names_the_index():
    with pytest.raises(IndexError, match="embedding index 5 is out of range"):
        F.embedding(netcl.tensor([1, 5]), netcl.zeros(4, 2))


def test_dropout_scales_kept_values_and_is_seeded():
    x = netcl.ones(2000)
    gen = netcl.Generator(3)
    out = F.dropout(x, 0.25, True, generator=gen).numpy()
    assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((out == 0).mean() - 0.25) < 0.05
    again = F.dropout(x, 0.25, True, generator=netcl.Generator(3)).numpy()
    np.testing.assert_array_equal(out, again)
    assert F.dropout(x, 0.25, training=False) is x
    with pytest.raises(ValueError, match="probability"):
        F.dropout(x, 1.5)


def test_dropout_gradient_uses_the_mask():
    x = netcl.ones(50, requires_grad=True)
    out = F.dropout(x, 0.5, True, generator=netcl.Generator(1))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), out.detach().numpy())


@pytest.mark.opencl
def test_dropout_mask_is_the_same_on_every_device(cl_device):
    x = np.arange(1, 101, dtype=np.float32)
    host = F.dropout(netcl.tensor(x), 0.3, True, netcl.Generator(5)).numpy()
    dev = F.dropout(netcl.tensor(x, device=cl_device), 0.3, True, netcl.Generator(5))
    np.testing.assert_array_equal(dev.numpy(), host)


def test_batch_norm_updates_running_stats_without_graph():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 2, 2))
    rm, rv = netcl.zeros(3, dtype=netcl.float64), netcl.ones(3, dtype=netcl.float64)
    F.batch_norm(netcl.tensor(x, requires_grad=True), rm, rv, training=True)
    mean = x.mean((0, 2, 3))
    var = x.var((0, 2, 3), ddof=1)
    np.testing.assert_allclose(rm.numpy(), 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), 0.9 + 0.1 * var, rtol=1e-12)
    assert not rm.requires_grad and rm.is_leaf

    out = F.batch_norm(netcl.tensor(x), rm, rv, training=False)
    ref = (x - rm.numpy().reshape(1, 3, 1, 1)) / np.sqrt(
        rv.numpy().reshape(1, 3, 1, 1) + 1e-5
    )
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)


def test_pool_arguments_are_checked():
    x = netcl.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="at most half the kernel"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.avg_pool2d(x, 5)
    with pytest.raises(ValueError, match="4-D"):
        F.max_pool2d(netcl.zeros(4, 4), 2)
