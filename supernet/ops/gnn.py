"""Graph-neural-network ops: message-passing layers of PyTorch Geometric.

Each message-passing op is registered with ``context=("edge_index",)``: a compiled graph
calls it as ``module(x, edge_index=edge_index)`` with the ``edge_index`` passed by keyword
to the compiled module's forward. Node features are ``(num_nodes, C)``.

=============== ============================================================= ==========
name            layer                                                         context
=============== ============================================================= ==========
``gcn``         ``GCNConv(C_in, C_out)``                                      edge_index
``gat``         ``GATConv(C_in, C_out, heads=2, concat=False)`` (heads        edge_index
                averaged, as NAS-Bench-Graph's two-head GAT)
``gin``         ``GINConv(Linear - ReLU - Linear)``                           edge_index
``sage``        ``SAGEConv(C_in, C_out)`` (mean aggregation)                  edge_index
``cheb``        ``ChebConv(C_in, C_out, K=2)``                                edge_index
``arma``        ``ARMAConv(C_in, C_out)`` (one stack, one layer)              edge_index
``graphconv``   ``GraphConv(C_in, C_out)`` (the k-GNN layer of Morris et al.) edge_index
``global_mean_pool`` / ``global_add_pool``: per-graph readout ``(N, C) -> (B, C)``  batch
=============== ============================================================= ==========

A fully connected layer is the ``linear`` op, the identity ``identity`` and the zero op
``none`` (all in :mod:`supernet.ops.basic`).

PyTorch Geometric is imported when an op is built, not when supernet is imported.

Cost (:func:`supernet.cost.cost`, per sample = per node, ``input_shape=[C]``): the layer's
parameters exactly, and as MACs its dense transforms of one node's features (every entry of
a weight matrix of two or more dimensions applied once, as a linear layer's MACs are
counted). Aggregation over the edges is not counted: it depends on the graph, not on the
node; for the FLOPs of a whole graph add ``num_edges x C_out`` per layer yourself. The
rules are registered when the first op of this module is built.

Shapes:
    - input: ``(num_nodes, C_in)`` and ``edge_index`` of shape ``(2, num_edges)``
    - output: ``(num_nodes, C_out)``

Examples:
    >>> import torch
    >>> from supernet.ops import build_op
    >>> conv = build_op("gcn", 4, 8, {})
    >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    >>> conv(torch.randn(3, 4), edge_index=edge_index).shape
    torch.Size([3, 8])
"""

from __future__ import annotations

import torch
import torch.nn as nn

from supernet.counting import Cost, parameter_count, register_module_cost
from supernet.ops.basic import zero_last
from supernet.ops.registry import register_op

__all__ = ["GlobalPool", "GNN_CONV_OPS"]

GNN_CONV_OPS = ("gcn", "gat", "gin", "sage", "cheb", "arma", "graphconv")
_EDGE = ("edge_index",)


def _count_layer(m: nn.Module, shape: tuple) -> tuple[tuple, Cost]:
    """Counting rule of a PyG message-passing layer on one node of ``shape`` (module
    docstring): its parameters, and its weight matrices' entries as MACs."""
    heads = getattr(m, "heads", 1) if getattr(m, "concat", False) else 1
    width = getattr(m, "out_channels", None)
    if width is None:  # GIN: the width of its MLP's last linear layer
        width = [c for c in m.modules() if hasattr(c, "out_features")][-1].out_features
    macs = sum(p.numel() for p in m.parameters() if p.dim() >= 2)
    return (*shape[:-1], width * heads), Cost(params=parameter_count(m), macs=macs)


_COUNTED: list = []


def _pyg(name: str):
    """``torch_geometric.nn.<name>``; the first call registers the counting rules of the
    layers of this module."""
    from torch_geometric import nn as pyg

    if not _COUNTED:
        register_module_cost(pyg.GCNConv, pyg.GATConv, pyg.GINConv, pyg.SAGEConv, pyg.ChebConv,
                             pyg.ARMAConv, pyg.GraphConv)(_count_layer)
        _COUNTED.append(True)
    return getattr(pyg, name)


