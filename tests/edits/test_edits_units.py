"""The four neural operators at unit level: graph, module and optimizers together."""

import copy

import numpy as np
import pytest
import torch
from units_helpers import doc, randomize_bn, residual_cnn

from supernet import compile, lint
from supernet.edits import EditLog, Editor, edit_from_dict
from supernet.edits.units import AddConnections, AddUnits, RemoveConnections, RemoveUnits
from supernet.errors import EditError, UnknownNameError
from supernet.io import to_node_link
from supernet.units import connection_ids, mlp


def _trained(g, kernel="auto", seed=0):
    net = compile(g, seed=seed, kernel=kernel)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(6, *([g.node("x")["width"]] + ([8, 8] if g.level == "channel" else [])))
    net(x).square().mean().backward()
    opt.step()
    opt.zero_grad()
    return net, opt, x


@pytest.mark.parametrize("kernel", ["dense", "sparse"])
def test_zero_and_split_creation_preserve_the_function_at_neuron_level(kernel):
    g = mlp([6, 10, 8, 3], density=0.6, seed=0)
    net, opt, x = _trained(g, kernel)
    before = net(x).detach()
    ed = Editor(g, net, opt, seed=1)
    res = ed.apply(AddUnits("h1", count=3, init="zero"))
    assert res.report["created"]["h1"].tolist() == [10, 11, 12]
    assert net.block("h1", "h2").storage().shape[0] in (8, g.edge("h1", "h2")["mask"].nnz)
    assert (net(x) - before).abs().max() < 1e-6
    ed.apply(AddUnits("h2", source=[0, 1, 1], init="split"))
    assert (net(x) - before).abs().max() < 1e-6
    missing = np.argwhere(~g.edge("x", "h1")["mask"].toarray())[:4]
    ed.apply(AddConnections("x", "h1", dst=missing[:, 0], src=missing[:, 1], init="zero"))
    assert (net(x) - before).abs().max() < 1e-6
    lint(g)


def test_split_copies_incoming_and_halves_outgoing():
    g = mlp([3, 2, 2], seed=0)
    net = compile(g, seed=0)
    w_in = net.block("x", "h1").weight.detach().clone()
    w_out = net.block("h1", "y").weight.detach().clone()
    Editor(g, net).apply(AddUnits("h1", source=[1], init="split"))
    assert torch.equal(net.block("x", "h1").weight[2], w_in[1])
    assert torch.allclose(net.block("h1", "y").weight[:, 1], w_out[:, 1] / 2)
    assert torch.allclose(net.block("h1", "y").weight[:, 2], w_out[:, 1] / 2)
    assert torch.equal(net.block("h1", "y").weight[:, 0], w_out[:, 0])


def test_split_noise_changes_outputs_by_about_that_much():
    g = mlp([6, 10, 3], seed=0)
    net = compile(g, seed=0)
    x = torch.randn(5, 6)
    before = net(x).detach()
    Editor(g, net).apply(AddUnits("h1", source=[0, 1], init="split", noise=1e-2, seed=3))
    change = (net(x) - before).abs().max()
    assert 1e-6 < change < 1.0


@pytest.mark.parametrize("depthwise", [False, True])
def test_creation_in_a_residual_stream_adds_to_every_tied_node(depthwise):
    g = residual_cnn(depthwise)
    net = compile(g, seed=0).eval()
    randomize_bn(net)
    x = torch.randn(2, 3, 8, 8)
    before = net(x).detach()
    ed = Editor(g, net, seed=0)
    res = ed.apply(AddUnits("y", source=[1, 2], init="split"))
    assert sorted(res.report["created"]) == ["c2", "s0", "y"]
    assert (net(x) - before).abs().max() < 1e-6
    res = ed.apply(AddUnits("c2", count=2, init="zero"))
    assert sorted(res.report["created"]) == ["c2", "s0", "y"]
    assert (net(x) - before).abs().max() < 1e-6
    if depthwise:
        res = ed.apply(AddUnits("d", count=1, init="zero"))
        assert sorted(res.report["created"]) == ["c1", "d"]
        assert g.edge("c1", "d")["groups"] == 9
        assert net.block("c1", "d").weight.shape == (9, 1, 3, 3)
        assert (net(x) - before).abs().max() < 1e-6
    lint(g)


def test_removing_a_unit_removes_its_connections_and_shrinks_tensors():
    g = mlp([5, 6, 4], seed=0)
    net, opt, x = _trained(g)
    nnz_in, nnz_out = g.edge("x", "h1")["mask"].nnz, g.edge("h1", "y")["mask"].nnz
    w_out = net.block("h1", "y").weight.detach().clone()
    Editor(g, net, opt).apply(RemoveUnits({"h1": [2]}))
    assert g.node("h1")["units"].tolist() == [0, 1, 3, 4, 5]
    assert g.edge("x", "h1")["mask"].nnz == nnz_in - 5
    assert g.edge("h1", "y")["mask"].nnz == nnz_out - 4
    assert net.block("x", "h1").weight.shape == (5, 5)
    assert net.block("h1", "y").weight.shape == (4, 5)
    assert net.unit_params("h1").bias.shape == (5,)
    assert torch.equal(net.block("h1", "y").weight.detach(), w_out[:, [0, 1, 3, 4, 5]])
    assert net(x).shape == (6, 4)


