"""Tensor behaviour: creation, dtypes, broadcasting, views, indexing, autograd
bookkeeping and errors, on every device."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import netcl

SETTINGS = settings(max_examples=25, deadline=None)


# ---- creation and dtypes ----------------------------------------------------


def test_default_dtypes(device):
    assert netcl.tensor([1.5, 2.0], device=device).dtype is netcl.float32
    assert netcl.tensor([1, 2], device=device).dtype is netcl.int64
    assert netcl.tensor([True], device=device).dtype is netcl.bool_
    assert netcl.tensor(np.zeros(2, np.float64), device=device).dtype is netcl.float64
    assert netcl.zeros(2, 3, device=device).shape == (2, 3)
    assert netcl.ones((2, 3), device=device).numpy().sum() == 6
    np.testing.assert_array_equal(
        netcl.arange(1, 7, 2, device=device).numpy(), [1, 3, 5]
    )
    assert netcl.full((2,), 7, device=device).dtype is netcl.int64


@pytest.mark.parametrize("name", [d.name for d in netcl.core.dtypes.ALL_DTYPES])
def test_every_dtype_round_trips(name, device):
    dt = netcl.core.dtypes.dtype(name)
    host = (np.arange(-3, 9) % 5).reshape(3, 4).astype(dt.np)
    t = netcl.tensor(host, device=device)
    assert t.dtype is dt
    out = t.numpy()
    assert out.dtype == dt.np
    np.testing.assert_array_equal(out.view(np.uint8), host.view(np.uint8))


def test_bfloat16_conversion_and_math(device):
    x = netcl.tensor([1.0, 2.5, -3.25], device=device).to(netcl.bfloat16)
    assert x.dtype is netcl.bfloat16
    assert x.numpy().dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal((x * 2).float().numpy(), [2.0, 5.0, -6.5])
    np.testing.assert_array_equal(x.sum().float().numpy(), 0.25)


def test_float16_math(device):
    x = netcl.tensor(np.array([1.0, 0.5, 65504], np.float16), device=device)
    y = (x + x).numpy()
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y[:2], [2.0, 1.0])
    assert np.isinf(y[2])


def test_type_promotion(device):
    i = netcl.tensor([1, 2], device=device)
    f = netcl.tensor([0.5, 0.5], device=device)
    assert (i + f).dtype is netcl.float32
    assert (i / 2).dtype is netcl.float32
    assert (i * 2).dtype is netcl.int64
    assert (i * 0.5).dtype is netcl.float32
    assert (f.half() + f.to(netcl.bfloat16)).dtype is netcl.float32
    assert (i > 1).dtype is netcl.bool_
    np.testing.assert_array_equal((i / 2).numpy(), [0.5, 1.0])


def test_same_seed_same_numbers_on_every_device(device):
    netcl.manual_seed(123)
    a = netcl.randn(4, 5, device=device).numpy()
    netcl.manual_seed(123)
    b = netcl.randn(4, 5, device="cpu").numpy()
    np.testing.assert_array_equal(a, b)
    ints = netcl.randint(0, 10, (100,), device=device).numpy()
    assert ints.min() >= 0 and ints.max() < 10 and ints.dtype == np.int64


def test_rng_state_round_trip():
    netcl.manual_seed(5)
    netcl.rand(3)
    state = netcl.random.get_rng_state()
    a = netcl.rand(10).numpy()
    netcl.random.set_rng_state(state)
    np.testing.assert_array_equal(netcl.rand(10).numpy(), a)
    gen = netcl.Generator(1)
    s = gen.get_state()
    x = netcl.randn(3, generator=gen).numpy()
    gen.set_state(s)
    np.testing.assert_array_equal(netcl.randn(3, generator=gen).numpy(), x)


# ---- broadcasting and non-contiguous inputs (hypothesis) -------------------

_shapes = hnp.mutually_broadcastable_shapes(
    num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=4
)
_binary = st.sampled_from(["add", "sub", "mul", "maximum"])
_NP = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum}


def _op(name, a, b):
    return {
        "add": lambda: a + b,
        "sub": lambda: a - b,
        "mul": lambda: a * b,
        "maximum": lambda: a.maximum(b),
    }[name]()


@SETTINGS
@given(shapes=_shapes, op=_binary, seed=st.integers(0, 2**16), transpose=st.booleans())
def test_broadcast_forward_and_backward(shapes, op, seed, transpose):
    from tests.conftest import DEVICES

    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    a = rng.standard_normal(sa[::-1] if transpose else sa)
    b = rng.standard_normal(sb)
    for device in DEVICES:
        ta = netcl.tensor(a, device=device, requires_grad=True)
        tb = netcl.tensor(b, device=device, requires_grad=True)
        x = ta.T if transpose else ta  # a non-contiguous view when ndim > 1
        out = _op(op, x, tb)
        ref = _NP[op](a.T if transpose else a, b)
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)
        out.sum().backward()
        assert ta.grad.shape == a.shape and tb.grad.shape == b.shape
        if op == "add":
            expect_b = np.broadcast_to(np.ones_like(b), ref.shape).sum()
            np.testing.assert_allclose(tb.grad.numpy().sum(), expect_b)
        if op == "mul":
            x_shape = a.T.shape if transpose else a.shape
            gx = _sum_to(np.broadcast_to(b, ref.shape), x_shape)
            ga = gx.T if transpose else gx
            np.testing.assert_allclose(ta.grad.numpy(), ga, rtol=1e-10)


def _sum_to(g, shape):
    while g.ndim > len(shape):
        g = g.sum(0)
    for i, n in enumerate(shape):
        if n == 1 and g.shape[i] != 1:
            g = g.sum(i, keepdims=True)
    return g


@SETTINGS
@given(
    arr=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
        elements=st.floats(-100, 100, width=32),
    ),
    data=st.data(),
)
def test_reductions_match_numpy(arr, data):
    from tests.conftest import DEVICES

    axis = data.draw(st.integers(-arr.ndim, arr.ndim - 1))
    keep = data.draw(st.booleans())
    for device in DEVICES:
        t = netcl.tensor(arr, device=device)
        np.testing.assert_allclose(
            t.sum(axis, keep).numpy(),
            arr.sum(axis, keepdims=keep),
            rtol=1e-5,
            atol=1e-3,
        )
        np.testing.assert_array_equal(
            t.max(axis, keep).numpy(), arr.max(axis, keepdims=keep)
        )
        np.testing.assert_array_equal(t.min(axis).numpy(), arr.min(axis))
        np.testing.assert_array_equal(t.argmax(axis).numpy(), arr.argmax(axis))
        np.testing.assert_array_equal(
            t.argmin(axis, keep).numpy(), arr.argmin(axis, keepdims=keep)
        )


@SETTINGS
@given(
    shape=hnp.array_shapes(min_dims=2, max_dims=4, max_side=5),
    data=st.data(),
)
def test_views_match_numpy(shape, data):
    from tests.conftest import DEVICES

    arr = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    perm = data.draw(st.permutations(range(len(shape))))
    steps = [data.draw(st.sampled_from([1, 2, -1])) for _ in shape]
    index = tuple(slice(None, None, s) for s in steps)
    for device in DEVICES:
        t = netcl.tensor(arr, device=device)
        view = t.permute(*perm)[index]
        ref = arr.transpose(perm)[index]
        np.testing.assert_array_equal(view.numpy(), ref)
        np.testing.assert_array_equal(
            view.contiguous().reshape(-1).numpy(), ref.ravel()
        )
        np.testing.assert_array_equal((view * 2).numpy(), ref * 2)
        np.testing.assert_array_equal(view.sum(0).numpy(), ref.sum(0))


# ---- indexing and in-place assignment --------------------------------------


def test_setitem(device):
    a = netcl.zeros(3, 4, device=device)
    a[1] = 5
    a[:, 0] = netcl.tensor([1.0, 2.0, 3.0], device=device)
    a[2, 1:3] = netcl.tensor([[7.0, 8.0]], device=device)
    a[a > 6] = -1
    a[[0, 0], [3, 2]] = 9
    expect = np.zeros((3, 4), np.float32)
    expect[1] = 5
    expect[:, 0] = [1, 2, 3]
    expect[2, 1:3] = [7, 8]
    expect[expect > 6] = -1
    expect[[0, 0], [3, 2]] = 9
    np.testing.assert_array_equal(a.numpy(), expect)


def test_setitem_through_a_view(device):
    a = netcl.zeros(4, 4, device=device)
    v = a.T[1:3]
    v[:] = 1
    expect = np.zeros((4, 4), np.float32)
    expect.T[1:3] = 1
    np.testing.assert_array_equal(a.numpy(), expect)


def test_inplace_ops_and_copy(device):
    a = netcl.ones(2, 3, device=device)
    a += 2
    a *= netcl.tensor([1.0, 2.0, 3.0], device=device)
    a -= 1
    a /= 2
    np.testing.assert_allclose(a.numpy(), (np.ones((2, 3)) * 3 * [1, 2, 3] - 1) / 2)
    a.copy_(np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(a.numpy(), np.arange(6).reshape(2, 3))
    a.zero_()
    assert a.numpy().sum() == 0


def test_index_errors(device):
    a = netcl.zeros(3, 4, device=device)
    with pytest.raises(IndexError, match="out of range for dim 0"):
        a[3]
    with pytest.raises(IndexError, match="too many indices"):
        a[0, 0, 0]
    with pytest.raises(IndexError):
        a[[5]]


# ---- autograd bookkeeping ----------------------------------------------------


def test_grad_accumulates_and_no_grad(device):
    x = netcl.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])
    with netcl.no_grad():
        y = x * 2
    assert not y.requires_grad
    assert not x.detach().requires_grad


def test_shared_subexpression_gradient(device):
    x = netcl.tensor([2.0], device=device, requires_grad=True)
    y = x * x
    z = y + y * x  # dz/dx = 2x + 3x^2
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2 * 2 + 3 * 4])


def test_grad_across_devices(cl_device):
    x = netcl.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(cl_device) * 3
    y.to("cpu").sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_backward_errors(device):
    x = netcl.tensor([1.0, 2.0], device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="gradient argument"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        netcl.tensor([1.0]).backward()
    with pytest.raises(RuntimeError, match="in-place"):
        x += 1


def test_shape_errors(device):
    a = netcl.zeros(2, 3, device=device)
    with pytest.raises(ValueError, match=r"do not broadcast"):
        a + netcl.zeros(4, device=device)
    with pytest.raises(ValueError, match="do not fit"):
        a @ netcl.zeros(2, 3, device=device)
    with pytest.raises(ValueError, match="cannot reshape"):
        a.reshape(4, 2)
    with pytest.raises(TypeError, match="no dtype"):
        netcl.zeros(2, dtype="complex64")


def test_device_errors():
    from netcl.core.device import DeviceNotFoundError, manager

    with pytest.raises(DeviceNotFoundError, match="devices found") as err:
        manager.default("cl:99")
    assert "cpu" in str(err.value)
    assert manager.default("cpu").queue is None


def test_item_repr_and_conversions(device):
    t = netcl.tensor([[2.5]], device=device)
    assert t.item() == 2.5 and float(t) == 2.5
    assert "2.5" in repr(t)
    assert netcl.tensor([1, 2, 3], device=device).tolist() == [1, 2, 3]
    assert np.asarray(netcl.ones(2, device=device)).sum() == 2


def test_new_tensors_refuse_negative_sizes(device):
    for make in (netcl.zeros, netcl.ones, netcl.empty, netcl.randn):
        with pytest.raises(ValueError, match="sizes must be 0 or more"):
            make(2, -1, device=device)


def test_empty_and_tuple_indices_follow_numpy(device):
    ref = np.arange(24).reshape(2, 3, 4)
    t = netcl.tensor(ref, device=device)
    assert t[[]].shape == ref[np.array([], np.int64)].shape == (0, 3, 4)
    np.testing.assert_array_equal(t[(1, 0),].numpy(), ref[(1, 0),])


def test_single_elements_are_writable_views_with_gradients(device):
    x = netcl.zeros(4, 4, device=device)
    x[1, 2] = 9.0
    x.T[0, 3] = 5.0
    x[2][1] = 7.0
    x[0, 0].fill_(1.0)
    expect = np.zeros((4, 4), np.float32)
    expect[1, 2], expect[3, 0], expect[2, 1], expect[0, 0] = 9, 5, 7, 1
    np.testing.assert_array_equal(x.numpy(), expect)
    y = netcl.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    y[1].backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 1.0, 0.0])


def test_advanced_setitem_broadcasts_to_the_selection(device):
    z = netcl.zeros(3, 4, device=device)
    z[[0, 2]] = netcl.ones(2, 4, device=device)
    z[netcl.tensor([False, True, False], device=device)] = netcl.arange(
        4, device=device
    ).float()
    expect = np.zeros((3, 4), np.float32)
    expect[[0, 2]] = 1
    expect[1] = np.arange(4)
    np.testing.assert_array_equal(z.numpy(), expect)


def test_assigning_a_value_that_needs_grad_is_refused(device):
    a = netcl.ones(3, device=device, requires_grad=True)
    buf = netcl.zeros(5, device=device)
    with pytest.raises(RuntimeError, match="lose its gradient"):
        buf[1:4] = a * 2
    buf[1:4] = (a * 2).detach()
    np.testing.assert_array_equal(buf.numpy(), [0, 2, 2, 2, 0])


def test_half_float_means_accumulate_in_float32(device):
    x = netcl.ones(70000, dtype=netcl.float16, device=device) * 3
    assert x.mean().item() == 3.0 and x.mean().dtype is netcl.float16
    v = netcl.tensor([1000.0, 1001.0, 1002.0], dtype=netcl.float16, device=device)
    assert v.var().item() == 1.0


def test_reductions_over_no_elements(device):
    assert np.isnan(netcl.zeros(0, device=device).mean().item())
    assert np.isnan(netcl.tensor([1.0], device=device).var().item())
    empty = netcl.zeros(0, dtype=netcl.bool_, device=device)
    assert empty.all().item() is True and empty.any().item() is False


def test_view_never_copies(device):
    a = netcl.zeros(2, 3, device=device)
    a.view(-1)[1:2] = 1  # a view shares memory
    assert a.numpy()[0, 1] == 1
    with pytest.raises(RuntimeError, match="non-contiguous"):
        a.T.view(-1)
    assert a.T.reshape(-1).shape == (6,)


def test_logical_ops_need_bools_and_big_ints_are_refused(device):
    b = netcl.tensor([True, False], device=device)
    np.testing.assert_array_equal((b & ~b).numpy(), [False, False])
    with pytest.raises(TypeError, match="bool tensors"):
        netcl.tensor([6, 5], device=device) & netcl.tensor([3, 1], device=device)
    with pytest.raises(OverflowError, match="int64"):
        netcl.tensor(2**63, device=device)


def test_pow_zero_has_zero_gradient(device):
    w = netcl.tensor([0.0, -3.0], device=device, requires_grad=True)
    (w**0).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [0.0, 0.0])
