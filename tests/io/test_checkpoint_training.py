"""A complete training state survives a save and resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest

import netcl
from netcl.io.checkpoint import load_checkpoint, save_checkpoint

nn = pytest.importorskip("netcl.nn")
optim = pytest.importorskip("netcl.optim")


def _train(model, opt, steps: int) -> None:
    x = netcl.tensor(np.linspace(-1, 1, 32, dtype=np.float32).reshape(8, 4))
    for _ in range(steps):
        opt.zero_grad()
        loss = (model(x) ** 2).mean()
        loss.backward()
        opt.step()


def _values(module) -> dict[str, bytes]:
    return {k: v.numpy().tobytes() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("fmt", ["npz", "npy", "pickle"])
def test_resume_continues_bit_for_bit(tmp_path, fmt):
    netcl.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    _train(model, opt, 3)
    save_checkpoint(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "step": 3,
            "rng": netcl.random.get_rng_state(),
        },
        tmp_path / "run",
        format=fmt,
    )
    _train(model, opt, 2)
    expected = _values(model)

    netcl.manual_seed(123)
    fresh = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    fresh_opt = optim.Adam(fresh.parameters(), lr=1e-2)
    rest = load_checkpoint(None, fresh, tmp_path / "run")
    fresh_opt.load_state_dict(rest["optimizer"])
    netcl.random.set_rng_state(rest["rng"])
    assert rest["step"] == 3
    _train(fresh, fresh_opt, 2)
    assert _values(fresh) == expected


def test_module_parameters_as_in_the_wiki(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    names = [k for k, _ in model.named_parameters()]
    save_checkpoint(
        model.parameters(),
        tmp_path / "w",
        names=names,
        optim_state={"lr": 1e-3},
        config={"epoch": 1},
    )
    other = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    state = load_checkpoint(None, other.parameters(), tmp_path / "w")
    assert state["config"] == {"epoch": 1}
    assert _values(other) == _values(model)
