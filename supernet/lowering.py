"""Lowering between levels: layer -> channel -> neuron, and back where it can be done.

:func:`lower` turns a discretized layer-level graph into a channel-level graph, or a
neuron-level one (each kernel tap its own connection); given the compiled module, the
weights come along and the lowered module computes the same function. What each op becomes
is the op's own fact: its ``lower=`` rule (``register_op(name, lower=rule)``) gives a record
of :mod:`supernet.ops.forms` -- a conv or dense block, the identity (diagonal), the zero
(empty) block, a pooling, or a per-unit activation and norm (on a node, or as the single
in-edge of a node without an op); the built-in linear, conv, identity, pooling, ``relu``,
``batchnorm`` and ``bn_relu`` ops have one, with ``sum`` and ``concat`` merges. An op that is
a small network (a separable conv, an MBConv, a factorized reduce) gives a ``Composite``: a
node per stage, named ``"<dst>/<src>~<stage>"``, its last stage the edge's destination when
the op is its only input. Cells are inlined first (:func:`inline`), so the evaluation
networks of the DARTS, NAS-Bench-201 and MobileNetV2 spaces lower whole
(``docs/lowering.md``). :func:`lift`
goes back: neuron -> channel when every kernel is whole, channel -> layer when every block is
full (after unit removal the layer graph has the shrunk widths). Each lowered node and edge
records its ``origin`` (the layer op and arguments), so lifting restores the same op names
where the origin's form still holds; elsewhere the op whose ``lift=`` rule accepts the form
is chosen.

Examples:
    >>> import torch
    >>> from supernet import Graph, compile
    >>> from supernet.lowering import lower, lift
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
from supernet.compiler.module import module_key
from supernet.ops.forms import (
    Composite,
    ConvBlock,
    DenseBlock,
    EmptyBlock,
    IdentityBlock,
    PerUnit,
    Pool,
)
from supernet.ops.registry import OPS, bound_args, resolve_op
from supernet.registry import Registry
from supernet.schema import bind_value
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

__all__ = ["Lowered", "lower", "lift", "inline", "lowering_error", "LOWERINGS", "LIFTS"]

_WEIGHTED = (ConvBlock, DenseBlock)


@dataclass
class Lowered:
    """A graph at another level, and its module (``None`` if no module was given)."""

    graph: Any
    module: Any = None


def lower(graph, to: str = "channel", module=None) -> Lowered:
    """Lower ``graph`` (layer or channel level) to level ``to``, weights included."""
    return _walk(LOWERINGS, "lower", graph, to, module)


def lift(graph, to: str = "layer", module=None, partial: str = "raise") -> Lowered:
    """Lift ``graph`` (neuron or channel level) to level ``to``, weights included.

    Args:
        partial: neuron -> channel when a kernel lost some taps: ``"raise"``, or ``"fill"``
            (the kernel comes back whole, its missing taps at weight zero).
    """
    return _walk(LIFTS, "lift", graph, to, module, partial=partial)


def inline(graph, module=None) -> Lowered:
    """``graph`` with every ``call`` node replaced by the nodes of its cell template, weights
    included: one flat layer-level graph computing the same outputs.

    The template's nodes of call ``c`` are named ``"c/<node>"``, its output takes the name
    ``c`` (what read the call reads it), its inputs are the call's arguments, and its
    ``"$symbols"`` are bound (the call's ``bind=`` over the caller's). Calls that share
    weights (``weights=``) get copies of the shared weights, which then train apart, and a
    template may not hold gates (all its calls share them; discretize the graph first).
    Nested calls are inlined too.
    """
    out = Lowered(graph, module)
    while any(d.get("kind") == "call" for _, d in out.graph.nx.nodes(data=True)):
        out = _inline_once(out.graph, out.module)
    if out.graph is graph:
        out = Lowered(graph.copy(), None if module is None else module)
        out.graph.cells.clear()
        if module is not None:
            out.module = compile_graph(out.graph)
            out.module.load_state_dict(module.state_dict())
            out.module.train(module.training)
    return out


_CALL_KEYS = ("kind", "cell", "args", "bind", "weights")


def _inline_once(graph, module) -> Lowered:
    """One level of :func:`inline`; ``source`` maps each new edge and node to where its
    modules come from: ``(layer module path, old u, old v)`` / ``(path, old node)``."""
    nodes, edges, source = [], [], {}
    calls = {n: d for n, d in graph.nx.nodes(data=True) if d.get("kind") == "call"}
    cells = {}
    for n, d in graph.nx.nodes(data=True):
        if n not in calls:
            nodes.append((n, copy.deepcopy(dict(d))))
            source[n] = ((), n)
            continue
        t = graph.cells[d["cell"]]
        cells.update(t.cells)
        gates = t.gate_edges()
        if gates:
            raise GraphError(f"{graph.name}: call {n!r}: edge {gates[0][0]}->{gates[0][1]} of "
                             f"cell {d['cell']!r} is a gate, shared by every call of the cell; "
                             "discretize the graph before inlining it")
        where = f"{graph.name}: call {n!r}"
        bind = bind_value(dict(d.get("bind", {})), {}, where)
        (out,) = t.outputs
        if out in t.inputs:
            raise GraphError(f"{where}: cell {d['cell']!r} returns its input {out!r}; "
                             "nothing to inline")
        names = {m: a for m, a in zip(t.inputs, d["args"])}
        names.update({m: (n if m == out else f"{n}/{m}") for m in t.nx.nodes
                      if m not in t.inputs})
        for m, md in t.nx.nodes(data=True):
            if m in t.inputs:
                continue
            attrs = bind_value(copy.deepcopy(dict(md)), bind, f"{where}: node {m!r}")
            if attrs.get("kind") == "call":
                attrs["args"] = [names[a] for a in attrs["args"]]
            if m == out:
                attrs.update({k: v for k, v in d.items() if k not in _CALL_KEYS})
            nodes.append((names[m], attrs))
            source[names[m]] = ((n,), m)
        for a, b, e in t.nx.edges(data=True):
            attrs = bind_value(copy.deepcopy(dict(e)), bind, f"{where}: edge {a}->{b}")
            edges.append((names[a], names[b], attrs))
            source[(names[a], names[b])] = ((n,), a, b)
    for u, v, e in graph.nx.edges(data=True):
        if v in calls:
            continue  # the arguments of a call: the template's edges replace them
        edges.append((u, v, copy.deepcopy(dict(e))))
        source[(u, v)] = ((), u, v)
    seen = set()
    for u, v, _ in edges:
        if (u, v) in seen:
            raise GraphError(f"{graph.name}: inlining gives two edges {u}->{v} (a cell reads "
                             "one argument through two of its inputs into the same node); "
                             "give the call distinct arguments")
        seen.add((u, v))
    attrs = {k: copy.deepcopy(v) for k, v in graph.nx.graph.items()}
    flat = Graph.from_parts(attrs, nodes, edges, cells=cells)
    flat.touch()
    if module is None:
        return Lowered(flat, None)
    new = compile_graph(flat)
    new.drop_path_prob = getattr(module, "drop_path_prob", 0.0)
    with torch.no_grad():
        for key, (path, *old) in source.items():
            owner = module
            for call in path:
                owner = owner.steps[module_key(call)].cell
            if isinstance(key, tuple):
                if not flat.nx.edges[key].get("ops"):
                    continue
                src, dst = new.edge_module(*key), owner.edge_module(*old)
                for op in flat.nx.edges[key]["ops"]:
                    src[op].load_state_dict(dst[op].state_dict())
            elif flat.nx.nodes[key].get("op") is not None:
                new.steps[module_key(key)].op.load_state_dict(
                    owner.steps[module_key(old[0])].op.state_dict())
    return Lowered(flat, new.train(module.training))


def lowering_error(op: str, C_in: int, C_out: int, args: dict | None = None,
                   shape: tuple = (7, 7), to: str = "channel", train: bool = False,
                   seed: int = 0) -> float:
    """The largest ``|difference|`` between op ``op`` and its lowering to level ``to``.

    The op (``C_in -> C_out`` channels, ``args``) is compiled on one edge, its weights, batch
    norm affine entries and running statistics drawn at random (``seed``), lowered with its
    weights, and both run on the same random input of spatial ``shape`` (``()``: a
    ``(N, C_in)`` input), in eval mode or, with ``train``, in training mode (batch norms on
    the batch statistics). A ``lower=`` rule is right when this is at rounding level. An
    output of the same values in another shape (a global pooling's ``(N, C)`` for the op's
    ``(N, C, 1, 1)``) is compared as the op's shape.

    Examples:
        >>> lowering_error("sep_conv_3x3", 4, 6, {"stride": 2}) < 1e-5
        True
    """
    gen = torch.Generator().manual_seed(seed)
    g = Graph("layer", name=op)
    g.add_input("x", channels=C_in)
    g.add_node("y", channels=C_out)
    g.add_edge("x", "y", op, **dict(args or {}))
    g.set_outputs(["y"])
    net = compile_graph(g)
    with torch.no_grad():
        for t in list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]:
            t.copy_(torch.rand(t.shape, generator=gen) + 0.5 if t.dim() == 1 else
                    torch.randn(t.shape, generator=gen) * 0.5)
    low = lower(g, to, net)
    net.train(train)
    low.module.train(train)
    x = torch.randn((4, C_in, *shape), generator=gen)
    with torch.no_grad():
        ref, out = net(x), low.module(x)
        # a pooled (N, C) value stands for the op's (N, C, 1, 1) (adaptive_avg_pool)
        return float((out.reshape(ref.shape) - ref).abs().max())


def _walk(steps: Registry, verb: str, graph, to: str, module, **options) -> Lowered:
    """Apply the steps from ``graph``'s level to ``to``, one level at a time."""
    path, level = [], graph.level
    while level != to and level in steps:
        level, step = steps.resolve(level)
        path.append(step)
    if level != to or not path:
        raise GraphError(f"{graph.name}: cannot {verb} a {graph.level!r}-level graph to {to!r}")
    out = Lowered(graph, module)
    for step in path:
        out = step(out.graph, out.module, **options)
    return out


