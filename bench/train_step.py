"""Training-step throughput: one MLP trained by netcl and by its peers.

The model is an MLP 784-256-256-10 with ReLU, trained with softmax
cross-entropy and plain SGD (lr 0.01) on float32 batches of 128 synthetic
MNIST-shaped samples (pixels uniform in [0, 1), labels 0..9). In one process,
one after the other, it is trained by:

* netcl on the host (numpy backend),
* netcl on the first OpenCL device (PoCL on a machine without a GPU),
* a hand-written numpy loop (forward, backward and update by hand),
* PyTorch on the CPU, if ``import torch`` works,
* tinygrad on its OpenCL backend, if ``import tinygrad`` works (its step is
  compiled with ``TinyJit``, the way tinygrad trains fast).

Every implementation starts from the same weights and sees the same batches
(a pool of 4 batches, already on the device, used in turn), so the losses
of the first and of the last step must agree across them (up to float32
rounding); the table prints both as a check. Each step
reads the loss as a Python float (``.item()``), like a loop that logs the
loss, which also waits for the device to finish the step, so OpenCL timings
are honest.

Each implementation runs ``--warmup`` untimed steps (kernel compiles, caches),
then ``--repeats`` timed repetitions of ``--steps`` steps, taken in turns
across the implementations so that load from elsewhere is shared out (the
host implementations and the OpenCL ones in two separate rounds, so that
spinning BLAS threads do not slow PoCL). The
table shows samples/s, best and median over the repetitions, and the ratios
netcl host / PyTorch and netcl OpenCL / tinygrad. The machine may be shared
and noisy: compare ratios taken within one run.

Run: ``python bench/train_step.py [--steps 20] [--repeats 5] [--skip torch]``
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

SIZES = (784, 256, 256, 10)
BATCH = 128
LR = 0.01
POOL = 4  # batches kept on the device and used in turn

# A step function trains on batch i of the pool and returns the loss.
Step = Callable[[int], float]


# ---- shared inputs ------------------------------------------------------------


def make_weights(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight (out, in), bias (out,)) per layer, uniform in +-1/sqrt(in)."""
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1.0 / np.sqrt(n_in)
        w = rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, n_out).astype(np.float32)
        layers.append((w, b))
    return layers


