"""A discretized graph as a plain ``nn.Module``: no gates, no architecture parameters, no
graph at run time.

:func:`standalone` traces the compiled plan of a discretized graph into a
:class:`torch.fx.GraphModule`: its ``forward`` is generated Python code calling the chosen
op modules in order (cells inlined, weight sharing kept), readable with ``print(net.code)``.
It holds only the op modules the architecture uses, under the same names as in the compiled
module, so ``state_dict`` keys match. Nodes marked ``train_only`` (auxiliary heads) and
drop-path are left out: it is the inference network. A channel- or neuron-level graph
becomes, per node, the sum of its compiled blocks followed by its bias, norm and activation.

:func:`torch_layers` writes a discretized channel- or neuron-level graph in torch's own
layers instead: per edge an ``nn.Conv1d``/``nn.Conv2d`` or ``nn.Linear`` of the graph's
widths (the node's bias folded into it), per node an ``nn.BatchNorm1d``/``nn.BatchNorm2d``
and an activation module, global pooling as ``nn.AdaptiveAvgPool*d`` and ``nn.Flatten``, the
weights copied. It is the deployed network of a pruned graph, with nothing of the library
left in it, and the form tools made for torch models read (Torch-Pruning's dependency
graph, quantization, ``torch.compile``). Missing connections inside a block are zeros of
the dense weight.

Examples:
    >>> import torch
    >>> from supernet import Graph, compile
    >>> g = Graph("layer"); g.add_input("x", channels=3)
    >>> g.add_node("h", channels=4); g.add_edge("x", "h", "conv_3x3")
    >>> g.add_node("y", merge="concat"); g.add_edge("x", "y", "identity"); g.add_edge("h", "y", "identity")
    >>> g.set_outputs(["y"])
    >>> net = standalone(g, compile(g))
    >>> net(torch.randn(2, 3, 5, 5)).shape
    torch.Size([2, 7, 5, 5])
    >>> any("arch" in k for k in net.state_dict())
    False
"""

from __future__ import annotations

import copy
import operator
import re

import torch
import torch.fx as fx
import torch.nn as nn

from supernet.compiler.base import compile as compile_graph
from supernet.compiler.kernels import pool
from supernet.compiler.module import module_key
from supernet.compiler.plan import CallStep, LayerPlan, PoolStep, UnitPlan
from supernet.errors import SearchError
from supernet.registry import Registry
from supernet.units.build import edge_key

__all__ = ["standalone", "gates_left", "torch_layers"]


def gates_left(graph) -> list[str]:
    """Gated edges of ``graph`` and its cell templates, as ``"cell:u->v"``; at the channel
    and neuron levels, the gated nodes and edges (keep/drop gates)."""
    out = [f"{u}->{v}" for u, v in graph.gate_edges()]
    # keep/drop gates are flags of unit-level nodes and edges (layer graphs have none)
    out += [n for n, d in graph.nx.nodes(data=True) if d.get("gated")]
    out += [f"{u}->{v}" for u, v, e in graph.nx.edges(data=True) if e.get("gated")]
    for name, t in graph.cells.items():
        out += [f"{name}:{u}->{v}" for u, v in t.gate_edges()]
    return out


def _ident(name: str) -> str:
    s = re.sub(r"\W", "_", str(name))
    return s if s and not s[0].isdigit() else "_" + s


def standalone(graph, module=None) -> fx.GraphModule:
    """The inference network of a discretized ``graph`` as a ``torch.fx.GraphModule``.

    Args:
        module: the module compiled from ``graph`` whose weights to keep (compiled afresh
            when ``None``). The result shares its op modules.
    """
    left = gates_left(graph)
    if left:
        raise SearchError(
            f"{graph.name}: {len(left)} gate(s) left ({', '.join(left[:4])}"
            f"{', ...' if len(left) > 4 else ''}); discretize the graph first "
            "(supernet.search.discretize.layer or a search's finalize)"
        )
    if module is None:
        module = compile_graph(graph)
    module.check_fresh()
    return TRACERS.resolve(type(module.plan).__name__, graph.name)(graph, module)


def _standalone_layer(graph, module) -> fx.GraphModule:
    """The plan of a discretized layer-level module, cells inlined."""
    g = fx.Graph()
    values = {}
    used = set()
    plan = module.plan
    for name in plan.inputs:
        ph = _ident(name)
        while ph in used:
            ph += "_"
        used.add(ph)
        values[name] = g.placeholder(ph)
    context = sorted({c for e in plan.iter_edges() for cs in e.context for c in cs})
    ctx_nodes = {c: g.placeholder(_ident(c)) for c in context}
    _emit(g, module, "", values, ctx_nodes)
    outs = [values[o] for o in plan.outputs if values.get(o) is not None]
    g.output(outs[0] if len(outs) == 1 else tuple(outs))
    g.lint()
    net = fx.GraphModule(module, g, class_name=_ident(graph.name).capitalize() or "Net")
    net.eval() if not module.training else net.train()
    return net


