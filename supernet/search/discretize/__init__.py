"""Discretization: from gates and scores to the edits that make a decision permanent.

* :mod:`~supernet.search.discretize.base` -- :func:`derive`, :func:`discretize`,
  :class:`ArgmaxDiscretization`, at every level (through the level's choice space)
* :mod:`~supernet.search.discretize.layer` -- the nodes a choice leaves dangling, the
  constraints checked afterwards
* :mod:`~supernet.search.discretize.threshold` -- FairDARTS' threshold rule
  (:class:`FairThreshold`): every op whose sigmoid weight reaches 0.85, so a variable
  number of inputs per node
* :mod:`~supernet.search.discretize.units` -- pruning at a target sparsity, regrowth, and
  the edits of a keep/drop decision at the channel and neuron levels

Discretization policies are registered in :data:`DISCRETIZATIONS` under short names, so
that a strategy composed in a config names one (``discretization: argmax``): ``argmax``
here, ``fair_threshold`` (FairDARTS' 0.85 threshold, :mod:`.threshold`), ``evolution``
(SPOS) with the strategies, and the progressive ones (``pdarts``,
``sgas``, ``darts_pt``, ``progressive_gates``, ``gradual_magnitude``) with
:mod:`supernet.search.progressive`.
"""

from supernet.registry import Registry
from supernet.search.discretize.base import ArgmaxDiscretization, derive, discretize
from supernet.search.discretize.layer import apply_choice, check_constraints, dangling_nodes
from supernet.search.discretize.threshold import (
    FairThreshold,
    threshold_choice,
    threshold_discretize,
)
from supernet.search.discretize.units import connection_ids, decision_edits, grow, prune, set_gated

__all__ = ["derive", "discretize", "apply_choice", "dangling_nodes", "ArgmaxDiscretization",
           "check_constraints", "decision_edits", "prune", "grow", "set_gated", "connection_ids",
           "DISCRETIZATIONS", "register_discretization", "FairThreshold", "threshold_choice",
           "threshold_discretize"]

#: Discretization policies by name: ``DISCRETIZATIONS.resolve(name)(**options)`` builds one.
DISCRETIZATIONS: Registry = Registry(
    "discretization policy",
    hint="register one with supernet.search.discretize.register_discretization")


def register_discretization(name: str, override: bool = False):
    """Decorator registering ``factory(**options) -> DiscretizationPolicy`` as ``name``."""
    return DISCRETIZATIONS.register(name, override=override)


DISCRETIZATIONS.register("argmax", ArgmaxDiscretization)
DISCRETIZATIONS.register("fair_threshold", FairThreshold)
