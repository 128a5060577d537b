"""FairDARTS as its paper and code define it: sigmoid gates without ``none``, the zero-one
loss, and the 0.85 threshold discretization with a variable number of inputs per node.

The expected genotypes come from the reference's rule written out here from its
description (xiaomi-automl/FairDARTS ``fairdarts/utils.py`` ``parse``): per node, for
``threshold_sparse`` the two in-edges of highest best weight, each keeping its best op if
that weight is >= 0.85; for ``threshold_edge`` every in-edge keeping its two best ops that
reach 0.85; entries are listed even when they read a node that keeps nothing.
"""

from collections import Counter

import pytest
import torch
from search_graphs import data, small_config

from search_spaces import create_space, decode, encode
from search_spaces.darts import parse_genotype
from search_spaces.darts.genotype import FAIR_PRIMITIVES
from supernet import compile, lint
from supernet.edits import Editor
from supernet.errors import ConfigError, SearchError
from supernet.search import BilevelSearch, create_strategy
from supernet.search.choices.layer import LayerChoiceSpace
from supernet.search.discretize import DISCRETIZATIONS, FairThreshold, threshold_discretize
from supernet.search.relaxations import Sigmoid, use_relaxation

STATE = {"p0": 0, "p1": 1}


def state(n):
    return STATE.get(n, int(n[1:]) if n.startswith("n") else n)


def space(steps=3):
    g = create_space("darts", C=4, layers=3, steps=steps, multiplier=steps, num_classes=3)
    create_strategy("fairdarts").prepare(g)  # FairDARTS' candidates: no none
    return g


def set_weights(net, g, weights):
    """Set every gate of ``net`` to the sigmoid weights ``weights[(cell, u, v)]``."""
    with torch.no_grad():
        for (cell, u, v), grp, e in LayerChoiceSpace(g, net).edges():
            for k in e.keys:
                net.arch[k].copy_(torch.logit(torch.tensor([weights[(cell, u, v)]])))


def random_weights(g, seed):
    gen = torch.Generator().manual_seed(seed)
    return {(cell, u, v): torch.rand(7, generator=gen).tolist()
            for cell in ("normal", "reduce") for u, v in g.cells[cell].gate_edges()}


def reference_parse(weights, cell, steps, mode, threshold=0.85):
    """The reference's rule on ``W[node][input]`` (``(op, node, input)`` entries)."""
    gene = []
    for i in range(2, steps + 2):
        W = {j: weights[(cell, "p0" if j == 0 else "p1" if j == 1 else f"n{j}", f"n{i}")]
             for j in range(i)}
        if mode == "sparse":
            for j in sorted(range(i), key=lambda j: -max(W[j]))[:2]:
                k = max(range(7), key=lambda k: (W[j][k], -k))
                if W[j][k] >= threshold:
                    gene.append((FAIR_PRIMITIVES[k], i, j))
        else:
            for j in range(i):
                for k, w in sorted(enumerate(W[j]), key=lambda kw: kw[1])[-2:]:
                    if w >= threshold:
                        gene.append((FAIR_PRIMITIVES[k], i, j))
    return gene


def same_content(a, b):
    """The same nodes and edges with the same attributes (in any order)."""
    return (sorted(a.nx.nodes(data=True)) == sorted(b.nx.nodes(data=True))
            and sorted(a.nx.edges(data=True)) == sorted(b.nx.edges(data=True)))


def test_the_strategy_is_the_reference():
    s = create_strategy("fairdarts")
    assert isinstance(s.discretization, FairThreshold)
    assert (s.discretization.threshold, s.discretization.mode) == (0.85, "sparse")
    assert isinstance(s.relaxation, Sigmoid) and s.relaxation.w01 == 10.0
    assert create_strategy("fairdarts", mode="edge").discretization.mode == "edge"
    assert DISCRETIZATIONS.resolve("fair_threshold") is FairThreshold


def test_fairdarts_never_has_none_among_its_candidates():
    g = create_space("darts", C=4, layers=3, steps=2, multiplier=2, num_classes=3)
    assert all("none" in g.cells["normal"].edge(u, v)["ops"]
               for u, v in g.cells["normal"].gate_edges())
    create_strategy("fairdarts").prepare(g)
    for cell in ("normal", "reduce"):
        edges = g.cells[cell].gate_edges()
        assert len(edges) == 5
        assert all(g.cells[cell].edge(u, v)["ops"] == FAIR_PRIMITIVES for u, v in edges)


