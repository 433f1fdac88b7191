"""Module behaviour: registration, naming, state dicts, modes and devices."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import netcl
from netcl import nn


class Block(nn.Module):
    def __init__(self, n: int = 3):
        super().__init__()
        self.n = n
        self.fc = nn.Linear(n, n)
        self.norm = nn.BatchNorm1d(n)
        self.register_buffer("scratch", netcl.zeros(n), persistent=False)

    def forward(self, x):
        return self.norm(self.fc(x))

    def config(self):
        return {"n": self.n}


class Tied(nn.Module):
    """Two linear layers sharing one weight."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2)
        self.b = nn.Linear(2, 2, bias=False)
        self.b.weight = self.a.weight


def _net():
    netcl.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), Block(3))


# ---- registration and naming ----------------------------------------------------


def test_state_dict_keys_and_order():
    keys = list(_net().state_dict())
    assert keys == [
        "0.weight",
        "0.bias",
        "2.fc.weight",
        "2.fc.bias",
        "2.norm.weight",
        "2.norm.bias",
        "2.norm.running_mean",
        "2.norm.running_var",
        "2.norm.num_batches_tracked",
    ]


def test_named_members():
    net = _net()
    assert [n for n, _ in net.named_parameters()] == [
        "0.weight",
        "0.bias",
        "2.fc.weight",
        "2.fc.bias",
        "2.norm.weight",
        "2.norm.bias",
    ]
    buffers = [n for n, _ in net.named_buffers()]
    assert "2.scratch" in buffers and "2.scratch" not in net.state_dict()
    assert [n for n, _ in net.named_children()] == ["0", "1", "2"]
    assert [n for n, _ in net.named_modules()] == [
        "",
        "0",
        "1",
        "2",
        "2.fc",
        "2.norm",
    ]
    assert len(list(net.modules())) == 6 and len(list(net.children())) == 3


def test_state_dict_shares_memory_with_parameters():
    net = nn.Linear(2, 2)
    sd = net.state_dict()
    with netcl.no_grad():
        net.weight.fill_(4.0)
    np.testing.assert_array_equal(sd["weight"].numpy(), np.full((2, 2), 4.0))
    assert not sd["weight"].requires_grad


def test_shared_parameter_yielded_once_but_named_twice():
    m = Tied()
    params = list(m.parameters())
    assert len(params) == 2
    assert [n for n, _ in m.named_parameters()] == ["a.weight", "a.bias"]
    assert list(m.state_dict()) == ["a.weight", "a.bias", "b.weight"]


def test_assignment_rules():
    m = nn.Module()
    m.w = nn.Parameter(netcl.ones(2))
    with pytest.raises(TypeError, match="parameter 'w'"):
        m.w = netcl.ones(2)
    m.w = None
    assert m.w is None and list(m.parameters()) == []
    m.register_buffer("b", netcl.zeros(1))
    with pytest.raises(TypeError, match="buffer 'b'"):
        m.b = 3
    with pytest.raises(KeyError, match="already has an attribute"):
        m.register_parameter("b", None)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = m.nothing
    del m.b
    assert list(m.buffers()) == []


def test_forgetting_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(netcl.ones(1))

    with pytest.raises(RuntimeError, match="super\\(\\).__init__\\(\\)"):
        Broken()


def test_parameter_from_tensor_shares_memory():
    t = netcl.zeros(3)
    p = nn.Parameter(t)
    assert p.requires_grad and isinstance(p, netcl.Tensor)
    with netcl.no_grad():
        p.fill_(2.0)
    np.testing.assert_array_equal(t.numpy(), [2.0, 2.0, 2.0])
    with pytest.raises(TypeError, match="floating"):
        nn.Parameter(netcl.tensor([1, 2]))
    assert "Parameter containing" in repr(p)


# ---- load_state_dict -----------------------------------------------------------


def test_load_state_dict_round_trip_between_models():
    a, b = _net(), _net()
    netcl.manual_seed(1)
    b = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), Block(3))
    result = b.load_state_dict(a.state_dict())
    assert result == ([], []) and result.missing_keys == []
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va.numpy(), vb.numpy())


def test_load_state_dict_accepts_numpy_and_converts_float_dtypes():
    m = nn.Linear(2, 3)
    sd = {
        "weight": np.arange(6, dtype=np.float64).reshape(3, 2),
        "bias": netcl.tensor([1.0, 2.0, 3.0], dtype=netcl.float16),
    }
    m.load_state_dict(sd)
    assert m.weight.dtype is netcl.float32
    np.testing.assert_array_equal(m.weight.numpy(), sd["weight"])
    np.testing.assert_array_equal(m.bias.numpy(), [1.0, 2.0, 3.0])


