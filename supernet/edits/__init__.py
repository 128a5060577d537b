"""Structural edits: the four neural operators, applied to graphs and modules together.

Every structural change in supernet is one of :data:`OPERATORS` -- neuron creation, neuron
removal, synaptogenesis, synaptic pruning -- recorded as an :class:`Edit` and applied by an
:class:`Editor`, which updates the graph, the compiled module (carrying surviving weights
over, initializing what is created by a policy of :mod:`supernet.init`) and the optimizers,
and logs the edit. An edit that fails leaves all of them as they were.
"""

from supernet.edits.base import (
    EDITS,
    OPERATORS,
    Edit,
    EditResult,
    apply_edit,
    edit_from_dict,
    register_edit,
)
from supernet.edits.editor import Editor
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
from supernet.edits.undo import Undo
from supernet.edits.units import (
    AddConnections,
    AddUnits,
    AddWiredUnits,
    InsertGroup,
    RemoveConnections,
    RemoveUnits,
    UngateConnections,
    UngateUnits,
)
from supernet.edits.widths import NarrowCall
from supernet.init import POLICIES, InitPolicy, morph_into, zero_output
from supernet.optim import add_params, remove_params, replace_param

__all__ = [
    "OPERATORS",
    "EDITS",
    "POLICIES",
    "InitPolicy",
    "Undo",
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
    "NarrowCall",
    "AddUnits",
    "RemoveUnits",
    "AddConnections",
    "RemoveConnections",
    "UngateUnits",
    "UngateConnections",
    "InsertGroup",
    "AddWiredUnits",
    "sync_module",
    "morph_into",
    "zero_output",
    "add_params",
    "remove_params",
    "replace_param",
]
