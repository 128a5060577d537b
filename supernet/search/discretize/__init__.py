"""Discretization: from gates and scores to the edits that make a decision permanent.

* :mod:`~supernet.search.discretize.base` -- :func:`derive`, :func:`discretize`,
  :class:`ArgmaxDiscretization`, at every level (through the level's choice space)
* :mod:`~supernet.search.discretize.layer` -- the nodes a choice leaves dangling, the
  constraints checked afterwards
* :mod:`~supernet.search.discretize.units` -- pruning at a target sparsity, regrowth, and
  the edits of a keep/drop decision at the channel and neuron levels
"""

from supernet.search.discretize.base import ArgmaxDiscretization, derive, discretize
from supernet.search.discretize.layer import apply_choice, check_constraints, dangling_nodes
from supernet.search.discretize.units import connection_ids, decision_edits, grow, prune, set_gated

__all__ = ["derive", "discretize", "apply_choice", "dangling_nodes", "ArgmaxDiscretization",
           "check_constraints", "decision_edits", "prune", "grow", "set_gated", "connection_ids"]