def test_threshold_keeps_exactly_the_ops_that_reach_it():
    g = space()
    net = compile(g)
    use_relaxation(net, Sigmoid())
    low = [0.1] * 7

    def w(**ops):
        out = list(low)
        for name, value in ops.items():
            out[FAIR_PRIMITIVES.index(name)] = value
        return out

    weights = {key: low for key in random_weights(g, 0)}
    weights.update({
        # node 2: both inputs (several inputs per node)
        ("normal", "p0", "n2"): w(sep_conv_3x3=0.9, skip_connect=0.84),
        ("normal", "p1", "n2"): w(skip_connect=0.95),
        # node 3: nothing reaches 0.85 (a node with none), though it feeds node 4 strongly
        ("normal", "p0", "n3"): w(dil_conv_3x3=0.84),
        ("normal", "n3", "n4"): w(skip_connect=0.99),
        # node 4: two ops on p0 over the threshold; n2 at 0.86 is third in rank
        ("normal", "p0", "n4"): w(sep_conv_3x3=0.9, max_pool_3x3=0.88),
        ("normal", "n2", "n4"): w(dil_conv_5x5=0.86),
        ("reduce", "p0", "n2"): w(max_pool_3x3=0.97),
    })
    set_weights(net, g, weights)
    threshold_discretize(g, net, Editor(g, net))
    lint(g)
    t = g.cells["normal"]
    assert "n3" not in t.nx and [u for u, _ in t.in_edges("out")] == ["n2", "n4"]
    assert [(u, t.edge(u, "n2")["ops"]) for u, _ in t.in_edges("n2")] == [
        ("p0", ["sep_conv_3x3"]), ("p1", ["skip_connect"])]
    assert [(u, t.edge(u, "n4")["ops"]) for u, _ in t.in_edges("n4")] == [
        ("p0", ["sep_conv_3x3"])]  # sparse: one op per edge, n3's skip read an absent node
    text = encode(g)
    assert text == (
        "Genotype(normal=[('sep_conv_3x3', 2, 0), ('skip_connect', 2, 1), "
        "('sep_conv_3x3', 4, 0), ('skip_connect', 4, 3)], normal_concat=range(2, 5), "
        "reduce=[('max_pool_3x3', 2, 0)], reduce_concat=range(2, 5))")
    for cell in ("normal", "reduce"):
        assert sorted(getattr(parse_genotype(text), cell)) == sorted(
            reference_parse(weights, cell, 3, "sparse"))


def test_edge_mode_keeps_two_ops_on_one_edge():
    g = space(steps=2)
    net = compile(g)
    use_relaxation(net, Sigmoid())
    weights = {key: [0.2] * 7 for key in random_weights(g, 0)}
    both = [0.2] * 7
    both[FAIR_PRIMITIVES.index("sep_conv_3x3")] = 0.9
    both[FAIR_PRIMITIVES.index("dil_conv_5x5")] = 0.95
    three = [0.9] * 7  # all seven reach it: the two best stay
    three[FAIR_PRIMITIVES.index("avg_pool_3x3")] = 0.99
    weights.update({("normal", "p0", "n2"): both, ("normal", "p1", "n2"): three,
                    ("normal", "n2", "n3"): both, ("reduce", "p1", "n2"): both})
    set_weights(net, g, weights)
    before = net.steps["cell0"].cell.edge_module("p0", "n2")["dil_conv_5x5"].op[1].weight.clone()
    threshold_discretize(g, net, Editor(g, net), mode="edge")
    t = g.cells["normal"]
    assert t.edge("p0", "n2")["ops"] == ["dil_conv_5x5"]  # the best keeps the edge ...
    assert t.edge("p0", "n2_0_1")["ops"] == ["sep_conv_3x3"]  # ... the other a branch
    assert t.edge("p1", "n2")["ops"] == ["avg_pool_3x3"]
    assert t.edge("p1", "n2_1_1")["ops"] == ["dil_conv_5x5"]  # a tie: the later op
    after = net.steps["cell0"].cell.edge_module("p0", "n2")["dil_conv_5x5"].op[1].weight
    assert torch.equal(before, after)  # the kept op keeps its trained weights
    parsed = parse_genotype(encode(g))
    for cell in ("normal", "reduce"):
        assert Counter(getattr(parsed, cell)) == Counter(
            reference_parse(weights, cell, 2, "edge"))
    d = decode("darts", encode(g), C=4, layers=3, num_classes=3)
    assert encode(d) == encode(g) and same_content(d.cells["normal"], g.cells["normal"])
    x = torch.randn(2, 3, 8, 8)
    assert compile(d)(x).shape == (2, 3)


