"""Files users keep: export, reload, equality."""


import pytest
import torch

from supernet import Graph, compile, read_graphml
from supernet.export import export, load_export, text_form
from supernet.spaces import SPACES


def test_export_reloads_exactly(searched, tmp_path):
    g, net = searched
    x = torch.randn(3, 3, 8, 8)
    paths = export(g, net, str(tmp_path), example_inputs=(x[:2],))
    assert {"graph", "graphml", "weights", "torchscript", "program"} <= set(paths)
    assert "text" not in paths  # the test space has no text form
    back = load_export(str(tmp_path), trusted=True)
    assert back.graph.same_as(g) and read_graphml(paths["graphml"]).same_as(g)
    want = net(x)
    assert torch.equal(back.module(x), want)
    assert torch.equal(back.torchscript(x), want)
    assert torch.allclose(back.program(x), want, atol=1e-6)
    # no search machinery in what users load
    sd = back.module.state_dict()
    assert not any(k.startswith("arch") or "relaxation" in k for k in sd)
    assert not any(type(m).__name__ in ("LayerModule", "Edge") for m in back.module.modules())
    assert not any(type(m).__name__ in ("LayerModule",) for m in back.torchscript.modules())
    if "onnx" in paths:
        ort = pytest.importorskip("onnxruntime")
        sess = ort.InferenceSession(paths["onnx"])
        out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]  # batch 3, not 2
        assert torch.allclose(torch.from_numpy(out), want, atol=1e-5)


def test_text_form_through_the_space_registry(tmp_path):
    from search_spaces import register_space

    @register_space("test_search_toy", override=True,
                    encode=lambda g: "|".join(g.edge(u, v)["ops"][0] for u, v in g.nx.edges),
                    decode=lambda text, **kw: None)
    def toy():
        g = Graph("layer", name="toy")
        g.meta["space"] = "test_search_toy"
        return g

    g = Graph("layer", name="toy")
    g.add_input("x", channels=3)
    g.add_node("h", channels=3)
    g.add_edge("x", "h", "skip_connect")
    g.set_outputs(["h"])
    assert text_form(g) is None
    g.meta["space"] = "test_search_toy"
    paths = export(g, compile(g), str(tmp_path), torchscript=False, onnx=False)
    assert open(paths["text"]).read().strip() == "skip_connect"
    assert load_export(str(tmp_path)).text == "skip_connect"
    SPACES.unregister("test_search_toy")




def test_an_untrusted_export_loads_no_archive_and_refuses_foreign_paths(searched, tmp_path):
    import json

    from supernet.errors import SerializationError

    g, net = searched
    export(g, net, str(tmp_path), example_inputs=(torch.randn(2, 3, 8, 8),), onnx=False)
    back = load_export(str(tmp_path))
    assert back.torchscript is None and back.program is None  # archives can run code
    assert back.graph.same_as(g)
    manifest = json.loads((tmp_path / "export.json").read_text())
    manifest["files"]["graph"] = "../../etc/passwd"
    (tmp_path / "export.json").write_text(json.dumps(manifest))
    with pytest.raises(SerializationError, match=r"files.graph is '../../etc/passwd'"):
        load_export(str(tmp_path))


def test_an_export_file_changed_after_export_is_refused(searched, tmp_path):
    import json

    from supernet.errors import SerializationError

    g, net = searched
    export(g, net, str(tmp_path), example_inputs=(torch.randn(2, 3, 8, 8),), onnx=False)
    program = tmp_path / "model.pt2"
    data = bytearray(program.read_bytes())
    data[len(data) // 2] ^= 0x10
    program.write_bytes(bytes(data))
    load_export(str(tmp_path))  # untrusted: the archive is not read, so nothing is refused
    with pytest.raises(SerializationError, match=r"model.pt2: changed since it was exported"):
        load_export(str(tmp_path), trusted=True)
    manifest = json.loads((tmp_path / "export.json").read_text())
    del manifest["sha256"]  # an export without checksums: its archives are never loaded
    (tmp_path / "export.json").write_text(json.dumps(manifest))
    with pytest.raises(SerializationError, match=r"no SHA-256 of it"):
        load_export(str(tmp_path), trusted=True)
    (tmp_path / "graph.json").write_text((tmp_path / "graph.json").read_text() + " ")
    manifest["sha256"] = {"graph": "0" * 64}
    (tmp_path / "export.json").write_text(json.dumps(manifest))
    with pytest.raises(SerializationError, match=r"graph.json: changed since it was exported"):
        load_export(str(tmp_path))


def test_a_missing_onnx_package_is_said_not_skipped_silently(searched, tmp_path, monkeypatch):
    import json
    import sys

    from supernet.errors import SerializationError

    g, net = searched
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as after the base install
    export(g, net, str(tmp_path), example_inputs=(torch.randn(2, 3, 8, 8),))
    skipped = json.loads((tmp_path / "export.json").read_text())["skipped"]
    assert 'pip install "supernet[export]"' in skipped["onnx"]
    with pytest.raises(SerializationError, match=r"ONNX export: needs the packages onnx and "
                                                 r"onnxscript.*supernet\[export\]"):
        export(g, net, str(tmp_path / "asked"), example_inputs=(torch.randn(2, 3, 8, 8),),
               onnx=True)
