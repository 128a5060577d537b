"""Candidate operations, resolved by name from a registry that users extend.

Importing this package registers the built-in ops (:mod:`.basic`, :mod:`.cnn`).
"""

from .registry import OpSpec, build_op, list_ops, register_op, resolve_op, unregister_op
from . import basic, cnn  # noqa: F401  (registers the built-in ops)

__all__ = ["OpSpec", "register_op", "resolve_op", "build_op", "list_ops", "unregister_op"]
