"""End-of-search discretization: constraints, recorded edits, replay, no gate left."""

import pytest
import torch
from search_graphs import darts_like

from supernet import Graph, compile, lint
from supernet.compiler.standalone import standalone
from supernet.edits import EditLog, Editor, RemoveEdge, RemoveOp
from supernet.errors import SearchError
from supernet.search import ChoiceSpace, derive, discretize
from supernet.search.relaxations import Sigmoid, gate_probabilities, use_relaxation


def randomize(net, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.arch_parameters():
            p.copy_(torch.randn(p.shape, generator=gen))


def expected(graph, net):
    """The constrained argmax computed independently: per template node, the 2 in-edges of
    highest best-non-none probability, each with that op."""
    probs = gate_probabilities(net)
    out = {}
    for cell in ("normal", "reduce"):
        t = graph.cells[cell]
        for v in ["n0", "n1"]:
            scored = []
            for u, _ in t.in_edges(v):
                ops = t.edge(u, v)["ops"]
                p = probs[f"{cell}:{u}->{v}"][0]
                best = max((i for i, o in enumerate(ops) if o != "none"), key=lambda i: p[i])
                scored.append((float(p[best]), u, ops[best]))
            scored.sort(reverse=True)
            out[(cell, v)] = {u: op for _, u, op in scored[:2]}
    return out


def test_argmax_top2_satisfies_constraints_lints_and_replays():
    g = darts_like()
    original = g.copy()
    net = compile(g)
    randomize(net)
    want = expected(g, net)
    editor = Editor(g, net)
    edits = discretize(g, net, editor)
    lint(g)
    assert net.relaxation is None and len(net.arch) == 0 and net.gates() == {}
    for (cell, v), kept in want.items():
        t = g.cells[cell]
        got = {u: t.edge(u, v)["ops"] for u, _ in t.in_edges(v)}
        assert got == {u: [op] for u, op in kept.items()}
    assert all(isinstance(e, (RemoveOp, RemoveEdge)) for e in edits)
    # the log replays the discretization, through a file too
    log = EditLog.load(_save(editor.log))
    replayed = log.replay(original.copy())
    assert replayed.same_as(g)
    # the module runs with no relaxation, as the standalone network does
    net.eval()
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(net(x), standalone(g, net)(x))


def _save(log, _dir=[]):
    import os
    import tempfile

    path = os.path.join(tempfile.mkdtemp(), "log.json")
    log.save(path)
    return path


def test_derive_lists_edits_without_applying_them():
    g = darts_like()
    net = compile(g)
    randomize(net, 1)
    version = g.version
    edits = derive(g, net)
    assert g.version == version and net.gates()
    # 2 nodes x (2 and 3 in-edges): 1 dropped edge per template, 6 ops pruned per kept edge
    drops = [e for e in edits if isinstance(e, RemoveEdge)]
    prunes = [e for e in edits if isinstance(e, RemoveOp)]
    assert len(drops) == 2 and len(prunes) == 2 * 4 * 5
    assert {e.cell for e in edits} == {"normal", "reduce"}


def test_without_max_inputs_every_edge_stays_and_none_may_win():
    g = Graph("layer", name="nb201")
    g.add_input("x", channels=4)
    for n in ("a", "b"):
        g.add_node(n, channels=4)
    g.add_edge("x", "a", ["none", "skip_connect", "conv_3x3"])
    g.add_edge("x", "b", ["none", "skip_connect", "conv_3x3"])
    g.add_edge("a", "b", ["none", "skip_connect", "conv_3x3"])
    g.set_outputs(["b"])
    g.meta["constraints"] = {"": {"max_inputs": None, "exclude": []}}
    net = compile(g)
    with torch.no_grad():
        net.arch["x->a"].copy_(torch.tensor([[0.0, 1.0, 0.0]]))
        net.arch["x->b"].copy_(torch.tensor([[3.0, 1.0, 0.0]]))
        net.arch["a->b"].copy_(torch.tensor([[0.0, 0.0, 2.0]]))
    discretize(g, net)
    assert [g.edge(u, v)["ops"] for u, v in [("x", "a"), ("x", "b"), ("a", "b")]] == [
        ["skip_connect"], ["none"], ["conv_3x3"]]


def test_excluded_ops_never_win_and_everything_excluded_fails():
    g = darts_like()
    net = compile(g)
    with torch.no_grad():
        for p in net.arch_parameters():
            p.zero_()
            p[0, 0] = 10.0  # 'none' has by far the highest weight everywhere
    discretize(g, net)
    for t in g.cells.values():
        assert all(d["ops"] != ["none"] for _, _, d in t.nx.edges(data=True))
    g = darts_like(ops=["none", "skip_connect"])
    g.meta["constraints"]["normal"]["exclude"] = ["none", "skip_connect"]
    net = compile(g)
    with pytest.raises(SearchError, match=r"every candidate \['none', 'skip_connect'\] is excluded"):
        derive(g, net)


def test_ranking_uses_the_relaxation_weights():
    g = Graph("layer", name="rank")
    g.add_input("x", channels=4)
    g.add_node("a", channels=4)
    g.add_edge("x", "a", "conv_3x3")
    g.add_node("out", channels=4)
    g.add_edge("x", "out", ["conv_3x3", "skip_connect", "conv_1x1"])
    g.add_edge("a", "out", ["conv_3x3", "skip_connect", "conv_1x1"])
    g.set_outputs(["out"])
    g.meta["constraints"] = {"": {"max_inputs": 1, "exclude": []}}
    net = compile(g)
    with torch.no_grad():  # sigmoid prefers x->out (0.95 > 0.88), softmax a->out (1.0 > 0.33)
        net.arch["x->out"].copy_(torch.tensor([[3.0, 3.0, 3.0]]))
        net.arch["a->out"].copy_(torch.tensor([[-10.0, 2.0, -10.0]]))
    space = ChoiceSpace(g, net)
    assert space.best(gate_probabilities(net))[("", "x", "out")] is None
    use_relaxation(net, Sigmoid())
    assert space.best(gate_probabilities(net)) == {("", "x", "out"): "conv_3x3",
                                                   ("", "a", "out"): None}


def test_bad_constraints_are_named():
    g = darts_like()
    g.meta["constraints"] = {"normal": {"max_input": 2}}
    with pytest.raises(SearchError, match=r"meta\['constraints'\]\['normal'\] has unknown key"):
        ChoiceSpace(g, compile(g))
    g.meta["constraints"] = {"normal": {"max_inputs": 0}}
    with pytest.raises(SearchError, match=r"'max_inputs'\] must be a positive int"):
        ChoiceSpace(g, compile(g))


def test_dangling_nodes_are_removed_with_recorded_edits():
    g = Graph("layer", name="dangle")
    g.add_input("x", channels=4)
    g.add_node("a", channels=4)
    g.add_edge("x", "a", "conv_3x3")
    g.add_node("out", channels=4)
    g.add_edge("x", "out", ["conv_3x3", "skip_connect"])
    g.add_edge("a", "out", ["conv_3x3", "skip_connect"])
    g.set_outputs(["out"])
    g.meta["constraints"] = {"": {"max_inputs": 1, "exclude": []}}
    net = compile(g)
    with torch.no_grad():
        net.arch["x->out"].copy_(torch.tensor([[5.0, 0.0]]))
    edits = discretize(g, net)
    assert "a" not in g and edits[-1].kind == "remove_node"
    lint(g)