def _channel_to_neuron(graph, module, **_) -> Lowered:
    new = graph.copy()
    new.set_level("neuron")
    for u, v, e in new.nx.edges(data=True):
        if e["kind"] == "conv":
            new.set_edge_attrs(u, v, mask=expand_taps(e["mask"], taps(e)))
    new.touch()
    return Lowered(new, _same_weights(new, module))


def _neuron_to_channel(graph, module, partial: str = "raise") -> Lowered:
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
    return Lowered(new, _same_weights(new, module))


def _same_weights(graph, module):
    """Compile ``graph`` and load ``module``'s weights (same storage, same names)."""
    if module is None:
        return None

    new = compile_graph(graph, sparse_below=module.sparse_below, kernel=module.kernel)
    with torch.no_grad():
        for name, t in new.state_dict().items():
            t.copy_(module.state_dict()[name].reshape(t.shape))
    return new.train(module.training)


# ---------------------------------------------------------------------- the ops' forms
def _op_form(op, C_in, C_out, args, where):
    """The channel-level form of ``op`` (its ``lower=`` rule); fails when it has none."""
    spec = resolve_op(op, where)
    if spec.lower is None:
        raise GraphError(f"{where}: op {op!r} has no unit-level form; give it one with "
                         f"register_op({op!r}, ..., lower=rule) (see supernet.ops.forms)")
    form = spec.lower(C_in, C_out, bound_args(spec, C_in, C_out, args, where))
    if form is None:
        raise GraphError(f"{where}: op {op!r} has no unit-level form with arguments {args} "
                         f"({C_in} -> {C_out} channels)")
    return form


