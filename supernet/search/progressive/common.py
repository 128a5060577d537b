"""What the progressive policies share: the gated edges of a super-network grouped by the
node they feed, their candidate weights, the space's constraints, and the edits that make
a choice permanent.

A *group* is a cell template name, or ``""`` for the top-level graph; policies decide
within each group independently (the normal and the reduction cell of DARTS each get their
own decisions, as in the reference implementations).

Examples:
    >>> import torch
    >>> from supernet import Graph, compile
    >>> g = Graph("layer"); g.add_input("x", channels=4)
    >>> g.add_node("a", channels=4); g.add_edge("x", "a", ["none", "conv_3x3", "skip_connect"])
    >>> g.add_node("b", channels=4); g.add_edge("x", "b", ["none", "conv_3x3"])
    >>> g.add_edge("a", "b", ["none", "skip_connect"]); g.set_outputs(["b"])
    >>> g.meta["constraints"] = {"": {"max_inputs": 1, "exclude": ["none"]}}
    >>> edges = gated_edges(g, compile(g))
    >>> [(e.u, e.v, e.allowed) for e in edges]
    [('x', 'a', [1, 2]), ('x', 'b', [1]), ('a', 'b', [1])]
    >>> budgets(g, edges)[("", "b")]
    1
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from supernet.edits import RemoveEdge, RemoveNode, RemoveOp
from supernet.errors import SearchError
from supernet.ops.registry import resolve_op
from supernet.search.base import require_layer
from supernet.search.choices.layer import constraints_of, dangling_nodes
from supernet.search.relaxations.base import gate_probabilities

__all__ = [
    "GatedEdge",
    "constraints_of",
    "gate_probabilities",
    "gated_edges",
    "budgets",
    "fixed_inputs",
    "choice_edits",
    "remove_dangling",
    "template",
    "require_layer",
    "UNIT_LEVEL_ADVICE",
]


#: What to use instead of the layer-level progressive policies at the unit levels.
UNIT_LEVEL_ADVICE = ("at the channel and neuron levels use the strategies 'unit_pdarts', "
                     "'unit_sgas', 'unit_sgas2' or 'unit_darts_pt' (or 'progressive_gates')")


def template(graph, cell: str):
    """The graph of group ``cell`` (``""``: ``graph`` itself)."""
    return graph.cells[cell] if cell else graph


@dataclass
class GatedEdge:
    """One gated edge of a group.

    Attributes:
        cell: the group (cell template name, ``""`` for the top graph).
        u, v: its ends in that group's graph.
        keys: its gate keys in ``module.arch`` (one per nesting of the template).
        ops: candidate op names, in order.
        allowed: indices of the candidates a decision may keep (neither a zero op nor
            excluded by the constraints).
    """

    cell: str
    u: str
    v: str
    keys: list[str]
    ops: list[str]
    allowed: list[int]

    @property
    def target(self) -> str | None:
        """The ``cell=`` argument of edits on this edge."""
        return self.cell or None

    @property
    def name(self) -> tuple[str, str, str]:
        return (self.cell, self.u, self.v)

    def where(self) -> str:
        return f"{self.cell + ': ' if self.cell else ''}edge {self.u}->{self.v}"

    def probs(self, table: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(K,)`` weights of the candidates (averaged over the edge's gate keys)."""
        rows = [table[k].detach().float().reshape(-1, len(self.ops)).mean(0) for k in self.keys]
        return torch.stack(rows).mean(0)

    def keep_only(self, op: str) -> list[RemoveOp]:
        """Edits that leave ``op`` alone on the edge."""
        return [RemoveOp(self.u, self.v, o, cell=self.target) for o in self.ops if o != op]

    def remove(self) -> RemoveEdge:
        return RemoveEdge(self.u, self.v, cell=self.target)


def gated_edges(graph, module) -> list[GatedEdge]:
    """Every gated edge used by ``module``: groups in order (top graph, then templates),
    edges by destination in topological order, then by port."""
    out = []
    for cell in ["", *graph.cells]:
        g = template(graph, cell)
        exclude = constraints_of(graph, cell)["exclude"]
        by_node: dict[str, list] = {}
        for u, v in g.gate_edges():
            by_node.setdefault(v, []).append(u)
        for v in g.topological_order():
            for u in sorted(by_node.get(v, ()), key=lambda s: g.nx.edges[s, v].get("port", 0)):
                keys = module.gate_keys(u, v, cell or None)
                if not keys:
                    continue  # a template no call node uses
                ops = list(g.nx.edges[u, v]["ops"])
                allowed = [i for i, o in enumerate(ops)
                           if o not in exclude and not resolve_op(o).zero]
                if not allowed:
                    raise SearchError(
                        f"{graph.name}: {cell + ': ' if cell else ''}edge {u}->{v}: every "
                        f"candidate {ops} is a zero op or excluded (exclude={exclude}); keep "
                        "at least one op a decision may choose"
                    )
                out.append(GatedEdge(cell, u, v, keys, ops, allowed))
    return out


def fixed_inputs(graph, edges: list[GatedEdge]) -> dict[tuple[str, str], int]:
    """Per ``(group, node)`` fed by gates, how many of its in-edges are not gates."""
    gated: dict[tuple[str, str], int] = {}
    for e in edges:
        gated[(e.cell, e.v)] = gated.get((e.cell, e.v), 0) + 1
    return {(c, v): template(graph, c).nx.in_degree(v) - n for (c, v), n in gated.items()}


def budgets(graph, edges: list[GatedEdge]) -> dict[tuple[str, str], int]:
    """Per ``(group, node)`` fed by gates, how many gated in-edges it may keep
    (``max_inputs`` less the in-edges that are no gates; all of them without a limit)."""
    fixed = fixed_inputs(graph, edges)
    count: dict[tuple[str, str], int] = {}
    for e in edges:
        count[(e.cell, e.v)] = count.get((e.cell, e.v), 0) + 1
    out = {}
    for (c, v), n in count.items():
        m = constraints_of(graph, c)["max_inputs"]
        out[(c, v)] = n if m is None else max(0, min(n, m - fixed[(c, v)]))
        if out[(c, v)] == 0 and fixed[(c, v)] == 0:
            raise SearchError(
                f"{graph.name}: {c + ': ' if c else ''}node {v!r} could keep no input under "
                f"max_inputs={m}; raise max_inputs"
            )
    return out


def choice_edits(edges: list[GatedEdge], choice: dict) -> list:
    """Edits making ``choice`` (edge name -> kept op, or ``None`` to drop the edge)
    permanent: dropped edges first, then the losing ops of kept edges."""
    drops, prunes = [], []
    for e in edges:
        if e.name not in choice:
            continue
        op = choice[e.name]
        if op is None:
            drops.append(e.remove())
        else:
            prunes += e.keep_only(op)
    return drops + prunes


def remove_dangling(editor) -> list:
    """Remove the nodes no output depends on (unless marked ``keep``), through ``editor``;
    returns the edits applied."""
    return [editor.apply(RemoveNode(n, cell=cell)).edit for cell, n in dangling_nodes(editor.graph)]
