"""The one place where structure changes: apply edits to a graph and its module together."""

from __future__ import annotations

import random

from supernet.edits.base import Edit, EditResult, apply_edit
from supernet.edits.log import EditLog

__all__ = ["Editor", "apply_edit"]


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