def _origin_form(op, C_in, C_out, args):
    """The form of a recorded origin op, or ``None`` if it has none (or is not registered)."""
    spec = OPS.get(op) if isinstance(op, str) else None
    if spec is None or spec.lower is None:
        return None
    try:
        return spec.lower(C_in, C_out, bound_args(spec, C_in, C_out, args))
    except (GraphError, KeyError, TypeError, ValueError):
        return None


def _holds(op_form, form) -> bool:
    """Does an op of form ``op_form`` hold the channel-level ``form``? (a per-unit op on an
    edge lowers to the identity, its activation and norm moved to the node)"""
    if op_form == form:
        return True
    return isinstance(form, IdentityBlock) and isinstance(op_form, PerUnit)


def _node_form(form):
    """The node-level reading of an op's form: the identity is the per-unit identity."""
    return PerUnit() if isinstance(form, IdentityBlock) else form


def _lift_op(form, where):
    """``(op, args)`` of the first op, by name, whose ``lift=`` rule accepts ``form``."""
    for name, spec in OPS.items():
        if spec.lift is not None:
            args = spec.lift(form)
            if args is not None:
                return name, dict(args)
    raise GraphError(f"{where}: no registered op holds {form}; register one with "
                     "register_op(name, ..., lift=rule) or keep the graph at unit level")


