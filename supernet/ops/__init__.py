"""Candidate operations, resolved by name from a registry that users extend.

Importing this package registers the built-in ops (:mod:`.basic`, :mod:`.cnn`, :mod:`.nb201`,
:mod:`.mobile`, :mod:`.gnn`), each with the cost rules of its module classes and, where it
has one, its channel-level form (:mod:`.forms`).
"""

from supernet.ops import basic, cnn, gnn, mobile, nb201  # noqa: F401  (registers the built-in ops)
from supernet.ops.registry import (
    OPS,
    OpSpec,
    build_op,
    list_ops,
    register_op,
    resolve_op,
    unregister_op,
)

__all__ = ["OPS", "OpSpec", "register_op", "resolve_op", "build_op", "list_ops", "unregister_op"]
