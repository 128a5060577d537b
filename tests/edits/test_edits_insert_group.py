"""InsertGroup (Net2DeeperNet): a new hidden group on an edge, identity-initialized, as a
recorded, replayable and undoable edit that the optimizer follows."""

import copy

import pytest
import torch

from supernet import compile, lint
from supernet.edits import EditLog, Editor, InsertGroup, Undo
from supernet.edits.units import AddUnits, RemoveConnections
from supernet.errors import EditError
from supernet.search.scores import entry_weights
from supernet.units import add_group, add_input, connect, mlp


def _trained(g, kernel="auto", seed=0, steps=2):
    torch.manual_seed(seed)
    net = compile(g, seed=seed, kernel=kernel)
    opt = torch.optim.SGD(net.weights(), lr=0.05, momentum=0.9)
    x = torch.randn(16, g.node("x")["width"])
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), torch.arange(16) % 3).backward()
        opt.step()
    return net, opt, x


@pytest.mark.parametrize("kernel,connect_as", [("dense", "full"), ("sparse", "full"),
                                               ("auto", "diagonal")])
def test_identity_insertion_after_relu_keeps_the_function_exactly(kernel, connect_as):
    g = mlp([5, 70, 3], density=0.5, seed=0)
    net, opt, x = _trained(g, kernel)
    with torch.no_grad():
        before = net(x)
    old = net.block("h1", "y")
    momentum = opt.state[old.storage()]["momentum_buffer"].clone()
    res = Editor(g, net, opt).apply(InsertGroup("h1", "y", node="h2", connect=connect_as))
    lint(g)
    assert res.report["exact"] and res.report["created"]["h2"].tolist() == list(range(70))
    with torch.no_grad():
        assert torch.equal(net(x), before)
    inner, outer = net.block("h1", "h2"), net.block("h2", "y")
    assert torch.equal(inner.effective(), torch.eye(70))
    assert g.edge("h1", "h2")["mask"].nnz == (70 * 70 if connect_as == "full" else 70)
    assert g.edge("h2", "y")["mask"] is not None and torch.equal(outer.effective(),
                                                                 old.effective())
    held = {id(p) for grp in opt.param_groups for p in grp["params"]}
    assert held == {id(p) for p in net.weights()}  # new weights join, the old block left
    moved = opt.state[outer.storage()]["momentum_buffer"]
    assert torch.equal(entry_weights(outer, moved), entry_weights(old, momentum))
    opt.zero_grad()  # and the new layer trains
    torch.nn.functional.cross_entropy(net(x), torch.arange(16) % 3).backward()
    opt.step()
    assert not torch.equal(inner.effective(), torch.eye(70))


def test_what_holds_for_other_activations_and_signed_inputs():
    g = mlp([4, 6, 3], act="tanh", seed=0)
    net, _, x = _trained(g)
    with torch.no_grad():
        before = net(x)
    ed = Editor(g, net)
    assert ed.apply(InsertGroup("h1", "y", node="t", act="identity")).report["exact"]
    with torch.no_grad():  # a linear identity layer is exact after any activation
        assert torch.allclose(net(x), before, atol=1e-6)
    res = ed.apply(InsertGroup("t", "y", node="r", act="relu"))  # ReLU of tanh values: not
    assert not res.report["exact"]
    with torch.no_grad():
        assert (net(x) - before).abs().max() > 1e-3
    g2 = mlp([4, 6, 3], seed=0)
    net2, _, _ = _trained(g2)
    res = Editor(g2, net2).apply(InsertGroup("x", "h1", node="h0"))  # ReLU of signed inputs
    assert not res.report["exact"]


def _edit_sequence():
    return [AddUnits("h1", count=2, init="zero"),
            InsertGroup("h1", "y", node="h2", noise=0.01),
            RemoveConnections("h2", "y", dst=[0, 1], src=[0, 3]),
            InsertGroup("x", "h1", node="h0", act="identity", connect="diagonal")]


