"""The standalone module: a discretized graph as a plain torch.fx module."""

import pytest
import torch
from search_graphs import darts_like

from supernet import Graph, compile
from supernet.compiler.standalone import standalone
from supernet.errors import SearchError


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
