"""Built-in layers, containers, config() round trips, the registry and init."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import netcl
from netcl import nn
from netcl.nn import init

# One instance of every built-in layer, with non-default arguments where
# there are any, so the round trip has something to get wrong.
LAYERS = [
    nn.Linear(3, 4, bias=False),
    nn.Conv2d(2, 5, (3, 1), stride=2, padding=(1, 0), bias=True),
    nn.MaxPool2d(3, stride=(2, 1), padding=1),
    nn.AvgPool2d((2, 4)),
    nn.BatchNorm1d(6, eps=1e-3, momentum=None, affine=False),
    nn.BatchNorm2d(3, momentum=0.2, track_running_stats=False),
    nn.LayerNorm((2, 3), eps=1e-6, elementwise_affine=False),
    nn.Dropout(0.3),
    nn.Embedding(10, 4),
    nn.ReLU(),
    nn.GELU(),
    nn.Tanh(),
    nn.Sigmoid(),
    nn.Flatten(0, 2),
    nn.Identity(),
    nn.Sequential(),
    nn.ModuleList(),
    nn.ModuleDict(),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda m: type(m).__name__)
def test_config_round_trip(layer):
    config = layer.config()
    rebuilt = type(layer)(**json.loads(json.dumps(config)))
    assert rebuilt.config() == config
    assert repr(rebuilt) == repr(layer)
    old, new = layer.state_dict(), rebuilt.state_dict()
    assert list(old) == list(new)
    for k in old:
        assert old[k].shape == new[k].shape and old[k].dtype is new[k].dtype


def test_every_builtin_is_registered_under_its_name():
    registry = nn.module_registry()
    for layer in LAYERS:
        name = type(layer).__name__
        assert registry[name] is type(layer)
        assert nn.registered_name(layer) == name
    assert set(registry) >= {"BatchNorm1d", "Sequential", "ModuleDict"}


def test_register_decorator_forms():
    @nn.register
    class Scale(nn.Module):
        def __init__(self, k: float = 2.0):
            super().__init__()
            self.k = k

        def config(self):
            return {"k": self.k}

    @nn.register("my.shift")
    class Shift(nn.Module):
        pass

    registry = nn.module_registry()
    assert registry["Scale"] is Scale and registry["my.shift"] is Shift
    assert nn.registered_name(Shift) == "my.shift"
    assert Shift().config() == {}
    assert registry["Scale"](**Scale(3.0).config()).k == 3.0

    with pytest.raises(ValueError, match="already registered"):
        nn.register("Linear")(Shift)
    with pytest.raises(TypeError, match="Module subclasses"):
        nn.register(int)


def test_config_of_a_class_with_arguments_must_be_written():
    class Needs(nn.Module):
        def __init__(self, width):
            super().__init__()

    with pytest.raises(NotImplementedError, match="implement config"):
        Needs(3).config()


def test_containers_rebuild_from_children():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert net.is_container and not nn.Linear.is_container
    copy = type(net)(**net.config())
    for name, child in net.named_children():
        copy.add_module(name, type(child)(**child.config()))
    assert repr(copy) == repr(net)
    copy.load_state_dict(net.state_dict())


# ---- containers -------------------------------------------------------------------


def test_sequential_indexing_and_append():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    net = nn.Sequential(a, b)
    assert len(net) == 2 and net[0] is a and net[-1] is b
    assert list(net) == [a, b]
    assert net.append(c) is net and net[2] is c
    head = net[:2]
    assert isinstance(head, nn.Sequential) and list(head) == [a, b]
    assert net(netcl.ones(4, 2)).shape == (4, 1)
    with pytest.raises(IndexError, match="out of range"):
        net[3]
    net[1] = nn.Tanh()
    assert isinstance(net[1], nn.Tanh)
    del net[1]
    assert list(net.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    named = nn.Sequential({"enc": nn.Linear(1, 1)})
    assert list(named.state_dict()) == ["enc.weight", "enc.bias"]
    with pytest.raises(TypeError, match="Modules"):
        nn.Sequential(nn.ReLU(), "relu")


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.insert(0, nn.ReLU())
    assert isinstance(layers[0], nn.ReLU) and len(layers[1:]) == 3
    heads = nn.ModuleDict({"a": nn.Linear(1, 2), "b": nn.ReLU()})
    heads["c"] = nn.Identity()
    assert list(heads) == ["a", "b", "c"] and "b" in heads
    assert list(heads.state_dict()) == ["a.weight", "a.bias"]
    del heads["a"]
    assert list(heads.keys()) == ["b", "c"]


# ---- layer behaviour ---------------------------------------------------------------


def test_dropout_follows_train_and_eval():
    drop = nn.Dropout(0.5)
    x = netcl.ones(100)
    assert (drop(x).numpy() == 0).any()
    drop.eval()
    assert drop(x) is x


def test_batchnorm_train_updates_stats_and_eval_uses_them():
    bn = nn.BatchNorm2d(2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 2, 3, 3)) * 3 + 1
    out = bn(netcl.tensor(x, dtype=netcl.float32)).numpy()
    assert np.allclose(out.mean((0, 2, 3)), 0, atol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    np.testing.assert_allclose(
        bn.running_var.numpy(), 0.9 + 0.1 * x.var((0, 2, 3), ddof=1), rtol=1e-5
    )

    bn.eval()
    before = bn.running_mean.numpy().copy()
    out = bn(netcl.tensor(x, dtype=netcl.float32)).numpy()
    rm = before.reshape(1, 2, 1, 1)
    rv = bn.running_var.numpy().reshape(1, 2, 1, 1)
    np.testing.assert_allclose(out, (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-4)
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)
    assert bn.num_batches_tracked.item() == 1


def test_batchnorm_cumulative_average_and_no_tracking():
    bn = nn.BatchNorm1d(1, momentum=None)
    bn(netcl.tensor([[1.0], [3.0]]))
    bn(netcl.tensor([[5.0], [7.0]]))
    np.testing.assert_allclose(bn.running_mean.numpy(), [4.0])
    free = nn.BatchNorm1d(2, track_running_stats=False).eval()
    assert list(free.state_dict()) == ["weight", "bias"]
    out = free(netcl.tensor([[1.0, 2.0], [3.0, 6.0]])).numpy()
    np.testing.assert_allclose(out, [[-1, -1], [1, 1]], atol=1e-4)


def test_batchnorm_rejects_wrong_input():
    with pytest.raises(ValueError, match="expected 4-D input with 3 channels"):
        nn.BatchNorm2d(3)(netcl.zeros(2, 4, 2, 2))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(netcl.zeros(1, 3))


def test_layer_norm_and_embedding_shapes():
    ln = nn.LayerNorm(4)
    assert ln(netcl.randn(2, 3, 4)).shape == (2, 3, 4)
    assert list(ln.state_dict()) == ["weight", "bias"]
    emb = nn.Embedding(5, 3)
    out = emb(netcl.tensor([[0, 4], [2, 2]]))
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.numpy()[1, 0], emb.weight.numpy()[2])


def test_conv_pool_stack_shapes():
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 2, 3, stride=2),
        nn.AvgPool2d(2, stride=1),
        nn.Flatten(),
    )
    assert net(netcl.zeros(2, 1, 12, 12)).shape == (2, 2 * 1 * 1)


def test_default_init_matches_pytorch_bounds():
    netcl.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = lin.weight.numpy(), lin.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    conv = nn.Conv2d(8, 4, 3)
    assert np.abs(conv.weight.numpy()).max() <= 1 / math.sqrt(8 * 9)
    emb = nn.Embedding(1000, 20).weight.numpy()
    assert abs(emb.mean()) < 0.05 and abs(emb.std() - 1) < 0.05


def test_init_is_seeded_by_the_default_generator():
    netcl.manual_seed(7)
    a = nn.Linear(3, 3).weight.numpy().copy()
    netcl.manual_seed(7)
    b = nn.Linear(3, 3).weight.numpy()
    np.testing.assert_array_equal(a, b)


# ---- init ------------------------------------------------------------------------


def test_init_functions():
    t = netcl.empty(200, 100)
    gen = netcl.Generator(0)
    assert init.uniform_(t, -2, 3, generator=gen) is t
    v = t.numpy()
    assert v.min() >= -2 and v.max() < 3
    init.normal_(t, 1.0, 0.5, generator=gen)
    assert abs(t.numpy().mean() - 1) < 0.02 and abs(t.numpy().std() - 0.5) < 0.02
    init.xavier_uniform_(t, generator=gen)
    assert np.abs(t.numpy()).max() <= math.sqrt(6 / 300)
    init.xavier_normal_(t, gain=2.0, generator=gen)
    assert abs(t.numpy().std() - 2 * math.sqrt(2 / 300)) < 0.01
    init.kaiming_uniform_(t, nonlinearity="relu", generator=gen)
    assert np.abs(t.numpy()).max() <= math.sqrt(2) * math.sqrt(3 / 100)
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", generator=gen)
    assert abs(t.numpy().std() - math.sqrt(2 / 200)) < 0.005
    init.zeros_(t)
    assert not t.numpy().any()
    init.ones_(t)
    init.constant_(t, 0.25)
    assert (t.numpy() == 0.25).all()
    same = init.normal_(netcl.empty(4), generator=netcl.Generator(1)).numpy()
    again = init.normal_(netcl.empty(4), generator=netcl.Generator(1)).numpy()
    np.testing.assert_array_equal(same, again)
    with pytest.raises(ValueError, match="at least 2 dims"):
        init.xavier_uniform_(netcl.empty(3))


def test_calculate_gain():
    assert init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        init.calculate_gain("swish")


def test_init_on_parameters_needs_no_no_grad():
    w = nn.Parameter(netcl.empty(3, 3))
    init.kaiming_uniform_(w)
    assert w.requires_grad and w.grad is None


# ---- the same model on an OpenCL device -------------------------------------------


def _cnn():
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.3),
        nn.AvgPool2d(2, padding=1),
        nn.Flatten(),
        nn.Linear(4 * 2 * 2, 5),
        nn.LayerNorm(5),
        nn.GELU(),
    )


def _train_step(net, device):
    rng = np.random.default_rng(0)
    x = netcl.tensor(rng.standard_normal((3, 2, 4, 4)), netcl.float32, device)
    t = netcl.tensor([0, 4, 2], device=device)
    loss = nn.functional.cross_entropy(net(x), t, label_smoothing=0.1)
    loss.backward()
    net.eval()
    out = net(x)
    return loss.item(), out.numpy()


@pytest.mark.opencl
def test_cnn_train_step_matches_host_on_opencl(cl_device):
    netcl.manual_seed(3)
    host = _cnn()
    dev = _cnn()
    dev.load_state_dict(host.state_dict())
    dev.to(cl_device)

    # Same seed, fresh default generators: the dropout masks agree.
    netcl.manual_seed(11)
    host_loss, host_out = _train_step(host, "cpu")
    netcl.manual_seed(11)
    dev_loss, dev_out = _train_step(dev, cl_device)

    assert abs(host_loss - dev_loss) < 1e-5
    np.testing.assert_allclose(dev_out, host_out, rtol=1e-4, atol=1e-5)
    for (name, p), q in zip(host.named_parameters(), dev.parameters()):
        np.testing.assert_allclose(
            q.grad.numpy(), p.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name
        )
    for (name, b), c in zip(host.named_buffers(), dev.buffers()):
        np.testing.assert_allclose(c.numpy(), b.numpy(), rtol=1e-5, err_msg=name)


def test_linear_follows_autocast():
    from netcl.core.autocast import set_autocast_dtype

    lin = nn.Linear(3, 2)
    prev = set_autocast_dtype(netcl.float16)
    try:
        out = lin(netcl.ones(4, 3))
    finally:
        set_autocast_dtype(prev)
    assert out.dtype is netcl.float16 and out.shape == (4, 2)
