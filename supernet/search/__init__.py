"""Searches: a bilevel loop composed with a relaxation, a discretization policy and
creation policies.

* :mod:`~supernet.search.loop` -- :class:`BilevelSearch`, :func:`search`
* :mod:`~supernet.search.config` -- :class:`SearchConfig` (DARTS defaults)
* :mod:`~supernet.search.relaxations` -- softmax, sigmoid, partial channels, Gumbel, binary
  gates, uniform sampling, Dirichlet (DrNAS)
* :mod:`~supernet.search.stabilizers` -- β-DARTS, DARTS-, SDARTS (RS, ADV), Λ-DARTS:
  :data:`STABILIZERS`, :func:`register_stabilizer`
* :mod:`~supernet.search.discretize.layer` -- :func:`derive`, :class:`ArgmaxDiscretization`
* :mod:`~supernet.search.choices.units` -- keep/drop choices at the channel and neuron levels
* :mod:`~supernet.search.evolution` -- SPOS evolutionary search
* :mod:`~supernet.search.proxies` -- zero-cost proxies (synflow, snip, naswot, zico, meco,
  ...): :data:`PROXIES`, ``proxies.score``, :func:`score_all`
* :mod:`~supernet.search.progressive` -- P-DARTS, SGAS, DARTS-PT; ProgressiveGates and
  GradualMagnitude at the unit levels
* :mod:`~supernet.search.creation.layer` -- GrowOps, GrowNode; :mod:`~supernet.search.creation.rigl` (RigL)
  and :mod:`~supernet.search.creation.units` (GrowUnits) at the unit levels
* :mod:`~supernet.search.crosslevel` -- ops and cell widths in one search (strategy
  ``crosslevel``)
* :mod:`~supernet.search.strategies` -- :func:`create_strategy`, :func:`register_strategy`
* :mod:`~supernet.export` -- files users keep, standalone module
* :mod:`~supernet.train.retrain` -- retraining from scratch, fine-tuning
"""

from supernet.compiler.standalone import standalone
from supernet.export import Exported, export, load_export
from supernet.search.base import CreationPolicy, DiscretizationPolicy, Policy, SearchState
from supernet.search.choices.layer import ChoiceSpace, constraints_of
from supernet.search.choices.units import UnitChoiceSpace, choice_space
from supernet.search.config import SearchConfig
from supernet.search.creation.rigl import RigL
from supernet.search.creation.units import GrowUnits
from supernet.search.crosslevel import JointDiscretization, WidthGates, mark_widths
from supernet.search.discretize.layer import (
    ArgmaxDiscretization,
    check_constraints,
    derive,
    discretize,
)
from supernet.search.evolution import EvolutionDiscretization, evolutionary_search, recalibrate_bn
from supernet.search.loop import BilevelSearch, SearchResult, search
from supernet.search.progressive import GradualMagnitude, ProgressiveGates
from supernet.search.proxies import PROXIES, register_proxy, score_all
from supernet.search.stabilizers import STABILIZERS, Stabilizer, register_stabilizer
from supernet.search.strategies import Strategy, create_strategy, list_strategies, register_strategy
from supernet.train.retrain import evaluation_graph, fine_tune, retrain

__all__ = [
    "SearchState", "DiscretizationPolicy", "CreationPolicy", "Policy",
    "SearchConfig", "BilevelSearch", "SearchResult", "search",
    "ChoiceSpace", "constraints_of", "derive", "discretize", "check_constraints",
    "ArgmaxDiscretization", "EvolutionDiscretization", "evolutionary_search", "recalibrate_bn",
    "Strategy", "create_strategy", "list_strategies", "register_strategy",
    "export", "load_export", "Exported", "standalone", "retrain", "fine_tune", "evaluation_graph",
    "UnitChoiceSpace", "choice_space", "ProgressiveGates", "GradualMagnitude", "RigL",
    "GrowUnits", "WidthGates", "JointDiscretization", "mark_widths",
    "PROXIES", "register_proxy", "score_all",
    "STABILIZERS", "Stabilizer", "register_stabilizer",
]
