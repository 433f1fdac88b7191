"""autocast, and mixed-precision training with a GradScaler end to end."""

from __future__ import annotations

import numpy as np
import pytest

import netcl
from netcl.amp import GradScaler, autocast, is_autocast_enabled
from netcl.core.autocast import autocast_dtype


def test_context_sets_and_restores(device):
    a = netcl.ones(2, 3, device=device)
    b = netcl.ones(3, 2, device=device)
    assert autocast_dtype() is None
    with autocast():
        assert is_autocast_enabled()
        assert (a @ b).dtype is netcl.float16
        assert (a + 1.0).dtype is netcl.float32  # only matmuls are cast
        with autocast(netcl.bfloat16):
            assert (a @ b).dtype is netcl.bfloat16
        with autocast(enabled=False):
            assert (a @ b).dtype is netcl.float32
        assert (a @ b).dtype is netcl.float16
    assert autocast_dtype() is None
    assert (a @ b).dtype is netcl.float32


def test_restores_after_an_exception():
    with pytest.raises(KeyError), autocast():
        raise KeyError("x")
    assert autocast_dtype() is None


def test_decorator_and_reused_instance():
    @autocast(dtype="bfloat16")
    def inner():
        return autocast_dtype()

    assert inner() is netcl.bfloat16
    assert autocast_dtype() is None

    ctx = autocast()
    with ctx:
        with ctx:
            assert autocast_dtype() is netcl.float16
        assert autocast_dtype() is netcl.float16
    assert autocast_dtype() is None


def test_rejects_non_floating_dtype():
    with pytest.raises(ValueError, match="int32"):
        autocast(netcl.int32)


def test_scaling_keeps_tiny_float16_gradients(device):
    # d(loss)/d(out) is 1e-8, below float16's smallest subnormal (6e-8): the
    # float16 matmul's backward sees zeros unless the loss is scaled.
    x = netcl.ones(2, 3, device=device)
    grads = {}
    for scale in (1.0, 2.0**16):
        w = netcl.ones(3, 2, device=device, requires_grad=True)
        opt = netcl.optim.SGD([w], lr=0.0)
        scaler = GradScaler(init_scale=scale)
        with autocast():
            loss = (x @ w).float().sum() * 1e-8
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        grads[scale] = w.grad.numpy().copy()
        assert w.grad.dtype is netcl.float32
    np.testing.assert_array_equal(grads[1.0], np.zeros((3, 2)))
    # Each weight gets the sum over 2 rows of 1e-8 (float16 rounding of the
    # scaled 6.5e-4 costs about 0.05%).
    np.testing.assert_allclose(grads[2.0**16], np.full((3, 2), 2e-8), rtol=1e-3)


def _mlp_data(device):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8)).astype(np.float32)
    true_w = rng.standard_normal((8, 1)).astype(np.float32)
    y = np.tanh(x @ true_w) + 0.5 * (x[:, :1] ** 2)
    return netcl.tensor(x, device=device), netcl.tensor(y, device=device)


# The first iterations overflow float16 on purpose; the host warns about it.
@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_mlp_trains_under_autocast_with_grad_scaler(device):
    netcl.manual_seed(0)
    x, y = _mlp_data(device)
    w1 = (netcl.randn(8, 32, device=device) * 0.35).requires_grad_()
    b1 = netcl.zeros(32, device=device, requires_grad=True)
    w2 = (netcl.randn(32, 1, device=device) * 0.18).requires_grad_()
    b2 = netcl.zeros(1, device=device, requires_grad=True)
    params = [w1, b1, w2, b2]
    opt = netcl.optim.Adam(params, lr=0.01)
    # A scale big enough to overflow float16 at first: the scaler must back
    # off by itself and still train.
    scaler = GradScaler(init_scale=2.0**24, growth_interval=10)

    losses, backoffs = [], 0
    for _ in range(60):
        with autocast():
            hidden = (x @ w1 + b1).relu()
            out = hidden @ w2
            assert out.dtype is netcl.float16
            loss = ((out.float() + b2 - y) ** 2).mean()
        assert loss.dtype is netcl.float32
        scaler.scale(loss).backward()
        before = scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        backoffs += scaler.get_scale() < before
        opt.zero_grad()
        losses.append(loss.item())

    assert all(p.dtype is netcl.float32 for p in params)
    assert opt.state[w1]["exp_avg"].dtype is netcl.float32
    assert backoffs >= 1  # 2**24 overflowed float16 at first
    assert opt.state[w1]["step"] == 60 - backoffs  # overflowed steps skipped
    assert losses[-1] < 0.25 * losses[0]
