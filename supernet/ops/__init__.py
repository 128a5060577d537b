"""Candidate operations, resolved by name from a registry that users extend.

Importing this package registers the built-in ops (:mod:`.basic`, :mod:`.cnn`, :mod:`.nb201`,
:mod:`.mobile`, :mod:`.gnn`).
"""

from supernet.ops import basic, cnn, gnn, mobile, nb201  # noqa: F401  (registers the built-in ops)
from supernet.ops.registry import OpSpec, build_op, list_ops, register_op, resolve_op, unregister_op

__all__ = ["OpSpec", "register_op", "resolve_op", "build_op", "list_ops", "unregister_op"]
