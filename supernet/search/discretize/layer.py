"""End-of-search discretization: the best architecture under the space's constraints,
made permanent by recorded edits.

:func:`derive` lists the edits (argmax per edge, top ``max_inputs`` in-edges per node, see
:mod:`supernet.search.choices.layer`); :class:`ArgmaxDiscretization` applies them through the
search's :class:`~supernet.edits.Editor` at the end of the search, removes nodes left
without a use, and takes the relaxation off the module: the graph lints, no gate is left,
and the edit log replays the whole discretization.

Examples:
    >>> import torch
    >>> from supernet import Graph, compile, lint
    >>> from supernet.edits import Editor
    >>> g = Graph("layer"); g.add_input("x", channels=4); g.add_node("h", channels=4)
    >>> g.add_edge("x", "h", ["conv_3x3", "skip_connect", "none"]); g.set_outputs(["h"])
    >>> net = compile(g)
    >>> with torch.no_grad(): _ = net.arch["x->h"].copy_(torch.tensor([[0., 2., 1.]]))
    >>> [e.op for e in derive(g, net)]
    ['conv_3x3', 'none']
    >>> _ = discretize(g, net, Editor(g, net)); g.edge("x", "h")["ops"]
    ['skip_connect']
    >>> lint(g); net.relaxation is None
    True
"""

from __future__ import annotations

import networkx as nx

from supernet.compiler.standalone import gates_left
from supernet.edits import Editor, RemoveNode
from supernet.errors import SearchError
from supernet.lint import lint
from supernet.search.base import DiscretizationPolicy, SearchState
from supernet.search.choices.layer import ChoiceSpace
from supernet.search.choices.units import UnitChoiceSpace, is_unit_level
from supernet.search.relaxations.base import gate_probabilities

__all__ = ["derive", "discretize", "apply_choice", "dangling_nodes", "ArgmaxDiscretization",
           "check_constraints"]


def derive(graph, module) -> list:
    """The edits that discretize ``graph``: per edge the best allowed op, per node the best
    ``max_inputs`` in-edges, ranked by the relaxation's candidate weights. At the channel and
    neuron levels: the removals of what the relaxation's decision drops, then the gates
    fixed (:class:`~supernet.search.choices.units.UnitChoiceSpace`)."""
    if is_unit_level(graph):
        space = UnitChoiceSpace(graph, module)
        return space.edits(space.decide(module))
    space = ChoiceSpace(graph, module)
    return space.edits(space.best(gate_probabilities(module)))


def dangling_nodes(graph) -> list[tuple[str | None, str]]:
    """``(cell, node)`` of nodes no output depends on (reverse topological order)."""
    out = []
    for cell, g in [(None, graph), *graph.cells.items()]:
        used = set(g.outputs)
        for o in g.outputs:
            used |= nx.ancestors(g.nx, o)
        for n in reversed(g.topological_order()):
            d = g.nx.nodes[n]
            if n not in used and d.get("kind") != "input" and not d.get("keep"):
                out.append((cell, n))
    return out


def apply_choice(editor: Editor, space: ChoiceSpace, choice: dict) -> list:
    """Apply the edits of ``choice`` and remove the nodes left dangling; returns the edits."""
    done = []
    for edit in space.edits(choice):
        done.append(editor.apply(edit).edit)
    for cell, n in dangling_nodes(editor.graph):
        done.append(editor.apply(RemoveNode(n, cell=cell)).edit)
    return done


def discretize(graph, module, editor: Editor | None = None, choice: dict | None = None) -> list:
    """Discretize ``graph`` (and ``module``) in place; returns the edits applied.

    ``choice`` overrides the argmax choice (e.g. the best path of an evolutionary search).
    Afterwards the graph lints and satisfies its constraints, and the module has no gate and
    no relaxation. At the channel and neuron levels a choice is gate key -> keep (0) or drop
    (1) per row (:mod:`supernet.search.choices.units`); every node keeps at least one unit.
    """
    editor = editor or Editor(graph, module)
    if is_unit_level(graph):
        return _discretize_units(graph, module, editor, choice)
    space = ChoiceSpace(graph, module)
    if choice is None:
        choice = space.best(gate_probabilities(module))
    done = apply_choice(editor, space, choice)
    module.relaxation = None
    lint(graph)
    check_constraints(graph, space)
    return done


def _discretize_units(graph, module, editor, choice):
    space = UnitChoiceSpace(graph, module)
    choice = space.decide(module, rows=choice)
    done = [editor.apply(edit).edit for edit in space.edits(choice)]
    module.relaxation = None
    lint(graph)
    left = gates_left(graph) + [k for k in module.arch.keys() if k not in gates_left(graph)]
    if left:
        raise SearchError(f"{graph.name}: gates {left} are left after discretization")
    return done


def check_constraints(graph, space: ChoiceSpace) -> None:
    """Raise :class:`SearchError` unless ``graph`` has no gate left and every node of
    ``space`` (taken before discretizing) meets its constraint."""
    left = [(c, e) for c, g in [("", graph), *graph.cells.items()] for e in g.gate_edges()]
    if left:
        raise SearchError(f"{graph.name}: gates {left} are left after discretization")
    for grp in space.groups:
        g = graph.cells[grp.cell] if grp.cell else graph
        where = f"{graph.name}" + (f" (cell {grp.cell!r})" if grp.cell else "")
        if grp.v not in g.nx:
            continue
        if grp.max_inputs is not None and g.nx.in_degree(grp.v) > grp.max_inputs:
            raise SearchError(
                f"{where}: node {grp.v!r} keeps {g.nx.in_degree(grp.v)} inputs, more than "
                f"max_inputs={grp.max_inputs}"
            )
        for u, _ in g.in_edges(grp.v):
            ops = g.nx.edges[u, grp.v]["ops"]
            if ops and ops[0] in grp.exclude:
                raise SearchError(f"{where}: edge {u}->{grp.v} kept excluded op {ops[0]!r}")


class ArgmaxDiscretization(DiscretizationPolicy):
    """Discretize once, at the end of the search: argmax per edge, top-k inputs per node;
    at the channel and neuron levels, the relaxation's keep/drop decision per unit group
    and connection."""

    def finalize(self, state: SearchState) -> None:
        discretize(state.graph, state.module, state.editor)
