"""Learning-rate schedules against sequences worked out by hand.

Each expected list is the learning rate after construction (epoch 0) and
after each following ``step()``; they are what PyTorch's schedulers give
for the same settings.
"""

from __future__ import annotations

import math

import pytest

import netcl
from netcl.optim import SGD
from netcl.optim.lr_scheduler import (
    CosineAnnealingLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    StepLR,
)


def _opt(lr=1.0, groups=1):
    return SGD(
        [{"params": [netcl.zeros(1, requires_grad=True)]} for _ in range(groups)],
        lr=lr,
    )


def _sequence(sched, epochs):
    out = [sched.get_last_lr()[0]]
    for _ in range(epochs - 1):
        sched.optimizer.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
        assert sched.optimizer.param_groups[0]["lr"] == out[-1]
    return out


def _cos(k, n):
    return (1 + math.cos(math.pi * k / n)) / 2


CASES = [
    (lambda o: StepLR(o, step_size=3, gamma=0.5), 1.0, [1, 1, 1, 0.5, 0.5, 0.5, 0.25]),
    (lambda o: StepLR(o, step_size=1), 0.5, [0.5, 0.05, 0.005, 0.0005]),
    (
        lambda o: MultiStepLR(o, milestones=[5, 2], gamma=0.1),
        1.0,
        [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01],
    ),
    # A repeated milestone decays twice.
    (lambda o: MultiStepLR(o, [1, 1], gamma=0.5), 2.0, [2.0, 0.5, 0.5]),
    (
        lambda o: CosineAnnealingLR(o, T_max=4),
        1.0,
        [1.0, 0.8535533905932737, 0.5, 0.14644660940672627, 0.0],
    ),
    (
        lambda o: CosineAnnealingLR(o, T_max=3, eta_min=0.1),
        0.5,
        [0.1 + 0.4 * _cos(k, 3) for k in range(4)],
    ),
    # factor 1/3 + (2/3) * k / 5 = 5/15, 7/15, ..., 15/15, then it holds.
    (lambda o: LinearLR(o), 0.3, [0.1, 0.14, 0.18, 0.22, 0.26, 0.3, 0.3]),
    (
        lambda o: LinearLR(o, start_factor=1.0, end_factor=0.5, total_iters=2),
        0.1,
        [0.1, 0.075, 0.05, 0.05],
    ),
]


@pytest.mark.parametrize("make, lr, expected", CASES)
def test_schedule_values(make, lr, expected):
    got = _sequence(make(_opt(lr)), len(expected))
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("make, lr, expected", CASES)
def test_resume_from_state_dict(make, lr, expected):
    opt = _opt(lr)
    sched = make(opt)
    _sequence(sched, 3)
    sd, opt_sd = sched.state_dict(), opt.state_dict()
    assert sd["last_epoch"] == 2 and sd["base_lrs"] == [lr]

    # A fresh optimizer starting from a different lr: loading must put the
    # saved schedule's current lr into its groups before any step.
    new_opt = _opt(lr * 7)
    new_opt.load_state_dict(opt_sd)
    new_sched = make(new_opt)
    new_sched.load_state_dict(sd)
    assert new_opt.param_groups[0]["lr"] == sched.get_last_lr()[0]
    assert new_sched.get_last_lr() == sched.get_last_lr()
    rest = _sequence(new_sched, len(expected) - 2)
    assert rest == pytest.approx(expected[2:], rel=1e-12, abs=1e-15)


def test_load_sets_lr_even_into_a_fresh_optimizer():
    sched = StepLR(_opt(1.0), step_size=1, gamma=0.5)
    sched.step()
    sched.step()
    fresh = _opt(1.0)
    StepLR(fresh, step_size=1, gamma=0.5).load_state_dict(sched.state_dict())
    assert fresh.param_groups[0]["lr"] == 0.25


def test_state_dict_is_plain_numbers():
    sched = MultiStepLR(_opt(0.1, groups=2), milestones=(3, 1), gamma=0.5)
    assert sched.state_dict() == {
        "last_epoch": 0,
        "base_lrs": [0.1, 0.1],
        "_last_lr": [0.1, 0.1],
        "milestones": [1, 3],
        "gamma": 0.5,
    }


def test_settings_come_back_from_the_state_dict():
    sched = StepLR(_opt(), step_size=2, gamma=0.5)
    other = StepLR(_opt(), step_size=10, gamma=0.9)
    other.load_state_dict(sched.state_dict())
    assert (other.step_size, other.gamma) == (2, 0.5)


def test_each_group_follows_its_own_base_lr():
    opt = SGD(
        [
            {"params": [netcl.zeros(1, requires_grad=True)], "lr": 1.0},
            {"params": [netcl.zeros(1, requires_grad=True)], "lr": 0.1},
        ],
        lr=0.5,
    )
    sched = StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    assert sched.get_last_lr() == [0.5, 0.05]
    assert [g["initial_lr"] for g in opt.param_groups] == [1.0, 0.1]


def test_resume_with_last_epoch():
    opt = _opt(1.0)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    _sequence(sched, 3)  # epochs 0, 1, 2
    again = StepLR(opt, step_size=2, gamma=0.5, last_epoch=2)
    assert again.last_epoch == 3
    assert again.get_last_lr() == [0.5]  # epoch 3: 0.5 ** (3 // 2)

    with pytest.raises(ValueError, match="initial_lr"):
        StepLR(_opt(), step_size=2, last_epoch=4)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda o: StepLR(o, step_size=0), "step_size"),
        (lambda o: StepLR(o, step_size=1.5), "step_size"),
        (lambda o: StepLR(o, step_size=1, gamma=float("nan")), "gamma"),
        (lambda o: MultiStepLR(o, milestones=[1, -2]), "milestones"),
        (lambda o: CosineAnnealingLR(o, T_max=0), "T_max"),
        (lambda o: LinearLR(o, start_factor=0.0), "start_factor"),
        (lambda o: LinearLR(o, start_factor=1.5), "start_factor"),
        (lambda o: LinearLR(o, end_factor=1.5), "end_factor"),
        (lambda o: LinearLR(o, total_iters=0), "total_iters"),
        (lambda o: StepLR(o, step_size=1, last_epoch=-2), "last_epoch"),
    ],
)
def test_bad_settings_raise(make, name):
    with pytest.raises(ValueError, match=name):
        make(_opt())


def test_bad_state_dict_raises():
    sched = StepLR(_opt(groups=2), step_size=1)
    sd = sched.state_dict()
    with pytest.raises(ValueError, match="'step_size'"):
        sched.load_state_dict({k: v for k, v in sd.items() if k != "step_size"})
    with pytest.raises(ValueError, match="2 learning rates"):
        sched.load_state_dict({**sd, "_last_lr": [0.1]})
    with pytest.raises(ValueError, match="step_size"):
        sched.load_state_dict({**sd, "step_size": 0})


def test_base_class_is_abstract():
    with pytest.raises(NotImplementedError):
        LRScheduler(_opt())
