"""Optimizer state dicts: layout, exact resume, and loads that must fail.

A resumed optimizer must continue bit for bit as the uninterrupted one
would, whether its state comes back as tensors, as numpy arrays (a
checkpoint read on the host) or from another device.
"""

from __future__ import annotations

import numpy as np
import pytest

import netcl
from netcl.optim import SGD, Adam, AdamW

SHAPES = [(3, 2), (2,), (4,)]


def _params(device, seed=0):
    rng = np.random.default_rng(seed)
    return [
        netcl.tensor(
            rng.standard_normal(s).astype(np.float32), device=device
        ).requires_grad_()
        for s in SHAPES
    ]


def _grads(step, device):
    rng = np.random.default_rng(100 + step)
    return [
        netcl.tensor(rng.standard_normal(s).astype(np.float32), device=device)
        for s in SHAPES
    ]


def _make(cls, params):
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.02}]
    if cls is SGD:
        return SGD(groups, lr=0.1, momentum=0.9, weight_decay=1e-3)
    return cls(groups, lr=0.01, weight_decay=0.1)


def _train(opt, params, steps, device, first=0):
    for k in range(first, first + steps):
        for p, g in zip(params, _grads(k, device)):
            p.grad = g
        opt.step()


def test_state_dict_layout():
    params = _params("cpu")
    opt = _make(Adam, params)
    params[1].grad = None
    params[0].grad = netcl.ones(3, 2)
    p0 = params[0].numpy().copy()
    opt.step()
    sd = opt.state_dict()

    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.02
    assert sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert list(sd["state"]) == [0]  # only the parameter that stepped
    entry = sd["state"][0]
    assert set(entry) == {"step", "exp_avg", "exp_avg_sq"}
    assert entry["step"] == 1 and type(entry["step"]) is int
    # (1 - beta1) * (g + weight_decay * p)
    np.testing.assert_allclose(entry["exp_avg"].numpy(), 0.1 * (1 + 0.1 * p0), 1e-6)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
@pytest.mark.parametrize("as_numpy", [False, True])
def test_resume_is_bit_exact(device, cls, as_numpy):
    # Uninterrupted: 5 steps.
    ref = _params(device)
    ref_opt = _make(cls, ref)
    _train(ref_opt, ref, 5, device)

    # Interrupted after 2 steps, state handed over, 3 more steps.
    first = _params(device)
    opt = _make(cls, first)
    _train(opt, first, 2, device)
    sd = opt.state_dict()
    if as_numpy:
        sd["state"] = {
            i: {
                k: v.numpy().copy() if isinstance(v, netcl.Tensor) else v
                for k, v in entry.items()
            }
            for i, entry in sd["state"].items()
        }
    resumed = [netcl.tensor(p.numpy(), device=device).requires_grad_() for p in first]
    new_opt = _make(cls, resumed)
    new_opt.load_state_dict(sd)
    _train(new_opt, resumed, 3, device, first=2)

    for a, b in zip(ref, resumed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(ref, resumed):
        for key, value in ref_opt.state[a].items():
            got = new_opt.state[b][key]
            if isinstance(value, netcl.Tensor):
                assert got.device is b.device
                np.testing.assert_array_equal(value.numpy(), got.numpy())
            else:
                assert got == value


def test_load_from_another_device(cl_device):
    host = _params("cpu")
    opt = _make(Adam, host)
    _train(opt, host, 2, "cpu")
    sd = opt.state_dict()

    cl = [netcl.tensor(p.numpy(), device=cl_device).requires_grad_() for p in host]
    cl_opt = _make(Adam, cl)
    cl_opt.load_state_dict(sd)
    for p_host, p_cl in zip(host, cl):
        for key in ("exp_avg", "exp_avg_sq"):
            t = cl_opt.state[p_cl][key]
            assert t.device is p_cl.device
            np.testing.assert_array_equal(t.numpy(), opt.state[p_host][key].numpy())
        assert cl_opt.state[p_cl]["step"] == 2


def test_load_restores_hyperparameters_and_takes_no_step():
    params = _params("cpu")
    opt = _make(Adam, params)
    _train(opt, params, 2, "cpu")
    sd = opt.state_dict()
    sd["param_groups"][0]["lr"] = 0.5
    sd["param_groups"][0]["betas"] = [0.8, 0.9]  # a list, as JSON gives back

    fresh = [netcl.tensor(p.numpy()).requires_grad_() for p in params]
    before = [p.numpy().copy() for p in fresh]
    new_opt = _make(Adam, fresh)
    new_opt.load_state_dict(sd)

    assert new_opt.param_groups[0]["lr"] == 0.5
    assert new_opt.param_groups[0]["betas"] == (0.8, 0.9)
    assert new_opt.param_groups[1]["lr"] == 0.02
    assert new_opt.param_groups[0]["params"][0] is fresh[0]
    assert all(new_opt.state[p]["step"] == 2 for p in fresh)
    for p, b in zip(fresh, before):
        np.testing.assert_array_equal(p.numpy(), b)


def test_loaded_state_is_a_copy():
    params = _params("cpu")
    opt = _make(SGD, params)
    _train(opt, params, 1, "cpu")
    sd = opt.state_dict()
    other = _make(SGD, _params("cpu", seed=1))
    other.load_state_dict(sd)

    _train(opt, params, 1, "cpu", first=1)  # changes opt's buffers in place
    p0 = other.param_groups[0]["params"][0]
    buf = other.state[p0]["momentum_buffer"]
    assert not np.array_equal(buf.numpy(), opt.state[params[0]]["momentum_buffer"])
    assert buf is not sd["state"][0]["momentum_buffer"]


def _trained_sd():
    params = _params("cpu")
    opt = _make(Adam, params)
    _train(opt, params, 1, "cpu")
    return opt.state_dict()


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (
            lambda sd: sd["param_groups"].pop(),
            "1 parameter groups, the optimizer has 2",
        ),
        (
            lambda sd: sd["param_groups"][0]["params"].pop(),
            "group 0 has 1 parameters, the optimizer's group 0 has 2",
        ),
        (
            lambda sd: sd["state"][1].update(exp_avg=np.zeros((3,), np.float32)),
            r"parameter 1, key 'exp_avg': expected shape \(2,\).*found \(3,\)",
        ),
        (
            lambda sd: sd["state"].update({7: sd["state"][0]}),
            "entry for parameter 7",
        ),
        (lambda sd: sd["state"][2].update(step=-1), "parameter 2, key 'step'"),
        (lambda sd: sd["state"][2].update(step=1.5), "key 'step'"),
        (lambda sd: sd["param_groups"][1].update(lr=-1.0), "group 1.*lr"),
        (lambda sd: sd.pop("state"), "no 'state' entry"),
    ],
)
def test_bad_state_dict_changes_nothing(corrupt, message):
    sd = _trained_sd()
    corrupt(sd)

    params = _params("cpu", seed=3)
    opt = _make(Adam, params)
    _train(opt, params, 1, "cpu")
    before_state = {p: dict(s) for p, s in opt.state.items()}
    before_arrays = {p: s["exp_avg"].numpy().copy() for p, s in opt.state.items()}
    before_groups = [dict(g) for g in opt.param_groups]

    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(sd)

    assert [dict(g) for g in opt.param_groups] == before_groups
    assert opt.state.keys() == before_state.keys()
    for p, s in opt.state.items():
        assert s["exp_avg"] is before_state[p]["exp_avg"]
        np.testing.assert_array_equal(s["exp_avg"].numpy(), before_arrays[p])


