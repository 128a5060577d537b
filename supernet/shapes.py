"""Shape inference on layer-level graphs: channel counts and spatial strides.

Used by :func:`supernet.lint`, the compiler and the cost model, so that a channel mismatch
is reported once, in one wording, naming the node or edge at fault.

Examples:
    >>> from supernet import Graph
    >>> from supernet.shapes import infer_channels
    >>> g = Graph("layer")
    >>> g.add_input("x", channels=3)
    >>> g.add_node("a", channels=8); g.add_edge("x", "a", "conv_3x3")
    >>> g.add_node("b", merge="concat"); g.add_edge("x", "b", "identity"); g.add_edge("a", "b", "identity")
    >>> infer_channels(g).nodes["b"]
    11
"""

from __future__ import annotations

from dataclasses import dataclass, field

from supernet.errors import GraphError, ShapeError
from supernet.ops.registry import resolve_op
from supernet.schema import bind_value, is_symbol

__all__ = ["ChannelInfo", "infer_channels", "edge_args", "infer_strides"]


@dataclass
class ChannelInfo:
    """Channel counts of nodes, and ``(C_in, C_out)`` of edges."""

    nodes: dict[str, int] = field(default_factory=dict)
    edges: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    cells: dict[str, "ChannelInfo"] = field(default_factory=dict)
    idle: set = field(default_factory=set)  # nodes with no inputs yet: no value, no channels


def _value(graph, value, bind, where):
    value = bind_value(value, bind or {}, f"{graph.name}: {where}")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ShapeError(f"{graph.name}: {where}: channels must be a positive int, got {value!r}")
    return value


def edge_args(graph, u: str, v: str, bind: dict | None = None) -> dict:
    """The op arguments of edge ``u -> v`` with template symbols bound."""
    return bind_value(graph.nx.edges[u, v].get("args", {}), bind or {}, f"{graph.name}: edge {u}->{v}")


def infer_channels(graph, bind: dict | None = None, inputs: list[int] | None = None) -> ChannelInfo:
    """Infer the channel count of every node and edge.

    Args:
        graph: a layer-level graph.
        bind: values of ``"$symbol"`` attributes (for a cell template).
        inputs: channel counts of the graph inputs, overriding undeclared ones.
    """
    info = ChannelInfo()
    given = dict(zip(graph.inputs, inputs or []))
    for n in graph.topological_order():
        d = graph.nx.nodes[n]
        kind = d.get("kind", "merge")
        declared = _value(graph, d.get("channels"), bind, f"node {n!r}")
        if kind == "input":
            C = given.get(n, declared)
            if declared is not None and n in given and given[n] != declared:
                raise ShapeError(
                    f"{graph.name}: input {n!r} declares {declared} channels but receives "
                    f"{given[n]}; make the producer and the template agree"
                )
            if C is None:
                raise ShapeError(
                    f"{graph.name}: input {n!r} has no channel count; declare channels=... "
                    "when adding it"
                )
            info.nodes[n] = C
        elif kind == "call":
            template = graph.cells[d["cell"]]
            arg_channels = [info.nodes[a] for a in d["args"]]
            sub_bind = {**(bind or {}), **bind_value(d.get("bind", {}), bind or {}, n)}
            try:
                sub = infer_channels(template, sub_bind, arg_channels)
            except GraphError as exc:
                raise type(exc)(f"{graph.name}: call node {n!r} ({d['cell']}): {exc}") from None
            info.cells[n] = sub
            (out,) = template.outputs or [None]
            if out is None:
                raise GraphError(f"{graph.name}: cell {d['cell']!r} declares no output")
            info.nodes[n] = sub.nodes[out]
            for a in d["args"]:
                info.edges[(a, n)] = (info.nodes[a], info.nodes[a])
        else:
            in_edges = [(u, v) for u, v in graph.in_edges(n) if u in info.nodes]
            if not in_edges:
                # A node just created and not yet connected: it has no value (and lint says so).
                if declared is None:
                    raise GraphError(
                        f"{graph.name}: node {n!r} has no inputs and no declared channels; "
                        "connect it with add_edge or remove it"
                    )
                info.idle.add(n)
                continue
            merge = d.get("merge", "sum")
            outs = []
            for u, _ in in_edges:
                e = graph.nx.edges[u, n]
                C_e = _value(graph, e.get("channels"), bind, f"edge {u}->{n}")
                if C_e is None:
                    C_e = declared if (merge == "sum" and declared is not None) else info.nodes[u]
                info.edges[(u, n)] = (info.nodes[u], C_e)
                if C_e != info.nodes[u]:
                    for op in e.get("ops", ()):
                        if resolve_op(op, f"{graph.name}: edge {u}->{n}").same_channels:
                            raise ShapeError(
                                f"{graph.name}: edge {u}->{n}: op {op!r} keeps the width but "
                                f"maps {info.nodes[u]} -> {C_e} channels; use a projection "
                                "(conv_1x1) or match the widths"
                            )
                outs.append((u, C_e))
            if merge == "sum":
                widths = {c for _, c in outs}
                if len(widths) > 1:
                    detail = ", ".join(f"{u}->{n}: {c}" for u, c in outs)
                    raise ShapeError(
                        f"{graph.name}: node {n!r} sums inputs of different widths ({detail}); "
                        f"give node {n!r} channels=... so that edges project to it, or use "
                        "merge='concat'"
                    )
                C = outs[0][1]
            else:
                C = sum(c for _, c in outs)
            if declared is not None and declared != C:
                raise ShapeError(
                    f"{graph.name}: node {n!r} declares {declared} channels but its inputs give "
                    f"{C}; fix channels= on the node or its edges"
                )
            info.nodes[n] = C
    return info


