"""Lowering between levels: layer -> channel -> neuron, and back where it can be done.

:func:`lower` turns a discretized layer-level graph of linear/conv ops (with ``relu``,
``batchnorm`` and ``bn_relu`` as per-unit activations and norms, identity and pooling ops,
``sum`` and ``concat`` merges) into a channel-level graph, or a neuron-level one (each
kernel tap its own connection); given the compiled module, the weights come along and the
lowered module computes the same function. :func:`lift` goes back: neuron -> channel when
every kernel is whole, channel -> layer when every block is full (after unit removal the
layer graph has the shrunk widths). Each lowered node and edge records its ``origin``
(the layer op and arguments), so lifting restores the same op names.

Examples:
    >>> import torch
    >>> from supernet import Graph, compile
    >>> from supernet.units import lower, lift
    >>> g = Graph("layer", name="net"); g.add_input("x", channels=3)
    >>> g.add_node("h", channels=8, op="relu"); g.add_edge("x", "h", "conv_3x3")
    >>> g.add_node("p", channels=8); g.add_edge("h", "p", "global_avg_pool")
    >>> g.add_node("y", channels=2); g.add_edge("p", "y", "linear"); g.set_outputs(["y"])
    >>> net = compile(g).eval(); x = torch.randn(2, 3, 8, 8)
    >>> low = lower(g, "neuron", net)
    >>> low.graph.level, bool((low.module.eval()(x) - net(x)).abs().max() < 1e-5)
    ('neuron', True)
    >>> from supernet.io import to_node_link
    >>> doc = lambda gr: {k: v for k, v in to_node_link(gr).items() if k != "version"}
    >>> doc(lift(low.graph, "layer").graph) == doc(g)
    True
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from supernet.compiler import compile as compile_graph
from supernet.errors import GraphError
from supernet.graph import Graph
from supernet.shapes import infer_channels
from supernet.units.build import add_group, add_input, connect, conv_attrs, taps
from supernet.units.masks import (
    block_mask,
    diagonal_mask,
    empty_mask,
    entry_keys,
    expand_taps,
    from_keys,
)

__all__ = ["Lowered", "lower", "lift"]

_PER_UNIT = {None: ("identity", None), "identity": ("identity", None), "relu": ("relu", None),
             "batchnorm": ("identity", "batchnorm"), "bn_relu": ("relu", "batchnorm")}
_POST = {v: k for k, v in _PER_UNIT.items() if k != "identity"}
_CONV = {"conv", "conv_1x1", "conv_3x3"}
_DENSE = {"linear", "classifier"}
_POOLS = {"global_avg_pool", "max_pool_3x3", "avg_pool_3x3"}
SUPPORTED = sorted(_CONV | _DENSE | _POOLS | {"identity", "skip_connect", "none", "relu",
                                               "batchnorm", "bn_relu"})


@dataclass
class Lowered:
    """A graph at another level, and its module (``None`` if no module was given)."""

    graph: Any
    module: Any = None


def lower(graph, to: str = "channel", module=None) -> Lowered:
    """Lower ``graph`` (layer or channel level) to level ``to``, weights included."""
    order = ("layer", "channel", "neuron")
    if to not in order or order.index(to) <= order.index(graph.level):
        raise GraphError(f"{graph.name}: cannot lower a {graph.level!r}-level graph to {to!r}")
    if graph.level == "layer":
        out = _layer_to_channel(graph, module)
        return lower(out.graph, to, out.module) if to == "neuron" else out
    new = graph.copy()
    new.set_level("neuron")
    for u, v, e in new.nx.edges(data=True):
        if e["kind"] == "conv":
            new.set_edge_attrs(u, v, mask=expand_taps(e["mask"], taps(e)))
    new.touch()
    return Lowered(new, _same_weights(new, module))


def lift(graph, to: str = "layer", module=None, partial: str = "raise") -> Lowered:
    """Lift ``graph`` (neuron or channel level) to level ``to``, weights included.

    Args:
        partial: neuron -> channel when a kernel lost some taps: ``"raise"``, or ``"fill"``
            (the kernel comes back whole, its missing taps at weight zero).
    """
    order = ("layer", "channel", "neuron")
    if to not in order or order.index(to) >= order.index(graph.level):
        raise GraphError(f"{graph.name}: cannot lift a {graph.level!r}-level graph to {to!r}")
    if graph.level == "neuron":
        new = graph.copy()
        new.set_level("channel")
        for u, v, e in new.nx.edges(data=True):
            if e["kind"] == "conv" and taps(e) > 1:
                per, m = taps(e), e["mask"]
                keys = entry_keys(m)
                pairs = (keys // m.shape[1]) * (m.shape[1] // per) + (keys % m.shape[1]) // per
                kernels, counts = np.unique(pairs, return_counts=True)
                if (counts < per).any() and partial != "fill":
                    raise GraphError(
                        f"{graph.name}: edge {u}->{v}: {int((counts < per).sum())} kernel(s) "
                        "lost some taps, and a channel-level connection is a whole kernel; "
                        "pass partial='fill' to bring them back at weight zero"
                    )
                new.set_edge_attrs(u, v, mask=from_keys(kernels, (m.shape[0], m.shape[1] // per)))
        new.touch()
        out = Lowered(new, _same_weights(new, module))
        return lift(out.graph, to, out.module) if to == "layer" else out
    return _channel_to_layer(graph, module)


def _same_weights(graph, module):
    """Compile ``graph`` and load ``module``'s weights (same storage, same names)."""
    if module is None:
        return None

    new = compile_graph(graph, sparse_below=module.sparse_below, kernel=module.kernel)
    with torch.no_grad():
        for name, t in new.state_dict().items():
            t.copy_(module.state_dict()[name].reshape(t.shape))
    return new.train(module.training)