def _weights(form, module):
    return module if form.weights is None else form.weights(module)


def _norm(form, module):
    return module if form.norm_of is None else form.norm_of(module)


# ---------------------------------------------------------------------- layer -> channel
def _layer_to_channel(layer, module) -> Lowered:
    if layer.cells or any(d.get("kind") == "call" for _, d in layer.nx.nodes(data=True)):
        flat = inline(layer, module)
        layer, module = flat.graph, flat.module
    gates = layer.gate_edges()
    if gates:
        raise GraphError(f"{layer.name}: edge {gates[0][0]}->{gates[0][1]} is a gate; "
                         "discretize the graph before lowering it")
    info = infer_channels(layer)
    forms = {(u, v): _op_form(e["ops"][0], *info.edges[(u, v)], e.get("args", {}),
                              f"{layer.name}: edge {u}->{v}")
             for u, v, e in layer.nx.edges(data=True)}
    ch = Graph("channel", name=layer.name)
    ch.set_meta(**copy.deepcopy(layer.meta))
    per_unit_edge, node_forms, fused = set(), {}, {}
    for n, d in layer.nx.nodes(data=True):
        if d.get("kind") == "input":
            add_input(ch, n, info.nodes[n])
            continue
        if d.get("kind") != "merge":
            raise GraphError(f"{layer.name}: node {n!r} is a {d.get('kind')!r} node; inline it")
        ins = layer.in_edges(n)
        where = f"{layer.name}: node {n!r}"
        if d.get("op") is not None:
            C = info.nodes[n]
            post = _node_form(_op_form(d["op"], C, C, d.get("op_args", {}), where))
        elif len(ins) == 1 and isinstance(forms[ins[0]], PerUnit):
            post = forms[ins[0]]
            per_unit_edge.add(ins[0])
        elif (len(ins) == 1 and isinstance(forms[ins[0]], Composite)
              and info.edges[ins[0]][1] == info.nodes[n]):  # the op writes all of n
            st = forms[ins[0]].output  # the op's last stage is the node itself
            post = PerUnit(st.act, st.norm)
            fused[ins[0]] = n
        else:
            post = PerUnit()
        if not isinstance(post, PerUnit):
            raise GraphError(f"{where} applies op {d['op']!r}; unit levels apply per-unit ops "
                             "only (an activation or norm: an op whose lower= rule gives a "
                             "PerUnit); put the op on an edge")
        node_forms[n] = post
        weighted = [forms[e] for e in ins if isinstance(forms[e], _WEIGHTED)]
        bias = any(f.bias for f in weighted)
        norm_attrs = {}
        if ins and ins[0] in fused:
            bias = _stage_bias(forms[ins[0]], forms[ins[0]].output.name)
            norm_attrs = _norm_attrs(forms[ins[0]].output)
        origin = {"merge": d.get("merge", "sum"), "op": d.get("op"),
                  "channels": d.get("channels")}
        if "op_args" in d:
            origin["op_args"] = dict(d["op_args"])
        add_group(ch, n, info.nodes[n], act=post.act, bias=bias, norm=post.norm, origin=origin,
                  **norm_attrs)
    offsets = {}
    for n in layer.nx.nodes:
        off = 0
        for u, _ in layer.in_edges(n):
            offsets[(u, n)] = off if layer.nx.nodes[n].get("merge") == "concat" else 0
            off += info.edges[(u, n)][1]
    for u, v, e in layer.nx.edges(data=True):
        op, a, form = e["ops"][0], dict(e.get("args", {})), forms[(u, v)]
        C_in, C_e = info.edges[(u, v)]
        off, n_dst = offsets[(u, v)], info.nodes[v]
        where = f"{layer.name}: edge {u}->{v}"
        pool, kernel, attrs = None, None, {}
        if isinstance(form, Composite):
            _expand(ch, layer, (u, v), form, info, off, fused.get((u, v)), origin=(op, a))
            continue
        if isinstance(form, PerUnit) and (u, v) not in per_unit_edge:
            raise GraphError(f"{where}: per-unit op {op!r} on an edge lowers only as the single "
                             "in-edge of a node without its own op; give it its own node")
        if isinstance(form, _WEIGHTED):
            kind = "conv" if isinstance(form, ConvBlock) else "dense"
            if kind == "conv":
                attrs = conv_attrs(list(form.kernel), list(form.stride), list(form.padding),
                                   list(form.dilation), form.groups, where=where)
                kernel = attrs.pop("kernel")
            g = attrs.get("groups", 1)
            if g > 1 and C_e != n_dst:
                raise GraphError(f"{where}: a grouped conv into a concat has no unit-level form")
            local = block_mask(C_e, C_in, g) if g > 1 else np.ones((C_e, C_in), bool)
            mask = np.zeros((n_dst, C_in), bool)
            mask[off:off + C_e] = local.toarray() if g > 1 else local
        else:
            kind = "identity"
            if isinstance(form, EmptyBlock):
                mask = empty_mask(n_dst, C_in)
            else:
                mask = diagonal_mask(C_in, off, n_dst)
            if isinstance(form, Pool):
                pool = form.unit_spec()
        origin = {"op": op, "args": a, "channels": e.get("channels")}
        connect(ch, u, v, kind, mask=mask, kernel=kernel, pool=pool, port=e.get("port", 0),
                origin=origin, **attrs)
    ch.set_outputs(layer.outputs)
    if module is None:
        return Lowered(ch, None)

    net = compile_graph(ch, kernel="dense")
    _copy_layer_to_channel(layer, module, net, offsets, info, forms, node_forms)
    _copy_composites(layer, module, net, forms, fused)
    return Lowered(ch, net.train(module.training))


