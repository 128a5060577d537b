"""Gates at unit level, discretization, pruning at a target sparsity and regrowth."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from units_helpers import residual_cnn

from supernet import compile, lint
from supernet.edits import Editor
from supernet.edits.units import RemoveUnits
from supernet.errors import EditError, SupernetError
from supernet.gates import Decision, Relaxation
from supernet.search.discretize.units import decision_edits as discretize
from supernet.search.discretize.units import grow, prune, set_gated
from supernet.units import mlp


def _gated():
    g = mlp([5, 6, 3], density=0.7, seed=0)
    set_gated(g, units=["h1"], connections=[("x", "h1")])
    return g


def test_gate_groups_and_the_vectorized_mixture():
    g = _gated()
    net = compile(g, seed=0)
    assert net.gates() == {"h1": ["keep", "drop"], "x->h1": ["keep", "drop"]}
    assert net.arch["h1"].shape == (6, 2)
    assert net.arch["x->h1"].shape == (g.edge("x", "h1")["mask"].nnz, 2)
    x = torch.randn(4, 5)
    keep_u, keep_c = torch.rand(6), torch.rand(g.edge("x", "h1")["mask"].nnz)
    gates = {"h1": Decision(torch.stack([keep_u, 1 - keep_u], 1)),
             "x->h1": Decision(torch.stack([keep_c, 1 - keep_c], 1))}
    w1 = torch.zeros(6, 5)
    m = torch.from_numpy(g.edge("x", "h1")["mask"].toarray())
    w1[m] = net.block("x", "h1").weight.detach()[m] * keep_c
    h = torch.relu(x @ w1.t() + net.unit_params("h1").bias.detach()) * keep_u
    want = F.linear(h, net.block("h1", "y").weight.detach(), net.unit_params("y").bias.detach())
    assert (net(x, gates=gates) - want).abs().max() < 1e-5
    net(x).sum().backward()  # default: softmax relaxation, once per forward
    assert net.arch["h1"].grad.abs().sum() > 0 and net.arch["x->h1"].grad.abs().sum() > 0
    assert len(net.arch_parameters()) == 2
    assert all(p.shape != (6, 2) for p in net.weights())


class HardKeep(Relaxation):
    """Straight-through hard decisions: keep where keep > drop."""

    def decide(self, key, alpha):
        soft = torch.softmax(alpha, -1)
        hard = F.one_hot(soft.argmax(-1), 2).to(soft)
        return Decision(hard + soft - soft.detach())


def test_any_relaxation_drives_the_gates_and_discretize_applies_them():
    g = _gated()
    net = compile(g, seed=0)
    net.relaxation = HardKeep()
    with torch.no_grad():
        net.arch["h1"].zero_()
        net.arch["h1"][[1, 4], 1] = 5.0  # drop units 1 and 4
        net.arch["x->h1"].zero_()
        net.arch["x->h1"][:3, 1] = 5.0  # drop the first three connections
    x = torch.randn(3, 5)
    hard_out = net(x).detach()
    n = g.edge("x", "h1")["mask"].nnz
    ed = Editor(g, net)
    for edit in discretize(net):
        ed.apply(edit)
    lint(g)
    assert g.node("h1")["units"].tolist() == [0, 2, 3, 5]
    assert net.arch["h1"].shape == (4, 2)
    assert (net.arch["h1"][:, 1] == 0).all()  # the survivors kept their logits
    assert g.edge("x", "h1")["mask"].nnz < n - 3 + 1
    assert (net(x) - hard_out).abs().max() < 1e-5  # the discrete net is the hard-gated net


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("s", [0.0, 0.37, 0.9])
def test_pruning_at_sparsity_s_leaves_exactly_the_expected_weights(scope, s):
    g = mlp([30, 40, 20, 10], density=0.6, seed=2)
    net = compile(g, seed=0, kernel="sparse")
    edges = [("x", "h1"), ("h1", "h2"), ("h2", "y")]
    nnz = {f"{u}->{v}": g.edge(u, v)["mask"].nnz for u, v in edges}
    rng = np.random.default_rng(0)
    scores = {k: rng.random(n) for k, n in nnz.items()}
    ed = Editor(g, net)
    for edit in prune(g, scores, s, scope=scope):
        ed.apply(edit)
    total = sum(nnz.values())
    if scope == "global":
        expected = total - round(s * total)
    else:
        expected = sum(n - round(s * n) for n in nnz.values())
    assert sum(g.edge(u, v)["mask"].nnz for u, v in edges) == expected
    assert sum(int((net.block(u, v).values != 0).sum()) for u, v in edges) == expected
    kept = np.concatenate([scores[k] for k in nnz])
    if scope == "global" and 0 < s:  # the lowest scores went
        cut = np.sort(kept)[round(s * total) - 1]
        assert all(g.edge(u, v)["mask"].nnz <= (scores[f"{u}->{v}"] > cut).sum()
                   for u, v in edges)


def test_channel_level_pruning_counts_whole_kernels():
    g = residual_cnn()
    net = compile(g, seed=0)
    keys = {"x->s0": 24, "s0->c1": 64, "c1->c2": 64}
    scores = {k: np.arange(n, dtype=float)[::-1] for k, n in keys.items()}
    ed = Editor(g, net)
    for edit in prune(g, scores, 0.5):
        ed.apply(edit)
    left = sum(g.edge(*k.split("->"))["mask"].nnz for k in keys)
    assert left == 152 - 76
    weights = sum(int((net.block(*k.split("->")).effective() != 0).sum()) for k in keys)
    assert weights == left * 9


def test_unit_pruning_removes_whole_dependency_groups():
    g = residual_cnn()
    net = compile(g, seed=0)
    scores = {"c1": np.arange(8.0), "c2": np.arange(8.0), "y": np.zeros(8)}
    (edit,) = prune(g, scores, 0.25, what="units")
    Editor(g, net).apply(edit)
    # 8 groups for c1 + 8 stream groups (c2, y, s0): 4 lowest groups go, stream first
    assert len(g.node("c2")["units"]) + len(g.node("c1")["units"]) == 12
    assert len(g.node("y")["units"]) == len(g.node("s0")["units"]) == len(g.node("c2")["units"])
    lint(g)


def test_grow_adds_zero_initialized_connections():
    g = mlp([8, 10, 4], density=0.3, seed=1)
    net = compile(g, seed=0)
    x = torch.randn(5, 8)
    before = net(x).detach()
    n = g.edge("x", "h1")["mask"].nnz
    dense = np.random.default_rng(0).random((10, 8))
    (edit,) = grow(g, {"x->h1": dense}, 7)
    Editor(g, net).apply(edit)
    assert g.edge("x", "h1")["mask"].nnz == n + 7
    assert (net(x) - before).abs().max() == 0
    with pytest.raises(EditError, match="grow scores have shape"):
        grow(g, {"x->h1": np.zeros((3, 3))}, 1)


def test_errors_name_the_problem():
    g = mlp([4, 3], seed=0)
    with pytest.raises(EditError, match="3 scores for 12 connections"):
        prune(g, {"x->y": np.zeros(3)}, 0.5)
    with pytest.raises(EditError, match="sparsity must be in"):
        prune(g, {"x->y": np.zeros(12)}, 1.5)
    net = compile(g)
    with pytest.raises(EditError, match="no gate group 'y'"):
        discretize(net, {"y": torch.zeros(3)})
    set_gated(g, units=["y"])
    net = compile(g)
    net.relaxation = None
    with pytest.raises(SupernetError, match="no relaxation"):
        net(torch.randn(2, 4))


class WithTemperature(Relaxation):
    """A relaxation that attaches an architecture parameter of its own."""

    def attach(self, module):
        module.arch["temperature"] = torch.nn.Parameter(torch.ones(1))

    def decide(self, key, alpha):
        return Decision(torch.softmax(alpha, -1))


def test_parameters_attached_by_a_relaxation_survive_edits():
    g = _gated()
    net = compile(g, seed=0)
    net.relaxation = WithTemperature()
    net.relaxation.attach(net)
    t = net.arch["temperature"]
    Editor(g, net).apply(RemoveUnits({"h1": [0]}))
    assert net.arch["temperature"] is t and net.arch["h1"].shape == (5, 2)
    assert {type(e).__name__ for e in discretize(net)} <= {"RemoveUnits", "RemoveConnections"}


# ------------------------------------------------------------ the obvious unit-pruning call
def _mlp_and_net():
    g = mlp([12, 20, 16, 10], seed=0)
    return g, compile(g, seed=0)


def test_unit_pruning_with_connection_scores_sums_them_into_units():
    from supernet.search import scores
    g, net = _mlp_and_net()
    by_edge, by_unit = scores.magnitude(net), scores.magnitude(net, what="units")
    (a,) = prune(g, by_edge, 0.5, what="units")
    (b,) = prune(g, by_unit, 0.5, what="units")
    assert a.units == b.units  # |w| per connection summed per unit is the units' L1 norm


def test_unit_pruning_keeps_inputs_and_outputs_unless_asked():
    from supernet.search import scores
    g, net = _mlp_and_net()
    s = scores.magnitude(net, what="units")
    assert "y" in s
    (edit,) = prune(g, s, 0.5, what="units")
    assert set(edit.units) == {"h1", "h2"}
    assert sum(map(len, edit.units.values())) == 18  # half of the 36 hidden units
    (edit,) = prune(g, s, 0.5, what="units", protect=())
    assert "y" in edit.units  # asked for: the outputs are scored like the rest
    (edit,) = prune(g, s, 0.5, what="units", protect=["h1", "y"])
    assert set(edit.units) == {"h2"}


@pytest.mark.parametrize("what", ["units", "connections"])
def test_global_scope_never_empties_a_layer(what):
    g, net = _mlp_and_net()
    edges = [("x", "h1"), ("h1", "h2"), ("h2", "y")]
    if what == "units":  # h1's units score far below h2's: a plain global cut empties h1
        scores = {"h1": np.zeros(20), "h2": np.full(16, 5.0) + np.arange(16)}
    else:
        scores = {"x->h1": np.zeros(240), "h1->h2": np.ones(320), "h2->y": np.ones(160)}
    sizes = ({n: len(g.node(n)["units"]) for n in scores} if what == "units" else
             {k: g.edge(*k.split("->"))["mask"].nnz for k in scores})
    total = sum(sizes.values())
    s = 0.6
    ed = Editor(g, net)
    for edit in prune(g, scores, s, what=what):
        ed.apply(edit)
    left = ({n: len(g.node(n)["units"]) for n in scores} if what == "units" else
            {f"{u}->{v}": g.edge(u, v)["mask"].nnz for u, v in edges})
    assert sum(left.values()) == total - round(s * total)  # still exact
    first = "h1" if what == "units" else "x->h1"
    assert left[first] == 1  # the lowest layer went down to its floor, not to zero
    assert net(torch.randn(2, 12)).shape == (2, 10)


def test_a_fractional_floor_keeps_that_share_of_every_layer():
    g, _ = _mlp_and_net()
    scores = {"h1": np.zeros(20), "h2": np.ones(16)}
    (edit,) = prune(g, scores, 0.5, what="units", floor=0.25)
    assert len(edit.units["h1"]) == 15  # 20 - ceil(0.25 * 20)
    assert len(edit.units["h2"]) == 3  # the rest of the 18 from the next lowest
    with pytest.raises(EditError, match="floor"):
        prune(g, scores, 0.9, what="units", floor=0.5)


def test_layer_scope_prunes_every_node_by_its_own_ranking():
    g, _ = _mlp_and_net()
    scores = {"h1": np.arange(20.0), "h2": np.arange(16.0) + 100}
    (edit,) = prune(g, scores, 0.25, what="units", scope="layer")
    assert edit.units == {"h1": [0, 1, 2, 3, 4], "h2": [0, 1, 2, 3]}


@pytest.mark.parametrize("bad,match", [
    ({"x->h3": np.zeros(3)}, r"'x->h3', which is no edge.*did you mean.*'x->h1'"),
    ({"h3": np.zeros(3)}, r"'h3', which is no node.*did you mean.*'h1'"),
    ({"h1": np.zeros(20), "x->h1": np.zeros(240)}, "keyed by node or all by edge"),
    ({"h1": np.zeros(7)}, r"node 'h1'.*\(20\), got 7"),
])
def test_unit_scores_for_another_graph_fail_naming_the_key(bad, match):
    g, _ = _mlp_and_net()
    with pytest.raises(EditError, match=match):
        prune(g, bad, 0.5, what="units")


@pytest.mark.parametrize("kw,match", [
    ({"sparsity": 1.0}, r"sparsity must be in \[0, 1\), got 1.0"),
    ({"sparsity": -0.1}, r"sparsity must be in \[0, 1\)"),
    ({"sparsity": "half"}, r"sparsity must be in \[0, 1\), got 'half'"),
    ({"scope": "net"}, "scope is 'global' or 'layer', got 'net'"),
    ({"what": "neurons"}, "what is 'connections' or 'units', got 'neurons'"),
    ({"floor": -1}, "floor must be >= 0"),
    ({"floor": 1.5}, r"fractional floor must be in \[0, 1\)"),
])
def test_bad_pruning_arguments_fail_before_anything_changes(kw, match):
    g, _ = _mlp_and_net()
    args = {"sparsity": 0.5, **kw}
    with pytest.raises(EditError, match=match):
        prune(g, {"x->h1": np.zeros(240)}, args.pop("sparsity"), **args)
    assert g.edge("x", "h1")["mask"].nnz == 240