def infer_strides(graph, bind: dict | None = None,
                  inputs: list[int] | None = None) -> dict[str, int]:
    """The total stride (downsampling factor) of every node relative to the inputs.

    Args:
        graph: a layer-level graph.
        bind: values of ``"$symbol"`` attributes (for a cell template).
        inputs: total strides of the graph inputs (default 1 each). A call node passes
            the strides of its arguments, so a cell may take inputs at different
            resolutions (as a DARTS cell after a reduction cell does) and reduce one of
            them inside.

    Raises :class:`ShapeError` if two inputs merged at a node have different strides.
    """
    total: dict[str, int] = {}
    given = dict(zip(graph.inputs, inputs or []))
    for n in graph.topological_order():
        d = graph.nx.nodes[n]
        kind = d.get("kind", "merge")
        if kind == "input":
            total[n] = given.get(n, 1)
            continue
        if kind == "call":
            template = graph.cells[d["cell"]]
            sub_bind = {**(bind or {}), **bind_value(d.get("bind", {}), bind or {}, n)}
            try:
                sub = infer_strides(template, sub_bind, [total[a] for a in d["args"]])
            except GraphError as exc:
                raise type(exc)(f"{graph.name}: call node {n!r} ({d['cell']}): {exc}") from None
            total[n] = sub[template.outputs[0]]
            continue
        strides = []
        for u, _ in graph.in_edges(n):
            s = edge_args(graph, u, n, bind).get("stride", 1)
            if is_symbol(s) or not isinstance(s, int):
                raise ShapeError(f"{graph.name}: edge {u}->{n}: stride must be an int, got {s!r}")
            strides.append((u, total[u] * s))
        factors = {s for _, s in strides}
        if len(factors) > 1:
            detail = ", ".join(f"{u}->{n}: x{s}" for u, s in strides)
            raise ShapeError(
                f"{graph.name}: node {n!r} merges inputs at different resolutions ({detail}); "
                "give the edges strides that agree"
            )
        total[n] = strides[0][1] if strides else 1
    return total