def _stage_name(e, stage, fused_into):
    u, v = e
    return fused_into if fused_into is not None else f"{v}/{u}~{stage}"


def _stage_bias(form, stage) -> bool:
    return any(isinstance(l.block, _WEIGHTED) and l.block.bias
               for l in form.links if l.dst == stage)


def _norm_attrs(stage) -> dict:
    if stage.norm is None or (stage.eps, stage.momentum) == (1e-5, 0.1):
        return {}
    return {"norm_eps": float(stage.eps), "norm_momentum": float(stage.momentum)}


def _expand(ch, layer, e, form, info, off, fused_into, origin):
    """The nodes and blocks of composite op ``form`` on layer edge ``e = (u, v)``: a node per
    stage (the last one is ``v`` itself when the op is ``v``'s only input, else it is added
    into ``v`` by an identity block at offset ``off``)."""
    u, v = e
    op, args = origin
    where = f"{layer.name}: edge {u}->{v} ({op})"
    last = form.output.name
    names = {"in": u}
    for st in form.stages:
        if st.name == last and fused_into is not None:
            names[st.name] = fused_into
            continue
        names[st.name] = _stage_name(e, st.name, None)
        add_group(ch, names[st.name], st.width, act=st.act, bias=_stage_bias(form, st.name),
                  norm=st.norm, origin={"op": op, "args": args, "edge": [u, v],
                                        "stage": st.name}, **_norm_attrs(st))
    for i, link in enumerate(form.links):
        s, d = names[link.src], names[link.dst]
        n_src, n_dst = len(ch.node(s)["units"]), len(ch.node(d)["units"])
        kernel, pool, attrs = None, None, {}
        block = link.block
        if isinstance(block, _WEIGHTED):
            kind = "conv" if isinstance(block, ConvBlock) else "dense"
            if kind == "conv":
                attrs = conv_attrs(list(block.kernel), list(block.stride), list(block.padding),
                                   list(block.dilation), block.groups, where=where)
                kernel = attrs.pop("kernel")
            g = attrs.get("groups", 1)
            mask = block_mask(n_dst, n_src, g) if g > 1 else np.ones((n_dst, n_src), bool)
            if link.pool is not None:
                pool = link.pool.unit_spec()
        else:
            kind = "identity"
            mask = diagonal_mask(n_src, 0, n_dst)
            if isinstance(block, Pool):
                pool = block.unit_spec()
        connect(ch, s, d, kind, mask=mask, kernel=kernel, pool=pool,
                origin={"op": op, "args": args, "edge": [u, v], "link": i}, **attrs)
    if fused_into is None:
        C_e = form.output.width
        connect(ch, names[last], v, "identity",
                mask=diagonal_mask(C_e, off, info.nodes[v]), port=layer.nx.edges[e].get("port"),
                origin={"op": op, "args": args, "edge": [u, v], "link": "out",
                        "channels": layer.nx.edges[e].get("channels")})


