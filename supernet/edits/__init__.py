"""Structural edits: the four neural operators, applied to graphs and modules together.

Every structural change in supernet is one of :data:`OPERATORS` -- neuron creation, neuron
removal, synaptogenesis, synaptic pruning -- recorded as an :class:`Edit` and applied by an
:class:`Editor`, which updates the graph, the compiled module (carrying surviving weights
over, initializing what is created by a policy) and the optimizers, and logs the edit.
"""

from supernet.edits.base import (
    OPERATORS,
    Edit,
    EditResult,
    apply_edit,
    edit_from_dict,
    register_edit,
)
from supernet.edits.editor import Editor
from supernet.edits.init import POLICIES, morph_into, zero_output
from supernet.edits.layer import (
    AddEdge,
    AddNode,
    AddOp,
    RemoveEdge,
    RemoveNode,
    RemoveOp,
    sync_module,
)
from supernet.edits.log import EditLog
from supernet.optim import add_params, remove_params, replace_param

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
