"""Unit-level graphs round-trip exactly through node-link JSON and GraphML."""

import numpy as np
import pytest
import scipy.sparse as sp
from units_helpers import residual_cnn

from supernet import Graph, lint
from supernet.edits import Editor
from supernet.edits.units import AddUnits, RemoveUnits
from supernet.io import load_graph, read_graphml, save_graph, to_node_link, write_graphml
from supernet.lowering import lower
from supernet.search.discretize.units import set_gated
from supernet.units import mlp


def _graphs():
    g = residual_cnn(depthwise=True)
    Editor(g).apply(RemoveUnits({"d": [2]}))
    Editor(g).apply(AddUnits("c2", count=1))
    n = mlp([7, 5, 3], density=0.4, seed=0)
    set_gated(n, units=["h1"], connections=[("x", "h1")])
    layer = Graph("layer", name="lowered")
    layer.add_input("x", channels=3)
    layer.add_node("h", channels=4, op="bn_relu")
    layer.add_edge("x", "h", "conv_3x3", stride=2)
    layer.add_node("c", merge="concat")
    layer.add_edge("x", "c", "max_pool_3x3", stride=2)
    layer.add_edge("h", "c", "identity")
    layer.set_outputs(["c"])
    return [g, n, lower(g, "neuron").graph, lower(layer, "channel").graph]


@pytest.mark.parametrize("i", range(4))
@pytest.mark.parametrize("fmt", ["json", "graphml"])
def test_round_trip_is_exact(tmp_path, i, fmt):
    g = _graphs()[i]
    path = str(tmp_path / f"g.{fmt}")
    if fmt == "json":
        save_graph(g, path)
        back = load_graph(path)
    else:
        write_graphml(g, path)
        back = read_graphml(path)
    assert to_node_link(back) == to_node_link(g)
    lint(back)
    for u, v, e in back.nx.edges(data=True):
        m = e["mask"]
        assert sp.issparse(m) and m.dtype == bool and m.format == "csr"
        assert (m != g.edge(u, v)["mask"]).nnz == 0
    for n, d in back.nx.nodes(data=True):
        assert isinstance(d["units"], np.ndarray) and d["units"].dtype == np.int64