# ---------------------------------------------------------------------- layer -> channel
def _conv_args(op, a):
    k = {"conv_1x1": 1, "conv_3x3": 3}.get(op, a.get("kernel_size", 3))
    pad = {"conv_1x1": 0, "conv_3x3": 1}.get(op, a.get("padding"))
    dim = a.get("dim", 2)
    return conv_attrs(k, a.get("stride", 1), pad, a.get("dilation", 1) if op == "conv" else 1,
                      a.get("groups", 1) if op == "conv" else 1, dim=dim)


def _edge_plan(layer, u, v, op, a, C_in, C_e):
    where = f"{layer.name}: edge {u}->{v}"
    if op in _CONV:
        return "conv", _conv_args(op, a), None
    if op in _DENSE:
        return "dense", {}, None
    if op in ("identity", "none") or (op == "skip_connect" and a.get("stride", 1) == 1
                                      and C_in == C_e):
        return "identity", {}, None
    if op == "global_avg_pool":
        return "identity", {}, "global_avg"
    if op in ("max_pool_3x3", "avg_pool_3x3") and not a.get("pool_bn", False):
        s = a.get("stride", 1)
        return "identity", {}, {"kind": op[:3], "kernel": 3, "stride": s, "padding": 1}
    if op in ("relu", "batchnorm", "bn_relu"):
        raise GraphError(f"{where}: per-unit op {op!r} on an edge lowers only as the single "
                         "in-edge of a node without its own op; give it its own node")
    raise GraphError(f"{where}: op {op!r} has no unit-level form; supported: {SUPPORTED}")