def make_batches(seed: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    """POOL batches of (images (BATCH, 784) float32, labels (BATCH,) int64)."""
    rng = np.random.default_rng(seed)
    return [
        (
            rng.random((BATCH, SIZES[0]), dtype=np.float32),
            rng.integers(0, SIZES[-1], BATCH, dtype=np.int64),
        )
        for _ in range(POOL)
    ]


# ---- implementations ----------------------------------------------------------


def netcl_step(device_spec: str, weights, batches) -> tuple[Step, Callable]:
    """netcl's Linear/ReLU/Sequential, cross_entropy and SGD on one device."""
    import netcl
    from netcl import nn
    from netcl.nn import functional as F

    device = netcl.manager.default(device_spec)
    layers = []
    for w, _ in weights:
        layers += [nn.Linear(w.shape[1], w.shape[0]), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    linear_keys = [k for k in model.state_dict() if k.endswith(".weight")]
    state = {}
    for key, (w, b) in zip(linear_keys, weights):
        prefix = key[: -len("weight")]
        state[prefix + "weight"] = netcl.tensor(w)
        state[prefix + "bias"] = netcl.tensor(b)
    model.load_state_dict(state)
    model.to(device)
    opt = netcl.optim.SGD(model.parameters(), lr=LR)
    data = [
        (netcl.tensor(x, device=device), netcl.tensor(y, device=device))
        for x, y in batches
    ]

    def step(i: int) -> float:
        x, y = data[i % POOL]
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step, device.backend.synchronize


def numpy_step(weights, batches) -> tuple[Step, Callable]:
    """Forward, backward and SGD written out by hand with numpy."""
    params = [(w.copy(), b.copy()) for w, b in weights]
    last = len(params) - 1
    lr = np.float32(LR)

    def step(i: int) -> float:
        x, y = batches[i % POOL]

        # Forward, keeping each layer's input for the backward pass.
        inputs, h = [], x
        for k, (w, b) in enumerate(params):
            inputs.append(h)
            h = h @ w.T + b
            if k < last:
                np.maximum(h, 0, out=h)

        # Softmax cross-entropy, mean over the batch.
        shifted = h - h.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = float(np.mean(np.log(total[:, 0]) - shifted[rows, y]))
        grad = exp / total
        grad[rows, y] -= 1
        grad /= np.float32(len(y))

        # Backward through the layers, updating each once its input's
        # gradient is computed.
        for k in range(last, -1, -1):
            w, b = params[k]
            grad_w, grad_b = grad.T @ inputs[k], grad.sum(axis=0)
            if k > 0:
                grad = grad @ w
                grad *= inputs[k] > 0
            w -= lr * grad_w
            b -= lr * grad_b
        return loss

    return step, lambda: None


def torch_step(weights, batches) -> tuple[Step, Callable]:
    """PyTorch on the CPU with its default thread count."""
    import torch

    layers = []
    for w, b in weights:
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

    def step(i: int) -> float:
        x, y = data[i % POOL]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step, lambda: None


def tinygrad_step(weights, batches) -> tuple[Step, Callable]:
    """tinygrad on its OpenCL backend, the step compiled with TinyJit."""
    # tinygrad finds OpenCL through OPENCL_PATH; point it at the library that
    # pyopencl bundles, which is set up to find PoCL.
    import pyopencl

    libs = os.path.join(os.path.dirname(pyopencl.__file__), os.pardir)
    for pattern in ("pyopencl/.libs/libOpenCL*", "pyopencl.libs/libOpenCL*"):
        found = glob.glob(os.path.join(libs, pattern))
        if found and "OPENCL_PATH" not in os.environ:
            os.environ["OPENCL_PATH"] = found[0]

    from tinygrad import Context, Device, Tensor, TinyJit
    from tinygrad import nn as tnn

    dev = "CL"
    layers = []
    for w, b in weights:
        linear = tnn.Linear(w.shape[1], w.shape[0])
        linear.weight = Tensor(w, device=dev)
        linear.bias = Tensor(b, device=dev)
        layers.append(linear)
    params = tnn.state.get_parameters(layers)
    opt = tnn.optim.SGD(params, lr=LR)
    data = [
        (Tensor(x, device=dev), Tensor(y.astype(np.int32), device=dev))
        for x, y in batches
    ]
    # tinygrad takes every tensor for a parameter unless told otherwise; the
    # data needs no gradient.
    for x, y in data:
        x.is_param_(False).realize()
        y.is_param_(False).realize()

    @TinyJit
    def jitted(x: Tensor, y: Tensor) -> Tensor:
        h = x
        for k, linear in enumerate(layers):
            h = linear(h)
            if k < len(layers) - 1:
                h = h.relu()
        loss = h.sparse_categorical_crossentropy(y)
        opt.zero_grad()
        loss.backward()
        # Realize the loss with the update, so it is computed once and from
        # the weights before the step.
        Tensor.realize(loss, *opt.schedule_step())
        return loss

    def step(i: int) -> float:
        x, y = data[i % POOL]
        with Context(TRAINING=1):
            return jitted(x, y).item()

    return step, Device[dev].synchronize


# ---- timing -------------------------------------------------------------------


def warm_up(step: Step, sync: Callable, warmup: int) -> float:
    """Run ``warmup`` untimed steps (at least one); the first step's loss."""
    first = step(0)
    for i in range(1, warmup):
        step(i)
    sync()
    return first


def time_repeat(step: Step, sync: Callable, steps: int) -> tuple[float, float]:
    """(samples/s over ``steps`` steps, the last step's loss)."""
    start = time.perf_counter()
    for i in range(steps):
        last = step(i)
    sync()
    return steps * BATCH / (time.perf_counter() - start), last


def build(name: str, weights, batches):
    """The step of implementation ``name``, or a reason it cannot run."""
    try:
        if name == "netcl host":
            return netcl_step("cpu", weights, batches)
        if name == "netcl cl":
            return netcl_step("cl", weights, batches)
        if name == "numpy":
            return numpy_step(weights, batches)
        if name == "torch":
            return torch_step(weights, batches)
        if name == "tinygrad cl":
            return tinygrad_step(weights, batches)
    except ImportError as exc:
        return f"not installed ({exc.name})"
    raise ValueError(f"unknown implementation {name!r}")


NAMES = ("netcl host", "netcl cl", "numpy", "torch", "tinygrad cl")
GROUPS = (("netcl host", "numpy", "torch"), ("netcl cl", "tinygrad cl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps")
    parser.add_argument(
        "--skip", default="", help="comma-separated names to leave out, e.g. torch"
    )
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    weights, batches = make_weights(), make_batches()
    print(
        f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, float32, SGD lr {LR}; "
        f"{args.repeats} x {args.steps} steps after {args.warmup} warm-up"
    )
    print(
        f"{'implementation':<14} {'best':>9} {'median':>9}  "
        f"{'first loss':>10} {'last loss':>10}"
    )
    built = {}
    for name in NAMES:
        if any(s in name for s in skip):
            continue
        step = build(name, weights, batches)
        if isinstance(step, str):
            print(f"{name:<14} {step}")
        else:
            built[name] = step
    first = {name: warm_up(*step, args.warmup) for name, step in built.items()}

    # Repetitions go round the implementations in turn, so a burst of load
    # from elsewhere on the machine hurts them all alike. The host group and
    # the OpenCL group take their turns apart: BLAS worker threads keep
    # spinning for a while after each product, and on a small machine they
    # would steal the cores PoCL runs its kernels on.
    rates = {name: [] for name in built}
    last = {}
    for group in GROUPS:
        members = {n: s for n, s in built.items() if n in group}
        for _ in range(args.repeats):
            for name, step in members.items():
                rate, last[name] = time_repeat(*step, args.steps)
                rates[name].append(rate)

    results = {}
    for name in built:
        results[name] = best, median = max(rates[name]), statistics.median(rates[name])
        print(
            f"{name:<14} {best:9.0f} {median:9.0f}  "
            f"{first[name]:10.6f} {last[name]:10.6f}"
        )

    for num, den, target in (
        ("netcl host", "torch", "target >= 0.67, i.e. within 1.5x"),
        ("netcl cl", "tinygrad cl", "target >= 2"),
    ):
        if num in results and den in results:
            best = results[num][0] / results[den][0]
            median = results[num][1] / results[den][1]
            print(f"{num} / {den}: best {best:.2f}, median {median:.2f} ({target})")


if __name__ == "__main__":
    main()
