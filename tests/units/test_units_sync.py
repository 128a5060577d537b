"""Module synchronization: what survives keeps its tensors, what changed is remapped."""

import torch

from supernet import compile
from supernet.units import Creation, mlp
from supernet.units.surgery import add_units, remove_connections


def test_unchanged_blocks_keep_their_parameters():
    g = mlp([4, 5, 3], seed=0)
    net = compile(g, seed=0)
    keep = net.block("h1", "y").weight
    remove_connections(g, "x", "h1", [0], [0])
    report = net.sync(Creation("zero"))
    assert report["resized"] == ["x->h1"]
    assert net.block("h1", "y").weight is keep


def test_recompile_carries_optimizer_state_and_seeds_are_reproducible():
    g = mlp([4, 5, 3], seed=0)
    net = compile(g, seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(2, 4)).sum().backward()
    opt.step()
    add_units(g, "h1", 2)
    net.recompile(opt)
    w = net.block("x", "h1").weight
    assert w.shape == (7, 4) and opt.state[w]["momentum_buffer"].shape == (7, 4)
    a = compile(mlp([4, 5, 3], seed=0), seed=7).state_dict()
    b = compile(mlp([4, 5, 3], seed=0), seed=7).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