def test_strict_load_lists_every_problem_and_changes_nothing():
    m = _net()
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    sd = {k: v.numpy() * 0 + 7 for k, v in m.state_dict().items()}
    del sd["0.bias"], sd["2.norm.running_var"]
    sd["extra.weight"] = np.zeros(2)
    sd["0.weight"] = np.zeros((4, 3))
    sd["2.fc.bias"] = np.zeros((3, 1))

    with pytest.raises(nn.StateDictError) as info:
        m.load_state_dict(sd)
    text = str(info.value)
    for needle in (
        "missing key: '0.bias'",
        "missing key: '2.norm.running_var'",
        "unexpected key: 'extra.weight'",
        "mismatch for '0.weight': expected shape (3, 4), found shape (4, 3)",
        "mismatch for '2.fc.bias': expected shape (3,), found shape (3, 1)",
        "nothing was loaded",
    ):
        assert needle in text
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.missing_keys == ["0.bias", "2.norm.running_var"]
    assert err.unexpected_keys == ["extra.weight"]
    assert [k for k, *_ in err.mismatched] == ["0.weight", "2.fc.bias"]
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)


def test_strict_load_rejects_wrong_types_and_dtype_kinds():
    m = nn.Linear(2, 1)
    with pytest.raises(nn.StateDictError) as info:
        m.load_state_dict({"weight": [[1.0, 2.0]], "bias": np.array([1])})
    assert "expected a Tensor or numpy array, found list" in str(info.value)
    assert "expected dtype float32, found dtype int64" in str(info.value)


def test_non_strict_load_warns_skips_and_returns_keys():
    m = nn.Linear(2, 3)
    old_bias = m.bias.numpy().copy()
    sd = {
        "weight": np.ones((3, 2)),
        "bias": np.ones(4),
        "ghost": np.ones(1),
    }
    with pytest.warns(nn.StateDictWarning) as record:
        result = m.load_state_dict(sd, strict=False)
    message = str(record[0].message)
    assert "unexpected key: 'ghost'" in message
    assert "mismatch for 'bias'" in message
    assert result.missing_keys == [] and result.unexpected_keys == ["ghost"]
    np.testing.assert_array_equal(m.weight.numpy(), np.ones((3, 2)))
    np.testing.assert_array_equal(m.bias.numpy(), old_bias)

    with pytest.warns(nn.StateDictWarning, match="missing key: 'bias'"):
        result = m.load_state_dict({"weight": np.zeros((3, 2))}, strict=False)
    assert result.missing_keys == ["bias"]


def test_clean_load_does_not_warn():
    m = nn.Linear(2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.load_state_dict(m.state_dict(), strict=False)


def test_load_state_dict_rejects_non_mappings():
    with pytest.raises(TypeError, match="mapping"):
        nn.Linear(1, 1).load_state_dict([("weight", np.zeros((1, 1)))])


# ---- modes, gradients, devices --------------------------------------------------


def test_train_eval_switches_every_module():
    net = _net()
    assert net.training and net[2].norm.training
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_zero_grad_sets_none():
    net = nn.Linear(2, 2)
    net(netcl.ones(1, 2)).sum().backward()
    assert net.weight.grad is not None
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_to_dtype_keeps_identity_and_skips_integers():
    net = _net()
    params = list(net.parameters())
    net.to(netcl.float64)
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype is netcl.float64 for p in params)
    assert net[2].norm.num_batches_tracked.dtype is netcl.int64
    with pytest.raises(TypeError, match="floating"):
        net.to(netcl.int32)


@pytest.mark.opencl
def test_to_device_keeps_parameter_identity(cl_device):
    net = _net()
    params = list(net.parameters())
    net(netcl.ones(2, 4)).sum().backward()
    values = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    assert net.to(cl_device) is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    for p in net.parameters():
        assert p.device.name == cl_device and p.grad.device.name == cl_device
    for b in net.buffers():
        assert b.device.name == cl_device
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), values[k])
    out = net(netcl.ones(2, 4, device=cl_device))
    assert out.device.name == cl_device
    net.cpu()
    assert all(p.device.is_host for p in params)


@pytest.mark.opencl
def test_load_state_dict_from_another_device(cl_device):
    src = _net().to(cl_device)
    dst = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), Block(3))
    dst.load_state_dict(src.state_dict())
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
        assert b.device.is_host


def test_repr_is_nested_and_readable():
    text = repr(_net())
    assert text.startswith("Sequential(\n  (0): Linear(in_features=4, out_features=3")
    assert "  (2): Block(\n    (fc): Linear(" in text
    assert repr(nn.ReLU()) == "ReLU()"
