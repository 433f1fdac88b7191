"""Loading pickles without running code from the file.

A pickle names functions and classes ("globals") that the loader imports and
calls; a crafted file can name ``os.system`` and run any command. The loader
here resolves only the globals needed to rebuild numpy arrays and dtypes
(containers, numbers, strings and None need no globals at all) and refuses
every other one, naming it, before anything is called.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, BinaryIO

__all__ = ["ALLOWED_GLOBALS", "UnsafePickleError", "restricted_load"]

ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("collections", "OrderedDict"),
        ("builtins", "complex"),
        # Protocols 0-2 spell bytes as a str encoded back to latin-1.
        ("_codecs", "encode"),
    }
)


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global that the restricted loader does not allow."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"refused to load the global {module}.{name}")
        self.global_name = f"{module}.{name}"


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(module, name)
        return super().find_class(module, name)


def restricted_load(file: BinaryIO | bytes) -> Any:
    """Unpickle ``file`` allowing only containers, numbers, strings, None and
    numpy arrays and dtypes.

    Raises:
        UnsafePickleError: the pickle names any other global.
    """
    if isinstance(file, (bytes, bytearray, memoryview)):
        file = io.BytesIO(file)
    return _RestrictedUnpickler(file).load()
