"""Module synchronization: what survives keeps its tensors, what changed is remapped."""

import torch

from supernet import compile
from supernet.init import InitPolicy
from supernet.units import mlp
from supernet.units.surgery import add_units, remove_connections


def test_unchanged_blocks_keep_their_parameters():
    g = mlp([4, 5, 3], seed=0)
    net = compile(g, seed=0)
    keep = net.block("h1", "y").weight
    remove_connections(g, "x", "h1", [0], [0])
    report = net.sync(InitPolicy("zero"))
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


def test_a_block_crossing_the_density_threshold_changes_kernel_and_keeps_weights():
    from supernet.compiler.blocks import GridBlock, SparseBlock
    from supernet.edits import Editor
    from supernet.edits.units import RemoveConnections
    from supernet.units import connection_ids

    g = mlp([80, 100, 3], density=0.5, seed=0)
    net = compile(g, seed=0)
    assert isinstance(net.block("x", "h1"), GridBlock)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(4, 80)).sum().backward()
    opt.step()
    dense = net.block("x", "h1").effective().detach().clone()
    mom = opt.state[net.block("x", "h1").weight]["momentum_buffer"].clone()
    n = g.edge("x", "h1")["mask"].nnz
    dst, src, _ = connection_ids(g, "x", "h1", range(0, n - n // 5))
    Editor(g, net, opt).apply(RemoveConnections("x", "h1", dst, src))
    block = net.block("x", "h1")
    assert isinstance(block, SparseBlock)
    m = torch.from_numpy(g.edge("x", "h1")["mask"].toarray())
    assert torch.equal(block.values.detach(), dense[m])
    assert torch.equal(opt.state[block.values]["momentum_buffer"], mom[m])


def test_optimizer_state_of_gate_logits_follows_their_rows():
    from supernet.edits import Editor
    from supernet.edits.units import RemoveConnections, RemoveUnits
    from supernet.search.discretize.units import set_gated

    g = mlp([4, 5, 3], seed=0)
    set_gated(g, units=["h1"], connections=[("x", "h1")])
    net = compile(g, seed=0)
    opt = torch.optim.Adam(net.arch_parameters(), lr=0.1)
    net(torch.randn(2, 4)).sum().backward()
    opt.step()
    old = {k: opt.state[a]["exp_avg"].clone() for k, a in net.arch.items()}
    ed = Editor(g, net, opt)
    ed.apply(RemoveUnits({"h1": [1, 3]}))
    avg = opt.state[net.arch["h1"]]["exp_avg"]
    assert avg.shape == (3, 2) and torch.equal(avg, old["h1"][[0, 2, 4]])
    ed.apply(RemoveConnections("x", "h1", dst=[0], src=[2]))  # entry 2 of the 12 left
    avg = opt.state[net.arch["x->h1"]]["exp_avg"]
    kept = [r for r in range(20) if r // 4 not in (1, 3)]
    kept.pop(2)
    assert avg.shape == (11, 2) and torch.equal(avg, old["x->h1"][kept])
