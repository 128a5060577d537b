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

from supernet.lint import units as _units  # noqa: F401  (registers the unit-level rules)
from supernet.lint.base import LINT_RULES, lint, register_lint

__all__ = ["LINT_RULES", "lint", "register_lint"]
