"""Searches: a bilevel loop composed with a relaxation, a discretization policy and
creation policies.

* :mod:`~supernet.search.loop` -- :class:`BilevelSearch`, :func:`search`
* :mod:`~supernet.search.config` -- :class:`SearchConfig` (DARTS defaults)
* :mod:`~supernet.search.relaxations` -- softmax, sigmoid, partial channels, Gumbel, binary
  gates, uniform sampling
* :mod:`~supernet.search.discretize` -- :func:`derive`, :class:`ArgmaxDiscretization`
* :mod:`~supernet.search.unit_choices` -- keep/drop choices at the channel and neuron levels
* :mod:`~supernet.search.evolution` -- SPOS evolutionary search
* :mod:`~supernet.search.progressive` -- P-DARTS, SGAS, DARTS-PT; ProgressiveGates and
  GradualMagnitude at the unit levels
* :mod:`~supernet.search.creation` -- GrowOps, GrowNode; :mod:`~supernet.search.rigl` (RigL)
  and :mod:`~supernet.search.unit_growth` (GrowUnits) at the unit levels
* :mod:`~supernet.search.strategies` -- :func:`create_strategy`, :func:`register_strategy`
* :mod:`~supernet.search.export` -- files users keep, standalone module
* :mod:`~supernet.search.retrain` -- retraining from scratch, fine-tuning
"""

from .base import CreationPolicy, DiscretizationPolicy, Policy, SearchState
from .choices import ChoiceSpace, constraints_of
from .config import SearchConfig
from .discretize import ArgmaxDiscretization, check_constraints, derive, discretize
from .evolution import EvolutionDiscretization, evolutionary_search, recalibrate_bn
from .export import Exported, export, load_export
from .loop import BilevelSearch, SearchResult, search
from .retrain import evaluation_graph, fine_tune, retrain
from .standalone import standalone
from .strategies import Strategy, create_strategy, list_strategies, register_strategy
from .progressive import GradualMagnitude, ProgressiveGates
from .rigl import RigL
from .unit_choices import UnitChoiceSpace, choice_space
from .unit_growth import GrowUnits

__all__ = [
    "SearchState", "DiscretizationPolicy", "CreationPolicy", "Policy",
    "SearchConfig", "BilevelSearch", "SearchResult", "search",
    "ChoiceSpace", "constraints_of", "derive", "discretize", "check_constraints",
    "ArgmaxDiscretization", "EvolutionDiscretization", "evolutionary_search", "recalibrate_bn",
    "Strategy", "create_strategy", "list_strategies", "register_strategy",
    "export", "load_export", "Exported", "standalone", "retrain", "fine_tune", "evaluation_graph",
    "UnitChoiceSpace", "choice_space", "ProgressiveGates", "GradualMagnitude", "RigL",
    "GrowUnits",
]
