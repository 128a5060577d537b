import numpy as np
import pytest

import supernet as sn
from supernet import Graph
from supernet.errors import (
    CycleError,
    DuplicateNameError,
    EdgeNotFound,
    GraphError,
    NodeNotFound,
    StaleModuleError,
)


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


def test_attribute_setters_write_and_bump_the_version():
    g = chain()
    steps = [
        lambda: g.set_node_attrs("a", channels=4, keep=True),
        lambda: g.del_node_attrs("a", "keep", "not_there"),
        lambda: g.set_edge_attrs("x", "a", drop_path=True),
        lambda: g.del_edge_attrs("x", "a", "drop_path"),
        lambda: g.set_meta(space="chain", constraints={}),
        lambda: g.set_inputs(["x"]),
    ]
    for step in steps:
        v = g.version
        step()
        assert g.version == v + 1
    assert g.node("a") == {"kind": "merge", "merge": "sum", "channels": 4}
    assert g.edge("x", "a") == {"ops": ["conv_3x3", "none"], "args": {}, "port": 0}
    assert g.meta == {"space": "chain", "constraints": {}}


def test_attribute_setters_name_what_is_missing():
    g = chain()
    with pytest.raises(NodeNotFound, match=r"no node 'aa'\. Did you mean 'a'\?"):
        g.set_node_attrs("aa", channels=4)
    with pytest.raises(EdgeNotFound, match=r"no edge x->b; 'x' feeds a"):
        g.set_edge_attrs("x", "b", drop_path=True)
    with pytest.raises(GraphError, match="node 'a' is a 'merge' node, not an input"):
        g.set_inputs(["x", "a"])
    with pytest.raises(GraphError, match="chain: unknown level 'cell'; expected one of"):
        g.set_level("cell")


def test_a_compiled_module_sees_a_changed_attribute():
    g = chain()
    net = sn.compile(g)
    net.check_fresh()
    g.set_node_attrs("a", channels=4)
    with pytest.raises(StaleModuleError, match="it was edited without passing this module"):
        net.check_fresh()


def test_raw_storage_keeps_attributes_as_given_and_checks_names():
    g = Graph("channel", name="u")
    g.insert_node("x", kind="input", units=np.arange(2), next_id=2, width=2, pool=None)
    g.insert_node("h", kind="units", units=np.arange(3), next_id=3)
    g.insert_edge("x", "h", kind="dense", port=0)
    assert g.node("x")["pool"] is None and g.edge("x", "h") == {"kind": "dense", "port": 0}
    with pytest.raises(DuplicateNameError, match="u: a node named 'h' exists already"):
        g.insert_node("h", kind="units")
    with pytest.raises(GraphError, match="node names are non-empty strings"):
        g.insert_node("", kind="units")
    with pytest.raises(NodeNotFound, match=r"edge x->hh names unknown node 'hh'\. Did you mean "
                       r"'h'\?"):
        g.insert_edge("x", "hh")
    with pytest.raises(DuplicateNameError, match="u: edge x->h exists already"):
        g.insert_edge("x", "h")


def test_from_parts_rebuilds_a_graph_exactly():
    g = chain()
    g.set_meta(space="chain")
    parts = dict(
        attrs=dict(g.nx.graph),
        nodes=[(n, dict(d)) for n, d in g.nx.nodes(data=True)],
        edges=[(u, v, dict(d)) for u, v, d in g.nx.edges(data=True)],
        version=g.version,
    )
    back = Graph.from_parts(**parts)
    assert back.same_as(g) and back.version == g.version and back.uid != g.uid
    with pytest.raises(GraphError, match="unknown level None"):
        Graph.from_parts({"name": "g"}, [], [])
    with pytest.raises(NodeNotFound, match=r"chain: outputs \['zz'\] are not nodes"):
        Graph.from_parts({**parts["attrs"], "outputs": ["zz"]}, parts["nodes"], parts["edges"])
    with pytest.raises(DuplicateNameError, match="a node named 'a' exists already"):
        Graph.from_parts(parts["attrs"], parts["nodes"] + [("a", {})], [])


def test_snapshot_and_restore_undo_every_change():
    g = chain()
    before, v = g.copy(), g.version
    state = g.snapshot()
    g.set_node_attrs("a", channels=4)
    g.add_node("c", channels=8)
    g.add_edge("b", "c", "identity")
    g.restore(state)
    assert g.same_as(before) and g.version == v



def test_a_snapshot_restores_more_than_once():
    g = Graph("layer")
    g.add_input("x", channels=3)
    g.add_node("a", channels=3)
    g.add_edge("x", "a", "identity")
    saved, version = g.snapshot(), g.version
    g.add_node("b", channels=3)
    g.restore(saved)
    g.add_node("c", channels=3)
    g.restore(saved)
    assert list(g.nx.nodes) == ["x", "a"] and g.version == version
