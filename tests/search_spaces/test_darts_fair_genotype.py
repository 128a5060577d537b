"""Genotypes in the FairDARTS form: ``(op, node, input)`` triples, any number per node.

The oracle is a hand-written cell of the reference's semantics (xiaomi-automl/FairDARTS
``model.DCOCell``, as its paper's threshold rule leaves cells): the ops of every entry are
built, in text order; a node is computed when an entry reads input 0, 1 or a computed node,
as the sum of those entries' ops (ops reading an absent node are built but never run); the
cell outputs the computed nodes, concatenated.
"""

import pytest
import torch
import torch.nn as nn
from darts_oracle import Shrink, load_by_position, make_op, plan, randomize, relu_conv_bn, stem

from search_spaces import decode, encode
from search_spaces.darts import PUBLISHED, network, network_graph, parse_genotype
from supernet.errors import GenotypeError

FAIR = sorted(n for n in PUBLISHED if n.startswith("FairDARTS_"))


class FairCell(nn.Module):
    def __init__(self, entries, c_pp, c_p, C, reduction, reduction_prev):
        super().__init__()
        self.preprocess0 = (Shrink(c_pp, C, True, 2) if reduction_prev
                            else relu_conv_bn(c_pp, C, True, 2))
        self.preprocess1 = relu_conv_bn(c_p, C, True, 2)
        self.entries = list(entries)
        self._ops = nn.ModuleList(make_op(op, C, 2 if reduction and j < 2 else 1, True)
                                  for op, _, j in self.entries)
        self.nodes = list(dict.fromkeys(i for _, i, _ in self.entries))
        have = {0, 1}
        for i in self.nodes:
            if any(j in have for _, n, j in self.entries if n == i):
                have.add(i)
        self.multiplier = len(have) - 2

    def forward(self, s0, s1):
        states = {0: self.preprocess0(s0), 1: self.preprocess1(s1)}
        for i in self.nodes:
            hs = [op(states[j]) for op, (_, n, j) in zip(self._ops, self.entries)
                  if n == i and j in states]
            if hs:
                states[i] = sum(hs)
        return torch.cat([states[k] for k in sorted(states) if k >= 2], 1)


class FairNetwork(nn.Module):
    def __init__(self, genotype, C, num_classes, layers):
        super().__init__()
        self.stem = stem(3, 3 * C, 2)
        c_pp = c_p = 3 * C
        self.cells = nn.ModuleList()
        for _, width, reduction, prev in plan(layers, C):
            entries = genotype.reduce if reduction else genotype.normal
            cell = FairCell(entries, c_pp, c_p, width, reduction, prev)
            self.cells.append(cell)
            c_pp, c_p = c_p, cell.multiplier * width
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))


