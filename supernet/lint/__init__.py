"""Validation of graphs at every level, as ``torch.fx.Graph.lint``: one :func:`lint`, one
rule per level in :data:`LINT_RULES` (:mod:`.base` holds the layer rule and the registry,
:mod:`.units` the channel and neuron rules). Every problem names the node or edge at fault
and says how to fix it."""

from supernet.lint import units as _units  # noqa: F401  (registers the unit-level rules)
from supernet.lint.base import LINT_RULES, lint, register_lint

__all__ = ["LINT_RULES", "lint", "register_lint"]
