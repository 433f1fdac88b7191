"""Shared fixtures: the devices every backend test runs on."""

from __future__ import annotations

import pytest

from netcl.core.device import manager


def _opencl_devices() -> list[str]:
    try:
        from netcl.backends.opencl import OpenCLBackend  # noqa: F401
    except ImportError:
        return []
    return [d.name for d in manager.devices() if not d.is_host]


DEVICES = ["cpu"] + _opencl_devices()[:1]


def pytest_generate_tests(metafunc):
    # Any test that takes `device` runs once per backend: the host and the
    # first OpenCL device (PoCL on machines without a GPU).
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", DEVICES)


@pytest.fixture
def cl_device():
    """The first OpenCL device; skips where there is none."""
    cl = _opencl_devices()
    if not cl:
        pytest.skip("no OpenCL device")
    return cl[0]