def _zero_all(m: nn.Module) -> None:
    # Layers linear in their weights (GCN, GAT's projection, SAGE, Cheb, GraphConv): zeroing
    # the weights and biases zeroes the output, and the weights still get gradients.
    with torch.no_grad():
        for name, p in m.named_parameters():
            if not name.startswith("att"):
                p.zero_()


def _zero_gin(m: nn.Module) -> None:
    zero_last(m.nn[-1])


@register_op("gcn", context=_EDGE, zero_output=_zero_all)
def gcn(C_in, C_out, bias=True):
    """Graph convolution of Kipf & Welling (``GCNConv``)."""
    GCNConv = _pyg("GCNConv")

    return GCNConv(C_in, C_out, bias=bias)


@register_op("gat", context=_EDGE, zero_output=_zero_all)
def gat(C_in, C_out, heads=2, concat=False, bias=True):
    """Graph attention (``GATConv``), two heads averaged by default."""
    GATConv = _pyg("GATConv")

    if concat and C_out % heads:
        raise ValueError(f"concat=True needs C_out divisible by heads={heads}, got {C_out}")
    out = C_out // heads if concat else C_out
    return GATConv(C_in, out, heads=heads, concat=concat, bias=bias)


@register_op("gin", context=_EDGE, zero_output=_zero_gin)
def gin(C_in, C_out, train_eps=False):
    """Graph isomorphism network layer (``GINConv`` with a Linear - ReLU - Linear MLP)."""
    GINConv = _pyg("GINConv")

    mlp = nn.Sequential(nn.Linear(C_in, C_out), nn.ReLU(), nn.Linear(C_out, C_out))
    return GINConv(mlp, train_eps=train_eps)


@register_op("sage", context=_EDGE, zero_output=_zero_all)
def sage(C_in, C_out, aggr="mean", bias=True):
    """GraphSAGE layer (``SAGEConv``)."""
    SAGEConv = _pyg("SAGEConv")

    return SAGEConv(C_in, C_out, aggr=aggr, bias=bias)


@register_op("cheb", context=_EDGE, zero_output=_zero_all)
def cheb(C_in, C_out, K=2, bias=True):
    """Chebyshev spectral graph convolution (``ChebConv``, ``K=2``)."""
    ChebConv = _pyg("ChebConv")

    return ChebConv(C_in, C_out, K=K, bias=bias)


# No zero_output hook: ARMAConv ends in a ReLU, which has no gradient at a zero output.
@register_op("arma", context=_EDGE)
def arma(C_in, C_out, num_stacks=1, num_layers=1, bias=True):
    """ARMA graph convolution (``ARMAConv``)."""
    ARMAConv = _pyg("ARMAConv")

    return ARMAConv(C_in, C_out, num_stacks=num_stacks, num_layers=num_layers, bias=bias)


@register_op("graphconv", context=_EDGE, zero_output=_zero_all)
def graphconv(C_in, C_out, aggr="add", bias=True):
    """The k-GNN layer of Morris et al. (``GraphConv``)."""
    GraphConv = _pyg("GraphConv")

    return GraphConv(C_in, C_out, aggr=aggr, bias=bias)


class GlobalPool(nn.Module):
    """Per-graph readout of node features: ``(N, C)`` and ``batch`` -> ``(B, C)``."""

    def __init__(self, reduce: str = "mean"):
        super().__init__()
        self.reduce = reduce

    def forward(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        from torch_geometric.nn import global_add_pool, global_mean_pool

        pool = global_mean_pool if self.reduce == "mean" else global_add_pool
        return pool(x, batch)

    def extra_repr(self) -> str:
        return f"reduce={self.reduce!r}"


@register_op("global_mean_pool", same_channels=True, context=("batch",))
def global_mean_pool(C_in, C_out):
    """Mean of the node features of each graph of a batch."""
    return GlobalPool("mean")


@register_op("global_add_pool", same_channels=True, context=("batch",))
def global_add_pool(C_in, C_out):
    """Sum of the node features of each graph of a batch."""
    return GlobalPool("add")
