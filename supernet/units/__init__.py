"""Storage of the channel and neuron levels: groups of units joined by sparse blocks of
connections.

A node is a group of units (the channels of a conv layer, the neurons of a dense layer, or
an input) with stable integer ids; an edge is a block of connections stored as one
``scipy.sparse`` boolean mask. This package owns those attributes: building graphs
(:mod:`.build`), the masks (:mod:`.masks`), where a connection's weights live in a compiled
block (:mod:`.layout`), units that must change together (:mod:`.deps`), the graph-side
changes of the edits (:mod:`.surgery`), the explicit view (:mod:`.explicit`) and how a
global sparsity is shared among blocks (:mod:`.sparsity`, Erdős–Rényi). Compiling,
editing, costing and discretizing unit graphs live with those concepts, for every level:
:mod:`supernet.compiler`, :mod:`supernet.edits`, :mod:`supernet.cost`,
:mod:`supernet.search.discretize`. See :mod:`supernet.schema` for the attributes and
``docs/levels.md`` for a tour.
"""

import importlib as _importlib
import warnings as _warnings

from supernet.units.build import (
    EDGE_KINDS,
    UNIT_LEVELS,
    add_group,
    add_input,
    connect,
    connection_ids,
    edge_key,
    mlp,
    units_of,
)
from supernet.units.deps import close_units, dependency_groups
from supernet.units.explicit import explicit
from supernet.units.sparsity import erk_counts, erk_densities

__all__ = [
    "UNIT_LEVELS",
    "EDGE_KINDS",
    "add_input",
    "add_group",
    "connect",
    "mlp",
    "units_of",
    "edge_key",
    "connection_ids",
    "dependency_groups",
    "close_units",
    "explicit",
    "erk_counts",
    "erk_densities",
]

#: Names this package used to export, and where each lives now.
MOVED = {
    "ACTIVATIONS": "supernet.ops.activations",
    "register_activation": "supernet.ops.activations",
    "resolve_activation": "supernet.ops.activations",
    "UnitModule": "supernet.compiler.units",
    "compile_units": "supernet.compiler.units",
    "SPARSE_BELOW": "supernet.compiler.units",
    "Creation": "supernet.init",
    "AddUnits": "supernet.edits.units",
    "RemoveUnits": "supernet.edits.units",
    "AddConnections": "supernet.edits.units",
    "RemoveConnections": "supernet.edits.units",
    "UngateUnits": "supernet.edits.units",
    "UngateConnections": "supernet.edits.units",
    "Lowered": "supernet.lowering",
    "lower": "supernet.lowering",
    "lift": "supernet.lowering",
    "set_gated": "supernet.search.discretize.units",
    "prune": "supernet.search.discretize.units",
    "grow": "supernet.search.discretize.units",
    "discretize": ("supernet.search.discretize.units", "decision_edits"),
    "scores": ("supernet.search", "scores"),
    "UnitCostReport": "supernet.cost.units",
    "unit_cost": "supernet.cost.units",
    "keep_probabilities": "supernet.cost.units",
}


def __getattr__(name):
    # Old names keep working, loaded on first use (the storage must not import the packages
    # built on it) and saying where they moved.
    if name not in MOVED:
        raise AttributeError(f"module 'supernet.units' has no attribute {name!r}")
    where = MOVED[name]
    module, attr = where if isinstance(where, tuple) else (where, name)
    _warnings.warn(f"supernet.units.{name} moved to {module}.{attr}", DeprecationWarning,
                   stacklevel=2)
    return getattr(_importlib.import_module(module), attr)
