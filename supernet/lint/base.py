"""Validation of graphs (as ``torch.fx.Graph.lint``): every problem names the node or edge at
fault and says how to fix it.

Examples:
    >>> from supernet import Graph, lint
    >>> g = Graph("layer", name="g")
    >>> g.add_input("x", channels=3)
    >>> g.add_node("h", channels=8)
    >>> g.add_edge("x", "h", "conv_9x9")
    >>> g.set_outputs(["h"])
    >>> lint(g)
    Traceback (most recent call last):
    ...
    supernet.errors.LintError: g: 1 problem(s) found
      - g: edge x->h: could not resolve op 'conv_9x9' among [...]; did you mean 'conv_3x3'? ...
"""

from __future__ import annotations

import numbers
from typing import Callable

import networkx as nx
import numpy as np

from supernet.errors import GraphError, LintError, SupernetError, UnknownNameError, did_you_mean
from supernet.ops.registry import OPS, resolve_op
from supernet.registry import Registry
from supernet.schema import MERGES, NODE_KINDS, is_symbol
from supernet.shapes import infer_channels, infer_strides

__all__ = ["LINT_RULES", "lint", "register_lint"]

#: Level name -> the rule checking graphs of that level, ``check(graph[, bind]) -> list[str]``
#: (one message per problem, empty for a valid graph). A rule is called with ``bind`` only
#: when :func:`lint` is given one.
LINT_RULES: Registry[Callable[..., list[str]]] = Registry(
    "lint rule of level", hint="register one with @supernet.lint.register_lint(level)"
)


def register_lint(level: str, override: bool = False):
    """Decorator registering ``check(graph[, bind]) -> list[str]`` for graphs of ``level``.

    Raises:
        DuplicateNameError: ``level`` has a rule already and ``override`` is False.
    """
    return LINT_RULES.register(level, override=override)


def lint(graph, bind: dict | None = None) -> None:
    """Check ``graph``; raise :class:`LintError` listing every problem found.

    Every graph is checked for duplicate or missing inputs and outputs and for cycles; then
    the rule registered for its level in :data:`LINT_RULES` runs. The layer rule checks nodes
    unreachable from the inputs, dangling nodes (whose value is never used; mark a node
    ``keep=True`` to keep one on purpose), unknown ops (with the list of known ones), edge
    arguments no candidate op takes, channel and resolution mismatches, unbound template
    symbols, and each cell template in turn; the unit rule is
    :func:`supernet.lint.units.lint_units`.

    Args:
        graph: the graph to check.
        bind: values of the template symbols (``"$C"``), passed to the level's rule.

    Raises:
        LintError: with every problem found.
        UnknownNameError: no rule is registered for ``graph.level``.
    """
    check = LINT_RULES.resolve(graph.level, where=graph.name)
    problems = _structure(graph)
    if not problems:
        problems = check(graph) if bind is None else check(graph, bind)
    if problems:
        raise LintError(problems, graph.name)


def _structure(graph) -> list[str]:
    g, name = graph.nx, graph.name
    problems = []
    for what in ("inputs", "outputs"):
        names = g.graph.get(what, [])
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            problems.append(f"{name}: {what} list {dup} more than once; list each node once")
        for n in names:
            if n not in g:
                problems.append(f"{name}: {what[:-1]} {n!r} is not a node of the graph")
    if not g.graph.get("inputs"):
        problems.append(f"{name}: the graph has no inputs; add one with add_input()")
    if not g.graph.get("outputs"):
        problems.append(f"{name}: the graph has no outputs; declare them with set_outputs([...])")
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        path = " -> ".join(str(u) for u, _ in cycle) + f" -> {cycle[0][0]}"
        problems.append(f"{name}: cycle {path}; remove one of its edges")
    return problems


def _reachability(graph) -> list[str]:
    g, name = graph.nx, graph.name
    problems = []
    inputs = [n for n in g.graph["inputs"] if n in g]
    reach = set(inputs)
    for i in inputs:
        reach |= nx.descendants(g, i)
    for n in g.nodes:
        if n not in reach:
            problems.append(
                f"{name}: node {n!r} is unreachable from the inputs {inputs}; connect it or remove it"
            )
    outputs = [n for n in g.graph["outputs"] if n in g]
    used = set(outputs)
    for o in outputs:
        used |= nx.ancestors(g, o)
    for n in g.nodes:
        if n not in used and not g.nodes[n].get("keep") and n not in inputs:
            problems.append(
                f"{name}: node {n!r} is dangling: no output depends on it; remove it, add it to "
                "the outputs, or mark it keep=True"
            )
    return problems


def _is_int(x) -> bool:
    """An int, numpy's included, not a bool."""
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def _is_names(x) -> bool:
    return isinstance(x, list) and all(isinstance(a, str) for a in x)


def _width(x) -> bool:
    """A channel count: None, an int or a ``"$symbol"``."""
    return x is None or _is_int(x) or is_symbol(x)


#: The types of the layer-level attributes (:mod:`supernet.schema`) the other rules and the
#: compiler read: ``(key, check, what it must be)``.
_NODE_TYPES = (
    ("kind", lambda x: x in NODE_KINDS, f"one of {list(NODE_KINDS)}"),
    ("merge", lambda x: isinstance(x, str), "a string"),
    ("channels", _width, "an int or a '$symbol'"),
    ("op", lambda x: x is None or isinstance(x, str), "an op name"),
    ("op_args", lambda x: x is None or isinstance(x, dict), "a dict"),
    ("cell", lambda x: isinstance(x, str), "a cell name"),
    ("args", _is_names, "a list of node names"),
    ("bind", lambda x: x is None or isinstance(x, dict), "a dict"),
)
_EDGE_TYPES = (
    ("ops", _is_names, "a list of op names"),
    ("args", lambda x: isinstance(x, dict), "a dict"),
    ("port", _is_int, "an int"),
    ("channels", _width, "an int or a '$symbol'"),
    ("partial", lambda x: x is None or _is_int(x), "an int"),
)