def count(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", FAIR)
def test_counts_are_the_authors_at_full_size(name):
    """The FairDARTS README's table (counted by its ``count_parameters_in_MB``, which
    includes the auxiliary head, on the network its train.py builds with ``--auxiliary``),
    truncated to the digits it prints; FairDARTS_c's figure is without the head."""
    entry = PUBLISHED[name]
    ours = network(name, auxiliary=entry.get("params_aux", False))
    digits = len(str(entry["params_m"]).split(".")[1])
    assert int(count(ours) / 1e6 * 10 ** digits) / 10 ** digits == entry["params_m"]


def test_full_size_count_equals_the_oracle():
    g = parse_genotype(PUBLISHED["FairDARTS_c"]["genotype"])  # node 3 absent
    assert count(network("FairDARTS_c")) == count(FairNetwork(g, 36, 10, 20)) == 2_598_814


@pytest.mark.parametrize("name", FAIR)
def test_outputs_equal_the_oracle(name):
    g = parse_genotype(PUBLISHED[name]["genotype"])
    ours, ref = network(name, C=4, layers=5), FairNetwork(g, 4, 10, 5)
    assert [p.shape for p in ours.parameters()] == [p.shape for p in ref.parameters()]
    randomize(ref)
    load_by_position(ours, ref)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(ours.eval()(x), ref.eval()(x), rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.train()(x), ref.train()(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", FAIR)
def test_text_round_trips_through_the_graph(name):
    text = PUBLISHED[name]["genotype"]
    assert str(parse_genotype(text)) == text
    assert encode(network_graph(name, C=4, layers=5)) == text
    d = decode("darts", text, C=4, layers=3)
    assert encode(d) == text and decode("darts", encode(d), C=4, layers=3).same_as(d)


def test_absent_node_and_the_ops_that_read_it():
    g = parse_genotype(PUBLISHED["FairDARTS_c"]["genotype"])
    assert g.form == "fair" and g.steps("normal") == 4 and g.present("normal") == [2, 4, 5]
    t = network_graph("FairDARTS_c", C=4, layers=5).cells["normal"]
    assert "n3" not in t.nx  # nothing reaches node 3: not built
    assert [u for u, _ in t.in_edges("n5")] == ["p0"]  # its skip from node 3 is skipped
    assert [u for u, _ in t.in_edges("out")] == ["n2", "n4", "n5"]
    assert t.meta["skipped"] == [[5, 0, "skip_connect", 3]]
    # the variable edge count: 6 entries, 5 ops built (node 2 and 4 two, node 5 one)
    ops = [e for e in t.nx.edges if e[1] != "out" and t.nx.edges[e]["ops"] != ["preprocess"]]
    assert len(g.normal) == 6 and len(ops) == 5


def test_two_ops_on_one_edge_get_a_branch():
    text = ("Genotype(normal=[('sep_conv_3x3', 2, 0), ('skip_connect', 2, 0), "
            "('dil_conv_3x3', 2, 1), ('max_pool_3x3', 3, 2)], normal_concat=range(2, 4), "
            "reduce=[('max_pool_3x3', 2, 0), ('avg_pool_3x3', 2, 0)], "
            "reduce_concat=range(2, 3))")
    d = decode("darts", text, C=4, layers=3)
    t = d.cells["normal"]
    assert t.edge("p0", "n2_0_1")["ops"] == ["skip_connect"]
    assert [(u, t.edge(u, "n2")["port"]) for u, _ in t.in_edges("n2")] == [
        ("p0", 0), ("n2_0_1", 1), ("p1", 2)]  # text order, on the inputs' ports, then 2
    assert encode(d) == text
    g = parse_genotype(text)
    ours, ref = network(text, C=4, layers=3), FairNetwork(g, 4, 10, 3)
    assert count(ours) == count(ref)


@pytest.mark.parametrize("text, match", [
    ("Genotype(normal=[('sep_conv_3x3', 2, 0), ('skip_connect', 1)], normal_concat=[2], "
     "reduce=[('max_pool_3x3', 2, 0)], reduce_concat=[2])",
     r"normal\[1\] \('skip_connect', 1\): expected a triple"),
    ("Genotype(normal=[('sep_conv_3x3', 3, 0), ('skip_connect', 2, 1)], normal_concat=[2], "
     "reduce=[('max_pool_3x3', 2, 0)], reduce_concat=[2])",
     r"node 2 comes after node 3; list the entries by node"),
    ("Genotype(normal=[('sep_conv_3x3', 2, 2)], normal_concat=[2], "
     "reduce=[('max_pool_3x3', 2, 0)], reduce_concat=[2])",
     r"node 2 cannot take input 2; accepted inputs are \[0, 1\]"),
    ("Genotype(normal=[('sep_conv_3x3', 2, 0)], normal_concat=[2], "
     "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])",
     r"normal is in the fair form and reduce in the darts form"),
    ("Genotype(normal=[('sep_conv_3x3', 2, 0), ('sep_conv_3x3', 2, 0)], normal_concat=[2], "
     "reduce=[('max_pool_3x3', 2, 0)], reduce_concat=[2])", r"lists \[\('sep_conv_3x3', 2, 0\)\] twice"),
])
def test_bad_triples_are_refused(text, match):
    with pytest.raises(GenotypeError, match=match):
        parse_genotype(text)


def test_a_cell_without_a_present_concatenated_node_is_refused():
    text = ("Genotype(normal=[('sep_conv_3x3', 3, 2)], normal_concat=range(2, 4), "
            "reduce=[('max_pool_3x3', 2, 0)], reduce_concat=range(2, 3))")
    with pytest.raises(GenotypeError, match=r"no node of the concat \[2, 3\] is present"):
        network(text, C=4, layers=3)
