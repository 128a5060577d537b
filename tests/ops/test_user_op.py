"""An op defined by a user, with its cost and lowering rules given at registration, is
counted exactly and lowered to the unit levels computing the same function."""

import math

import pytest
import torch
import torch.nn as nn

import supernet
from supernet import Graph
from supernet.cost import Cost, graph_cost
from supernet.errors import GraphError, SupernetError
from supernet.lowering import lift, lower
from supernet.ops import register_op, resolve_op, unregister_op
from supernet.ops.forms import ConvBlock

NAME = "test_user_conv5x5_bias"


class Conv5x5(nn.Module):
    """A 5x5 convolution with bias, wrapped: no module rule of the cost model knows it."""

    def __init__(self, C_in, C_out, stride):
        super().__init__()
        self.conv = nn.Conv2d(C_in, C_out, 5, stride, 2, bias=True)

    def forward(self, x):
        return self.conv(x)


def _cost(C_in, C_out, args, shape):
    out = (C_out, *(-(-s // args["stride"]) for s in shape[1:]))
    return out, Cost(params=C_out * C_in * 25 + C_out, macs=math.prod(out) * C_in * 25)


def _lower(C_in, C_out, args):
    return ConvBlock.square(5, args["stride"], 2, bias=True, weights=lambda m: m.conv)


@pytest.fixture
def user_op():
    @register_op(NAME, cost=_cost, lower=_lower)
    def build(C_in, C_out, stride=1):
        """5x5 convolution with bias, padding 2."""
        return Conv5x5(C_in, C_out, stride)

    yield NAME
    unregister_op(NAME)
    assert NAME not in supernet.list_ops()


def _net(op):
    g = Graph("layer", name="user")
    g.add_input("x", channels=3, shape=[3, 12, 12])
    g.add_node("h", channels=8, op="bn_relu")
    g.add_edge("x", "h", op, stride=2)
    g.add_node("k", channels=4)
    g.add_edge("h", "k", op)
    g.add_node("p", channels=4)
    g.add_edge("k", "p", "global_avg_pool")
    g.add_node("y", channels=5)
    g.add_edge("p", "y", "linear")
    g.set_outputs(["y"])
    return g


def test_the_cost_model_counts_the_op_by_its_own_rule(user_op):
    assert resolve_op(user_op).cost is _cost
    r = graph_cost(_net(user_op))
    # x -> h: 3 -> 8 channels at stride 2 on 12x12 (6x6 out); h -> k: 8 -> 4 on 6x6
    assert r.edges[("x", "h")][user_op] == Cost(params=8 * 3 * 25 + 8, macs=8 * 36 * 3 * 25)
    assert r.edges[("h", "k")][user_op] == Cost(params=4 * 8 * 25 + 4, macs=4 * 36 * 8 * 25)
    assert r.shapes["h"] == (8, 6, 6) and r.shapes["k"] == (4, 6, 6)
    # the rest is torch's modules: BN of h (16 params), global pooling, linear 4 -> 5
    assert r.total.params == 608 + 804 + 16 + 25
    assert r.total.macs == 21600 + 28800 + 20
    # without its rule the op's module is unknown to the cost model
    register_op(NAME, lower=_lower, override=True)(resolve_op(NAME).build)
    with pytest.raises(SupernetError, match="no cost rule for module type Conv5x5"):
        graph_cost(_net(user_op))


@pytest.mark.parametrize("to", ["channel", "neuron"])
def test_the_lowered_network_computes_the_same_function(user_op, to):
    g = _net(user_op)
    net = supernet.compile(g)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(), m.running_var.uniform_(0.5, 2)
                m.weight.normal_(), m.bias.normal_()
    low = lower(g, to, net)
    assert low.graph.level == to
    e = low.graph.edge("x", "h")
    assert e["kind"] == "conv" and e["mask"].shape == ((8, 3) if to == "channel" else (8, 75))
    net.eval(), low.module.eval()
    x = torch.randn(2, 3, 12, 12)
    assert (net(x) - low.module(x)).abs().max() < 1e-5
    # the unit-level cost agrees with the op's rule on the weighted edges
    unit = supernet.cost.cost(low.graph, (3, 12, 12))
    assert unit.edges[("x", "h")].macs == 8 * 36 * 3 * 25
    # lifting restores the op by the origin it records, weights included
    back = lift(low.graph, "layer", low.module)
    assert back.graph.edge("x", "h")["ops"] == [user_op]
    back.module.eval()
    assert (net(x) - back.module(x)).abs().max() < 1e-5


def test_an_op_without_a_lowering_rule_says_how_to_give_one(user_op):
    register_op(NAME, cost=_cost, override=True)(resolve_op(NAME).build)
    with pytest.raises(GraphError, match=rf"user: edge x->h: op '{NAME}' has no unit-level "
                                         rf"form; give it one with register_op\('{NAME}', "
                                         r"\.\.\., lower=rule\)"):
        lower(_net(user_op))


def test_a_rule_refusing_the_arguments_is_named():
    @register_op(NAME, lower=lambda C_in, C_out, a: None if a["stride"] > 1 else _lower(0, 0, a))
    def build(C_in, C_out, stride=1):
        return Conv5x5(C_in, C_out, stride)

    try:
        with pytest.raises(GraphError, match=rf"op '{NAME}' has no unit-level form with "
                                             r"arguments \{'stride': 2\} \(3 -> 8 channels\)"):
            lower(_net(NAME))
    finally:
        unregister_op(NAME)


def test_the_op_registry_is_the_generic_registry(user_op):
    from supernet.errors import DuplicateNameError, UnknownNameError
    from supernet.ops import OPS, list_ops

    assert OPS.resolve(user_op) is resolve_op(user_op)
    assert list_ops("test_user_*") == [user_op]
    assert list_ops("user_conv") == []  # a glob, not a substring
    with pytest.raises(DuplicateNameError, match=rf"op '{NAME}' is registered already; pass "
                                                 "override=True"):
        register_op(NAME)(lambda C_in, C_out: nn.Identity())
    with pytest.raises(UnknownNameError, match=r"edge a->b: could not resolve op 'conv_3x4' "
                                               r"among \[.*\]; did you mean 'conv_3x3'\? "
                                               r"register your own with @supernet.register_op"):
        resolve_op("conv_3x4", "edge a->b")
