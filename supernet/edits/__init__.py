"""Structural edits: the four neural operators, applied to graphs and modules together.

Every structural change in supernet is one of :data:`OPERATORS` -- neuron creation, neuron
removal, synaptogenesis, synaptic pruning -- recorded as an :class:`Edit` and applied by an
:class:`Editor`, which updates the graph, the compiled module (carrying surviving weights
over, initializing what is created by a policy) and the optimizers, and logs the edit.
"""

from .base import OPERATORS, Edit, EditResult, edit_from_dict, register_edit
from .editor import Editor, apply_edit
from .init import POLICIES, morph_into, zero_output
from .layer import AddEdge, AddNode, AddOp, RemoveEdge, RemoveNode, RemoveOp, sync_module
from .log import EditLog
from .optim import add_params, remove_params, replace_param

__all__ = [
    "OPERATORS",
    "POLICIES",
    "Edit",
    "EditResult",
    "EditLog",
    "Editor",
    "apply_edit",
    "register_edit",
    "edit_from_dict",
    "AddNode",
    "RemoveNode",
    "AddEdge",
    "RemoveEdge",
    "AddOp",
    "RemoveOp",
    "sync_module",
    "morph_into",
    "zero_output",
    "add_params",
    "remove_params",
    "replace_param",
]
