"""DataLoader: batches from a dataset, shuffled per epoch, resumable exactly.

A loader walks a dataset in batches. Each ``iter(loader)`` starts an epoch:
with ``shuffle=True`` it first draws a permutation of the samples from its
:class:`~netcl.core.random.Generator`, then yields batch after batch as tuples
of netcl tensors.

Resuming after a kill works because the loader remembers three things, all
returned by :meth:`DataLoader.state_dict` as plain data:

* ``epoch``: how many epochs have been started;
* ``position``: how many batches of the latest epoch have been yielded;
* ``generator``: the shuffle generator's state *as of the start* of that
  epoch, so the epoch's permutation can be drawn again, identically.

:meth:`DataLoader.load_state_dict` restores them. If the saved epoch was cut
off part-way, the next ``iter(loader)`` finishes that epoch from the saved
position; if all its batches had been drawn, the next ``iter(loader)`` starts
the following epoch. Either way the resumed loader yields the very batches
the uninterrupted run would have, in this epoch and every later one.
"""

from __future__ import annotations

import numbers

import numpy as np

from netcl.core.device import Device, get_device
from netcl.core.random import Generator, default_generator
from netcl.core.tensor import Tensor, tensor
from netcl.data.dataset import TensorDataset

__all__ = ["DataLoader"]

# Bumped if the meaning of the state's fields ever changes.
_STATE_VERSION = 1