def _copy_composites(layer, lm, net, forms, fused):
    """Weights, biases and norms of every composite op's stages and blocks."""
    with torch.no_grad():
        for (u, v), form in forms.items():
            if not isinstance(form, Composite):
                continue
            e = (u, v)
            op = layer.nx.edges[e]["ops"][0]
            mod = lm.edge_module(u, v)[op]
            names = {"in": u}
            for st in form.stages:
                names[st.name] = fused[e] if (st is form.output and e in fused) else \
                    _stage_name(e, st.name, None)
                params = net.unit_params(names[st.name])
                if params.bias is not None and not (st is form.output and e in fused):
                    params.bias.zero_()
            for link in form.links:
                if not isinstance(link.block, _WEIGHTED):
                    continue
                sub = _weights(link.block, mod)
                w = link.weight(mod) if link.weight is not None else sub.weight
                net.block(names[link.src], names[link.dst]).weight.copy_(w)
                b = link.bias(mod) if link.bias is not None else getattr(sub, "bias", None)
                if b is not None:
                    net.unit_params(names[link.dst]).bias += b
            for st in form.stages:
                if st.norm is not None:
                    _copy_bn(_norm(st, mod), net.unit_params(names[st.name]), to_unit=True)


def _copy_layer_to_channel(layer, lm, net, offsets, info, forms, node_forms):
    with torch.no_grad():
        for n in layer.nx.nodes:
            if layer.nx.nodes[n].get("kind") == "input":
                continue
            params = net.unit_params(n)
            if params.bias is not None:
                params.bias.zero_()
            bn = None
            if layer.nx.nodes[n].get("op") is not None and node_forms[n].norm is not None:
                bn = _norm(node_forms[n], lm.steps[n].op)
            for u, _ in layer.in_edges(n):
                op, form = layer.nx.edges[u, n]["ops"][0], forms[(u, n)]
                mod = lm.edge_module(u, n)[op]
                if isinstance(form, PerUnit) and form.norm is not None:
                    bn = _norm(form, mod)
                if isinstance(form, _WEIGHTED):
                    mod = _weights(form, mod)
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
    parts = [n for n, d in ch.nx.nodes(data=True) if "stage" in (d.get("origin") or {})]
    if parts:
        op = ch.nx.nodes[parts[0]]["origin"]["op"]
        raise GraphError(f"{ch.name}: node {parts[0]!r} is a stage of op {op!r} lowered "
                         "to several nodes; lifting a composite op back to its layer op is "
                         "not supported (keep the graph at unit level)")
    layer = Graph("layer", name=ch.name)
    layer.set_meta(**copy.deepcopy(ch.meta))
    node_forms = {}
    for n, d in ch.nx.nodes(data=True):
        if d["kind"] == "input":
            if len(d["units"]) != d["width"] or not np.array_equal(d["units"],
                                                                  np.arange(d["width"])):
                raise GraphError(f"{ch.name}: input {n!r} reads {len(d['units'])} of its "
                                 f"{d['width']} features; a layer graph reads whole tensors")
            layer.add_input(n, channels=int(d["width"]))
            continue
        origin = d.get("origin") or {}
        form = PerUnit(d.get("act", "identity"), d.get("norm"))
        C = len(d["units"])
        op, args = origin.get("op"), dict(origin.get("op_args", {}))
        of = _origin_form(op, C, C, args)
        if of is None or _node_form(of) != form:
            op, args = (None, {}) if form == PerUnit() else _lift_op(form, f"{ch.name}: node {n!r}")
        extra = {}
        if op is not None:
            extra["op"] = op
            node_forms[n] = _node_form(_origin_form(op, C, C, args) or form)
            if args:
                extra["op_args"] = args
        declared = origin.get("channels", True) is not None  # undeclared widths stay inferred
        layer.add_node(n, merge=origin.get("merge", "sum"),
                       channels=len(d["units"]) if declared else None, **extra)
    first_weighted, ops, forms = {}, {}, {}
    for u, v, e in ch.nx.edges(data=True):
        op, args, channels, form = _layer_op(ch, u, v, e)
        node = ch.nx.nodes[v]
        if isinstance(form, _WEIGHTED):
            takes_bias = "bias" in resolve_op(op).params
            first = first_weighted.setdefault(v, (u, v))
            if bool(node.get("bias", True)) and first == (u, v):
                if takes_bias and args.get("bias", True) is False:
                    args["bias"] = True
            elif takes_bias:
                args["bias"] = False
        elif isinstance(form, PerUnit):
            layer.del_node_attrs(v, "op", "op_args")
            node_forms.pop(v, None)
        ops[(u, v)], forms[(u, v)] = op, form
        layer.add_edge(u, v, op, port=e.get("port"), channels=channels, **args)
    for v, d in ch.nx.nodes(data=True):
        if d["kind"] == "units" and d.get("bias", True) and v not in first_weighted:
            raise GraphError(f"{ch.name}: node {v!r} has a bias but no conv or dense in-edge to "
                             "carry it; set bias=False or add a weighted edge")
    layer.set_outputs(ch.outputs)
    if module is None:
        return Lowered(layer, None)

    lm = compile_graph(layer)
    _copy_channel_to_layer(ch, module, lm, ops, forms, node_forms)
    return Lowered(layer, lm.train(module.training))


