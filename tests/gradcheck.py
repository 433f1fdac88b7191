"""Finite-difference gradient checks shared by the op and layer tests."""

from __future__ import annotations

import numpy as np

import netcl


def numeric_grads(fn, arrays: list[np.ndarray], weight: np.ndarray, eps=1e-6):
    """Central differences of sum(fn(*arrays) * weight) for each input array.

    ``fn`` takes host float64 tensors and returns a tensor.
    """
    grads = []
    with netcl.no_grad():
        for k, a in enumerate(arrays):
            g = np.zeros_like(a)
            for i in np.ndindex(a.shape):
                vals = []
                for sign in (1, -1):
                    shifted = [x.copy() for x in arrays]
                    shifted[k][i] += sign * eps
                    out = fn(*[netcl.tensor(x) for x in shifted]).numpy()
                    vals.append(float((out * weight).sum()))
                g[i] = (vals[0] - vals[1]) / (2 * eps)
            grads.append(g)
    return grads


def analytic_grads(fn, arrays, weight, device="cpu", dtype=netcl.float64):
    """Gradients of sum(fn(*xs) * weight) by backward, as host arrays."""
    xs = [
        netcl.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in arrays
    ]
    out = fn(*xs)
    w = netcl.tensor(weight, dtype=out.dtype, device=device)
    (out * w).sum().backward()
    return out.numpy(), [
        x.grad.numpy() if x.grad is not None else np.zeros(x.shape) for x in xs
    ]


def check_grads(fn, arrays, seed=0, rtol=1e-5, atol=1e-6):
    """Assert backward matches central differences in float64 on the host."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    with netcl.no_grad():
        shape = fn(*[netcl.tensor(a) for a in arrays]).shape
    weight = rng.standard_normal(shape)
    _, analytic = analytic_grads(fn, arrays, weight)
    numeric = numeric_grads(fn, arrays, weight)
    for k, (a, n) in enumerate(zip(analytic, numeric)):
        np.testing.assert_allclose(
            a, n, rtol=rtol, atol=atol, err_msg=f"gradient of input {k}"
        )