class DataLoader:
    """Iterate over a dataset in batches of netcl tensors.

    Args:
        dataset: a :class:`~netcl.data.Dataset` (anything with ``__len__``
            and ``__getitem__``). A :class:`~netcl.data.TensorDataset` takes a
            fast path: each batch is cut out of every array with one numpy
            indexing operation and uploaded once.
        batch_size: samples per batch (default 1).
        shuffle: draw a new order of the samples for every epoch
            (default False: the dataset's own order).
        drop_last: leave out the last batch when it would be smaller than
            ``batch_size`` (default False).
        generator: the :class:`~netcl.core.random.Generator` the permutations
            are drawn from. By default the loader makes its own, seeded from
            netcl's host default generator when the loader is built, so
            ``netcl.manual_seed`` fixes the order. A generator that other code
            also draws from is reset by :meth:`load_state_dict`; give the
            loader its own.
        device: where the batches are placed (a device spec such as ``"cl"``
            or a Device); the host when None.

    Raises:
        ValueError: if ``batch_size`` is not a positive int.
        TypeError: if ``dataset`` has no ``__len__``/``__getitem__`` or
            ``generator`` is not a netcl Generator.

    Example:
        >>> import numpy as np
        >>> from netcl.data import DataLoader, TensorDataset
        >>> ds = TensorDataset(np.arange(10.0), np.arange(10))
        >>> loader = DataLoader(ds, batch_size=4)
        >>> [x.shape for x, y in loader]
        [(4,), (4,), (2,)]
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: Generator | None = None,
        device: str | Device | None = None,
    ) -> None:
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                "dataset must have __len__ and __getitem__, got "
                f"{type(dataset).__name__}"
            )
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, numbers.Integral)
            or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if generator is not None and not isinstance(generator, Generator):
            raise TypeError(
                f"generator must be a netcl.Generator, got {type(generator).__name__}"
            )

        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.device = get_device(device) if device is not None else None

        # The loader's own generator takes its seed from the host default
        # generator now, so netcl.manual_seed(...) earlier fixes every epoch.
        if generator is None and self.shuffle:
            seed = int(default_generator(None).integers(0, 2**63 - 1, ()))
            generator = Generator(seed)
        self.generator = generator

        self._epoch = 0
        self._position = 0
        self._epoch_start_state = self._generator_state()
        self._order: np.ndarray | None = None
        self._resume_pending = False
        # Each iter() gets a new token; an older iterator holding a stale
        # token refuses to go on, so only one iterator moves the position.
        self._token = 0

    # ---- sizes --------------------------------------------------------------

    def __len__(self) -> int:
        """The number of batches in one epoch."""
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    @property
    def epoch(self) -> int:
        """How many epochs have been started (0 before the first ``iter``)."""
        return self._epoch

    # ---- iteration ----------------------------------------------------------

    def __iter__(self) -> _LoaderIterator:
        if self._resume_pending:
            self._resume_pending = False
        else:
            self._start_epoch()
        self._token += 1
        return _LoaderIterator(self, self._token)

    def _start_epoch(self) -> None:
        self._epoch_start_state = self._generator_state()
        self._order = self._draw_order()
        self._epoch += 1
        self._position = 0

    def _draw_order(self) -> np.ndarray | None:
        # None stands for the dataset's own order, 0, 1, 2, ...
        if not self.shuffle:
            return None
        return self.generator.permutation(len(self.dataset))

    def _next_batch(self, token: int) -> tuple[Tensor, ...]:
        if token != self._token:
            raise RuntimeError(
                "this DataLoader iterator is stale: a newer iter(loader) or "
                "load_state_dict() has taken over the loader's position"
            )
        if self._position >= len(self):
            raise StopIteration
        start = self._position * self.batch_size
        stop = min(start + self.batch_size, len(self.dataset))
        if self._order is None:
            indices = np.arange(start, stop)
        else:
            indices = self._order[start:stop]
        batch = self._fetch(indices)
        self._position += 1
        return batch

    def _fetch(self, indices: np.ndarray) -> tuple[Tensor, ...]:
        if isinstance(self.dataset, TensorDataset):
            parts = self.dataset.take(indices)
            return tuple(tensor(p, device=self.device) for p in parts)
        samples = [self.dataset[int(i)] for i in indices]
        return _collate(samples, self.device)

    # ---- resume -------------------------------------------------------------

    def state_dict(self) -> dict:
        """Where the loader stands, as plain data (ints, bools, a uint64 array).

        Keys: ``epoch`` (epochs started), ``position`` (batches of that epoch
        yielded so far), ``generator`` (the shuffle generator's state at the
        start of that epoch, or None without shuffling), plus ``version``,
        ``num_samples``, ``batch_size``, ``drop_last`` and ``shuffle``, which
        :meth:`load_state_dict` checks against the loader it is loaded into.
        """
        gen = self._epoch_start_state
        if gen is not None:
            gen = {"algorithm": gen["algorithm"], "words": gen["words"].copy()}
        return {
            "version": _STATE_VERSION,
            "epoch": self._epoch,
            "position": self._position,
            "generator": gen,
            "num_samples": len(self.dataset),
            "batch_size": self.batch_size,
            "drop_last": self.drop_last,
            "shuffle": self.shuffle,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue from a :meth:`state_dict`, possibly of another loader.

        The next ``iter(loader)`` finishes the saved epoch from its saved
        position, or starts the next epoch if the saved one was complete.
        Iterators made before this call stop working.

        Raises:
            ValueError: if ``state_dict`` is malformed or was saved by a
                loader with a different dataset length, ``batch_size``,
                ``drop_last`` or ``shuffle`` (nothing is changed then).
        """
        epoch, position, gen_state = self._check_state(state_dict)

        if self.shuffle:
            self.generator.set_state(gen_state)
        self._epoch_start_state = self._generator_state()
        self._epoch = epoch
        self._position = position
        # Drawing the saved epoch's permutation again also moves the generator
        # on to where it stood after the original draw.
        self._order = self._draw_order() if epoch > 0 else None
        self._resume_pending = epoch > 0 and position < len(self)
        self._token += 1

    def _check_state(self, sd) -> tuple[int, int, dict | None]:
        if not isinstance(sd, dict):
            raise ValueError(
                f"DataLoader state must be a dict, got {type(sd).__name__}"
            )
        missing = [k for k in self.state_dict() if k not in sd]
        if missing:
            raise ValueError(f"DataLoader state is missing keys {missing}")
        if sd["version"] != _STATE_VERSION:
            raise ValueError(
                f"DataLoader state version {sd['version']!r} is not supported "
                f"(this netcl reads version {_STATE_VERSION})"
            )
        expected = {
            "num_samples": len(self.dataset),
            "batch_size": self.batch_size,
            "drop_last": self.drop_last,
            "shuffle": self.shuffle,
        }
        for key, value in expected.items():
            if sd[key] != value:
                raise ValueError(
                    f"DataLoader state was saved with {key}={sd[key]!r} but this "
                    f"loader has {key}={value!r}; build the loader the same way "
                    "to resume"
                )
        epoch, position = _nonneg_int(sd, "epoch"), _nonneg_int(sd, "position")
        if position > len(self) or (epoch == 0 and position != 0):
            raise ValueError(
                f"DataLoader state position {position} is impossible for epoch "
                f"{epoch} with {len(self)} batches per epoch"
            )
        gen_state = sd["generator"]
        if self.shuffle:
            gen_state = _exact_words(gen_state)
            # Validate on a scratch generator so a bad state changes nothing.
            Generator(0).set_state(gen_state)
        return epoch, position, gen_state

    def _generator_state(self) -> dict | None:
        return self.generator.get_state() if self.shuffle else None

    def __repr__(self) -> str:
        return (
            f"DataLoader({type(self.dataset).__name__}, batch_size="
            f"{self.batch_size}, shuffle={self.shuffle}, drop_last="
            f"{self.drop_last}, device={self.device})"
        )


