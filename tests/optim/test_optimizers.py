"""SGD, Adam and AdamW against updates worked out by hand.

Each test feeds fixed gradients (set on ``.grad`` directly, so autograd is
not involved) and compares the parameters after every step with numbers
computed here: literal values for scalar cases, and a float64 numpy
transcription of the update rule for vectors. Tests that take ``device`` run
on the host and on the first OpenCL device.
"""

from __future__ import annotations

import numpy as np
import pytest

import netcl
from netcl.optim import SGD, Adam, AdamW

P0 = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
GRADS = [
    np.array([0.1, 0.3, -0.3, 1.5], np.float32),
    np.array([-0.5, 0.4, 0.0, -2.0], np.float32),
    np.array([0.2, -0.1, 0.3, 0.25], np.float32),
]


def _run(opt_cls, device, grads, p0=P0, **kwargs):
    """Parameter values after each step of ``opt_cls`` fed ``grads``."""
    p = netcl.tensor(p0, device=device, requires_grad=True)
    opt = opt_cls([p], **kwargs)
    seen = []
    for g in grads:
        p.grad = netcl.tensor(g, device=device)
        opt.step()
        seen.append(p.numpy().copy())
    return seen, opt, p


# ---- SGD ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        # p=1, g=1 every step, lr=0.1.
        ({}, [0.9, 0.8, 0.7]),
        # buf: 1, 0.9+1=1.9, 1.71+1=2.71; p: 0.9, 0.71, 0.439.
        ({"momentum": 0.9}, [0.9, 0.71, 0.439]),
        # First step copies g into buf (no dampening); then
        # buf = 0.9 + 0.5 = 1.4 (p = 0.76), then 1.26 + 0.5 = 1.76 (p = 0.584).
        ({"momentum": 0.9, "dampening": 0.5}, [0.9, 0.76, 0.584]),
        # step: g + 0.9 * buf: 1.9, then 1 + 0.9 * 1.9 = 2.71, then 3.439.
        ({"momentum": 0.9, "nesterov": True}, [0.81, 0.539, 0.1951]),
        # g + 0.5 * p: 1.5 -> 0.85; 1.425 -> 0.7075; 1.35375 -> 0.572125.
        ({"weight_decay": 0.5}, [0.85, 0.7075, 0.572125]),
    ],
)
def test_sgd_scalar_by_hand(device, kwargs, expected):
    ones = [np.ones(1, np.float32)] * 3
    seen, _, _ = _run(SGD, device, ones, p0=np.ones(1, np.float32), lr=0.1, **kwargs)
    np.testing.assert_allclose([s[0] for s in seen], expected, rtol=1e-6)


def _sgd_reference(p, grads, lr, momentum, dampening, wd, nesterov):
    p, buf, out = p.astype(np.float64), None, []
    for g in grads:
        d = g.astype(np.float64) + wd * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
        out.append(p)
    return out


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_vector_matches_reference(device, nesterov):
    kw = dict(lr=0.05, momentum=0.8, weight_decay=0.01, nesterov=nesterov)
    kw["dampening"] = 0.0 if nesterov else 0.25
    seen, opt, p = _run(SGD, device, GRADS, **kw)
    want = _sgd_reference(
        P0, GRADS, kw["lr"], kw["momentum"], kw["dampening"], 0.01, nesterov
    )
    for got, ref in zip(seen, want):
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)
    buf = opt.state[p]["momentum_buffer"]
    assert buf.device is p.device and buf.dtype is netcl.float32


def test_sgd_without_momentum_keeps_no_state(device):
    _, opt, p = _run(SGD, device, GRADS[:1], lr=0.1)
    assert opt.state.get(p, {}) == {}


# ---- Adam and AdamW ------------------------------------------------------------


def test_adam_scalar_by_hand(device):
    # g=1 then g=-2, lr=0.1, betas (0.9, 0.999):
    # step 1: m=0.1, v=0.001, m_hat=1, v_hat=1 -> p = 1 - 0.1 = 0.9
    # step 2: m=0.09-0.2=-0.11, v=0.000999+0.004=0.004999,
    #   m_hat=-0.11/0.19=-0.5789474, v_hat=0.004999/0.001999=2.5007504,
    #   p = 0.9 + 0.1 * 0.5789474 / 1.5813761 = 0.9366105
    grads = [np.array([1.0], np.float32), np.array([-2.0], np.float32)]
    seen, opt, p = _run(Adam, device, grads, p0=np.ones(1, np.float32), lr=0.1)
    np.testing.assert_allclose([s[0] for s in seen], [0.9, 0.9366105], rtol=1e-6)
    state = opt.state[p]
    assert state["step"] == 2 and type(state["step"]) is int
    np.testing.assert_allclose(state["exp_avg"].numpy(), [-0.11], rtol=1e-6)
    np.testing.assert_allclose(state["exp_avg_sq"].numpy(), [0.004999], rtol=1e-5)


def test_adamw_scalar_by_hand(device):
    # lr=0.1, weight_decay=0.5, g=1: p *= 1 - 0.05, then the Adam step of
    # exactly lr (m_hat / sqrt(v_hat) = 1): 0.95 - 0.1 = 0.85; then
    # 0.85 * 0.95 - 0.1 = 0.7075 (g stays 1, so m_hat / sqrt(v_hat) stays 1).
    ones = [np.ones(1, np.float32)] * 2
    seen, _, _ = _run(
        AdamW, device, ones, p0=np.ones(1, np.float32), lr=0.1, weight_decay=0.5
    )
    np.testing.assert_allclose([s[0] for s in seen], [0.85, 0.7075], rtol=1e-6)


