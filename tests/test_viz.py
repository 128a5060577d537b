"""Pictures: graphs and cells drawn with their ops, architecture weights over the epochs."""

import html
import re

import pytest

import supernet
from search_spaces import create_space, decode
from supernet.errors import GraphError
from supernet.viz import draw_cells, draw_graph, plot_gates


def _texts(svg_path) -> list[str]:
    found = re.findall(r"<text[^>]*>([^<]*)</text>", open(svg_path).read())
    return [html.unescape(t) for t in found]


def test_a_found_cell_is_drawn_with_the_op_of_every_edge(tmp_path):
    text = ("Genotype(normal=[('sep_conv_3x3', 0), ('dil_conv_5x5', 1), ('skip_connect', 0), "
            "('max_pool_3x3', 2)], normal_concat=[2, 3], reduce=[('avg_pool_3x3', 0), "
            "('sep_conv_5x5', 1), ('dil_conv_3x3', 2), ('skip_connect', 1)], "
            "reduce_concat=[2, 3])")
    g = decode("darts", text, C=4, layers=3, steps=2, multiplier=2)
    paths = draw_cells(g, str(tmp_path), fmt="svg")
    assert [p.rsplit("/", 1)[1] for p in paths] == ["graph.svg", "cell_normal.svg",
                                                    "cell_reduce.svg"]
    normal = _texts(tmp_path / "cell_normal.svg")
    for op in ("sep_conv_3x3", "dil_conv_5x5", "skip_connect", "max_pool_3x3"):
        assert op in normal, op
    assert "avg_pool_3x3" not in normal and "avg_pool_3x3" in _texts(tmp_path / "cell_reduce.svg")


def test_an_undecided_edge_shows_its_strongest_candidate(tmp_path):
    g = supernet.Graph("layer", name="tiny")
    g.add_input("x", channels=2)
    g.add_node("h", channels=2)
    g.add_edge("x", "h", ["conv_3x3", "skip_connect", "none"])
    g.set_outputs(["h"])
    draw_graph(g, str(tmp_path / "a.svg"), weights={"x->h": [0.2, 0.7, 0.1]})
    assert "skip_connect (0.70) of 3" in _texts(tmp_path / "a.svg")
    draw_graph(g, str(tmp_path / "b.svg"))
    assert "3 candidates" in _texts(tmp_path / "b.svg")


def test_gate_weights_are_plotted_per_candidate(tmp_path):
    history = [{"epoch": e, "gates": {"x->h": [[0.5 - 0.1 * e, 0.5 + 0.1 * e]]},
                "candidates": {"x->h": ["conv_3x3", "skip_connect"]}} for e in (1, 2, 3)]
    path = plot_gates(history, str(tmp_path / "w.svg"))
    texts = _texts(path)
    assert "x->h" in texts and "conv_3x3" in texts and "skip_connect" in texts
    assert plot_gates([{"epoch": 1, "gates": {}}], str(tmp_path / "none.svg")) is None


def test_a_graph_too_large_to_draw_is_refused_by_name(tmp_path, monkeypatch):
    import supernet.viz as viz

    monkeypatch.setattr(viz, "MAX_NODES", 3)
    g = create_space("nasbench201", C=4, N=1)
    with pytest.raises(GraphError, match=r"nodes are too many to draw \(at most 3\)"):
        draw_graph(g, str(tmp_path / "x.png"))


def test_drawing_leaves_the_pyplot_backend_alone(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    matplotlib.use("pdf")  # a user's own choice
    try:
        figures = plt.get_fignums()
        draw_cells(create_space("nasbench201", C=4, N=1), str(tmp_path))
        assert matplotlib.get_backend() == "pdf" and plt.get_fignums() == figures
    finally:
        matplotlib.use(before)


def test_cell_calls_are_labelled_with_their_inputs_and_skips_do_not_overlap():
    from supernet.spaces import create_space
    from supernet.viz import edge_labels_of, layout

    g = create_space("darts1d", C=4, layers=3, steps=2, multiplier=2)
    labels = edge_labels_of(g)
    assert labels[("stem", "cell0")] == "s0" and labels[("cell0", "cell1")] == "s1"
    assert not [v for v in labels.values() if "candidates" in v and v.startswith("0")]
    pos = layout(g)
    # cell0 -> cell2 skips cell1: its midpoint (where its label goes) is not on the short
    # edges' line, and no node sits on it
    (x0, y0), (x2, y2), (x1, y1) = pos["cell0"], pos["cell2"], pos["cell1"]
    assert y1 != (y0 + y2) / 2
