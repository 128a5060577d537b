"""Graph-side unit and connection changes (without a module)."""

import numpy as np
import pytest
from units_helpers import conv_layer_graph, residual_cnn

from supernet import lint
from supernet.errors import EditError
from supernet.lowering import lower
from supernet.units import mlp
from supernet.units.surgery import add_connections, add_units, remove_connections, remove_units


def test_add_units_connects_fully_or_not_at_all():
    g = mlp([3, 4, 2], density=0.5, seed=0)
    n_in, n_out = g.edge("x", "h1")["mask"].nnz, g.edge("h1", "y")["mask"].nnz
    done = add_units(g, "h1", 2)
    assert done["created"]["h1"].tolist() == [4, 5]
    assert g.edge("x", "h1")["mask"].nnz == n_in + 6
    assert g.edge("h1", "y")["mask"].nnz == n_out + 4
    add_units(g, "h1", 1, connect="none")
    assert g.edge("x", "h1")["mask"].nnz == n_in + 6
    lint(g)


def test_split_copies_the_connection_pattern():
    g = mlp([3, 4, 2], density=0.5, seed=1)
    row = g.edge("x", "h1")["mask"].toarray()[2]
    col = g.edge("h1", "y")["mask"].toarray()[:, 2]
    add_units(g, "h1", None, source=[2])
    assert (g.edge("x", "h1")["mask"].toarray()[4] == row).all()
    assert (g.edge("h1", "y")["mask"].toarray()[:, 4] == col).all()


def test_depthwise_groups_follow_unit_changes():
    g = residual_cnn(depthwise=True)
    remove_units(g, {"d": [0, 5]})
    assert g.edge("c1", "d")["groups"] == 6 and len(g.node("c1")["units"]) == 6
    add_units(g, "c1", 2)
    assert g.edge("c1", "d")["groups"] == 8
    lint(g)


def test_neuron_level_conv_connections_name_their_taps():
    g = lower(conv_layer_graph(), "neuron").graph
    n = g.edge("x", "h")["mask"].nnz
    remove_connections(g, "x", "h", [0, 0], [1, 1], taps=[0, 8])
    assert g.edge("x", "h")["mask"].nnz == n - 2
    with pytest.raises(EditError, match="give taps="):
        remove_connections(g, "x", "h", [0], [1])
    add_connections(g, "x", "h", [0], [1], taps=[8])
    assert g.edge("x", "h")["mask"].nnz == n - 1
    remove_units(g, {"x": [1]})
    assert g.edge("x", "h")["mask"].shape == (3, 9)


def test_failed_changes_leave_the_graph_alone():
    g = residual_cnn(depthwise=True)
    version = g.version
    with pytest.raises(EditError, match="same group"):
        add_connections(g, "c1", "d", [0], [1])
    with pytest.raises(EditError, match="identity \\(a matching\\)"):
        add_connections(g, "c2", "y", [0], [1])
    with pytest.raises(EditError, match="different lengths"):
        remove_connections(g, "x", "s0", [0, 1], [0])
    assert g.version == version
    assert np.array_equal(g.node("c1")["units"], np.arange(8))