def test_string_and_array_keys_are_accepted():
    # Some formats give back dict keys as strings and ints as 0-d arrays.
    sd = _trained_sd()
    sd["state"] = {
        str(i): {**e, "step": np.array(e["step"])} for i, e in sd["state"].items()
    }
    opt = _make(Adam, _params("cpu"))
    opt.load_state_dict(sd)
    assert [s["step"] for s in opt.state.values()] == [1, 1, 1]
    assert all(type(s["step"]) is int for s in opt.state.values())


def test_resume_through_a_checkpoint_file(device, tmp_path):
    # Optimizer, scheduler and scaler state saved to disk together and loaded
    # back (onto the host) must continue exactly as the uninterrupted run.
    checkpoint = pytest.importorskip("netcl.io.checkpoint")
    from netcl.amp import GradScaler
    from netcl.optim.lr_scheduler import CosineAnnealingLR

    def make():
        params = _params(device)
        opt = _make(AdamW, params)
        return params, opt, CosineAnnealingLR(opt, T_max=8), GradScaler()

    def train(run, first, steps):
        params, opt, sched, scaler = run
        for k in range(first, first + steps):
            for p, g in zip(params, _grads(k, device)):
                p.grad = g * scaler.get_scale()
            scaler.step(opt)
            scaler.update()
            sched.step()

    ref = make()
    train(ref, 0, 5)
    run = make()
    train(run, 0, 2)
    params, opt, sched, scaler = run
    state = {
        "params": params,
        "optim": opt.state_dict(),
        "sched": sched.state_dict(),
        "scaler": scaler.state_dict(),
    }
    checkpoint.save_checkpoint(state, tmp_path / "ckpt")
    loaded = checkpoint.load_checkpoint(None, None, tmp_path / "ckpt")

    new = make()
    with netcl.no_grad():
        for p, saved in zip(new[0], loaded["params"]):
            p.copy_(saved)
    new[1].load_state_dict(loaded["optim"])
    new[2].load_state_dict(loaded["sched"])
    new[3].load_state_dict(loaded["scaler"])
    train(new, 2, 3)

    for a, b in zip(ref[0], new[0]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert new[2].get_last_lr() == ref[2].get_last_lr()
    assert new[3].state_dict() == ref[3].state_dict()
