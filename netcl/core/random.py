"""Random numbers: seeded generators whose state is plain, savable data.

netcl draws every random number (init, dropout, ``rand*``, data shuffling)
from a :class:`Generator`. Each device has its own default generator; all of
them draw on the host with numpy's PCG64 and the numbers are copied to the
device, so the same seed gives the same numbers on every device.

A generator's state is a dict of plain values and one ``uint64`` array, so it
goes into a checkpoint and comes back exactly.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "Generator",
    "default_generator",
    "get_rng_state",
    "initial_seed",
    "manual_seed",
    "set_rng_state",
]

_MASK64 = (1 << 64) - 1
_DEFAULT_SEED = 0x5EED


class Generator:
    """A seeded source of random numbers (numpy's PCG64 underneath).

    Args:
        seed: any non-negative integer; None seeds from the operating system.

    Example:
        >>> g = Generator(7)
        >>> state = g.get_state()
        >>> a = g.random((3,))
        >>> g.set_state(state)
        >>> bool((g.random((3,)) == a).all())
        True
    """

    def __init__(self, seed: int | None = None) -> None:
        self.manual_seed(seed)

    def manual_seed(self, seed: int | None) -> Generator:
        """Reseed; returns self."""
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self._seed = int(seed) if seed is not None else None
        self._bits = np.random.PCG64(self._seed)
        self._np = np.random.Generator(self._bits)
        return self

    def initial_seed(self) -> int | None:
        return self._seed

    @property
    def numpy(self) -> np.random.Generator:
        """The numpy generator that draws the numbers (advances this state)."""
        return self._np

    def get_state(self) -> dict:
        """The full state as ``{"algorithm": "PCG64", "words": uint64[6]}``."""
        st = self._bits.state
        s, inc = st["state"]["state"], st["state"]["inc"]
        words = np.array(
            [
                s >> 64,
                s & _MASK64,
                inc >> 64,
                inc & _MASK64,
                st["has_uint32"],
                st["uinteger"],
            ],
            dtype=np.uint64,
        )
        return {"algorithm": "PCG64", "words": words}

    def set_state(self, state: dict) -> None:
        """Restore a state returned by :meth:`get_state`.

        Raises:
            ValueError: if ``state`` is not such a state.
        """
        words = _check_state(state)
        w = [int(x) for x in words]
        self._bits.state = {
            "bit_generator": "PCG64",
            "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
            "has_uint32": w[4],
            "uinteger": w[5],
        }

    # The module-level names, for code written against netcl.random.
    get_rng_state = get_state
    set_rng_state = set_state

    # Sampling helpers used across netcl, all in float64 before casting so a
    # dtype change never changes the stream consumed.
    def random(self, shape: tuple) -> np.ndarray:
        return self._np.random(shape)

    def normal(self, shape: tuple) -> np.ndarray:
        return self._np.standard_normal(shape)

    def integers(self, low: int, high: int, shape: tuple) -> np.ndarray:
        return self._np.integers(low, high, shape, dtype=np.int64)

    def permutation(self, n: int) -> np.ndarray:
        return self._np.permutation(n)


def _check_state(state) -> np.ndarray:
    if not isinstance(state, dict) or state.get("algorithm") != "PCG64":
        raise ValueError(
            "not a netcl generator state: expected a dict with "
            f"algorithm 'PCG64', got {type(state).__name__}"
        )
    words = state.get("words")
    if hasattr(words, "numpy"):  # a netcl Tensor from a checkpoint
        words = words.numpy()
    # Convert word by word: a JSON list holds Python ints above 2**63 that a
    # plain numpy conversion would turn into inexact floats.
    try:
        values = [int(w) for w in np.asarray(words, dtype=object).ravel()]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"generator state 'words' must be integers, got {words!r}"
        ) from None
    if len(values) != 6 or any(not 0 <= v < 2**64 for v in values):
        raise ValueError(
            f"generator state 'words' must be 6 uint64 values, got {words!r}"
        )
    return np.array(values, dtype=np.uint64)


_seed = _DEFAULT_SEED
_generators: dict[str, Generator] = {}


def default_generator(device=None) -> Generator:
    """The default generator of ``device`` (a Device, a spec, or None for the
    host), created from the current seed on first use."""
    name = _device_name(device)
    gen = _generators.get(name)
    if gen is None:
        gen = _generators[name] = Generator(_seed)
    return gen


def manual_seed(seed: int) -> None:
    """Seed the default generator of every device with ``seed``."""
    global _seed
    Generator(seed)  # validates
    _seed = int(seed)
    _generators.clear()


def initial_seed() -> int:
    return _seed


def get_rng_state() -> dict:
    """Every default generator's state, keyed by device name, plus the seed
    that generators not yet created will start from."""
    return {
        "seed": _seed,
        "devices": {name: g.get_state() for name, g in sorted(_generators.items())},
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned.

    Raises:
        ValueError: if ``state`` has the wrong form (nothing is changed).
    """
    if not isinstance(state, dict) or "seed" not in state or "devices" not in state:
        raise ValueError(
            "rng state must be the dict from netcl.random.get_rng_state() "
            "with keys 'seed' and 'devices'"
        )
    checked = {name: _check_state(st) for name, st in state["devices"].items()}
    global _seed
    _seed = int(state["seed"])
    _generators.clear()
    for name, words in checked.items():
        gen = Generator(_seed)
        gen.set_state({"algorithm": "PCG64", "words": words})
        _generators[name] = gen


def _device_name(device) -> str:
    if device is None:
        return "cpu"
    if isinstance(device, str):
        from netcl.core.device import manager

        return manager.default(device).name
    return device.name
