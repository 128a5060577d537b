"""Property-based tests: random layer graphs and random edit sequences never produce a raw
error from torch or networkx -- either things work, or a supernet exception explains why."""

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import supernet as sn
from supernet.edits import AddEdge, AddNode, AddOp, Editor, RemoveEdge, RemoveNode, RemoveOp
from supernet.errors import SupernetError

OPS = ["conv_3x3", "conv_1x1", "sep_conv_3x3", "skip_connect", "avg_pool_3x3", "none",
       "identity", "relu"]
ANY_OP = st.sampled_from(OPS) | st.just("nonexistent_op")
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def graphs(draw):
    g = sn.Graph("layer", name="random")
    g.add_input("x", channels=draw(st.sampled_from([2, 4])))
    n = draw(st.integers(1, 5))
    names = ["x"]
    for i in range(n):
        name = f"n{i}"
        merge = draw(st.sampled_from(["sum", "sum", "concat"]))
        channels = draw(st.sampled_from([None, 2, 4]))
        g.add_node(name, merge=merge, channels=channels, keep=draw(st.booleans()))
        srcs = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
        for s in srcs:
            ops = draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=3, unique=True))
            if draw(st.integers(0, 9)) == 0:
                ops[0] = draw(ANY_OP)
            stride = draw(st.sampled_from([1, 1, 1, 2]))
            g.add_edge(s, name, ops, stride=stride) if stride != 1 else g.add_edge(s, name, ops)
        names.append(name)
    g.set_outputs([names[-1]] if draw(st.booleans()) else [draw(st.sampled_from(names[1:]))])
    return g


def edits(draw, g):
    nodes = list(g.nx.nodes)
    edges = list(g.nx.edges)
    kind = draw(st.sampled_from(["add_node", "remove_node", "add_edge", "remove_edge",
                                 "add_op", "remove_op"]))
    if kind == "add_node":
        return AddNode(f"m{draw(st.integers(0, 99))}", channels=draw(st.sampled_from([2, 4])))
    if kind == "remove_node":
        return RemoveNode(draw(st.sampled_from(nodes)))
    if kind == "add_edge":
        order = list(g.nx.nodes)
        i = draw(st.integers(0, len(order) - 1))
        j = draw(st.integers(0, len(order) - 1))
        if draw(st.integers(0, 4)):  # mostly forward edges, sometimes anything
            i, j = min(i, j), max(i, j)
        ops = draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=3, unique=True))
        return AddEdge(order[i], order[j], ops,
                       init=draw(st.sampled_from(["random", "random", "zero", "split"])))
    if not edges:
        return RemoveNode("nope")
    u, v = draw(st.sampled_from(edges))
    if kind == "remove_edge":
        return RemoveEdge(u, v)
    op = draw(ANY_OP)
    if kind == "remove_op":
        return RemoveOp(u, v, op)
    return AddOp(u, v, op, init=draw(st.sampled_from(["random", "zero", "split"])),
                 source=draw(st.sampled_from(OPS)))


def check(g, net=None):
    """lint passes or raises a supernet error; if it passes, the graph compiles and runs."""
    try:
        sn.lint(g)
    except SupernetError:
        return None
    if net is None:
        net = sn.compile(g)
    C = g.node("x")["channels"]
    out = net(torch.randn(2, C, 8, 8))
    assert torch.isfinite(out).all()
    return net


@SETTINGS
@given(graphs())
def test_random_graphs_lint_or_explain(g):
    try:
        check(g)
    except SupernetError:
        pass


@SETTINGS
@given(graphs(), st.data())
def test_random_edit_sequences_keep_graph_and_module_consistent(g, data):
    try:
        net = check(g)
    except SupernetError:
        return
    if net is None:
        return
    dummy = torch.nn.Parameter(torch.zeros(1))  # the optimizer needs one parameter to start
    opt = torch.optim.SGD([dummy] + net.weights(), lr=0.01, momentum=0.9)
    ed = Editor(g, net, [opt])
    for _ in range(data.draw(st.integers(1, 10))):
        edit = edits(data.draw, g)
        try:
            ed.apply(edit)
        except SupernetError:
            assert not net.is_stale()  # a failed edit leaves graph and module in step
            continue
        try:
            check(g, net)
        except SupernetError:
            pass
        in_opt = {id(p) for p in opt.param_groups[0]["params"]}
        assert in_opt == {id(p) for p in net.weights()} | {id(dummy)}
