"""Layer-level compiler: oracle tests against hand-written PyTorch with the same weights."""

import pytest
import torch
import torch.nn as nn

import supernet as sn
from supernet.errors import ShapeError, StaleModuleError, SupernetError
from supernet.gates import Decision


def residual_graph():
    g = sn.Graph("layer", name="res")
    g.add_input("x", channels=3)
    g.add_node("stem", channels=8, op="relu")
    g.add_edge("x", "stem", "conv", kernel_size=3, bias=False)
    g.add_node("a", channels=8)
    g.add_edge("stem", "a", "relu_conv_bn", kernel_size=3)
    g.add_node("b", channels=8)
    g.add_edge("a", "b", "relu_conv_bn", kernel_size=3)
    g.add_edge("stem", "b", "identity")
    g.add_node("cat", merge="concat")
    g.add_edge("a", "cat", "identity")
    g.add_edge("b", "cat", "identity")
    g.add_node("pool", channels=16)
    g.add_edge("cat", "pool", "global_avg_pool")
    g.add_node("logits", channels=5)
    g.add_edge("pool", "logits", "linear")
    g.set_outputs(["logits"])
    return g


class HandWritten(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.a = nn.Sequential(nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.b = nn.Sequential(nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        s = torch.relu(self.stem(x))
        a = self.a(s)
        b = self.b(a) + s
        return self.fc(torch.cat([a, b], 1).mean((2, 3)))


def test_compiled_graph_equals_hand_written_network_with_same_weights():
    g = residual_graph()
    sn.lint(g)
    net = sn.compile(g)
    ref = HandWritten()
    # Parameters and buffers enumerate in the same order: load by position.
    ours = net.state_dict()
    assert [t.shape for t in ours.values()] == [t.shape for t in ref.state_dict().values()]
    net.load_state_dict(dict(zip(ours.keys(), ref.state_dict().values())))
    x = torch.randn(4, 3, 8, 8)
    for mode in ("train", "eval"):
        getattr(net, mode)(), getattr(ref, mode)()
        y, y_ref = net(x), ref(x)
        assert torch.allclose(y, y_ref, atol=1e-6)
    y.pow(2).sum().backward()
    y_ref.pow(2).sum().backward()
    for p, q in zip(net.parameters(), ref.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5)


def test_gated_edge_mixes_candidates_with_softmax_weights():
    g = sn.Graph("layer", name="mix")
    g.add_input("x", channels=4)
    g.add_node("h", channels=4)
    g.add_edge("x", "h", ["conv_3x3", "avg_pool_3x3", "none"])
    g.set_outputs(["h"])
    net = sn.compile(g)
    with torch.no_grad():
        net.arch["x->h"].copy_(torch.tensor([[0.3, -1.0, 2.0]]))
    x = torch.randn(2, 4, 6, 6)
    w = torch.softmax(net.arch["x->h"], -1)[0]
    ops = net.edge_module("x", "h")
    expected = w[0] * ops["conv_3x3"](x) + w[1] * ops["avg_pool_3x3"](x)
    assert torch.allclose(net(x), expected, atol=1e-6)
    # A decision passed by the caller runs only the chosen path.
    d = Decision(torch.tensor([[0.0, 1.0, 0.0]]), active=[[1]])
    assert torch.allclose(net(x, gates={"x->h": d}), ops["avg_pool_3x3"](x))


def test_zero_op_is_skipped_but_keeps_the_shape():
    g = sn.Graph("layer", name="z")
    g.add_input("x", channels=4)
    g.add_node("h", channels=4)
    g.add_edge("x", "h", ["none", "max_pool_3x3"], stride=2)
    g.set_outputs(["h"])
    net = sn.compile(g)
    calls = []
    net.edge_module("x", "h")["none"].register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(1, 4, 8, 8)
    assert net(x).shape == (1, 4, 4, 4)
    assert calls == []  # never computed: it adds nothing to the value or the gradients
    only_zero = Decision(torch.tensor([[1.0, 0.0]]), active=[[0]])
    assert torch.equal(net(x, gates={"x->h": only_zero}), torch.zeros(1, 4, 4, 4))


def test_cells_share_gates_and_optionally_weights():
    cell = sn.Graph("layer", name="cell")
    cell.add_input("s", channels="$C")
    cell.add_node("n", channels="$C")
    cell.add_edge("s", "n", ["conv_3x3", "skip_connect"])
    cell.set_outputs(["n"])
    g = sn.Graph("layer", name="macro")
    g.add_input("x", channels=4)
    g.add_cell("cell", cell)
    g.add_call("c1", "cell", ["x"], bind={"C": 4})
    g.add_call("c2", "cell", ["c1"], bind={"C": 4}, weights="shared")
    g.add_call("c3", "cell", ["c2"], bind={"C": 4}, weights="shared")
    g.set_outputs(["c3"])
    sn.lint(g)
    net = sn.compile(g)
    assert list(net.arch.keys()) == ["cell:s->n"]  # one gate for every instance
    c1, c2, c3 = (net.steps[n].cell for n in ("c1", "c2", "c3"))
    assert c2 is c3 and c1 is not c2
    n_conv = 4 * 4 * 9 + 4
    assert sum(p.numel() for p in net.weights()) == 2 * n_conv
    y = net(torch.randn(2, 4, 5, 5))
    y.sum().backward()
    assert net.arch["cell:s->n"].grad is not None


def test_wrong_inputs_fail_with_clear_messages():
    net = sn.compile(residual_graph())
    with pytest.raises(SupernetError, match=r"expected 1 input\(s\) \['x'\], got 2"):
        net(torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8))
    with pytest.raises(ShapeError, match=r"edge x->stem \(conv\) failed on an input of shape \(1, 5, 8, 8\)"):
        net(torch.randn(1, 5, 8, 8))


def test_stale_module_refuses_to_run_or_recompiles_keeping_weights():
    g = residual_graph()
    net = sn.compile(g)
    x = torch.randn(2, 3, 8, 8)
    w = net.edge_module("stem", "a")["relu_conv_bn"].op[1].weight.clone()
    g.set_ops("a", "b", ["relu_conv_bn", "skip_connect"])
    with pytest.raises(StaleModuleError, match="module.recompile\\(\\)"):
        net(x)
    net.on_stale = "recompile"
    net(x)
    assert not net.is_stale()
    assert net.gates() == {"a->b": ["relu_conv_bn", "skip_connect"]}
    assert torch.equal(net.edge_module("stem", "a")["relu_conv_bn"].op[1].weight, w)


def test_drop_path_and_train_only_nodes():
    g = sn.Graph("layer", name="dp")
    g.add_input("x", channels=2)
    g.add_node("h", channels=2)
    g.add_edge("x", "h", "conv_1x1", drop_path=True)
    g.add_node("aux", channels=2, train_only=True)
    g.add_edge("h", "aux", "identity")
    g.set_outputs(["h", "aux"])
    net = sn.compile(g)
    net.drop_path_prob = 0.5
    x = torch.ones(64, 2, 1, 1)
    h, aux = net.train()(x)
    dropped = (h.flatten(1).abs().sum(1) == 0).float().mean()
    assert 0.2 < dropped < 0.8 and aux is not None
    h, aux = net.eval()(x)
    assert aux is None and (h.flatten(1).abs().sum(1) != 0).all()
