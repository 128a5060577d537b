"""Oracle tests of the unit compiler against hand-written PyTorch with the same weights."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from supernet import Graph, StaleModuleError, compile
from supernet.compiler.blocks import GridBlock, SparseBlock
from supernet.compiler.units import UnitModule
from supernet.errors import GraphError, ShapeError, SupernetError
from supernet.units import add_group, add_input, connect, mlp


def _masked_linear_stack(g):
    """nn.Linear layers with the graph's masks applied to their weights."""
    names = ["x", "h1", "h2", "y"]
    layers, masks = [], []
    for u, v in zip(names, names[1:]):
        m = torch.from_numpy(g.edge(u, v)["mask"].toarray())
        lin = nn.Linear(m.shape[1], m.shape[0])
        with torch.no_grad():
            lin.weight.mul_(m)
        layers.append(lin)
        masks.append(m)
    return layers, masks


@pytest.mark.parametrize("kernel", ["dense", "sparse"])
@pytest.mark.parametrize("density", [1.0, 0.3])
def test_mlp_neuron_level_equals_linear_stack(kernel, density):
    g = mlp([12, 16, 10, 4], density=density, seed=3)
    net = compile(g, kernel=kernel)
    layers, masks = _masked_linear_stack(g)
    names = ["x", "h1", "h2", "y"]
    with torch.no_grad():
        for (u, v), lin, m in zip(zip(names, names[1:]), layers, masks):
            block = net.block(u, v)
            if isinstance(block, SparseBlock):
                block.values.copy_(lin.weight[m])
            else:
                block.weight.copy_(lin.weight)
            net.unit_params(v).bias.copy_(lin.bias)
    x = torch.randn(9, 12, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    h = x2
    for i, (lin, m) in enumerate(zip(layers, masks)):
        h = F.linear(h, lin.weight * m, lin.bias)
        h = torch.relu(h) if i < 2 else h
    out = net(x)
    assert (out - h).abs().max() < 1e-5
    target = torch.randn_like(out)
    ((out - target) ** 2).sum().backward()
    ((h - target) ** 2).sum().backward()
    assert (x.grad - x2.grad).abs().max() < 1e-5
    for (u, v), lin, m in zip(zip(names, names[1:]), layers, masks):
        block = net.block(u, v)
        got = block.values.grad if isinstance(block, SparseBlock) else block.weight.grad[m]
        assert (got - lin.weight.grad[m]).abs().max() < 1e-5
        assert (net.unit_params(v).bias.grad - lin.bias.grad).abs().max() < 1e-5
        if isinstance(block, GridBlock):  # no gradient where there is no synapse
            assert block.weight.grad[~m].abs().sum() == 0


class _RefCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
        self.conv3 = nn.Conv2d(8, 6, 1)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        h = torch.relu(self.conv2(h))
        h = F.max_pool2d(torch.relu(self.conv3(h)), 2, 2)
        return self.fc(h.mean((2, 3)))


def _channel_cnn():
    g = Graph("channel", name="cnn")
    add_input(g, "x", 3)
    add_group(g, "c1", 8, act="relu", norm="batchnorm")
    connect(g, "x", "c1", "conv", kernel=3, stride=2)
    add_group(g, "c2", 8, act="relu", bias=False)
    connect(g, "c1", "c2", "conv", kernel=3, groups=4)
    add_group(g, "c3", 6, act="relu")
    connect(g, "c2", "c3", "conv", kernel=1)
    add_group(g, "p", 6, bias=False)
    connect(g, "c3", "p", "identity", pool={"kind": "max", "kernel": 2, "stride": 2})
    add_group(g, "y", 5)
    connect(g, "p", "y", "dense", pool="global_avg")
    g.set_outputs(["y"])
    return g


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_cnn_channel_level_equals_conv2d_layers(mode):
    ref = _RefCNN()
    net = compile(_channel_cnn())
    with torch.no_grad():
        ref.bn1.running_mean.normal_(), ref.bn1.running_var.uniform_(0.5, 2)
        ref.bn1.weight.normal_(), ref.bn1.bias.normal_()
        net.block("x", "c1").weight.copy_(ref.conv1.weight)
        net.unit_params("c1").bias.copy_(ref.conv1.bias)
        for a, b in [("weight", "norm_weight"), ("bias", "norm_bias"),
                     ("running_mean", "running_mean"), ("running_var", "running_var")]:
            getattr(net.unit_params("c1"), b).copy_(getattr(ref.bn1, a))
        net.block("c1", "c2").weight.copy_(ref.conv2.weight)
        net.block("c2", "c3").weight.copy_(ref.conv3.weight)
        net.unit_params("c3").bias.copy_(ref.conv3.bias)
        net.block("p", "y").weight.copy_(ref.fc.weight)
        net.unit_params("y").bias.copy_(ref.fc.bias)
    getattr(net, mode)(), getattr(ref, mode)()
    x = torch.randn(4, 3, 12, 12)
    out, want = net(x), ref(x)
    assert (out - want).abs().max() < 1e-5
    out.square().sum().backward()
    want.square().sum().backward()
    pairs = [(net.block("x", "c1").weight, ref.conv1.weight),
             (net.block("c1", "c2").weight, ref.conv2.weight),
             (net.block("c2", "c3").weight, ref.conv3.weight),
             (net.block("p", "y").weight, ref.fc.weight),
             (net.unit_params("c1").norm_weight, ref.bn1.weight)]
    for a, b in pairs:
        assert (a.grad - b.grad).abs().max() < 1e-4
    if mode == "train":
        assert (net.unit_params("c1").running_mean - ref.bn1.running_mean).abs().max() < 1e-6


def test_kernel_choice_by_density():
    g = mlp([100, 100, 100], density=1.0, seed=0)
    sparse = mlp([100, 100, 100], density=0.05, seed=0)
    assert isinstance(compile(g).block("x", "h1"), GridBlock)
    assert isinstance(compile(sparse).block("x", "h1"), SparseBlock)
    assert isinstance(compile(sparse, kernel="dense").block("x", "h1"), GridBlock)


def test_stale_module_refuses_and_recompiles_keeping_weights():
    g = mlp([4, 6, 2], seed=0)
    net = compile(g, seed=0)
    x = torch.randn(3, 4)
    before = net(x).detach()
    w = net.block("h1", "y").weight.detach().clone()
    from supernet.units.surgery import remove_units

    remove_units(g, {"h1": [0]})  # behind the module's back
    with pytest.raises(StaleModuleError, match="recompile"):
        net(x)
    net.recompile()
    assert net.block("h1", "y").weight.shape == (2, 5)
    assert torch.equal(net.block("h1", "y").weight.detach(), w[:, 1:])
    net.on_stale = "recompile"
    assert net(x).shape == before.shape


def test_wrong_input_and_bad_graph_give_supernet_errors():
    net = compile(mlp([4, 3], seed=0))
    with pytest.raises(ShapeError, match="input 'x' expects a tensor \\(N, 4"):
        net(torch.randn(2, 5))
    with pytest.raises(SupernetError, match="expected 1 input"):
        net(torch.randn(2, 4), torch.randn(2, 4))
    with pytest.raises(GraphError, match="channel- or neuron-level"):
        UnitModule(Graph("layer"))
    g = Graph("channel", name="c")
    add_input(g, "x", 3)
    add_group(g, "y", 2)
    connect(g, "x", "y", "dense")
    g.set_outputs(["y"])
    with pytest.raises(ShapeError, match=r"dense edge x->y reads \(N, C\) values.*pool="):
        compile(g)(torch.randn(2, 3, 4, 4))


def test_input_units_select_features():
    g = Graph("neuron")
    add_input(g, "x", 5, units=[0, 3])
    add_group(g, "y", 1, bias=False)
    connect(g, "x", "y")
    g.set_outputs(["y"])
    net = compile(g)
    with torch.no_grad():
        net.block("x", "y").weight.fill_(1.0)
    x = torch.arange(10.0).view(2, 5)
    assert net(x).view(-1).tolist() == [3.0, 13.0]


def test_parameters_follow_the_shrunk_shapes():
    net = compile(mlp([6, 7, 3], seed=0))
    shapes = {n: tuple(p.shape) for n, p in net.named_parameters()}
    assert shapes["edges.x->h1.weight"] == (7, 6)
    assert shapes["nodes.h1.bias"] == (7,)
    assert not any("mask" in k or "index" in k for k in net.state_dict())
    assert np.isclose(sum(p.numel() for p in net.parameters()), 7 * 6 + 7 + 3 * 7 + 3)