def _layer_to_channel(layer, module) -> Lowered:
    if layer.cells:
        raise GraphError(f"{layer.name}: lowering needs a flat graph; inline the cells first")
    gates = layer.gate_edges()
    if gates:
        raise GraphError(f"{layer.name}: edge {gates[0][0]}->{gates[0][1]} is a gate; "
                         "discretize the graph before lowering it")
    info = infer_channels(layer)
    ch = Graph("channel", name=layer.name)
    ch.meta.update(copy.deepcopy(layer.meta))
    per_unit_edge = {}
    for n, d in layer.nx.nodes(data=True):
        if d.get("kind") == "input":
            add_input(ch, n, info.nodes[n])
            continue
        if d.get("kind") != "merge":
            raise GraphError(f"{layer.name}: node {n!r} is a {d.get('kind')!r} node; inline it")
        post = d.get("op")
        ins = layer.in_edges(n)
        if post is None and len(ins) == 1 and layer.nx.edges[ins[0]]["ops"][0] in _PER_UNIT:
            post = layer.nx.edges[ins[0]]["ops"][0]
            per_unit_edge[ins[0]] = post
        if post not in _PER_UNIT:
            raise GraphError(f"{layer.name}: node {n!r} applies op {post!r}; unit levels apply "
                             f"per-unit ops only: {sorted(k for k in _PER_UNIT if k)}")
        act, norm = _PER_UNIT[post]
        weighted = [e for e in ins if layer.nx.edges[e]["ops"][0] in _CONV | _DENSE]
        bias = any(layer.nx.edges[e]["args"].get("bias", True) for e in weighted)
        origin = {"merge": d.get("merge", "sum"), "op": d.get("op"),
                  "channels": d.get("channels")}
        if "op_args" in d:
            origin["op_args"] = dict(d["op_args"])
        add_group(ch, n, info.nodes[n], act=act, bias=bias, norm=norm, origin=origin)
    offsets = {}
    for n in layer.nx.nodes:
        off = 0
        for u, _ in layer.in_edges(n):
            offsets[(u, n)] = off if layer.nx.nodes[n].get("merge") == "concat" else 0
            off += info.edges[(u, n)][1]
    for u, v, e in layer.nx.edges(data=True):
        op, a = e["ops"][0], dict(e.get("args", {}))
        C_in, C_e = info.edges[(u, v)]
        off, n_dst = offsets[(u, v)], info.nodes[v]
        if (u, v) in per_unit_edge:
            kind, attrs, pool = "identity", {}, None
        else:
            kind, attrs, pool = _edge_plan(layer, u, v, op, a, C_in, C_e)
        if kind == "identity":
            mask = empty_mask(n_dst, C_in) if op == "none" else diagonal_mask(C_in, off, n_dst)
        else:
            g = attrs.get("groups", 1)
            if g > 1 and C_e != n_dst:
                raise GraphError(f"{layer.name}: edge {u}->{v}: a grouped conv into a concat "
                                 "has no unit-level form")
            local = block_mask(C_e, C_in, g) if g > 1 else np.ones((C_e, C_in), bool)
            mask = np.zeros((n_dst, C_in), bool)
            mask[off:off + C_e] = local.toarray() if g > 1 else local
        origin = {"op": op, "args": a, "channels": e.get("channels")}
        attrs = {k: v for k, v in attrs.items()}
        kernel = attrs.pop("kernel", None)
        _connect(ch, u, v, kind, mask, kernel, attrs, pool, e.get("port", 0), origin)
    ch.set_outputs(layer.outputs)
    if module is None:
        return Lowered(ch, None)

    net = compile_graph(ch, kernel="dense")
    _copy_layer_to_channel(layer, module, ch, net, offsets, info)
    return Lowered(ch, net.train(module.training))


def _connect(ch, u, v, kind, mask, kernel, attrs, pool, port, origin):
    connect(ch, u, v, kind, mask=mask, kernel=kernel, pool=pool, port=port, origin=origin,
            **attrs)


def _bn_of(mod):
    if isinstance(mod, torch.nn.Sequential):
        return mod[0]
    return mod


