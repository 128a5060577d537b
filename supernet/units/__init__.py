"""The channel and neuron levels: groups of units joined by sparse blocks of connections.

A node is a group of units (the channels of a conv layer, the neurons of a dense layer, or
an input) with stable integer ids; an edge is a block of connections stored as one
``scipy.sparse`` boolean mask. See :mod:`supernet.schema` for the attributes and
``docs/levels.md`` for a tour.
"""

from .activations import ACTIVATIONS, register_activation, resolve_activation
from .build import (
    EDGE_KINDS,
    UNIT_LEVELS,
    add_group,
    add_input,
    connect,
    edge_key,
    mlp,
    units_of,
)
from .deps import close_units, dependency_groups
from .explicit import explicit
from . import lint as _lint  # noqa: F401  (registers the unit-level lint)
from .module import SPARSE_BELOW, UnitModule, compile_units
from .sync import Creation
from .edits import (AddConnections, AddUnits, RemoveConnections, RemoveUnits,
                    UngateConnections, UngateUnits)
from .lower import Lowered, lift, lower
from .prune import connection_ids, discretize, grow, prune, set_gated
from . import scores
from .cost import UnitCostReport, keep_probabilities, unit_cost

__all__ = [
    "ACTIVATIONS",
    "register_activation",
    "resolve_activation",
    "UNIT_LEVELS",
    "EDGE_KINDS",
    "add_input",
    "add_group",
    "connect",
    "mlp",
    "units_of",
    "edge_key",
    "dependency_groups",
    "close_units",
    "explicit",
    "UnitModule",
    "compile_units",
    "SPARSE_BELOW",
    "Creation",
    "AddUnits",
    "RemoveUnits",
    "AddConnections",
    "RemoveConnections",
    "UngateUnits",
    "UngateConnections",
    "Lowered",
    "lower",
    "lift",
    "set_gated",
    "discretize",
    "prune",
    "grow",
    "connection_ids",
    "scores",
    "UnitCostReport",
    "unit_cost",
    "keep_probabilities",
]
