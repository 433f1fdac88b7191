"""DataLoader: batching, shuffling, the TensorDataset fast path, and exact
resume from a saved state."""

from __future__ import annotations

import json

import numpy as np
import pytest

import netcl
from netcl.core.random import Generator
from netcl.data import DataLoader, Dataset, TensorDataset

N = 23  # not a multiple of the batch sizes used, so last batches are short


def _dataset(n: int = N) -> TensorDataset:
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64) * 10
    return TensorDataset(x, y)


class _ListDataset(Dataset):
    """Same samples as _dataset(), served one at a time (the slow path)."""

    def __init__(self, n: int = N) -> None:
        self.x, self.y = _dataset(n).arrays

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i])


def _ids(batch) -> list[int]:
    # Every sample's label is 10 * its index.
    return [int(v) // 10 for v in batch[1].numpy()]


# ---- plain batching -----------------------------------------------------------


def test_batches_in_order_with_short_last_batch():
    loader = DataLoader(_dataset(), batch_size=5)
    batches = list(loader)
    assert len(loader) == 5
    assert [b[0].shape for b in batches] == [(5, 3)] * 4 + [(3, 3)]
    assert [_ids(b) for b in batches][-1] == [20, 21, 22]
    x = np.concatenate([b[0].numpy() for b in batches])
    np.testing.assert_array_equal(x, _dataset().arrays[0])
    assert batches[0][0].dtype is netcl.float32
    assert batches[0][1].dtype is netcl.int64
    assert batches[0][0].device.name == "cpu"


def test_drop_last_leaves_out_the_short_batch():
    loader = DataLoader(_dataset(), batch_size=5, drop_last=True)
    batches = list(loader)
    assert len(loader) == 4 == len(batches)
    assert sum((_ids(b) for b in batches), []) == list(range(20))


def test_shuffle_draws_a_permutation_per_epoch_from_the_generator():
    loader = DataLoader(_dataset(), batch_size=4, shuffle=True, generator=Generator(7))
    epoch1 = sum((_ids(b) for b in loader), [])
    epoch2 = sum((_ids(b) for b in loader), [])
    ref = Generator(7)
    assert epoch1 == ref.permutation(N).tolist()
    assert epoch2 == ref.permutation(N).tolist()
    assert epoch1 != epoch2
    assert loader.epoch == 2


def test_default_shuffle_generator_follows_manual_seed():
    def first_epoch():
        loader = DataLoader(_dataset(), batch_size=N, shuffle=True)
        return _ids(next(iter(loader)))

    netcl.manual_seed(11)
    a = first_epoch()
    netcl.manual_seed(11)
    b = first_epoch()
    netcl.manual_seed(12)
    c = first_epoch()
    assert a == b
    assert a != c
    assert sorted(a) == list(range(N))


def test_tensor_dataset_fast_path_does_not_index_samples_one_by_one():
    class NoSampleAccess(TensorDataset):
        def __getitem__(self, index):
            raise AssertionError("the loader should cut batches from the arrays")

    x, y = _dataset().arrays
    loader = DataLoader(NoSampleAccess(x, y), batch_size=8, shuffle=True)
    assert sorted(sum((_ids(b) for b in loader), [])) == list(range(N))


def test_generic_dataset_gives_the_same_batches_as_tensor_dataset():
    fast = DataLoader(_dataset(), batch_size=6, shuffle=True, generator=Generator(3))
    slow = DataLoader(
        _ListDataset(), batch_size=6, shuffle=True, generator=Generator(3)
    )
    for (fx, fy), (sx, sy) in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(fx.numpy(), sx.numpy())
        np.testing.assert_array_equal(fy.numpy(), sy.numpy())
        assert sx.dtype is netcl.float32 and sy.dtype is netcl.int64


def test_tensor_dataset_accepts_tensors_and_checks_lengths():
    ds = TensorDataset(netcl.tensor([[1.0, 2.0], [3.0, 4.0]]), np.array([5, 6]))
    x, y = ds[1]
    assert x.numpy().tolist() == [3.0, 4.0] and y.item() == 6
    with pytest.raises(ValueError, match=r"\(2, 2\), \(3,\)"):
        TensorDataset(np.zeros((2, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_dataset(), batch_size=0)
    with pytest.raises(TypeError, match="Generator"):
        DataLoader(_dataset(), shuffle=True, generator=np.random.default_rng(0))
    with pytest.raises(TypeError, match="__len__"):
        DataLoader(object())


def test_batches_land_on_the_requested_device(device):
    loader = DataLoader(_dataset(), batch_size=8, device=device)
    x, y = next(iter(loader))
    assert x.device.name == netcl.get_device(device).name
    np.testing.assert_array_equal(x.numpy(), _dataset().arrays[0][:8])
    np.testing.assert_array_equal(y.numpy(), _dataset().arrays[1][:8])


def test_a_newer_iterator_makes_the_older_one_stale():
    loader = DataLoader(_dataset(), batch_size=4)
    old = iter(loader)
    next(old)
    iter(loader)
    with pytest.raises(RuntimeError, match="stale"):
        next(old)


# ---- exact resume -------------------------------------------------------------


def _run(loader: DataLoader, total: int, stop_after: int | None = None):
    """A training loop's view of the loader: epoch after epoch until `total`
    batches have been drawn, or stop (like a kill) after `stop_after`."""
    seen = []
    while len(seen) < total:
        before = len(seen)
        for batch in loader:
            seen.append(_ids(batch))
            if len(seen) == total or len(seen) == stop_after:
                return seen
        assert len(seen) > before, "an epoch yielded no batches"
    return seen


def _through_json(state: dict) -> dict:
    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, np.ndarray):
            return [int(x) for x in v]
        return v

    return json.loads(json.dumps(plain(state)))


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("make", [_dataset, _ListDataset], ids=["tensor", "list"])
def test_resume_draws_exactly_the_batches_of_the_uninterrupted_run(
    drop_last, shuffle, make
):
    batch_size = 4
    per_epoch = N // batch_size if drop_last else -(-N // batch_size)
    total = 2 * per_epoch + per_epoch // 2  # two and a half epochs

    netcl.manual_seed(1)
    reference = _run(DataLoader(make(), batch_size, shuffle, drop_last), total)
    assert len(reference) == total

    rng = np.random.default_rng(0)
    # Random stops, plus the edges: nothing drawn, exactly one epoch drawn.
    stops = sorted({0, 1, per_epoch, *rng.integers(1, total, 4).tolist()})
    for stop in stops:
        netcl.manual_seed(1)
        first = DataLoader(make(), batch_size, shuffle, drop_last)
        head = _run(first, total, stop_after=stop) if stop else []
        state = _through_json(first.state_dict())

        # A new process: different global seed, fresh loader, saved state.
        netcl.manual_seed(999)
        second = DataLoader(make(), batch_size, shuffle, drop_last)
        second.load_state_dict(state)
        tail = _run(second, total - stop)
        assert head + tail == reference, f"diverged after stopping at {stop}"


def test_state_records_epoch_position_and_generator_at_epoch_start():
    gen = Generator(5)
    start = gen.get_state()
    loader = DataLoader(_dataset(), batch_size=4, shuffle=True, generator=gen)
    it = iter(loader)
    next(it), next(it)
    sd = loader.state_dict()
    assert (sd["epoch"], sd["position"]) == (1, 2)
    np.testing.assert_array_equal(sd["generator"]["words"], start["words"])
    assert not np.array_equal(gen.get_state()["words"], start["words"])


def test_state_saved_at_epoch_end_resumes_at_the_next_epoch():
    loader = DataLoader(_dataset(), batch_size=N, shuffle=True, generator=Generator(2))
    first = _ids(next(iter(loader)))
    sd = loader.state_dict()
    assert (sd["epoch"], sd["position"]) == (1, 1)

    resumed = DataLoader(_dataset(), batch_size=N, shuffle=True, generator=Generator(9))
    resumed.load_state_dict(sd)
    (batch,) = list(resumed)
    ref = Generator(2)
    assert first == ref.permutation(N).tolist()
    assert _ids(batch) == ref.permutation(N).tolist()
    assert resumed.epoch == 2


def test_load_state_rejects_a_different_loader_setup_and_bad_values():
    sd = DataLoader(_dataset(), batch_size=4, shuffle=True).state_dict()
    with pytest.raises(ValueError, match="batch_size=4 but this loader has"):
        DataLoader(_dataset(), batch_size=5, shuffle=True).load_state_dict(sd)
    with pytest.raises(ValueError, match="num_samples"):
        DataLoader(_dataset(N + 1), batch_size=4, shuffle=True).load_state_dict(sd)
    with pytest.raises(ValueError, match="missing keys"):
        DataLoader(_dataset(), batch_size=4, shuffle=True).load_state_dict({})

    target = DataLoader(_dataset(), batch_size=4, shuffle=True, generator=Generator(1))
    before = target.state_dict()
    for bad in ({"position": 99, "epoch": 1}, {"epoch": -1}, {"generator": {}}):
        with pytest.raises(ValueError):
            target.load_state_dict({**sd, **bad})
    after = target.state_dict()
    np.testing.assert_array_equal(
        after["generator"]["words"], before["generator"]["words"]
    )
    assert (after["epoch"], after["position"]) == (0, 0)


def test_loading_a_state_makes_live_iterators_stale():
    loader = DataLoader(_dataset(), batch_size=4)
    it = iter(loader)
    next(it)
    loader.load_state_dict(loader.state_dict())
    with pytest.raises(RuntimeError, match="stale"):
        next(it)
    # The loaded state resumes at the second batch.
    assert _ids(next(iter(loader))) == [4, 5, 6, 7]
