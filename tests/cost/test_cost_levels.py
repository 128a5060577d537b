"""One ``cost(graph)`` for every level: the same figures as the per-level functions."""

import pytest
import torch

from search_spaces import create_space
from search_spaces.darts import network_graph
from supernet import Graph
from supernet.cost import COST_LEVELS, CostReport, UnitCostReport, cost, graph_cost, unit_cost
from supernet.errors import ConfigError, UnknownNameError
from supernet.lowering import lower


def _figures(report):
    return report.total, dict(report.shapes), dict(report.nodes), dict(report.edges)


def test_a_layer_graph_is_counted_as_graph_cost_counts_it():
    g = network_graph("DARTS_V2", C=4, layers=3)
    r = cost(g, (3, 16, 16))
    assert isinstance(r, CostReport)
    assert _figures(r) == _figures(graph_cost(g, (3, 16, 16)))
    assert r.total.params > 0 and r.total.macs > 0
    with_aux = cost(g, (3, 16, 16), include_train_only=True)  # keywords reach graph_cost
    assert with_aux.total == graph_cost(g, (3, 16, 16), include_train_only=True).total


@pytest.mark.parametrize("space, kw", [
    ("channel_cnn", dict(widths=(4, 8), depths=(1, 1), num_classes=3, input_size=8)),
    ("neuron_mlp", dict(in_features=16, hidden=(12,), num_classes=3, density=0.5)),
])
def test_unit_graphs_are_counted_as_unit_cost_counts_them(space, kw):
    g = create_space(space, **kw)
    r = cost(g)
    assert isinstance(r, UnitCostReport) and g.level in ("channel", "neuron")
    assert _figures(r) == _figures(unit_cost(g))
    assert r.total.params > 0 and r.total.macs > 0


def test_a_lowered_graph_costs_the_same_at_each_level():
    g = Graph("layer", name="net")
    g.add_input("x", channels=3, shape=[3, 8, 8])
    g.add_node("h", channels=8, op="bn_relu")
    g.add_edge("x", "h", "conv_3x3")
    g.add_node("p", channels=8)
    g.add_edge("h", "p", "global_avg_pool")
    g.add_node("y", channels=2)
    g.add_edge("p", "y", "linear")
    g.set_outputs(["y"])
    layer = cost(g).total
    for to in ("channel", "neuron"):
        unit = cost(lower(g, to).graph, (3, 8, 8)).total
        assert (unit.params, unit.macs, unit.bn, unit.pool) == \
            (layer.params, layer.macs, layer.bn, layer.pool)


def test_layer_graphs_without_declared_shapes_need_one():
    g = network_graph("DARTS_V2", C=4, layers=3)
    g.nx.nodes["x"].pop("shape", None)
    with pytest.raises(ConfigError, match=r"input\(s\) \['x'\] declare no per-sample shape; add "
                                          r"shape=\[...\] to the input node, or give input_shape"):
        cost(g)


def test_an_unknown_level_fails_with_the_registry_message():
    g = Graph("layer", name="odd")
    g.nx.graph["level"] = "synapse"
    with pytest.raises(UnknownNameError, match=r"odd: cost: could not resolve cost level "
                                               r"'synapse' among \['channel', 'layer', "
                                               r"'neuron'\]; register one with "
                                               r"supernet.cost.COST_LEVELS.register"):
        cost(g)
    COST_LEVELS.register("synapse", lambda graph, input_shape=None: "counted")
    try:
        assert cost(g) == "counted"
    finally:
        COST_LEVELS.unregister("synapse")


def test_both_reports_take_one_dict_of_probabilities():
    g = create_space("neuron_mlp", in_features=16, hidden=(12,), num_classes=3, density=0.5)
    r = cost(g)
    (u, v), c = next((k, c) for k, c in r.edges.items() if c.macs)
    key = f"{u}->{v}"
    half = torch.full((g.edge(u, v)["mask"].nnz,), 0.5)
    one_dict = r.expected({key: half, "h1": torch.full((12,), 0.5)})
    apart = r.expected(keep_units={"h1": torch.full((12,), 0.5)}, keep_connections={key: half})
    assert torch.equal(one_dict, apart) and float(one_dict) < r.total.macs
    lg = Graph("layer", name="g")
    lg.add_input("x", channels=3, shape=[3, 8, 8])
    lg.add_node("h", channels=4)
    lg.add_edge("x", "h", ["conv_3x3", "conv_1x1"])
    lg.set_outputs(["h"])
    layer = cost(lg)
    macs = [c.macs for c in layer.gates["x->h"].values()]
    assert macs == [4 * 64 * 27, 4 * 64 * 3]
    assert float(layer.expected({"x->h": torch.tensor([0.25, 0.75])})) == \
        0.25 * macs[0] + 0.75 * macs[1]


def test_weight_count_counts_only_the_weights_that_exist():
    import numpy as np

    from supernet import compile
    from supernet.cost import weight_count
    from supernet.edits import Editor
    from supernet.search.discretize.units import prune
    from supernet.units import mlp

    g = mlp([10, 20, 5], seed=0)
    net = compile(g, seed=0)
    dense = sum(p.numel() for p in net.parameters())
    assert weight_count(net) == dense == 10 * 20 + 20 + 20 * 5 + 5
    ed = Editor(g, net)
    for edit in prune(g, {"x->h1": np.arange(200.0), "h1->y": np.arange(100.0)}, 0.9):
        ed.apply(edit)
    assert weight_count(net) == 30 + 20 + 5  # 10% of the 300 weights, and the biases
