"""Devices: the host and every OpenCL device, found once and cached.

``manager.devices()`` lists them; ``manager.default(spec)`` picks one. The
host is ``"cpu"``; OpenCL devices are ``"cl:0"``, ``"cl:1"``, ... in the order
pyopencl reports platforms and their devices. Contexts, queues and compiled
programs are created once per device and reused.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Device", "DeviceManager", "DeviceNotFoundError", "manager", "get_device"]

HOW_TO_GET_OPENCL = (
    "netcl installs PoCL (the pocl-binary-distribution package) for an OpenCL "
    "CPU device on Linux x86-64; for a GPU install its vendor's OpenCL driver "
    "(ICD). Run `netcl devices` to see what was found."
)


class DeviceNotFoundError(RuntimeError):
    """Raised when a device spec names no device that exists."""


@dataclass(eq=False)
class Device:
    """One place tensors can live.

    Attributes:
        name: ``"cpu"`` for the host, ``"cl:N"`` for OpenCL devices.
        kind: ``"host"``, or the OpenCL device type: ``"gpu"``, ``"cpu"``,
            ``"accelerator"``.
        platform: the OpenCL platform's name (``"host"`` for the host).
        description: the device's own name as its driver reports it.
    """

    name: str
    kind: str
    platform: str
    description: str
    cl_device: Any = None
    _context: Any = field(default=None, repr=False)
    _queue: Any = field(default=None, repr=False)
    _backend: Any = field(default=None, repr=False)
    _lock: Any = field(default_factory=threading.RLock, repr=False)

    @property
    def is_host(self) -> bool:
        return self.cl_device is None

    @property
    def context(self):
        """The ``pyopencl.Context`` of this device (``None`` on the host)."""
        if self.is_host:
            return None
        self._init_cl()
        return self._context

    @property
    def queue(self):
        """The ``pyopencl.CommandQueue`` of this device (``None`` on the host)."""
        if self.is_host:
            return None
        self._init_cl()
        return self._queue

    @property
    def backend(self):
        """The object that implements netcl's primitive operations here."""
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    if self.is_host:
                        from netcl.backends.host import HostBackend

                        self._backend = HostBackend()
                    else:
                        from netcl.backends.opencl import OpenCLBackend

                        self._backend = OpenCLBackend(self)
        return self._backend

    def _init_cl(self) -> None:
        if self._context is not None:
            return
        with self._lock:
            if self._context is None:
                import pyopencl as cl

                ctx = cl.Context([self.cl_device])
                self._queue = cl.CommandQueue(ctx)
                self._context = ctx

    def __repr__(self) -> str:
        return f"Device({self.name!r}, {self.description!r})"

    def __reduce__(self):
        # A device is a handle on hardware: copies and pickles name it again.
        return (get_device, (self.name,))

    def __deepcopy__(self, memo):
        return self

    def __str__(self) -> str:
        return self.name


class DeviceManager:
    """Finds devices once and hands out the same :class:`Device` objects."""

    def __init__(self) -> None:
        self._devices: list[Device] | None = None
        self._opencl_error: str | None = None
        self._lock = threading.Lock()

    def devices(self) -> list[Device]:
        """The host followed by every OpenCL device found."""
        if self._devices is None:
            with self._lock:
                if self._devices is None:
                    self._devices = self._discover()
        return list(self._devices)

    def _discover(self) -> list[Device]:
        import platform

        found = [Device("cpu", "host", "host", platform.processor() or "host")]
        try:
            import pyopencl as cl

            platforms = cl.get_platforms()
        except Exception as exc:  # no ICD loader, no platform, broken driver
            self._opencl_error = f"{type(exc).__name__}: {exc}"
            return found
        index = 0
        for plat in platforms:
            try:
                cl_devices = plat.get_devices()
            except Exception as exc:
                self._opencl_error = f"{plat.name}: {exc}"
                continue
            for d in cl_devices:
                kind = _cl_kind(d.type)
                found.append(
                    Device(f"cl:{index}", kind, plat.name.strip(), d.name.strip(), d)
                )
                index += 1
        return found

    def get(self, spec: str | Device | None = None) -> Device:
        """Alias of :meth:`default`."""
        return self.default(spec)

    def default(self, spec: str | Device | None = "auto") -> Device:
        """Return the device that ``spec`` names.

        Args:
            spec: ``"auto"`` (or None): the environment variable
                ``NETCL_DEVICE`` if set, else the first OpenCL GPU or
                accelerator, else the host. ``"cpu"``: the host. ``"cl"``:
                the first OpenCL device. ``"cl:N"``: OpenCL device N. Any other
                string picks the first device whose name contains it.

        Raises:
            DeviceNotFoundError: listing the devices found and how to get one.
        """
        if isinstance(spec, Device):
            return spec
        if spec is None or spec == "auto":
            env = os.environ.get("NETCL_DEVICE", "").strip()
            if env and env != "auto":
                return self.default(env)
            for d in self.devices():
                if d.kind in ("gpu", "accelerator"):
                    return d
            return self.devices()[0]
        if not isinstance(spec, str):
            raise TypeError(
                f"device must be a str or Device, not {type(spec).__name__}"
            )
        spec = spec.strip()
        devices = self.devices()
        if spec in ("cpu", "host"):
            return devices[0]
        cl_devices = [d for d in devices if not d.is_host]
        if spec == "cl" and cl_devices:
            return cl_devices[0]
        for d in devices:
            if d.name == spec:
                return d
        if spec != "cl" and not spec.startswith("cl:"):
            for d in cl_devices:
                if spec.lower() in d.description.lower():
                    return d
        raise DeviceNotFoundError(self._not_found_message(spec))

    def for_queue(self, queue) -> Device:
        """The device a ``pyopencl.CommandQueue`` belongs to; None is the host."""
        if queue is None:
            return self.devices()[0]
        if isinstance(queue, Device):
            return queue
        for d in self.devices():
            if not d.is_host and (d._queue is queue or d.cl_device == queue.device):
                return d
        raise DeviceNotFoundError(f"no netcl device owns the queue {queue!r}")

    def _not_found_message(self, spec: str) -> str:
        lines = [f"no device {spec!r}; devices found:"]
        lines += [
            f"  {d.name:6} {d.platform} / {d.description}" for d in self.devices()
        ]
        if self._opencl_error:
            lines.append(f"OpenCL failed to load: {self._opencl_error}")
        lines.append(HOW_TO_GET_OPENCL)
        return "\n".join(lines)

    def table(self) -> str:
        """A printable table of every device."""
        rows = [("device", "kind", "platform", "name")]
        rows += [(d.name, d.kind, d.platform, d.description) for d in self.devices()]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        out = [
            f"{r[0]:{widths[0]}}  {r[1]:{widths[1]}}  {r[2]:{widths[2]}}  {r[3]}"
            for r in rows
        ]
        if self._opencl_error:
            out.append(f"(OpenCL failed to load: {self._opencl_error})")
        if len(self.devices()) == 1:
            out.append(HOW_TO_GET_OPENCL)
        return "\n".join(out)


def _cl_kind(device_type: int) -> str:
    import pyopencl as cl

    if device_type & cl.device_type.GPU:
        return "gpu"
    if device_type & cl.device_type.ACCELERATOR:
        return "accelerator"
    return "cpu"


manager = DeviceManager()


def get_device(spec: str | Device | None = None) -> Device:
    """The device for ``spec``; None means the host (tensors' default)."""
    if spec is None:
        return manager.devices()[0]
    return manager.default(spec)