@pytest.mark.parametrize("mode", ["sparse", "edge"])
@pytest.mark.parametrize("seed", [1, 2])
def test_random_weights_give_the_reference_genotype(mode, seed):
    g = space(steps=4)
    net = compile(g)
    use_relaxation(net, Sigmoid())
    weights = random_weights(g, seed)
    set_weights(net, g, weights)
    threshold_discretize(g, net, Editor(g), mode=mode)  # the graph alone: faster
    parsed = parse_genotype(encode(g))
    for cell in ("normal", "reduce"):
        assert Counter(getattr(parsed, cell)) == Counter(
            reference_parse(weights, cell, 4, mode))
        t = g.cells[cell]
        kept = {state(n) for n in t.nx if n.startswith("n") and "_" not in n}
        assert kept == set(parsed.present(cell))  # the nodes the reference computes


def test_the_search_ends_with_the_threshold_genotype():
    g = create_space("darts", C=4, layers=3, steps=2, multiplier=2, num_classes=3)
    s = BilevelSearch(g, data(n=8), strategy="fairdarts",
                      config=small_config(epochs=1, steps_per_epoch=1, batch_size=4,
                                          arch_lr=1e-9))
    for cell in ("normal", "reduce"):  # the search's candidates: no none
        t = s.graph.cells[cell]
        assert all(t.edge(u, v)["ops"] == FAIR_PRIMITIVES for u, v in t.gate_edges())
    assert {tuple(a.shape) for a in s.module.arch_parameters()} == {(1, 7)}
    weights = {key: [0.05] * 7 for key in random_weights(s.graph, 0)}
    weights[("normal", "p1", "n2")] = [0.05, 0.05, 0.05, 0.05, 0.05, 0.95, 0.05]
    weights[("normal", "n2", "n3")] = [0.05, 0.05, 0.05, 0.97, 0.05, 0.05, 0.05]
    weights[("reduce", "p0", "n2")] = [0.96, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]
    set_weights(s.module, s.graph, weights)
    result = s.run()
    assert encode(result.graph) == (
        "Genotype(normal=[('dil_conv_3x3', 2, 1), ('sep_conv_3x3', 3, 2)], "
        "normal_concat=range(2, 4), reduce=[('max_pool_3x3', 2, 0)], "
        "reduce_concat=range(2, 4))")
    assert result.module.relaxation is None and not result.module.gates()


def test_an_output_left_without_input_fails_clearly():
    g = space(steps=2)
    net = compile(g)
    use_relaxation(net, Sigmoid())
    set_weights(net, g, {key: [0.5] * 7 for key in random_weights(g, 0)})
    with pytest.raises(SearchError, match=r"cell 'normal': output 'out' keeps no input"):
        threshold_discretize(g, net, Editor(g, net))


def test_bad_options_are_refused():
    g = space(steps=2)
    net = compile(g)
    with pytest.raises(SearchError, match=r"keep\[\('normal', 'p0', 'n2'\)\] = \['conv_9x9'\]"):
        threshold_discretize(g, net, keep={("normal", "p0", "n2"): ["conv_9x9"]})
    with pytest.raises(ConfigError, match=r"threshold=1.5 must be a number in \(0, 1\)"):
        FairThreshold(threshold=1.5)
    with pytest.raises(ConfigError, match=r"mode='edges' is not one of \['sparse', 'edge'\]"):
        create_strategy("fairdarts", mode="edges")
    s = create_strategy(relaxation="sigmoid", discretization={"name": "fair_threshold",
                                                              "threshold": 0.9})
    assert s.discretization.threshold == 0.9