class _LoaderIterator:
    """One epoch's pass; the position it moves lives in the loader."""

    def __init__(self, loader: DataLoader, token: int) -> None:
        self._loader = loader
        self._token = token

    def __iter__(self) -> _LoaderIterator:
        return self

    def __next__(self) -> tuple[Tensor, ...]:
        return self._loader._next_batch(self._token)

    def __len__(self) -> int:
        return len(self._loader)


def _nonneg_int(sd: dict, key: str) -> int:
    value = sd[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"DataLoader state {key!r} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"DataLoader state {key!r} must be >= 0, got {value}")
    return int(value)


def _exact_words(gen_state):
    """The generator state with its words as a uint64 array.

    A state that went through JSON has its words as a list of Python ints;
    ``numpy.asarray`` would turn ints above 2**63 into float64 and lose
    bits, so they are converted one by one here.
    """
    if not isinstance(gen_state, dict) or not isinstance(
        gen_state.get("words"), (list, tuple)
    ):
        return gen_state
    try:
        words = np.array([int(w) for w in gen_state["words"]], dtype=np.uint64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(
            f"DataLoader state 'generator' words are not 64-bit ints: {exc}"
        ) from exc
    return {**gen_state, "words": words}


def _collate(samples: list, device: Device | None) -> tuple[Tensor, ...]:
    """Stack per-sample fields into one tensor per field."""
    rows = [s if isinstance(s, (tuple, list)) else (s,) for s in samples]
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ValueError(
            "dataset samples must all have the same number of fields, got "
            f"{sorted({len(r) for r in rows})}"
        )
    out = []
    for k in range(width):
        values = [r[k] for r in rows]
        if all(_is_python_number(v) for v in values):
            # Plain Python numbers follow netcl.tensor's rules (float ->
            # float32, int -> int64).
            out.append(tensor(values, device=device))
            continue
        host = [v.numpy() if isinstance(v, Tensor) else np.asarray(v) for v in values]
        shapes = {h.shape for h in host}
        if len(shapes) != 1:
            raise ValueError(
                f"field {k} of the dataset's samples has different shapes in "
                f"one batch: {sorted(shapes)}; samples must stack"
            )
        out.append(tensor(np.stack(host), device=device))
    return tuple(out)


def _is_python_number(v) -> bool:
    # numpy scalars subclass Python's float/int; they keep their own dtype.
    return isinstance(v, (bool, int, float)) and not isinstance(v, np.generic)
