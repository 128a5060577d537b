"""The ops the DARTS space adds, and the small core changes it needed."""

import pytest
import torch

import supernet
from search_spaces import create_space, decode
from search_spaces.darts import PUBLISHED
from supernet import Graph
from supernet.errors import GraphError, ShapeError
from supernet.ops import build_op
from supernet.ops.cnn import AuxiliaryHead, FactorizedReduce, ReLUConvBN
from supernet.shapes import infer_strides


def test_preprocess_is_relu_conv_bn_or_factorized_reduce():
    assert isinstance(build_op("preprocess", 6, 4, {}), ReLUConvBN)
    fr = build_op("preprocess", 6, 4, {"stride": 2, "affine": False})
    assert isinstance(fr, FactorizedReduce) and not fr.bn.affine
    assert fr(torch.randn(2, 6, 8, 8)).shape == (2, 4, 4, 4)
    with pytest.raises(GraphError, match="preprocess supports stride 1 or 2, got 3"):
        build_op("preprocess", 6, 4, {"stride": 3})
    for stride in (1, 2):  # zero_output makes it output zeros (function-preserving growth)
        m = build_op("preprocess", 6, 4, {"stride": stride})
        supernet.resolve_op("preprocess").zero_output(m)
        assert m.eval()(torch.randn(2, 6, 8, 8)).abs().max() == 0


def test_conv_7x1_1x7_is_2d_only_and_aux_head_shapes():
    with pytest.raises(GraphError, match="conv_7x1_1x7 is a 2-D op, got dim=1"):
        build_op("conv_7x1_1x7", 4, 4, {"dim": 1})
    head = build_op("aux_head", 16, 10, {"dim": 2})
    assert isinstance(head, AuxiliaryHead) and head(torch.randn(2, 16, 8, 8)).shape == (2, 10)
    assert build_op("aux_head", 16, 10, {"dim": 1})(torch.randn(2, 16, 10)).shape == (2, 10)


def test_cells_may_take_inputs_at_different_resolutions():
    t = Graph("layer", name="cell")
    t.add_input("a")
    t.add_input("b")
    t.add_node("ra", channels=4)
    t.add_edge("a", "ra", "preprocess", stride=2)
    t.add_node("rb", channels=4)
    t.add_edge("b", "rb", "preprocess")
    t.add_node("out")
    t.add_edge("ra", "out", "identity")
    t.add_edge("rb", "out", "identity")
    t.set_outputs(["out"])
    g = Graph("layer", name="net")
    g.add_cell("cell", t)
    g.add_input("x", channels=3)
    g.add_node("big", channels=4)
    g.add_edge("x", "big", "conv_3x3")
    g.add_node("small", channels=4)
    g.add_edge("big", "small", "conv_3x3", stride=2)
    g.add_call("c", "cell", ["big", "small"])
    g.set_outputs(["c"])
    assert infer_strides(g) == {"x": 1, "big": 1, "small": 2, "c": 2}
    supernet.lint(g)
    assert supernet.compile(g)(torch.randn(1, 3, 8, 8)).shape == (1, 4, 4, 4)
    g.add_call("bad", "cell", ["small", "big"])  # reduces the small one: 4 vs 1
    with pytest.raises(ShapeError, match=r"call node 'bad' \(cell\): .* node 'out' merges inputs "
                                         r"at different resolutions \(ra->out: x4, rb->out: x1\)"):
        infer_strides(g)


def test_discretized_cells_lint():
    # pool_bn stays on every discretized search edge, for when a pool grows back
    d = decode("darts", PUBLISHED["DARTS_V2"]["genotype"], C=4, layers=3)
    assert d.cells["normal"].edge("p0", "n2")["args"]["pool_bn"] is True
    supernet.lint(d)


def test_same_as_ignores_the_edit_counter():
    a, b = create_space("darts", C=4, layers=3), create_space("darts", C=4, layers=3)
    b.touch()
    assert a.version != b.version and a.same_as(b)
    b.cells["normal"].set_ops("p0", "n2", ["none"])
    assert not a.same_as(b)
