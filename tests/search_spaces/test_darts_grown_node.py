"""A node grown in a DARTS cell (GrowNode) stays expressible: the discretized cell encodes as
a genotype with one more node, whose evaluation network has the grown cell's structure; a
growth the genotype cannot hold is refused, naming the limit."""

import pytest
import torch

import supernet
from search_spaces.darts import darts, encode_genotype, network_graph, parse_genotype
from search_spaces.darts.cells import cell_states
from supernet.edits import Editor
from supernet.errors import SearchError
from supernet.search.base import SearchState
from supernet.search.creation.layer import GrowNode
from supernet.search.discretize.base import discretize

OPS = ["none", "sep_conv_3x3", "skip_connect"]


def _grown(sources):
    g = darts(C=4, layers=3, steps=2, multiplier=2, ops=OPS)
    net = supernet.compile(g)
    state = SearchState(g, net, Editor(g, net), epoch=1)
    GrowNode("normal", "n9", sources, "n3", ["sep_conv_3x3", "skip_connect"],
             ["none", "sep_conv_3x3"], at=1).on_epoch_end(state)
    return g, net


def _structure(t):
    """``{(input state, state, op)}`` of a discretized cell, by genotype index."""
    k = cell_states(t)
    return {(k[u], k[v], t.edge(u, v)["ops"][0]) for u, v in t.nx.edges
            if u in k and v in k and v not in ("p0", "p1")}


def test_a_grown_node_encodes_and_builds_as_a_genotype_with_one_more_node():
    g, net = _grown(["p0", "n2"])
    with torch.no_grad():  # the grown node keeps skip-connects, its out-edge a sep conv
        for k, p in net.arch.items():
            p.zero_()
            p[0, 1] = 1.0 if "n9" in k else 0.5
    discretize(g, net)
    text = encode_genotype(g)
    genotype = parse_genotype(text)
    assert genotype.steps("normal") == 3 and genotype.steps("reduce") == 2
    # n9 reads p0 and n2 and feeds n3: numbered between them, n3 after it
    assert cell_states(g.cells["normal"]) == {"p0": 0, "p1": 1, "n2": 2, "n9": 3, "n3": 4}
    assert genotype.normal[2:4] == [("skip_connect", 0), ("skip_connect", 2)]
    assert ("sep_conv_3x3", 3) in genotype.normal[4:] and genotype.concat("normal") == [2, 4]
    ev = network_graph(text, C=4, layers=3)
    assert _structure(ev.cells["normal"]) == _structure(g.cells["normal"])
    assert supernet.compile(ev)(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_growth_the_genotype_cannot_hold_is_refused():
    with pytest.raises(SearchError, match=r"keep max_inputs=2 inputs each .*a DARTS genotype "
                                          r"lists two \(op, input\) pairs per node.*give at "
                                          r"least 2 sources"):
        _grown(["p0"])