def test_removing_a_channel_of_a_residual_stream_removes_it_everywhere():
    g = residual_cnn()
    net = compile(g, seed=0)
    res = Editor(g, net).apply(RemoveUnits({"c2": [3]}))
    assert {k: v.tolist() for k, v in res.report["removed_units"].items()} == {
        "s0": [3], "c2": [3], "y": [3]}
    assert net.block("x", "s0").weight.shape == (7, 3, 3, 3)
    assert net.block("s0", "c1").weight.shape == (8, 7, 3, 3)
    assert net.block("y", "out").weight.shape == (5, 7)
    with pytest.raises(EditError, match="breaks ties with node"):
        Editor(g, net).apply(RemoveUnits({"c2": [4]}, tied=False))


@pytest.mark.parametrize("kernel", ["dense", "sparse"])
def test_removing_k_of_n_connections_leaves_n_minus_k(kernel):
    g = mlp([20, 30, 5], density=0.5, seed=1)
    net, opt, x = _trained(g, kernel)
    n = g.edge("x", "h1")["mask"].nnz
    dst, src, _ = connection_ids(g, "x", "h1", np.arange(0, n, 3))
    Editor(g, net, opt).apply(RemoveConnections("x", "h1", dst, src))
    k = len(dst)
    assert g.edge("x", "h1")["mask"].nnz == n - k
    w = net.block("x", "h1").effective()
    assert int((w != 0).sum()) == n - k


def test_optimizer_state_is_sliced_with_the_weights():
    g = mlp([4, 6, 3], seed=0)
    net = compile(g, seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    adam = torch.optim.Adam(net.parameters(), lr=0.1)
    x = torch.randn(5, 4)
    net(x).square().sum().backward()
    opt.step(), adam.step()
    w = net.block("h1", "y").weight
    mom = opt.state[w]["momentum_buffer"].clone()
    exp_avg = adam.state[w]["exp_avg"].clone()
    Editor(g, net, [opt, adam]).apply(RemoveUnits({"h1": [1, 4]}))
    w2 = net.block("h1", "y").weight
    assert w2 is not w and w not in opt.state
    keep = [0, 2, 3, 5]
    assert torch.equal(opt.state[w2]["momentum_buffer"], mom[:, keep])
    assert torch.equal(adam.state[w2]["exp_avg"], exp_avg[:, keep])
    assert any(p is w2 for p in opt.param_groups[0]["params"])
    Editor(g, net, [opt, adam]).apply(AddUnits("h1", count=1, init="zero"))
    w3 = net.block("h1", "y").weight
    assert torch.equal(opt.state[w3]["momentum_buffer"][:, :4], mom[:, keep])
    assert opt.state[w3]["momentum_buffer"][:, 4].abs().sum() == 0
    net(x).square().sum().backward()
    opt.step(), adam.step()  # the optimizers still run on the new tensors


def test_log_replays_graph_and_weights_exactly(tmp_path):
    g = residual_cnn(depthwise=True)
    g0 = g.copy()
    net = compile(g, seed=0)
    net0 = copy.deepcopy(net)
    ed = Editor(g, net, seed=5)
    ed.apply(AddUnits("c2", count=2, init="random"))
    ed.apply(AddUnits("y", source=[0], init="split", noise=0.1))
    ed.apply(RemoveUnits({"d": [1]}))
    ed.apply(RemoveConnections("s0", "c1", dst=[0, 2], src=[0, 0]))
    ed.apply(AddConnections("s0", "c1", dst=[0], src=[0], init="random"))
    assert ed.log.counts() == {"neuron_creation": 2, "neuron_removal": 1,
                               "synaptic_pruning": 1, "synaptogenesis": 1}
    path = str(tmp_path / "log.json")
    ed.log.save(path)
    log = EditLog.load(path)
    g2, net2 = g0, net0
    net2.graph = g2
    net2.mark_synced()
    log.replay(g2, net2)
    assert to_node_link(g2) == to_node_link(g)
    a, b = net.state_dict(), net2.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert edit_from_dict(ed.log[0].to_dict()) == log[0]


def test_bad_edits_raise_edit_errors_and_leave_the_graph_alone():
    g = mlp([4, 3, 2], seed=0)
    Editor(g).apply(RemoveConnections("x", "h1", dst=[0], src=[0]))
    before = doc(g)
    with pytest.raises(EditError, match="node 'h1' has no unit\\(s\\) \\[9\\]"):
        Editor(g).apply(RemoveUnits({"h1": [9]}))
    with pytest.raises(EditError, match="remove every unit of node 'h1'"):
        Editor(g).apply(RemoveUnits({"h1": [0, 1, 2]}))
    with pytest.raises(EditError, match="already has connection"):
        Editor(g).apply(AddConnections("x", "h1", dst=[1], src=[0]))
    with pytest.raises(EditError, match="has no connection"):
        Editor(g).apply(RemoveConnections("x", "h1", dst=[0], src=[0]))
    with pytest.raises(EditError, match="needs source="):
        Editor(g).apply(AddUnits("h1", init="split"))
    with pytest.raises(EditError, match="is an input"):
        Editor(g).apply(AddUnits("x", count=1))
    with pytest.raises(UnknownNameError, match="AddUnits: could not resolve init policy 'ones' "
                       r"among \['random', 'split', 'zero'\]"):
        Editor(g).apply(AddUnits("h1", init="ones"))
    with pytest.raises(EditError, match="there is no edge x->y; pass edge="):
        Editor(g).apply(AddConnections("x", "y", dst=[0], src=[0]))
    assert doc(g) == before


def test_add_connections_creates_a_skip_block():
    g = mlp([4, 3, 2], seed=0)
    net = compile(g, seed=0)
    x = torch.randn(3, 4)
    before = net(x).detach()
    Editor(g, net).apply(AddConnections("x", "y", dst=[0, 1], src=[2, 3], edge={"kind": "dense"}))
    assert g.edge("x", "y")["mask"].nnz == 2
    assert (net(x) - before).abs().max() == 0
    lint(g)