def _copy_layer_to_channel(layer, lm, ch, net, offsets, info):
    with torch.no_grad():
        for n in layer.nx.nodes:
            if layer.nx.nodes[n].get("kind") == "input":
                continue
            params = net.unit_params(n)
            if params.bias is not None:
                params.bias.zero_()
            bn = None
            if layer.nx.nodes[n].get("op") in ("batchnorm", "bn_relu"):
                bn = _bn_of(lm.steps[n].op)
            for u, _ in layer.in_edges(n):
                op = layer.nx.edges[u, n]["ops"][0]
                mod = lm.edge_module(u, n)[op]
                if op in ("batchnorm", "bn_relu"):
                    bn = _bn_of(mod)
                if op in _CONV | _DENSE:
                    off, C_e = offsets[(u, n)], info.edges[(u, n)][1]
                    net.block(u, n).weight[off:off + C_e] = mod.weight
                    if mod.bias is not None:
                        params.bias[off:off + C_e] += mod.bias
            if bn is not None:
                _copy_bn(bn, params, to_unit=True)


def _copy_bn(bn, params, to_unit: bool):
    pairs = [("weight", "norm_weight"), ("bias", "norm_bias"), ("running_mean", "running_mean"),
             ("running_var", "running_var"), ("num_batches_tracked", "num_batches_tracked")]
    for a, b in pairs:
        x, y = getattr(bn, a), getattr(params, b)
        if x is None:
            continue
        (y if to_unit else x).copy_(x if to_unit else y)


# ---------------------------------------------------------------------- channel -> layer
def _channel_to_layer(ch, module) -> Lowered:
    layer = Graph("layer", name=ch.name)
    layer.meta.update(copy.deepcopy(ch.meta))
    for n, d in ch.nx.nodes(data=True):
        if d["kind"] == "input":
            if len(d["units"]) != d["width"] or not np.array_equal(d["units"],
                                                                  np.arange(d["width"])):
                raise GraphError(f"{ch.name}: input {n!r} reads {len(d['units'])} of its "
                                 f"{d['width']} features; a layer graph reads whole tensors")
            layer.add_input(n, channels=int(d["width"]))
            continue
        post = _POST.get((d.get("act", "identity"), d.get("norm")))
        if post is None and (d.get("act", "identity"), d.get("norm")) != ("identity", None):
            raise GraphError(f"{ch.name}: node {n!r} (act {d.get('act')!r}, norm "
                             f"{d.get('norm')!r}) has no layer op")
        origin = d.get("origin") or {}
        extra = {"op": post} if post is not None else {}
        if post is not None and origin.get("op") == post and "op_args" in origin:
            extra["op_args"] = dict(origin["op_args"])
        declared = origin.get("channels", True) is not None  # undeclared widths stay inferred
        layer.add_node(n, merge=origin.get("merge", "sum"),
                       channels=len(d["units"]) if declared else None, **extra)
    first_weighted, ops = {}, {}
    for u, v, e in ch.nx.edges(data=True):
        op, args, channels = _layer_op(ch, u, v, e)
        node = ch.nx.nodes[v]
        if op in _CONV | _DENSE:
            first = first_weighted.setdefault(v, (u, v))
            if bool(node.get("bias", True)) and first == (u, v):
                if args.get("bias", True) is False:
                    args["bias"] = True
            else:
                args["bias"] = False
        elif op in _PER_UNIT and op is not None:
            layer.del_node_attrs(v, "op", "op_args")
        ops[(u, v)] = op
        layer.add_edge(u, v, op, port=e.get("port"), channels=channels, **args)
    for v, d in ch.nx.nodes(data=True):
        if d["kind"] == "units" and d.get("bias", True) and v not in first_weighted:
            raise GraphError(f"{ch.name}: node {v!r} has a bias but no conv or dense in-edge to "
                             "carry it; set bias=False or add a weighted edge")
    layer.set_outputs(ch.outputs)
    if module is None:
        return Lowered(layer, None)

    lm = compile_graph(layer)
    _copy_channel_to_layer(ch, module, layer, lm, ops)
    return Lowered(layer, lm.train(module.training))


