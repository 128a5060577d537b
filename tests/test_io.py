import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import supernet as sn
from supernet.errors import SerializationError
from supernet.io import from_node_link, to_node_link


def graph_with_everything():
    cell = sn.Graph("layer", name="cell")
    cell.add_input("s0", channels="$C")
    cell.add_node("n", channels="$C")
    cell.add_edge("s0", "n", ["sep_conv_3x3", "none"], affine=False)
    cell.set_outputs(["n"])
    g = sn.Graph("layer", name="g")
    g.add_input("x", channels=3, shape=[3, 8, 8])
    g.add_node("a", channels=4, flag=True, ratio=0.5, tags=["u", 1], nested={"k": [1, 2]})
    g.add_edge("x", "a", ["conv_3x3", "conv_1x1"], stride=1)
    g.add_cell("cell", cell)
    g.add_call("c", "cell", ["a"], bind={"C": 4})
    g.set_outputs(["c"])
    g.meta["mask"] = sp.random(5, 7, density=0.3, format="csr", random_state=0).astype(bool)
    g.meta["array"] = np.arange(6, dtype=np.int32).reshape(2, 3)
    g.meta["concat"] = range(2, 6)
    return g


def same_meta(a, b):
    assert (a.meta["mask"] != b.meta["mask"]).nnz == 0
    assert a.meta["mask"].dtype == b.meta["mask"].dtype
    assert np.array_equal(a.meta["array"], b.meta["array"])
    assert a.meta["array"].dtype == b.meta["array"].dtype
    assert a.meta["concat"] == b.meta["concat"]


def test_node_link_round_trip_is_exact(tmp_path):
    g = graph_with_everything()
    sn.save_graph(g, tmp_path / "g.json")
    h = sn.load_graph(tmp_path / "g.json")
    assert to_node_link(h) == to_node_link(g)
    assert list(h.nx.nodes) == list(g.nx.nodes) and list(h.nx.edges) == list(g.nx.edges)
    assert h.version == g.version and h.cells["cell"].same_as(g.cells["cell"])
    same_meta(g, h)


def test_graphml_round_trip_is_exact(tmp_path):
    g = graph_with_everything()
    sn.write_graphml(g, tmp_path / "g.graphml")
    h = sn.read_graphml(tmp_path / "g.graphml")
    assert to_node_link(h) == to_node_link(g)
    assert type(h.node("a")["ratio"]) is float and type(h.node("a")["flag"]) is bool
    same_meta(g, h)


def test_weights_round_trip_with_weights_only(tmp_path):
    g = graph_with_everything()
    net = sn.compile(g)
    sn.save_weights(net, tmp_path / "w.pt")
    other = sn.compile(g.copy())
    sn.load_weights(other, tmp_path / "w.pt")
    for (k, a), (k2, b) in zip(net.state_dict().items(), other.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(net.eval()(x), other.eval()(x))


def test_weights_that_do_not_fit_say_so(tmp_path):
    g = graph_with_everything()
    sn.save_weights(sn.compile(g), tmp_path / "w.pt")
    g.set_node_attrs("a", channels=6)
    g.set_node_attrs("c", bind={**g.node("c")["bind"], "C": 6})
    with pytest.raises(SerializationError, match="do not fit the module"):
        sn.load_weights(sn.compile(g), tmp_path / "w.pt")


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "g.json"
    sn.save_graph(graph_with_everything(), path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(SerializationError, match="disk full"):
        sn.save_graph(graph_with_everything(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]


def test_malformed_documents(tmp_path):
    with pytest.raises(SerializationError, match="not a supernet node-link document"):
        from_node_link({"nodes": []})
    doc = to_node_link(graph_with_everything())
    doc["edges"].append({"source": "a", "target": "zz", "ops": ["identity"]})
    with pytest.raises(SerializationError, match="edge a->zz names unknown node 'zz'"):
        from_node_link(doc)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SerializationError, match="not valid JSON"):
        sn.load_graph(bad)
    (tmp_path / "x.graphml").write_text("<graphml>")
    with pytest.raises(SerializationError, match="malformed GraphML|cannot read GraphML"):
        sn.read_graphml(tmp_path / "x.graphml")
    json.dumps(doc)  # the document itself is plain JSON


def test_a_file_whose_parts_do_not_make_a_graph_says_so(tmp_path):
    g = graph_with_everything()
    doc = to_node_link(g)
    doc["graph"]["outputs"] = ["zz"]
    with pytest.raises(SerializationError, match=r"does not hold a valid graph: .*outputs "
                       r"\['zz'\] are not nodes of the graph"):
        from_node_link(doc)
    doc = to_node_link(g)
    doc["graph"]["level"] = "cell"
    with pytest.raises(SerializationError, match="unknown level 'cell'"):
        from_node_link(doc)
    path = tmp_path / "g.graphml"
    sn.write_graphml(g, path)
    text = path.read_text()
    assert "<data key=\"outputs\">" in text
    path.write_text(text.replace("<data key=\"level\">layer<", "<data key=\"level\">cell<"))
    with pytest.raises(SerializationError, match=r"g\.graphml: the file does not hold a valid "
                       r"graph: .*unknown level 'cell'"):
        sn.read_graphml(path)
