"""Cost model: parameters and operations of a graph at every level, without running it.

* :func:`cost` -- any graph, by its level (:mod:`~supernet.cost.dispatch`)
* :mod:`~supernet.cost.layer` -- layer-level graphs, per node, edge and candidate op
* :mod:`~supernet.cost.units` -- channel- and neuron-level graphs, from the masks
* :mod:`~supernet.cost.rules` -- counting rules of torch's modules (the record and the rule
  registry are :mod:`supernet.counting`; ops register their own rules)
* :mod:`~supernet.cost.latency` -- measured latency tables of candidate ops
"""

from supernet.cost.dispatch import COST_LEVELS, cost, weight_count
from supernet.cost.latency import gate_latency
from supernet.cost.layer import (
    METRICS,
    CostReport,
    expected_cost,
    gate_costs,
    graph_cost,
    op_cost,
    register_op_cost,
)
from supernet.cost.rules import (
    Cost,
    counting_convention,
    conv_out,
    module_cost,
    register_module_cost,
    unregister_module_cost,
)
from supernet.cost.units import UnitCostReport, keep_probabilities, unit_cost
from supernet.counting import CONVENTIONS

__all__ = [
    "cost", "COST_LEVELS", "Cost", "CostReport", "UnitCostReport", "graph_cost", "unit_cost",
    "op_cost", "register_module_cost", "unregister_module_cost", "module_cost", "conv_out",
    "expected_cost", "gate_costs", "keep_probabilities", "gate_latency", "METRICS",
    "register_op_cost", "weight_count", "CONVENTIONS", "counting_convention",
]