def test_log_replays_the_same_graph_and_weights(tmp_path):
    g = mlp([5, 8, 3], seed=0)
    start = g.copy()
    net = compile(g, seed=3)
    ed = Editor(g, net, seed=7)
    for e in _edit_sequence():
        ed.apply(e)
    path = tmp_path / "log.json"
    ed.log.save(str(path))
    assert [e.kind for e in EditLog.load(str(path))].count("insert_group") == 2
    again = start.copy()
    net2 = compile(again, seed=3)
    EditLog.load(str(path)).replay(again, net2)
    assert again.same_as(g)
    for (n1, p1), (n2, p2) in zip(net.state_dict().items(), net2.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1


def test_undo_restores_graph_module_and_optimizer():
    g = mlp([5, 8, 3], seed=0)
    net, opt, x = _trained(g)
    saved_graph, saved = g.copy(), copy.deepcopy(net.state_dict())
    with torch.no_grad():
        before = net(x)
    state_before = {id(p): s for p, s in opt.state.items()}
    undo = Undo(g, net, [opt])
    Editor(g, net, opt).apply(InsertGroup("h1", "y", node="h2"))
    undo.restore()
    assert g.same_as(saved_graph) and not net.is_stale()
    assert {k: v.shape for k, v in net.state_dict().items()} == \
        {k: v.shape for k, v in saved.items()}
    with torch.no_grad():
        assert torch.equal(net(x), before)
    assert {id(p): s for p, s in opt.state.items()} == state_before


def test_a_failing_module_step_leaves_everything_as_it_was(monkeypatch):
    import supernet.edits.units as units_mod

    g = mlp([5, 8, 3], seed=0)
    net, opt, x = _trained(g)
    saved_graph = g.copy()
    with torch.no_grad():
        before = net(x)
    params = [list(grp["params"]) for grp in opt.param_groups]

    def broken(*a, **k):
        raise EditError("injected failure")

    monkeypatch.setattr(units_mod, "_set_entries", broken)
    ed = Editor(g, net, opt)
    with pytest.raises(EditError, match="injected"):
        ed.apply(InsertGroup("h1", "y", node="h2"))
    assert g.same_as(saved_graph) and len(ed.log) == 0
    assert [list(grp["params"]) for grp in opt.param_groups] == params
    with torch.no_grad():
        assert torch.equal(net(x), before)


def test_bad_insertion_points_name_the_edge_and_the_choices():
    g = mlp([4, 6, 3], seed=0)
    add_group(g, "s", 6)
    connect(g, "h1", "s", kind="identity")
    g.set_outputs(["y", "s"])
    net = compile(g)
    ed = Editor(g, net)
    saved = g.copy()
    with pytest.raises(EditError, match=r"x->y: there is no such edge.*'x->h1'"):
        ed.apply(InsertGroup("x", "y", node="n"))
    with pytest.raises(EditError, match="kind 'identity'.*'dense' edge only"):
        ed.apply(InsertGroup("h1", "s", node="n"))
    with pytest.raises(EditError, match="new node name.*exists already"):
        ed.apply(InsertGroup("h1", "y", node="x"))
    with pytest.raises(EditError, match=r"connect must be one of \['full', 'diagonal'\]"):
        ed.apply(InsertGroup("h1", "y", node="n", connect="sparse"))
    with pytest.raises(EditError, match="init must be 'identity' or 'random'"):
        ed.apply(InsertGroup("h1", "y", node="n", init="split"))
    with pytest.raises(EditError, match="act 'rellu' is not one of"):
        ed.apply(InsertGroup("h1", "y", node="n", act="rellu"))
    assert g.same_as(saved) and len(ed.log) == 0


def test_an_input_group_feeds_a_new_group_too():
    from supernet import Graph

    g = Graph("neuron")
    add_input(g, "x", 3)
    add_group(g, "y", 2)
    connect(g, "x", "y", density=0.5, seed=0)
    g.set_outputs(["y"])
    net = compile(g, seed=0)
    x = torch.rand(4, 3)  # non-negative features: ReLU(I x) = x
    with torch.no_grad():
        before = net(x)
    Editor(g, net).apply(InsertGroup("x", "y", node="h"))
    with torch.no_grad():
        assert torch.equal(net(x), before)
    assert g.edge("h", "y")["mask"].nnz == 3
