"""float32 GEMM throughput: netcl's OpenCL backend against numpy.

For each size N in 512, 1024 and 2048 this multiplies two N x N float32
matrices, once untimed to warm up (kernel compile, caches) and then several
timed times on each side, and prints GFLOP/s (best and median) and the ratio
of the OpenCL backend's best to numpy's best. Both run in the same process,
one after the other, so the ratio is fair on a shared, noisy machine.

Run: ``python bench/matmul.py [--repeats R] [--device cl]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from netcl.backends.opencl import OpenCLBackend
from netcl.core.device import manager

SIZES = (512, 1024, 2048)


def _time(fn, repeats: int) -> list[float]:
    """Seconds per call of ``fn`` over ``repeats`` calls, after a warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def bench_size(backend: OpenCLBackend, n: int, repeats: int) -> dict:
    """GFLOP/s of an n x n x n product on the device and with numpy."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    da, db = backend.from_numpy(a), backend.from_numpy(b)

    def on_device():
        backend.matmul(da, db)
        backend.synchronize()

    flop = 2.0 * n**3
    result = {}
    for name, fn in (("opencl", on_device), ("numpy", lambda: a @ b)):
        times = _time(fn, repeats)
        result[name] = (flop / min(times) / 1e9, flop / statistics.median(times) / 1e9)
    got = backend.to_numpy(backend.matmul(da, db))
    result["max_rel_err"] = float(np.abs(got - a @ b).max() / np.abs(a @ b).max())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cl", help="OpenCL device spec")
    args = parser.parse_args()
    device = manager.default(args.device)
    backend = OpenCLBackend(device)
    print(f"device: {device.name} ({device.description}); GFLOP/s best / median")
    print(f"{'N':>5}  {'opencl':>15}  {'numpy':>15}  {'ratio':>6}  {'rel err':>8}")
    for n in SIZES:
        r = bench_size(backend, n, args.repeats)
        cl_best, cl_med = r["opencl"]
        np_best, np_med = r["numpy"]
        print(
            f"{n:>5}  {cl_best:7.1f} / {cl_med:5.1f}  {np_best:7.1f} / {np_med:5.1f}"
            f"  {cl_best / np_best:6.2f}  {r['max_rel_err']:8.1e}"
        )


if __name__ == "__main__":
    main()
