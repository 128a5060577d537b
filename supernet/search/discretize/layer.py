"""Layer-level pieces of discretization: the nodes a choice leaves without a use, applying a
choice, and checking the space's constraints afterwards (the methods of
:class:`~supernet.search.choices.layer.LayerChoiceSpace`, as functions).

:func:`derive`, :func:`discretize` and :class:`ArgmaxDiscretization` serve every level; they
live in :mod:`supernet.search.discretize.base` and are importable from here too.

Examples:
    >>> from supernet import Graph, compile
    >>> from supernet.edits import Editor
    >>> from supernet.search.choices import choice_space
    >>> g = Graph("layer"); g.add_input("x", channels=4)
    >>> g.add_node("a", channels=4); g.add_edge("x", "a", ["conv_3x3", "none"])
    >>> g.add_node("h", channels=4); g.add_edge("x", "h", ["skip_connect", "conv_3x3"])
    >>> g.set_outputs(["h"]); net = compile(g); space = choice_space(g, net)
    >>> dangling_nodes(g)
    [(None, 'a')]
    >>> edits = apply_choice(Editor(g, net), space,
    ...                      {("", "x", "a"): None, ("", "x", "h"): "skip_connect"})
    >>> [type(e).__name__ for e in edits], list(g)
    (['RemoveEdge', 'RemoveOp', 'RemoveNode'], ['x', 'h'])
    >>> check_constraints(g, space)
"""

from __future__ import annotations

from supernet.edits import Editor
from supernet.search.choices.layer import LayerChoiceSpace, check_constraints, dangling_nodes
from supernet.search.discretize.base import ArgmaxDiscretization, derive, discretize

__all__ = ["derive", "discretize", "apply_choice", "dangling_nodes", "ArgmaxDiscretization",
           "check_constraints"]


def apply_choice(editor: Editor, space: LayerChoiceSpace, choice: dict) -> list:
    """Apply the edits of ``choice`` and remove the nodes left dangling; returns the edits."""
    return space.apply(editor, choice)