def _attribute_types(graph) -> list[str]:
    """Attributes of a type the schema does not allow (a graph read from a damaged file):
    the other rules only run on a graph without them."""
    g, name, problems = graph.nx, graph.name, []
    for n, d in g.nodes(data=True):
        kind = d.get("kind", "merge")
        for key, ok, what in _NODE_TYPES:
            if key in d and (key != "args" or kind == "call") and not ok(d[key]):
                problems.append(f"{name}: node {n!r}: {key} is {d[key]!r:.60}; it must be {what}")
        if kind == "call" and _is_names(d.get("args")):
            missing = [a for a in d["args"] if a not in g]
            if missing:
                problems.append(f"{name}: call node {n!r} passes {missing}, which are not nodes "
                                "of the graph")
    for u, v, e in g.edges(data=True):
        for key, ok, what in _EDGE_TYPES:
            if key in e and not ok(e[key]):
                problems.append(f"{name}: edge {u}->{v}: {key} is {e[key]!r:.60}; it must be "
                                f"{what}")
    return problems


@register_lint("layer")
def _layer(graph, bind=None) -> list[str]:
    g, name = graph.nx, graph.name
    problems = _attribute_types(graph)
    if problems:
        return problems
    problems = _reachability(graph)
    for n, d in g.nodes(data=True):
        kind = d.get("kind", "merge")
        if kind == "input" and g.in_degree(n):
            problems.append(f"{name}: input {n!r} has in-edges; inputs are fed by the caller")
        if kind == "merge" and d.get("merge", "sum") not in MERGES:
            problems.append(
                f"{name}: node {n!r} has merge {d.get('merge')!r}; expected one of {list(MERGES)}"
            )
        if kind == "merge" and d.get("op") is not None:
            try:
                resolve_op(d["op"], f"{name}: node {n!r}")
            except UnknownNameError as exc:
                problems.append(str(exc))
        if kind == "call":
            if d.get("cell") not in graph.cells:
                problems.append(
                    f"{name}: call node {n!r} names unknown cell {d.get('cell')!r}; known: "
                    f"{sorted(graph.cells)}"
                )
            elif len(d.get("args", [])) != len(graph.cells[d["cell"]].inputs):
                problems.append(
                    f"{name}: call node {n!r} passes {len(d.get('args', []))} argument(s); cell "
                    f"{d['cell']!r} takes {len(graph.cells[d['cell']].inputs)}"
                )
    for n, d in g.nodes(data=True):
        if d.get("kind", "merge") == "merge" and not g.in_degree(n):
            problems.append(f"{name}: node {n!r} has no inputs; connect it with add_edge or remove it")
    for u, v, e in g.edges(data=True):
        if g.nodes[v].get("kind") == "call":
            continue
        ops = e.get("ops")
        if not isinstance(ops, list) or not ops:
            problems.append(f"{name}: edge {u}->{v} has no candidate ops; give it ops=[...]")
            continue
        dup = sorted({o for o in ops if ops.count(o) > 1})
        if dup:
            problems.append(f"{name}: edge {u}->{v} lists op(s) {dup} twice; list each once")
        specs = []
        for op in ops:
            try:
                specs.append(resolve_op(op, f"{name}: edge {u}->{v}"))
            except UnknownNameError as exc:
                problems.append(str(exc))
        if len(specs) == len(ops):
            accepted = set().union(*(s.params for s in specs))
            for k in e.get("args", {}):
                # an argument of a candidate that a search removed stays on the edge (an op
                # added back takes it again); one that no op takes at all is a mistake
                if k not in accepted and k not in _op_params():
                    problems.append(
                        f"{name}: edge {u}->{v}: no candidate op takes argument {k!r} "
                        f"(they take {sorted(accepted)}){did_you_mean(k, accepted)}"
                    )
    if problems:
        return problems
    for cell, template in graph.cells.items():
        problems += [f"cell {cell!r}: {p}" for p in _template(template)]
    if problems or _has_free_symbols(graph, bind):
        return problems
    try:
        infer_channels(graph, bind)
        infer_strides(graph, bind)
    except (GraphError, SupernetError) as exc:
        problems.append(str(exc))
    return problems


def _template(template) -> list[str]:
    """Checks of a cell template that do not need its symbols bound."""
    problems = _structure(template) or _attribute_types(template)
    if problems:
        return problems
    if len(template.outputs) != 1:
        problems.append(
            f"{template.name}: a cell template has exactly one output, got {template.outputs}"
        )
    g = template.nx
    for u, v, e in g.edges(data=True):
        for op in e.get("ops", []):
            try:
                resolve_op(op, f"{template.name}: edge {u}->{v}")
            except UnknownNameError as exc:
                problems.append(str(exc))
    return problems + _reachability(template)


def _has_free_symbols(graph, bind) -> bool:
    bind = bind or {}

    def free(value):
        if is_symbol(value):
            return value[1:] not in bind
        if isinstance(value, (list, tuple)):
            return any(free(v) for v in value)
        if isinstance(value, dict):
            return any(free(v) for v in value.values())
        return False

    g = graph.nx
    return any(free(d) for _, d in g.nodes(data=True)) or any(
        free(d) for _, _, d in g.edges(data=True)
    )


def _op_params() -> set:
    """Every argument some registered op takes."""
    return set().union(*(spec.params for _, spec in OPS.items()))
