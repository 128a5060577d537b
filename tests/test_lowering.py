"""Lowering layer -> channel -> neuron with weights, and lifting back."""

import pytest
import torch
from units_helpers import doc

from supernet import Graph, compile, lint
from supernet.edits import Editor
from supernet.edits.units import RemoveConnections, RemoveUnits
from supernet.errors import GraphError
from supernet.lowering import lift, lower


def _layer_graph():
    g = Graph("layer", name="net")
    g.add_input("x", channels=3)
    g.add_node("a", channels=8, op="bn_relu")
    g.add_edge("x", "a", "conv_3x3")
    g.add_node("b", channels=8, op="batchnorm")
    g.add_edge("a", "b", "conv", kernel_size=3, groups=4, bias=False)
    g.add_node("s")
    g.add_edge("a", "s", "identity")
    g.add_edge("b", "s", "identity")
    g.add_node("r", channels=8)
    g.add_edge("s", "r", "relu")
    g.add_node("m", channels=8)
    g.add_edge("r", "m", "max_pool_3x3", stride=2)
    g.add_node("c", merge="concat")
    g.add_edge("m", "c", "identity")
    g.add_edge("r", "c", "conv_1x1", channels=4, stride=2)
    g.add_node("p", channels=12)
    g.add_edge("c", "p", "global_avg_pool")
    g.add_node("y", channels=5)
    g.add_edge("p", "y", "classifier")
    g.set_outputs(["y"])
    return g


@pytest.fixture
def layer_net():
    g = _layer_graph()
    net = compile(g)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(), m.running_var.uniform_(0.5, 2)
                m.weight.normal_(), m.bias.normal_()
    return g, net


@pytest.mark.parametrize("to", ["channel", "neuron"])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_lowered_module_computes_the_same_function(layer_net, to, mode):
    g, net = layer_net
    low = lower(g, to, net)
    lint(low.graph)
    assert low.graph.level == to
    getattr(net, mode)(), getattr(low.module, mode)()
    x = torch.randn(4, 3, 9, 9)
    assert (net(x) - low.module(x)).abs().max() < 1e-5


def test_neuron_level_conv_masks_hold_one_entry_per_tap(layer_net):
    g, net = layer_net
    ch, nr = lower(g, "channel").graph, lower(g, "neuron").graph
    assert ch.edge("x", "a")["mask"].shape == (8, 3)
    assert nr.edge("x", "a")["mask"].shape == (8, 27)
    assert nr.edge("x", "a")["mask"].nnz == 8 * 27
    assert nr.edge("a", "b")["mask"].nnz == 8 * 2 * 9  # 4 groups of 2


@pytest.mark.parametrize("start", ["channel", "neuron"])
def test_lift_restores_the_layer_graph_and_weights(layer_net, start):
    g, net = layer_net
    low = lower(g, start, net)
    back = lift(low.graph, "layer", low.module)
    assert doc(back.graph) == doc(g)
    net.eval(), back.module.eval()
    x = torch.randn(2, 3, 9, 9)
    assert (net(x) - back.module(x)).abs().max() < 1e-5


def test_lift_after_unit_removal_gives_the_shrunk_widths(layer_net):
    g, net = layer_net
    low = lower(g, "channel", net)
    Editor(low.graph, low.module).apply(RemoveUnits({"a": [1]}))
    back = lift(low.graph, "layer", low.module)
    lint(back.graph)
    assert back.graph.node("a")["channels"] == 4  # the grouped conv ties 4 channels
    assert back.graph.node("p")["channels"] == 8
    low.module.eval(), back.module.eval()
    x = torch.randn(2, 3, 9, 9)
    assert (low.module(x) - back.module(x)).abs().max() < 1e-5


