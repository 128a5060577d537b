"""Property-based tests: random unit graphs and random edit sequences never escape as raw
errors from torch, networkx or scipy; valid graphs stay valid through every edit."""

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supernet import Graph, compile, lint
from supernet.edits import Editor
from supernet.edits.units import AddConnections, AddUnits, RemoveConnections, RemoveUnits
from supernet.errors import SupernetError
from supernet.units import add_group, add_input, connect

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def unit_graphs(draw):
    level = draw(st.sampled_from(["channel", "neuron"]))
    g = Graph(level, name="rand")
    add_input(g, "x", draw(st.integers(1, 4)))
    names = ["x"]
    for i in range(draw(st.integers(1, 4))):
        n = f"n{i}"
        add_group(g, n, draw(st.integers(1, 4)), act=draw(st.sampled_from(["relu", "tanh"])),
                  norm=draw(st.sampled_from([None, "batchnorm"])) if level == "channel" else None)
        srcs = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
        for s in srcs:
            kind = draw(st.sampled_from(["conv", "dense"] if level == "channel" else ["dense"]))
            density = draw(st.sampled_from([None, 0.5]))
            if kind == "conv":
                connect(g, s, n, "conv", kernel=draw(st.sampled_from([1, 3])), density=density,
                        seed=draw(st.integers(0, 9)))
            else:
                pool = "global_avg" if level == "channel" and s == "x" else None
                connect(g, s, n, "dense", density=density, seed=draw(st.integers(0, 9)),
                        pool=pool)
        names.append(n)
    g.set_outputs([names[-1]])
    return g


def _edits(draw_ids, g):
    return st.one_of(
        st.builds(AddUnits, node=st.sampled_from(list(g)), count=st.integers(0, 2),
                  init=st.sampled_from(["zero", "random", "bogus"]),
                  seed=st.integers(0, 100)),
        st.builds(lambda n, ids: AddUnits(n, init="split", source=ids),
                  st.sampled_from(list(g)), draw_ids),
        st.builds(lambda n, ids: RemoveUnits({n: ids}), st.sampled_from(list(g)), draw_ids),
        st.builds(lambda e, d, s: RemoveConnections(e[0], e[1], d, s),
                  st.sampled_from(list(g.nx.edges)), draw_ids, draw_ids),
        st.builds(lambda e, d, s, i: AddConnections(e[0], e[1], d, s, init=i),
                  st.sampled_from(list(g.nx.edges) + [("x", "n0")]), draw_ids, draw_ids,
                  st.sampled_from(["zero", "random", "split"])),
    )


def _forward(net, g):
    width = g.node("x")["width"]
    x = torch.randn(2, width, 5, 5) if g.level == "channel" else torch.randn(2, width)
    try:
        out = net(x)
    except SupernetError:
        return  # e.g. a dense edge on feature maps: a named ShapeError
    assert out.shape[1] == len(g.node(g.outputs[0])["units"])


@SETTINGS
@given(st.data())
def test_random_graphs_and_edit_sequences(data):
    g = data.draw(unit_graphs())
    try:
        lint(g)
        valid = True
    except SupernetError:
        valid = False
    net = compile(g, seed=0)
    if valid:
        _forward(net, g)
    ed = Editor(g, net, torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9), seed=0)
    ids = st.lists(st.integers(0, 5), min_size=0, max_size=3)
    for _ in range(data.draw(st.integers(1, 5))):
        edit = data.draw(_edits(ids, g))
        try:
            ed.apply(edit)
        except SupernetError:
            continue
        if valid:
            lint(g)  # a valid graph stays valid through every accepted edit
            _forward(net, g)
        assert not net.is_stale()


@SETTINGS
@given(unit_graphs(), st.data())
def test_corrupted_graphs_lint_with_supernet_errors(g, data):
    n = data.draw(st.sampled_from(list(g)))
    what = data.draw(st.sampled_from(["dup", "next", "act", "mask", "kernel", "units"]))
    d = g.node(n)
    if what == "dup" and len(d["units"]) > 1:
        d["units"] = np.concatenate([d["units"][:1], d["units"][:-1]])
    elif what == "next":
        d["next_id"] = -1
    elif what == "act":
        d["act"] = "nope"
    elif what == "units":
        d["units"] = "0,1"
    else:
        edges = list(g.nx.edges)
        u, v = edges[data.draw(st.integers(0, len(edges) - 1))]
        if what == "mask":
            g.edge(u, v)["mask"] = g.edge(u, v)["mask"][:, :0]
        else:
            g.edge(u, v)["kernel"] = [0]
    try:
        lint(g)
    except SupernetError:
        pass
