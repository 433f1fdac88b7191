"""netcl's OpenCL backend: :class:`OpenCLBackend` over :class:`CLArray` views.

The backend implements the primitive operations of
:class:`netcl.backends.host.HostBackend` with generated OpenCL kernels; see
:mod:`netcl.backends.opencl.backend`.
"""

from netcl.backends.opencl.array import CLArray
from netcl.backends.opencl.backend import OpenCLBackend

__all__ = ["CLArray", "OpenCLBackend"]