def _layer_op(ch, u, v, e):
    """``(op, args, channels, form)`` of the layer edge holding channel-level edge ``u->v``
    (``form``: the op's own form, with its weights and norm accessors)."""
    where = f"{ch.name}: edge {u}->{v}"
    origin = e.get("origin") or {}
    m, n_dst, n_src = e["mask"], *e["mask"].shape
    rows = np.unique(entry_keys(m) // max(n_src, 1))
    off = int(rows[0]) if len(rows) else 0
    C_e = len(rows)
    concat = (ch.nx.nodes[v].get("origin") or {}).get("merge") == "concat"
    channels = C_e if concat and (C_e != n_src or origin.get("channels") is not None) else None
    op, args = origin.get("op"), dict(origin.get("args", {}))
    if e["kind"] == "identity":
        of = _origin_form(op, n_src, C_e or n_dst, args)
        if m.nnz == 0 and isinstance(of, EmptyBlock):
            return op, args, None, of
        if m.nnz != n_src or not np.array_equal(m.indices, np.arange(n_src)) or (
                not concat and n_src != n_dst) or (len(rows) and rows[-1] - off + 1 != C_e):
            raise GraphError(f"{where}: only a whole one-to-one identity lifts to a layer op")
        p = e.get("pool")
        form = IdentityBlock() if p is None else Pool.from_unit_spec(p)
    else:
        if e.get("pool") is not None:
            raise GraphError(f"{where}: a {e['kind']} block on a pooled source has no layer op; "
                             "give the pooling an identity edge into a node of its own")
        g = e.get("groups", 1)
        want = block_mask(C_e, n_src, g) if g > 1 else None
        full = m.nnz == (want.nnz if g > 1 else C_e * n_src) and (not len(rows) or
                                                                  rows[-1] - off + 1 == C_e)
        if not full:
            raise GraphError(f"{where}: the block has {m.nnz} connections, a layer op is "
                             "dense; lift only full blocks (or keep the graph at unit level)")
        if e["kind"] == "dense":
            form = DenseBlock()
        else:
            form = ConvBlock(tuple(e["kernel"]), tuple(e["stride"]), tuple(e["padding"]),
                             tuple(e["dilation"]), g)
        of = _origin_form(op, n_src, C_e, args)
    if of is not None and _holds(of, form):
        return op, args, channels, of
    op, args = _lift_op(form, where)
    return op, args, channels, _origin_form(op, n_src, C_e, args) or form


def _copy_channel_to_layer(ch, net, lm, ops, forms, node_forms):
    with torch.no_grad():
        for (u, v), op in ops.items():
            form = forms[(u, v)]
            if isinstance(form, _WEIGHTED):
                mod = _weights(form, lm.edge_module(u, v)[op])
                m = ch.nx.edges[u, v]["mask"]
                rows = np.unique(entry_keys(m) // max(m.shape[1], 1))
                w = net.block(u, v).effective()
                mod.weight.copy_(w[rows[0]:rows[-1] + 1].reshape(mod.weight.shape))
                if mod.bias is not None:
                    mod.bias.copy_(net.unit_params(v).bias[rows[0]:rows[-1] + 1])
        for v, d in ch.nx.nodes(data=True):
            if d["kind"] != "units" or d.get("norm") != "batchnorm":
                continue
            if v in node_forms:
                bn = _norm(node_forms[v], lm.steps[v].op)
            else:
                u = next(u for u, _ in ch.in_edges(v) if isinstance(forms[(u, v)], PerUnit))
                bn = _norm(forms[(u, v)], lm.edge_module(u, v)[ops[(u, v)]])
            _copy_bn(bn, net.unit_params(v), to_unit=False)


#: One step down from a level: ``level -> (next level, step(graph, module) -> Lowered)``.
LOWERINGS: Registry = Registry("lowering from level")
LOWERINGS.register("layer", ("channel", lambda graph, module, **_: _layer_to_channel(graph,
                                                                                     module)))
LOWERINGS.register("channel", ("neuron", _channel_to_neuron))
#: One step up from a level, as :data:`LOWERINGS`.
LIFTS: Registry = Registry("lifting from level")
LIFTS.register("neuron", ("channel", _neuron_to_channel))
LIFTS.register("channel", ("layer", lambda graph, module, **_: _channel_to_layer(graph, module)))