def _layer_op(ch, u, v, e):
    where = f"{ch.name}: edge {u}->{v}"
    origin = e.get("origin") or {}
    m, n_dst, n_src = e["mask"], *e["mask"].shape
    rows = np.unique(entry_keys(m) // max(n_src, 1))
    off = int(rows[0]) if len(rows) else 0
    C_e = len(rows)
    concat = (ch.nx.nodes[v].get("origin") or {}).get("merge") == "concat"
    channels = C_e if concat and (C_e != n_src or origin.get("channels") is not None) else None
    if e["kind"] == "identity":
        if origin.get("op") == "none" and m.nnz == 0:
            return "none", dict(origin.get("args", {})), None
        if m.nnz != n_src or not np.array_equal(m.indices, np.arange(n_src)) or (
                not concat and n_src != n_dst) or (len(rows) and rows[-1] - off + 1 != C_e):
            raise GraphError(f"{where}: only a whole one-to-one identity lifts to a layer op")
        if e.get("pool") == "global_avg":
            return "global_avg_pool", {}, channels
        p = e.get("pool")
        if isinstance(p, dict) and p["kernel"] == [3] * len(p["kernel"]) and \
                p["padding"] == [1] * len(p["kernel"]) and len(set(p["stride"])) == 1:
            return f"{p['kind']}_pool_3x3", {"stride": p["stride"][0]}, channels
        if p is not None:
            raise GraphError(f"{where}: pool {p} has no layer op (global_avg, or 3x3 max/avg "
                             "pooling with padding 1)")
        op = origin.get("op") if origin.get("op") in ("identity", "skip_connect", "relu",
                                                      "batchnorm", "bn_relu") else "identity"
        return op, dict(origin.get("args", {})) if op == origin.get("op") else {}, channels
    g = e.get("groups", 1)
    want = block_mask(C_e, n_src, g) if g > 1 else None
    full = m.nnz == (want.nnz if g > 1 else C_e * n_src) and (not len(rows) or
                                                              rows[-1] - off + 1 == C_e)
    if not full:
        raise GraphError(f"{where}: the block has {m.nnz} connections, a layer op is dense; "
                         "lift only full blocks (or keep the graph at unit level)")
    a = dict(origin.get("args", {}))
    if e["kind"] == "dense":
        op = origin.get("op") if origin.get("op") in _DENSE else "linear"
        return op, {k: a[k] for k in a if k == "bias"} if op == origin.get("op") else {}, channels
    k, s, p, dl = e["kernel"], e["stride"], e["padding"], e["dilation"]
    sq = len(set(k)) == 1 and len(set(s)) == 1 and len(set(p)) == 1 and len(set(dl)) == 1
    if not sq:
        raise GraphError(f"{where}: non-square convs have no layer op")
    op = origin.get("op")
    if op in _CONV and _conv_args(op, a) == {**conv_attrs(k, s, p, dl, g), "groups": g}:
        return op, a, channels
    args = {"kernel_size": k[0], "stride": s[0], "padding": p[0], "dilation": dl[0],
            "groups": g}
    if len(k) != 2:
        args["dim"] = len(k)
    return "conv", args, channels


def _copy_channel_to_layer(ch, net, layer, lm, ops):
    with torch.no_grad():
        for (u, v), op in ops.items():
            mod = lm.edge_module(u, v)[op]
            if op in _CONV | _DENSE:
                m = ch.nx.edges[u, v]["mask"]
                rows = np.unique(entry_keys(m) // max(m.shape[1], 1))
                w = net.block(u, v).effective()
                mod.weight.copy_(w[rows[0]:rows[-1] + 1].reshape(mod.weight.shape))
                if mod.bias is not None:
                    mod.bias.copy_(net.unit_params(v).bias[rows[0]:rows[-1] + 1])
        for v, d in ch.nx.nodes(data=True):
            if d["kind"] != "units" or d.get("norm") != "batchnorm":
                continue
            node_op = layer.nx.nodes[v].get("op")
            src = lm.steps[v].op if node_op is not None else next(
                lm.edge_module(u, v)[ops[(u, v)]] for u, _ in ch.in_edges(v))
            _copy_bn(_bn_of(src), net.unit_params(v), to_unit=False)