def _standalone_units(graph, module) -> fx.GraphModule:
    """The plan of a discretized channel- or neuron-level module: per node, the sum of its
    blocks, then its bias, norm and activation."""

    g = fx.Graph()
    values = {}
    plan = module.plan
    for name in plan.inputs:
        values[name] = g.call_module(f"nodes.{module_key(name)}", (g.placeholder(_ident(name)),))
    for step in plan.steps:
        if isinstance(step, PoolStep):
            spec = step.spec if isinstance(step.spec, str) else dict(step.spec)
            values[step.key] = g.call_function(pool, (values[step.src], spec))
            continue
        v = step.node
        # a block without connections adds exactly zero: leave it out (keep one per node)
        full = [e for e in step.edges
                if e.kind == "identity" or graph.edge(e.src, v)["mask"].nnz]
        acc = None
        for e in full or step.edges[:1]:
            y = g.call_module(f"edges.{module_key(edge_key(e.src, v))}", (values[e.value],))
            acc = y if acc is None else g.call_function(operator.add, (acc, y))
        values[v] = g.call_module(f"nodes.{module_key(v)}", (acc,))
    outs = [values[o] for o in plan.outputs]
    g.output(outs[0] if len(outs) == 1 else tuple(outs))
    g.lint()
    net = fx.GraphModule(module, g, class_name=_ident(graph.name).capitalize() or "Net")
    net.train(module.training)
    return net


def _emit(g, m, path, values, ctx_nodes):
    for step in m.plan.steps:
        n = step.node
        if step.train_only:
            values[n] = None
            continue
        if isinstance(step, CallStep):
            cell = step.cell
            sub = {i: values[a] for i, a in zip(cell.plan.inputs, step.args)}
            _emit(g, cell, f"{path}steps.{module_key(n)}.cell.", sub, ctx_nodes)
            values[n] = sub[cell.plan.outputs[0]]
            continue
        outs = []
        for e in step.edges:
            x = values[e.src]
            if x is None:
                raise SearchError(
                    f"node {n!r} reads train-only node {e.src!r}; mark it train_only too"
                )
            if e.identity[0]:
                outs.append(x)
                continue
            target = f"{path}steps.{module_key(n)}.inputs.{module_key(e.src)}.{e.names[0]}"
            kwargs = {c: ctx_nodes[c] for c in e.context[0]}
            outs.append(g.call_module(target, (x,), kwargs))
        if step.merge == "concat" and len(outs) > 1:
            v = g.call_function(torch.cat, (outs,), {"dim": 1})
        else:
            v = outs[0]
            for y in outs[1:]:
                v = g.call_function(operator.add, (v, y))
        if step.post is not None and not isinstance(step.post, nn.Identity):
            v = g.call_module(f"{path}steps.{module_key(n)}.op", (v,))
        values[n] = v


_ACT_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
                "silu": nn.SiLU, "elu": nn.ELU, "softplus": nn.Softplus,
                "leaky_relu": nn.LeakyReLU}


def _layer(block, kind: str, bias) -> nn.Module:
    """``nn.Conv*d`` or ``nn.Linear`` applying ``block``'s dense weight (and ``bias``)."""
    w = block.effective().detach().clone()
    conv = getattr(block, "conv", None)
    if kind == "conv" and conv is not None:
        cls = nn.Conv1d if len(conv["kernel"]) == 1 else nn.Conv2d
        layer = cls(w.shape[1] * conv["groups"], w.shape[0], tuple(conv["kernel"]),
                    stride=conv["stride"], padding=conv["padding"], dilation=conv["dilation"],
                    groups=conv["groups"], bias=bias is not None)
    else:
        layer = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(w)
        if bias is not None:
            layer.bias.copy_(bias.detach())
    return layer


def _norm(params, dims: int) -> nn.Module:
    cls = nn.BatchNorm1d if dims <= 1 else nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
    bn = cls(params.norm_weight.numel(), eps=params.eps, momentum=params.momentum)
    with torch.no_grad():
        for name, src in (("weight", params.norm_weight), ("bias", params.norm_bias),
                          ("running_mean", params.running_mean),
                          ("running_var", params.running_var),
                          ("num_batches_tracked", params.num_batches_tracked)):
            getattr(bn, name).copy_(src.detach())
    return bn


