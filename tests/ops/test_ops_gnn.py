"""GNN ops: PyG layers behind the registry, context passing, zero-output hooks."""

import pytest
import torch

from supernet.edits import zero_output
from supernet.errors import EditError, GraphError
from supernet.ops import build_op, resolve_op
from supernet.ops.gnn import GNN_CONV_OPS

EDGE_INDEX = torch.tensor([[0, 1, 1, 2, 2, 3, 0], [1, 0, 2, 1, 3, 2, 3]])


@pytest.mark.parametrize("name", GNN_CONV_OPS)
def test_conv_ops_take_edge_index(name):
    spec = resolve_op(name)
    assert spec.context == ("edge_index",) and not spec.same_channels
    op = build_op(name, 5, 7, {})
    y = op(torch.randn(4, 5), edge_index=EDGE_INDEX)
    assert y.shape == (4, 7)


def test_layer_choices_follow_nas_bench_graph():
    gat = build_op("gat", 5, 8, {})
    assert gat.heads == 2 and gat.concat is False
    assert build_op("cheb", 5, 8, {}).lins.__len__() == 2  # K = 2
    assert build_op("gat", 5, 8, {"heads": 4, "concat": True})(
        torch.randn(4, 5), edge_index=EDGE_INDEX).shape == (4, 8)
    with pytest.raises(GraphError, match=r"concat=True needs C_out divisible by heads=3"):
        build_op("gat", 5, 8, {"heads": 3, "concat": True})


@pytest.mark.parametrize("name", [n for n in GNN_CONV_OPS if n != "arma"])
def test_zero_output_hooks(name):
    op = build_op(name, 5, 6, {})
    resolve_op(name).zero_output(op)
    x = torch.randn(4, 5)
    y = op(x, edge_index=EDGE_INDEX)
    assert y.abs().max() == 0
    (y * torch.randn_like(y)).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in op.parameters())


def test_arma_has_no_zero_start():
    with pytest.raises(EditError, match=r"op 'arma' has no zero_output hook"):
        zero_output(resolve_op("arma"), build_op("arma", 5, 6, {}), "edge a->b")


def test_global_pools():
    x = torch.arange(12.0).reshape(4, 3)
    batch = torch.tensor([0, 0, 1, 1])
    mean = build_op("global_mean_pool", 3, 3, {})
    add = build_op("global_add_pool", 3, 3, {})
    assert resolve_op("global_mean_pool").context == ("batch",)
    torch.testing.assert_close(mean(x, batch=batch), torch.stack([x[:2].mean(0), x[2:].mean(0)]))
    torch.testing.assert_close(add(x, batch=batch), torch.stack([x[:2].sum(0), x[2:].sum(0)]))
    torch.testing.assert_close(mean(x, batch=None), x.mean(0, keepdim=True))


@pytest.mark.parametrize("name", GNN_CONV_OPS)
def test_the_cost_model_counts_every_message_passing_layer(name):
    from supernet.counting import module_cost

    layer = build_op(name, 6, 4, {})
    out, c = module_cost(layer, (6,))
    assert out == (4,) and c.params == sum(p.numel() for p in layer.parameters())
    # a node's dense transforms: at least the 6x4 weight, never the biases or attention
    assert 24 <= c.macs <= c.params
