"""The explicit networkx view: one node per unit, one edge per connection."""

from units_helpers import conv_layer_graph, residual_cnn

from supernet.lowering import lower
from supernet.units import explicit, mlp


def test_neuron_view_has_one_edge_per_synapse():
    g = mlp([5, 6, 2], density=0.5, seed=0)
    view = explicit(g)
    assert view.number_of_nodes() == 13
    assert view.number_of_edges() == sum(e["mask"].nnz for *_, e in g.nx.edges(data=True))
    u, v = next(iter(view.edges))
    assert view.nodes[u]["group"] in ("x", "h1") and view.edges[u, v]["kind"] == "dense"


def test_conv_views_list_kernel_taps_at_neuron_level():
    ch = residual_cnn()
    view = explicit(ch)
    assert view.edges[("x", 0), ("s0", 0)]["block"] == "x->s0"
    nr = explicit(lower(conv_layer_graph(), "neuron").graph)
    assert nr.edges[("x", 0), ("h", 0)]["taps"] == list(range(9))