def torch_layers(graph, module=None) -> fx.GraphModule:
    """A discretized channel- or neuron-level ``graph`` as a network of torch's own layers.

    Args:
        module: the module compiled from ``graph`` whose weights to copy (compiled afresh
            when ``None``). The result shares no tensor with it.

    Returns a :class:`torch.fx.GraphModule` whose submodules are ``edges.u->v``
    (``nn.Conv*d``/``nn.Linear``, or the identity block where an identity edge reorders
    units), ``norms.v`` (batch norms), ``acts.v`` and ``pools.u``; it computes what
    ``module`` computes, in train and in eval mode.

    Examples:
        >>> import torch
        >>> from supernet import Graph, compile
        >>> from supernet.units import add_group, add_input, connect
        >>> g = Graph("channel", name="tiny"); add_input(g, "x", 3)
        >>> add_group(g, "c", 4, act="relu", bias=False, norm="batchnorm")
        >>> connect(g, "x", "c", "conv", kernel=3)
        >>> add_group(g, "y", 2); connect(g, "c", "y", "dense", pool="global_avg")
        >>> g.set_outputs(["y"]); net = compile(g, seed=0).eval()
        >>> plain = torch_layers(g, net).eval()
        >>> plain.get_submodule("edges.x->c")
        Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
        >>> x = torch.randn(2, 3, 6, 6)
        >>> torch.allclose(plain(x), net(x), atol=1e-6)
        True
    """
    left = gates_left(graph)
    if left:
        raise SearchError(f"{graph.name}: {len(left)} gate(s) left ({', '.join(left[:4])}"
                          f"{', ...' if len(left) > 4 else ''}); discretize the graph before "
                          "exporting it as torch layers")
    if module is None:
        module = compile_graph(graph)
    module.check_fresh()
    plan = module.plan
    if not isinstance(plan, UnitPlan):
        raise SearchError(f"{graph.name}: torch_layers writes channel- and neuron-level "
                          f"graphs (this one is {graph.level}-level); use standalone()")
    root = nn.Module()
    for name in ("edges", "norms", "acts", "pools"):
        setattr(root, name, nn.ModuleDict())
    g, values, dims = fx.Graph(), {}, {}
    for name, sel in zip(plan.inputs, plan.selects):
        x = g.placeholder(_ident(name))
        if not sel.all:
            key = f"select_{_ident(name)}"
            root.register_buffer(key, sel.index.clone(), persistent=False)
            x = g.call_function(torch.index_select, (x, 1, g.get_attr(key)))
        values[name], dims[name] = x, None
    for step in plan.steps:
        if isinstance(step, PoolStep):
            x, d = values[step.src], dims[step.src]
            if step.spec == "global_avg" and d in (1, 2, 3):
                key = module_key(step.src)
                root.pools[key] = nn.Sequential(
                    (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)[d - 1](1),
                    nn.Flatten(1))
                values[step.key] = g.call_module(f"pools.{key}", (x,))
            else:
                spec = step.spec if isinstance(step.spec, str) else dict(step.spec)
                values[step.key] = g.call_function(pool, (x, spec))
            dims[step.key] = 0 if isinstance(step.spec, str) else d
            continue
        v, params = step.node, step.params
        full = [e for e in step.edges
                if e.kind == "identity" or graph.edge(e.src, v)["mask"].nnz]
        acc, d, bias = None, None, params.bias
        for e in full or step.edges[:1]:
            key = module_key(edge_key(e.src, v))
            x = values[e.value]
            if e.kind == "identity":
                if e.block.same:
                    y = x
                else:
                    root.edges[key] = copy.deepcopy(e.block)
                    y = g.call_module(f"edges.{key}", (x,))
                d = dims[e.value] if d is None else d
            else:
                root.edges[key] = _layer(e.block, e.kind, bias)
                bias = None  # folded into the first layer
                y = g.call_module(f"edges.{key}", (x,))
                conv = getattr(e.block, "conv", None)
                d = len(conv["kernel"]) if e.kind == "conv" and conv is not None else 0
            acc = y if acc is None else g.call_function(operator.add, (acc, y))
        key = module_key(v)
        if bias is not None:
            name = f"bias_{_ident(v)}"
            root.register_parameter(name, nn.Parameter(bias.detach().clone()))
            shape = (1, -1) + (1,) * (d or 0)
            acc = g.call_function(operator.add, (acc, g.call_method(
                "view", (g.get_attr(name), *shape))))
        if params.has_norm:
            root.norms[key] = _norm(params, d or 0)
            acc = g.call_module(f"norms.{key}", (acc,))
        if params.act_name in _ACT_MODULES:
            root.acts[key] = _ACT_MODULES[params.act_name]()
            acc = g.call_module(f"acts.{key}", (acc,))
        elif params.act_name != "identity":
            acc = g.call_function(params.act, (acc,))
        values[v], dims[v] = acc, d
    outs = [values[o] for o in plan.outputs]
    g.output(outs[0] if len(outs) == 1 else tuple(outs))
    g.lint()
    net = fx.GraphModule(root, g, class_name=_ident(graph.name).capitalize() or "Net")
    net.train(module.training)
    return net


#: How each compiler's plan type is traced into a plain module (by the plan's class name).
TRACERS: Registry = Registry("plan type", hint="register a tracer with TRACERS.register(name, fn)")
TRACERS.register(LayerPlan.__name__, _standalone_layer)
TRACERS.register(UnitPlan.__name__, _standalone_units)
