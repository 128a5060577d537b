"""Files users keep: export, reload, equality; final training."""


import pytest
import torch
from search_graphs import darts_like, data, small_config

from supernet import Graph, compile, read_graphml
from supernet.compiler.standalone import standalone
from supernet.errors import SearchError
from supernet.export import export, load_export, text_form
from supernet.search import search
from supernet.train.retrain import fine_tune, retrain


@pytest.fixture(scope="module")
def searched():
    torch.manual_seed(0)
    g = darts_like()
    r = search(g, data(), config=small_config())
    return g, r.module.eval()


def test_export_reloads_exactly(searched, tmp_path):
    g, net = searched
    x = torch.randn(3, 3, 8, 8)
    paths = export(g, net, str(tmp_path), example_inputs=(x[:2],))
    assert {"graph", "graphml", "weights", "torchscript", "program"} <= set(paths)
    assert "text" not in paths  # the test space has no text form
    back = load_export(str(tmp_path))
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


def test_standalone_state_dict_loads_into_a_fresh_build(searched):
    g, net = searched
    plain = standalone(g, net)
    fresh = standalone(load_graph_copy(g)).eval()
    x = torch.randn(2, 3, 8, 8)
    assert not torch.equal(fresh(x), plain(x))
    fresh.load_state_dict(plain.state_dict())
    assert torch.equal(fresh(x), plain(x))
    assert "def forward" in plain.code


def load_graph_copy(g):
    return g.copy()


def test_standalone_refuses_a_graph_with_gates():
    g = darts_like()
    with pytest.raises(SearchError, match=r"gate\(s\) left .*discretize the graph first"):
        standalone(g)


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


def test_retrain_from_scratch_and_fine_tune(searched):
    g, net = searched
    before = {k: v.clone() for k, v in net.state_dict().items()}
    r = retrain(g, data(), epochs=1, batch_size=8, steps_per_epoch=2, seed=3)
    assert r.module is not net and r.module.gates() == {}
    fresh_sd = r.module.state_dict()
    assert any(not torch.equal(fresh_sd[k], before[k]) for k in before)  # new weights
    assert r.history[0]["loss"] > 0 and 0 <= r.history[0]["acc"] <= 1
    r2 = retrain(g, data(), epochs=1, batch_size=8, steps_per_epoch=2, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(r.module.state_dict().values(),
                                                 r2.module.state_dict().values()))
    ft = fine_tune(net, data(), data(16, seed=1), epochs=1, batch_size=8, steps_per_epoch=2)
    assert ft.module is net and "val_acc" in ft.history[0]
    assert any(not torch.equal(net.state_dict()[k], before[k]) for k in before)
    with pytest.raises(SearchError, match=r"gates .* are left; discretize before retraining"):
        retrain(darts_like(), data())


def test_standalone_drops_train_only_nodes_and_takes_context_tensors():
    from supernet.ops.registry import list_ops, register_op, unregister_op

    class Scale(torch.nn.Module):
        def forward(self, x, scale):
            return x * scale

    if "test_scale_ctx" not in list_ops():
        register_op("test_scale_ctx", same_channels=True, context=("scale",))(
            lambda C_in, C_out: Scale())
    try:
        g = Graph("layer", name="ctx")
        g.add_input("x", channels=3)
        g.add_node("h", channels=3)
        g.add_edge("x", "h", "test_scale_ctx")
        g.add_node("aux", channels=3, train_only=True)
        g.add_edge("x", "aux", "conv_3x3")
        g.set_outputs(["h", "aux"])
        net = compile(g).eval()
        plain = standalone(g, net)
        x, s = torch.randn(2, 3, 4, 4), torch.tensor(3.0)
        out, aux = net(x, scale=s)
        assert aux is None
        assert torch.equal(plain(x, s), out)
        assert not any("aux" in k for k in plain.state_dict())
    finally:
        unregister_op("test_scale_ctx")


def test_retrain_the_evaluation_network_built_from_the_text_form():
    from search_graphs import chain

    from search_spaces import register_space

    def decode(text, C=4):  # the text names the op of the single searched edge
        return chain(C=C, ops=(text,), n=1)

    register_space("test_search_chain", override=True,
                   encode=lambda g: g.edge("stem", "b0")["ops"][0], decode=decode)(chain)
    g = chain(ops=("conv_1x1",), n=1)
    g.meta["space"] = "test_search_chain"
    from supernet.search import evaluation_graph

    wide = evaluation_graph(g, C=8)
    assert wide.node("b0")["channels"] == 8 and wide.edge("stem", "b0")["ops"] == ["conv_1x1"]
    r = retrain(g, data(), build=lambda g: evaluation_graph(g, C=8), epochs=1, batch_size=8,
                steps_per_epoch=1)
    assert r.module.graph.node("b0")["channels"] == 8
