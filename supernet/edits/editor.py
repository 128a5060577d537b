"""The one place where structure changes: apply edits to a graph and its module together."""

from __future__ import annotations

import dataclasses
import random

from ..errors import SupernetError
from .base import Edit, EditResult
from .log import EditLog

__all__ = ["Editor", "apply_edit"]


def apply_edit(graph, edit: Edit, module=None, optimizers=(), log: EditLog | None = None,
               rng: random.Random | None = None) -> EditResult:
    """Apply ``edit`` to ``graph`` in place, and to ``module`` and ``optimizers`` if given.

    A missing seed is drawn (from ``rng``) and stored in the record before it is logged, so
    that the log replays bitwise. If the edit fails (on the graph, or on the module because
    the new structure does not fit), the graph is left as it was and nothing is logged.
    """
    if any(f.name == "seed" for f in dataclasses.fields(edit)) and edit.seed is None:
        edit = dataclasses.replace(edit, seed=(rng or random).getrandbits(62))
    if module is not None and module.is_stale():
        module.check_fresh()  # raises or recompiles, by the module's choice
    saved = edit.snapshot(graph) if module is not None else None
    edit.apply_graph(graph)
    report = {}
    if module is not None:
        try:
            report = edit.apply_module(module, optimizers) or {}
        except SupernetError:
            # e.g. the new structure does not fit downstream shapes: leave graph as it was
            if saved is not None:
                edit.restore(graph, saved)
            raise
    if log is not None:
        log.append(edit)
    return EditResult(edit, graph, module, True, report)


class Editor:
    """Applies edits to one graph, its compiled module and optimizers, and logs them.

    Examples:
        >>> import torch
        >>> from supernet import Graph, compile
        >>> from supernet.edits import Editor, AddOp
        >>> g = Graph("layer"); g.add_input("x", channels=4)
        >>> g.add_node("h", channels=4); g.add_edge("x", "h", ["conv_3x3", "none"])
        >>> g.set_outputs(["h"])
        >>> net = compile(g).eval(); x = torch.randn(2, 4, 8, 8); before = net(x)
        >>> ed = Editor(g, net)
        >>> _ = ed.apply(AddOp("x", "h", "sep_conv_3x3", init="zero"))
        >>> net.gates()["x->h"]
        ['conv_3x3', 'none', 'sep_conv_3x3']
        >>> bool((net(x) - before).abs().max() < 1e-6)
        True
    """

    def __init__(self, graph, module=None, optimizers=(), log: EditLog | None = None,
                 seed: int | None = None):
        self.graph = graph
        self.module = module
        self.optimizers = optimizers
        self.log = EditLog() if log is None else log
        self.rng = random.Random(seed)

    def apply(self, edit: Edit) -> EditResult:
        return apply_edit(self.graph, edit, self.module, self.optimizers, self.log, self.rng)

    def __call__(self, edit: Edit) -> EditResult:
        return self.apply(edit)
