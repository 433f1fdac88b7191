"""GradScaler: scaling, unscaling, skipped steps, scale schedule, state."""

from __future__ import annotations

import numpy as np
import pytest

import netcl
from netcl.amp import GradScaler
from netcl.optim import SGD, Adam


def _setup(device, scale=8.0, **kwargs):
    w = netcl.tensor([1.0, 2.0], device=device, requires_grad=True)
    b = netcl.tensor([0.5], device=device, requires_grad=True)
    opt = SGD([w, b], lr=0.5)
    return w, b, opt, GradScaler(init_scale=scale, **kwargs)


def _set_grads(device, w, b, gw, gb):
    w.grad = netcl.tensor(gw, dtype=netcl.float32, device=device)
    b.grad = netcl.tensor(gb, dtype=netcl.float32, device=device)


def test_scale_multiplies_the_loss(device):
    scaler = GradScaler(init_scale=1024.0)
    loss = netcl.tensor(0.75, device=device)
    scaled = scaler.scale(loss)
    assert scaled.item() == 768.0 and scaled.device is loss.device


def test_unscale_divides_grads_in_place(device):
    w, b, opt, scaler = _setup(device)
    _set_grads(device, w, b, [8.0, -4.0], [2.0])
    grad = w.grad
    scaler.unscale_(opt)
    assert w.grad is grad
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, -0.5])
    np.testing.assert_array_equal(b.grad.numpy(), [0.25])
    with pytest.raises(RuntimeError, match="already"):
        scaler.unscale_(opt)

    # step() does not unscale a second time.
    scaler.step(opt)
    np.testing.assert_allclose(w.numpy(), [0.5, 2.25])
    np.testing.assert_allclose(b.numpy(), [0.375])


def test_scaled_backward_then_step_equals_plain_step(device):
    w, b, opt, scaler = _setup(device, scale=2.0**10)
    loss = (w * w).sum() + (b * 3.0).sum()
    scaler.scale(loss).backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2048.0, 4096.0])
    scaler.step(opt)
    scaler.update()
    # grads 2w = [2, 4] and 3: w - 0.5 * g, b - 0.5 * 3.
    np.testing.assert_allclose(w.numpy(), [0.0, 0.0])
    np.testing.assert_allclose(b.numpy(), [-1.0])


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_step_skipped_and_scale_backs_off_on_overflow(device, bad):
    w, b, opt, scaler = _setup(device, scale=8.0, growth_interval=2)
    # One clean step first, so the growth tracker has something to reset.
    _set_grads(device, w, b, [0.0, 0.0], [0.0])
    scaler.step(opt)
    scaler.update()
    assert scaler.state_dict()["_growth_tracker"] == 1

    _set_grads(device, w, b, [1.0, 1.0], [bad])
    assert scaler.step(opt) is None
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(b.numpy(), [0.5])
    scaler.update()
    assert scaler.get_scale() == 4.0
    assert scaler.state_dict()["_growth_tracker"] == 0


def test_overflow_in_one_param_of_many_is_found(device):
    params = [netcl.ones(5, device=device, requires_grad=True) for _ in range(4)]
    opt = Adam(params)
    for i, p in enumerate(params):
        g = np.full(5, 3.0, np.float32)
        if i == 2:
            g[3] = np.inf
        p.grad = netcl.tensor(g, device=device)
    scaler = GradScaler()
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == 2.0**15
    assert not opt.state  # Adam never stepped


def test_large_finite_grads_are_not_overflow(device):
    # Their sum would overflow float32; the check must not add them up.
    w, b, opt, scaler = _setup(device, scale=1.0)
    _set_grads(device, w, b, [3e38, 3e38], [3e38])
    scaler.unscale_(opt)
    scaler.update()
    assert scaler.get_scale() == 1.0


def test_scale_grows_after_growth_interval(device):
    w, b, opt, scaler = _setup(device, scale=4.0, growth_interval=3)
    scales = []
    for _ in range(7):
        _set_grads(device, w, b, [0.1, 0.1], [0.1])
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
    assert scales == [4.0, 4.0, 8.0, 8.0, 8.0, 16.0, 16.0]


def test_update_with_new_scale_and_misuse():
    w, b, opt, scaler = _setup("cpu")
    with pytest.raises(RuntimeError, match="no unscale_"):
        scaler.update()
    scaler.update(new_scale=3.0)
    assert scaler.get_scale() == 3.0
    _set_grads("cpu", w, b, [1.0, 1.0], [1.0])
    scaler.step(opt)
    with pytest.raises(RuntimeError, match="already"):
        scaler.step(opt)
    with pytest.raises(RuntimeError, match="after step"):
        scaler.unscale_(opt)


def test_state_dict_round_trip():
    _, _, opt, scaler = _setup("cpu", scale=64.0, growth_interval=5)
    for p in opt.param_groups[0]["params"]:
        p.grad = netcl.zeros_like(p)
    scaler.step(opt)
    scaler.update()
    sd = scaler.state_dict()
    assert sd == {
        "scale": 64.0,
        "growth_factor": 2.0,
        "backoff_factor": 0.5,
        "growth_interval": 5,
        "_growth_tracker": 1,
    }
    assert all(type(v) in (int, float) for v in sd.values())

    other = GradScaler()
    other.load_state_dict(sd)
    assert other.state_dict() == sd
    # Four more clean steps reach the interval of 5 and double the scale.
    for _ in range(4):
        other.step(opt)
        other.update()
    assert other.get_scale() == 128.0


def test_bad_state_dict_and_settings():
    scaler = GradScaler()
    good = scaler.state_dict()
    with pytest.raises(ValueError, match="'_growth_tracker'"):
        scaler.load_state_dict(
            {k: v for k, v in good.items() if k != "_growth_tracker"}
        )
    with pytest.raises(ValueError, match="disabled"):
        scaler.load_state_dict({})
    with pytest.raises(ValueError, match="scale"):
        scaler.load_state_dict({**good, "scale": float("inf")})
    assert scaler.state_dict() == good

    for kwargs, name in [
        ({"init_scale": 0.0}, "init_scale"),
        ({"growth_factor": 1.0}, "growth_factor"),
        ({"backoff_factor": 1.0}, "backoff_factor"),
        ({"backoff_factor": 0.0}, "backoff_factor"),
        ({"growth_interval": 0}, "growth_interval"),
    ]:
        with pytest.raises(ValueError, match=name):
            GradScaler(**kwargs)


def test_disabled_scaler_passes_through():
    w, b, opt, _ = _setup("cpu")
    scaler = GradScaler(enabled=False)
    loss = netcl.tensor(2.0)
    assert scaler.scale(loss) is loss
    assert scaler.get_scale() == 1.0
    _set_grads("cpu", w, b, [1.0, np.inf], [1.0])
    scaler.step(opt)  # no check: the step happens
    scaler.update()
    assert scaler.state_dict() == {}
    assert np.isinf(w.numpy()[1])
