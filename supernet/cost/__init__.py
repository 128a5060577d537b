"""Cost model: parameters and operations of a graph at every level, without running it.

* :mod:`~supernet.cost.layer` -- layer-level graphs, per node, edge and candidate op
* :mod:`~supernet.cost.units` -- channel- and neuron-level graphs, from the masks
* :mod:`~supernet.cost.rules` -- per-module counting rules
* :mod:`~supernet.cost.latency` -- measured latency tables of candidate ops
"""

from supernet.cost.latency import gate_latency
from supernet.cost.layer import (
    CostReport,
    expected_cost,
    gate_costs,
    graph_cost,
    op_cost,
    register_op_cost,
)
from supernet.cost.rules import Cost, conv_out, module_cost, register_module_cost
from supernet.cost.units import UnitCostReport, keep_probabilities, unit_cost

__all__ = [
    "Cost", "CostReport", "UnitCostReport", "graph_cost", "unit_cost", "op_cost",
    "register_op_cost", "register_module_cost", "module_cost", "conv_out", "expected_cost",
    "gate_costs", "keep_probabilities", "gate_latency",
]
