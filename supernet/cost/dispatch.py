"""One entry point of the cost model for graphs of every level.

:func:`cost` counts a graph with the function registered for its level in
:data:`COST_LEVELS`: :func:`supernet.cost.layer.graph_cost` for layer-level graphs (a
:class:`~supernet.cost.layer.CostReport`), :func:`supernet.cost.units.unit_cost` for
channel- and neuron-level ones (a :class:`~supernet.cost.units.UnitCostReport`). Both
reports have ``total`` (a :class:`~supernet.counting.Cost`: ``.params``, ``.macs``, ...),
``shapes``, ``nodes``, ``edges``, ``expected(probabilities, field="macs")`` and
``convention``, the counting convention of their figures (default ``"thop"``; see
:data:`supernet.counting.CONVENTIONS`).

Examples:
    >>> from supernet import Graph
    >>> from supernet.cost import cost
    >>> g = Graph("layer", name="g")
    >>> g.add_input("x", channels=3, shape=[3, 8, 8])
    >>> g.add_node("h", channels=4)
    >>> g.add_edge("x", "h", "conv_1x1")
    >>> g.set_outputs(["h"])
    >>> r = cost(g)
    >>> type(r).__name__, r.total.params, r.total.macs, r.convention
    ('CostReport', 16, 768, 'thop')
"""

from __future__ import annotations

from typing import Callable

from supernet.cost.layer import graph_cost
from supernet.cost.units import unit_cost
from supernet.counting import check_convention
from supernet.registry import Registry

__all__ = ["COST_LEVELS", "cost", "weight_count"]

#: Graph level -> ``count(graph, input_shape=None, **kw) -> report``.
COST_LEVELS: Registry[Callable] = Registry(
    "cost level", hint="register one with supernet.cost.COST_LEVELS.register(level, count)"
)
COST_LEVELS.register("layer", graph_cost)
COST_LEVELS.register("channel", unit_cost)
COST_LEVELS.register("neuron", unit_cost)


def cost(graph, input_shape=None, convention: str | None = None, **kw):
    """Count the parameters and operations of ``graph``, whatever its level.

    Args:
        graph: a graph of any level with a counting function in :data:`COST_LEVELS`.
        input_shape: per-sample shape of the input (no batch dimension), or a list of them;
            default: the shapes the input nodes declare.
        convention: counting convention, a key of :data:`supernet.counting.CONVENTIONS`;
            the report names it (``report.convention``). Default ``"thop"``;
            ``"nas-bench-201"`` counts layer-level graphs as NAS-Bench-201 publishes its
            FLOPs (``report.total.macs / 1e6``).
        **kw: passed on to the level's function (``bind``, ``include_train_only`` at
            layer level).
    """
    count = COST_LEVELS.resolve(graph.level, f"{graph.name}: cost")
    if convention is None:
        return count(graph, input_shape, **kw)
    check_convention(convention, f"{graph.name}: cost")
    return count(graph, input_shape, convention=convention, **kw)


def weight_count(module) -> int:
    """The weights a compiled network really has.

    At the channel and neuron levels a module's storage may hold more than its graph (a
    dense block behind a sparse mask, the rows of removed units), so the count is the cost
    model's: the connections the masks hold, and the units' biases and norms. Elsewhere it
    is every parameter but the architecture's (``module.arch_parameters()``, when there).
    """
    graph = getattr(module, "graph", None)
    if graph is not None and getattr(graph, "level", None) in ("channel", "neuron"):
        return int(unit_cost(graph).total.params)
    arch = getattr(module, "arch_parameters", None)
    skip = {id(p) for p in arch()} if callable(arch) else set()
    return sum(p.numel() for p in module.parameters() if id(p) not in skip)
