"""Neuron removal at the layer level: narrow a cell call to fewer channels.

A cell template's widths are symbols (``channels="$C"``) bound by each call node
(``bind={"C": 16}``). :class:`NarrowCall` binds a smaller value: every node of that call
declared with the symbol loses its last channels, which is the removal of whole feature
maps (neurons of the channel level) from every tensor of the cell at once. It is the edit
that makes a width decision of a cross-level search permanent
(:mod:`supernet.search.crosslevel`).

The call's cell, and the layers that read it (the next cells' preprocessing, a classifier),
are rebuilt at their new shapes with the op's own initialization: the kept channels do not
inherit the super-network's weights (a DARTS-style evaluation network is trained from
scratch anyway). The edit records the width it replaced, so logs replay exactly.

Examples:
    >>> from supernet import Graph, compile
    >>> from supernet.edits import Editor
    >>> t = Graph("layer", name="cell"); t.add_input("s", channels=4)
    >>> t.add_node("h", channels="$C"); t.add_edge("s", "h", "conv_1x1"); t.set_outputs(["h"])
    >>> g = Graph("layer"); g.add_cell("c", t); g.add_input("x", channels=4)
    >>> g.add_call("k", "c", ["x"], bind={"C": 8}); g.set_outputs(["k"])
    >>> net = compile(g); result = Editor(g, net).apply(NarrowCall("k", 2))
    >>> g.node("k")["bind"], net.steps["k"].cell.edge_module("s", "h")["conv_1x1"].weight.shape
    ({'C': 2}, torch.Size([2, 4, 1, 1]))
"""

from __future__ import annotations

from dataclasses import dataclass

from supernet.edits.base import Edit, register_edit, target_graph
from supernet.edits.layer import sync_module
from supernet.errors import EditError

__all__ = ["NarrowCall"]


@register_edit
@dataclass
class NarrowCall(Edit):
    """Neuron removal: bind ``symbol`` of call node ``node`` to ``width`` (no wider than now).

    Attributes:
        node: the call node.
        width: the new value of the symbol, a positive int not above the current one.
        symbol: the width symbol of the template (``"C"`` for ``channels="$C"``).
        cell: the template holding the call node (``None``: the top-level graph).
    """

    kind = "narrow_call"
    operator = "neuron_removal"
    node: str = ""
    width: int = 0
    symbol: str = "C"
    cell: str | None = None

    def apply_graph(self, graph):
        g = target_graph(graph, self.cell)
        if self.node not in g.nx:
            raise EditError(f"{g.name}: no node {self.node!r} to narrow")
        d = g.nx.nodes[self.node]
        if d.get("kind") != "call":
            raise EditError(f"{g.name}: node {self.node!r} is a {d.get('kind', 'merge')!r} "
                            "node; NarrowCall narrows call nodes (cell instances)")
        bind = dict(d.get("bind") or {})
        old = bind.get(self.symbol)
        if not isinstance(old, int) or isinstance(old, bool):
            raise EditError(f"{g.name}: call {self.node!r} binds no integer {self.symbol!r} "
                            f"(bind={bind}); name the width symbol of its template")
        w = self.width
        if not isinstance(w, int) or isinstance(w, bool) or not 0 < w <= old:
            raise EditError(f"{g.name}: call {self.node!r}: width {w!r} must be a positive "
                            f"int no larger than the current {self.symbol}={old}")
        g.set_node_attrs(self.node, bind={**bind, self.symbol: w})
        return old

    def apply_module(self, module, optimizers=(), applied=None):
        return sync_module(module, optimizers)
