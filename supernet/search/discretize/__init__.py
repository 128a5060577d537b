"""Discretization: from gates and scores to the edits that make a decision permanent.

* :mod:`~supernet.search.discretize.layer` -- :func:`derive`, :func:`discretize`,
  :class:`ArgmaxDiscretization`
* :mod:`~supernet.search.discretize.units` -- pruning at a target sparsity, regrowth, and
  the edits of a keep/drop decision at the channel and neuron levels
"""

from supernet.search.discretize.layer import (
                                              ArgmaxDiscretization,
                                              apply_choice,
                                              check_constraints,
                                              dangling_nodes,
                                              derive,
                                              discretize,
)
from supernet.search.discretize.units import connection_ids, decision_edits, grow, prune, set_gated

__all__ = ["derive", "discretize", "apply_choice", "dangling_nodes", "ArgmaxDiscretization",
           "check_constraints", "decision_edits", "prune", "grow", "set_gated", "connection_ids"]