def _adam_reference(p, grads, lr, betas, eps, wd, decoupled):
    p = p.astype(np.float64)
    m, v, out = np.zeros_like(p), np.zeros_like(p), []
    b1, b2 = betas
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_vector_matches_reference(device, cls):
    kw = dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    seen, opt, p = _run(cls, device, GRADS, **kw)
    want = _adam_reference(P0, GRADS, 0.01, (0.8, 0.99), 1e-6, 0.1, cls is AdamW)
    for got, ref in zip(seen, want):
        np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-7)
    assert opt.state[p]["step"] == 3


def test_adam_and_adamw_differ_with_weight_decay():
    a, _, _ = _run(Adam, "cpu", GRADS, lr=0.01, weight_decay=0.1)
    w, _, _ = _run(AdamW, "cpu", GRADS, lr=0.01, weight_decay=0.1)
    assert not np.allclose(a[-1], w[-1])


def test_adamw_default_weight_decay():
    p = netcl.zeros(1, requires_grad=True)
    assert AdamW([p]).param_groups[0]["weight_decay"] == 1e-2
    assert Adam([p]).param_groups[0]["weight_decay"] == 0


# ---- the base class ----------------------------------------------------------


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_parameters_without_grad_are_skipped(device, cls):
    a = netcl.tensor(P0, device=device, requires_grad=True)
    b = netcl.tensor(P0, device=device, requires_grad=True)
    opt = cls([a, b], lr=0.1, **({"momentum": 0.9} if cls is SGD else {}))
    a.grad = netcl.tensor(GRADS[0], device=device)
    opt.step()
    np.testing.assert_array_equal(b.numpy(), P0)
    assert not np.array_equal(a.numpy(), P0)
    assert b not in opt.state


def test_param_groups_use_their_own_hyperparameters(device):
    a = netcl.ones(2, device=device, requires_grad=True)
    b = netcl.ones(2, device=device, requires_grad=True)
    opt = SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert opt.param_groups[1]["momentum"] == 0.9
    for t in (a, b):
        t.grad = netcl.ones(2, device=device)
    opt.step()
    np.testing.assert_allclose(a.numpy(), [0.9, 0.9], rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), [0.5, 0.5], rtol=1e-6)


def test_add_param_group_trains_the_new_group():
    a = netcl.ones(1, requires_grad=True)
    b = netcl.ones(1, requires_grad=True)
    opt = SGD([a], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 1.0})
    b.grad = netcl.ones(1)
    opt.step()
    assert b.item() == 0.0
    with pytest.raises(ValueError, match="appears twice"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="lr"):
        opt.add_param_group({"params": [netcl.ones(1)], "lr": -1.0})
    assert len(opt.param_groups) == 2


def test_zero_grad(device):
    p = netcl.ones(3, device=device, requires_grad=True)
    opt = SGD([p], lr=0.1)
    p.grad = netcl.ones(3, device=device)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), [0, 0, 0])
    opt.zero_grad()
    assert p.grad is None


def test_step_with_autograd_and_closure():
    w = netcl.tensor([3.0], requires_grad=True)
    opt = SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 9.0
    assert w.item() == 1.5  # 3 - 0.25 * 6


@pytest.mark.parametrize(
    "cls, kwargs, name",
    [
        (SGD, {"lr": -0.1}, "lr"),
        (SGD, {"lr": float("nan")}, "lr"),
        (SGD, {"lr": 0.1, "momentum": -0.5}, "momentum"),
        (SGD, {"lr": 0.1, "dampening": -1}, "dampening"),
        (SGD, {"lr": 0.1, "weight_decay": -1e-4}, "weight_decay"),
        (SGD, {"lr": 0.1, "nesterov": True}, "Nesterov"),
        (SGD, {"lr": "fast"}, "lr"),
        (Adam, {"lr": -1e-3}, "lr"),
        (Adam, {"eps": -1.0}, "eps"),
        (Adam, {"betas": (1.0, 0.999)}, "index 0"),
        (Adam, {"betas": (0.9, -0.1)}, "index 1"),
        (Adam, {"betas": 0.9}, "betas"),
        (AdamW, {"weight_decay": -0.1}, "weight_decay"),
    ],
)
def test_bad_hyperparameters_raise(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls([netcl.zeros(1, requires_grad=True)], **kwargs)


def test_bad_params_raise():
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single"):
        SGD(netcl.zeros(1, requires_grad=True), lr=0.1)
    with pytest.raises(TypeError, match="floating"):
        SGD([netcl.zeros(1, dtype=netcl.int64)], lr=0.1)
    p = netcl.zeros(1, requires_grad=True)
    with pytest.raises(ValueError, match="appears twice"):
        SGD([p, p], lr=0.1)


def test_state_left_on_another_device_is_named(cl_device):
    from netcl import nn

    model = nn.Linear(3, 1)
    opt = netcl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(netcl.ones(2, 3)).sum().backward()
    opt.step()
    model.to(cl_device)
    model(netcl.ones(2, 3, device=cl_device)).sum().backward()
    with pytest.raises(RuntimeError, match="momentum_buffer' is on cpu"):
        opt.step()
