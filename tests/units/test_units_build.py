"""Building unit graphs: groups, blocks and their attributes."""

import numpy as np
import pytest

from supernet import Graph
from supernet.errors import DuplicateNameError, GraphError
from supernet.units import add_group, add_input, connect, mlp


def test_groups_get_stable_ids_and_blocks_canonical_masks():
    g = Graph("channel", name="g")
    add_input(g, "x", 3)
    add_group(g, "h", units=[4, 7, 9], act="relu", norm="batchnorm")
    assert g.node("h")["next_id"] == 10
    connect(g, "x", "h", "conv", kernel=[3, 1], stride=2)
    e = g.edge("x", "h")
    assert e["kernel"] == [3, 1] and e["stride"] == [2, 2] and e["padding"] == [1, 0]
    assert e["mask"].shape == (3, 3) and e["mask"].has_canonical_format
    nr = Graph("neuron")
    add_input(nr, "x", 2)
    add_group(nr, "h", 4)
    connect(nr, "x", "h", "conv", kernel=3, groups=2)
    assert nr.edge("x", "h")["mask"].shape == (4, 18)
    assert nr.edge("x", "h")["mask"].nnz == 4 * 9


def test_mlp_builder_densities():
    g = mlp([10, 20, 5], density=0.25, seed=0)
    assert g.edge("x", "h1")["mask"].nnz == 50
    assert g.node("y")["act"] == "identity" and g.node("h1")["act"] == "relu"


def test_builder_errors_name_the_problem():
    g = Graph("neuron", name="g")
    add_input(g, "x", 4)
    with pytest.raises(DuplicateNameError, match="unit ids repeat"):
        add_group(g, "h", units=[1, 1])
    add_group(g, "h", 6)
    with pytest.raises(GraphError, match="groups=4 must divide both widths"):
        connect(g, "x", "h", "conv", kernel=3, groups=4)
    with pytest.raises(GraphError, match="a conv edge needs kernel="):
        connect(g, "x", "h", "conv")
    with pytest.raises(GraphError, match="points into input node 'x'"):
        connect(g, "h", "x")
    with pytest.raises(GraphError, match="mask has shape \\(2, 2\\), expected \\(6, 4\\)"):
        connect(g, "x", "h", mask=np.ones((2, 2), bool))
    with pytest.raises(GraphError, match="layer"):
        add_group(Graph("layer"), "h", 2)