def test_lift_refuses_what_a_layer_graph_cannot_hold(layer_net):
    g, net = layer_net
    low = lower(g, "neuron", net)
    Editor(low.graph, low.module).apply(RemoveConnections("x", "a", dst=[0], src=[0], taps=[4]))
    with pytest.raises(GraphError, match="lost some taps.*partial='fill'"):
        lift(low.graph, "channel")
    ch = lift(low.graph, "channel", low.module, partial="fill")
    x = torch.randn(2, 3, 9, 9)
    low.module.eval(), ch.module.eval()
    assert (low.module(x) - ch.module(x)).abs().max() < 1e-5
    Editor(ch.graph, ch.module).apply(RemoveConnections("x", "a", dst=[0], src=[0]))
    with pytest.raises(GraphError, match="a layer op is dense"):
        lift(ch.graph, "layer")


def test_lowering_refuses_gates_and_unknown_ops():
    g = Graph("layer", name="g")
    g.add_input("x", channels=3)
    g.add_node("h", channels=3)
    g.add_edge("x", "h", ["conv_3x3", "identity"])
    g.set_outputs(["h"])
    with pytest.raises(GraphError, match="is a gate; discretize"):
        lower(g)
    g = Graph("layer", name="g")
    g.add_input("x", channels=3)
    g.add_node("h", channels=3)
    g.add_edge("x", "h", "dropout")
    g.set_outputs(["h"])
    with pytest.raises(GraphError, match=r"op 'dropout' has no unit-level form; give it one "
                                         r"with register_op\('dropout', \.\.\., lower=rule\)"):
        lower(g)
    with pytest.raises(GraphError, match="cannot lower a 'layer'-level graph to 'layer'"):
        lower(g, "layer")


def test_a_channel_graph_without_origins_lifts_by_the_ops_lift_rules():
    from supernet.units import add_group, add_input, connect

    ch = Graph("channel", name="ch")
    add_input(ch, "x", 3)
    add_group(ch, "a", 6, act="relu", norm="batchnorm")
    connect(ch, "x", "a", "conv", kernel=3, stride=2, padding=1)
    add_group(ch, "m", 6, bias=False)
    connect(ch, "a", "m", "identity", pool={"kind": "max", "kernel": 3,
                                                "stride": 1, "padding": 1})
    add_group(ch, "p", 6, bias=False)
    connect(ch, "m", "p", "identity", pool="global_avg")
    add_group(ch, "y", 4)
    connect(ch, "p", "y", "dense")
    ch.set_outputs(["y"])
    net = compile(ch)
    back = lift(ch, "layer", net)
    g = back.graph
    assert g.node("a")["op"] == "bn_relu"
    assert g.edge("x", "a")["ops"] == ["conv"]
    assert g.edge("x", "a")["args"] == {"kernel_size": 3, "stride": 2, "padding": 1,
                                        "dilation": 1, "groups": 1}
    assert g.edge("a", "m")["ops"] == ["max_pool_3x3"]
    assert g.edge("m", "p")["ops"] == ["global_avg_pool"] and g.edge("p", "y")["ops"] == ["linear"]
    net.eval(), back.module.eval()
    x = torch.randn(2, 3, 8, 8)
    assert (net(x) - back.module(x)).abs().max() < 1e-5

    odd = Graph("channel", name="odd")
    add_input(odd, "x", 3)
    add_group(odd, "a", 4)
    connect(odd, "x", "a", "conv", kernel=[3, 1], padding=[1, 0])
    odd.set_outputs(["a"])
    with pytest.raises(GraphError, match=r"odd: edge x->a: no registered op holds ConvBlock\("
                                         r"kernel=\(3, 1\).*register one with "
                                         r"register_op\(name, \.\.\., lift=rule\)"):
        lift(odd, "layer")
    pooled = Graph("channel", name="pooled")
    add_input(pooled, "x", 3)
    add_group(pooled, "y", 2)
    connect(pooled, "x", "y", "dense", pool="global_avg")
    pooled.set_outputs(["y"])
    with pytest.raises(GraphError, match="pooled: edge x->y: a dense block on a pooled source "
                                         "has no layer op; give the pooling an identity edge"):
        lift(pooled, "layer")
