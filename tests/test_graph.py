import pytest

from supernet import Graph
from supernet.errors import CycleError, DuplicateNameError, EdgeNotFound, GraphError, NodeNotFound


def chain():
    g = Graph("layer", name="chain")
    g.add_input("x", channels=3)
    g.add_node("a", channels=8)
    g.add_edge("x", "a", ["conv_3x3", "none"])
    g.add_node("b", channels=8)
    g.add_edge("a", "b", "relu_conv_bn", kernel_size=3)
    g.set_outputs(["b"])
    return g


def test_schema_of_a_layer_graph():
    g = chain()
    assert g.level == "layer" and g.inputs == ["x"] and g.outputs == ["b"]
    assert g.node("x")["kind"] == "input" and g.node("a")["merge"] == "sum"
    assert g.edge("a", "b") == {"ops": ["relu_conv_bn"], "args": {"kernel_size": 3}, "port": 0}
    assert g.gate_edges() == [("x", "a")]
    assert g.topological_order() == ["x", "a", "b"]


def test_every_change_bumps_the_version():
    g = chain()
    v = g.version
    g.add_node("c", channels=8)
    assert g.version == v + 1
    g.add_edge("b", "c", "identity")
    g.set_ops("b", "c", ["identity", "none"])
    g.remove_edge("b", "c")
    g.remove_node("c")
    assert g.version == v + 5


def test_unknown_names_are_reported_with_a_suggestion():
    g = chain()
    with pytest.raises(NodeNotFound, match=r"no node 'bb'\. Did you mean 'b'\?"):
        g.node("bb")
    with pytest.raises(EdgeNotFound, match=r"no edge x->b; 'x' feeds a"):
        g.edge("x", "b")


def test_construction_refuses_bad_structure():
    g = chain()
    with pytest.raises(DuplicateNameError, match="a node named 'a' exists already"):
        g.add_node("a")
    with pytest.raises(DuplicateNameError, match="edge x->a exists already"):
        g.add_edge("x", "a", "conv_1x1")
    with pytest.raises(GraphError, match="points into input node 'x'"):
        g.add_edge("a", "x", "identity")
    with pytest.raises(GraphError, match="merge 'max'"):
        g.add_node("m", merge="max")
    with pytest.raises(GraphError, match="'b' is a graph output"):
        g.remove_node("b")
    with pytest.raises(GraphError, match="'x' is a graph input"):
        g.remove_node("x")


def test_cycles_are_named():
    g = chain()
    g.nx.add_edge("b", "a", ops=["identity"], args={}, port=1)
    with pytest.raises(CycleError, match="cycle a -> b -> a"):
        g.topological_order()


def test_copy_is_deep_and_equal():
    g = chain()
    h = g.copy()
    assert h.same_as(g) and h.uid != g.uid
    h.edge("x", "a")["ops"].append("skip_connect")
    assert not h.same_as(g)
    assert g.edge("x", "a")["ops"] == ["conv_3x3", "none"]


def test_call_nodes_check_their_cell():
    cell = Graph("layer", name="cell")
    cell.add_input("s0", channels="$C")
    cell.add_node("n", channels="$C")
    cell.add_edge("s0", "n", "conv_3x3")
    cell.set_outputs(["n"])
    g = chain()
    with pytest.raises(GraphError, match="unknown cell 'cell'"):
        g.add_call("c", "cell", ["b"])
    g.add_cell("cell", cell)
    with pytest.raises(GraphError, match="passes 2 argument\\(s\\) to cell 'cell', which takes 1"):
        g.add_call("c", "cell", ["a", "b"], bind={"C": 8})
    g.add_call("c", "cell", ["b"], bind={"C": 8})
    assert g.node("c")["weights"] == "c"
    assert "c" in g.tabular()
