"""A discretized graph as a plain ``nn.Module``: no gates, no architecture parameters, no
graph at run time.

:func:`standalone` traces the compiled plan of a discretized graph into a
:class:`torch.fx.GraphModule`: its ``forward`` is generated Python code calling the chosen
op modules in order (cells inlined, weight sharing kept), readable with ``print(net.code)``.
It holds only the op modules the architecture uses, under the same names as in the compiled
module, so ``state_dict`` keys match. Nodes marked ``train_only`` (auxiliary heads) and
drop-path are left out: it is the inference network. A channel- or neuron-level graph
becomes, per node, the sum of its compiled blocks followed by its bias, norm and activation.

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

__all__ = ["standalone", "gates_left"]


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


#: How each compiler's plan type is traced into a plain module (by the plan's class name).
TRACERS: Registry = Registry("plan type", hint="register a tracer with TRACERS.register(name, fn)")
TRACERS.register(LayerPlan.__name__, _standalone_layer)
TRACERS.register(UnitPlan.__name__, _standalone_units)
