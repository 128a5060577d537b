"""Lint of unit-level graphs: each message names the node or edge and the fix."""

import numpy as np
import pytest
import scipy.sparse as sp
from units_helpers import residual_cnn

from supernet import Graph, lint
from supernet.errors import LintError
from supernet.units import add_group, add_input, connect, mlp


def _problems(g):
    with pytest.raises(LintError) as info:
        lint(g)
    return "\n".join(info.value.problems)


def test_valid_graphs_pass():
    lint(mlp([3, 4, 2], density=0.5, seed=0))
    lint(residual_cnn(depthwise=True))


def test_mask_shape_must_match_the_unit_counts():
    g = mlp([3, 4, 2])
    g.edge("x", "h1")["mask"] = sp.csr_array(np.ones((3, 3), bool))
    assert "edge x->h1: mask has shape (3, 3) but 'h1' has 4 units and 'x' has 3" in _problems(g)


def test_duplicate_unit_ids_and_next_id():
    g = mlp([3, 4, 2])
    g.node("h1")["units"] = np.array([0, 1, 1, 2])
    g.node("y")["next_id"] = 1
    msg = _problems(g)
    assert "node 'h1' lists unit id(s) [1] more than once" in msg
    assert "node 'y': next_id 1 must be an int above every unit id; set it to 2" in msg


def test_bad_kernel_and_groups():
    g = residual_cnn(depthwise=True)
    g.edge("x", "s0")["kernel"] = [0, 3]
    g.edge("c1", "d")["groups"] = 3
    msg = _problems(g)
    assert "edge x->s0: kernel [0, 3] is not a list of 1 or 2 positive ints" in msg
    assert "edge c1->d: groups=3 must be an int dividing both widths" in msg


def test_unknown_activation_and_norm():
    g = mlp([3, 4, 2])
    g.node("h1")["act"] = "rellu"
    g.node("y")["norm"] = "layernorm"
    msg = _problems(g)
    assert "node 'h1': could not resolve activation 'rellu'" in msg and "did you mean 'relu'?" in msg
    assert "node 'y': norm 'layernorm' is not one of" in msg


def test_dangling_unreachable_and_cycles():
    g = mlp([3, 4, 2])
    add_group(g, "lost", 2)
    msg = _problems(g)
    assert "node 'lost' is unreachable from the inputs" in msg
    g = mlp([3, 4, 2])
    add_group(g, "spare", 2)
    connect(g, "h1", "spare")
    assert "node 'spare' is dangling" in _problems(g)
    g = mlp([3, 4, 4, 2])
    connect(g, "h2", "h1")
    assert "cycle" in _problems(g)


def test_identity_must_be_a_matching_and_grouped_masks_within_groups():
    g = residual_cnn()
    m = g.edge("c2", "y")["mask"].toarray()
    m[0, 1] = True
    g.edge("c2", "y")["mask"] = sp.csr_array(m)
    assert "edge c2->y: an identity mask is a matching" in _problems(g)
    g = residual_cnn(depthwise=True)
    g.edge("c1", "d")["mask"] = sp.csr_array(np.ones((8, 8), bool))
    assert "edge c1->d: 56 connection(s) lie outside the 8 groups" in _problems(g)


def test_malformed_attributes_do_not_crash():
    g = Graph("neuron", name="bad")
    add_input(g, "x", 2)
    add_group(g, "y", 2)
    connect(g, "x", "y")
    g.set_outputs(["y"])
    g.node("y")["units"] = [0, 1]
    g.edge("x", "y")["mask"] = "full"
    assert "node 'y': 'units' must be a 1-D integer numpy array" in _problems(g)
    g.node("y")["units"] = np.array([0, 1])
    assert "edge x->y: mask must be a scipy.sparse matrix" in _problems(g)
    g.node("y")["kind"] = "merge"
    assert "node 'y' has kind 'merge'; unit-level nodes are 'input' or 'units'" in _problems(g)
