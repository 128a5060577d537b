"""Searches: a bilevel loop composed with a relaxation, a discretization policy and
creation policies.

* :mod:`~supernet.search.loop` -- :class:`BilevelSearch`, :func:`search`
* :mod:`~supernet.search.config` -- :class:`SearchConfig` (DARTS defaults)
* :mod:`~supernet.search.relaxations` -- softmax, sigmoid, partial channels, Gumbel, binary
  gates, uniform sampling
* :mod:`~supernet.search.discretize` -- :func:`derive`, :class:`ArgmaxDiscretization`
* :mod:`~supernet.search.evolution` -- SPOS evolutionary search
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

__all__ = [
    "SearchState", "DiscretizationPolicy", "CreationPolicy", "Policy",
    "SearchConfig", "BilevelSearch", "SearchResult", "search",
    "ChoiceSpace", "constraints_of", "derive", "discretize", "check_constraints",
    "ArgmaxDiscretization", "EvolutionDiscretization", "evolutionary_search", "recalibrate_bn",
    "Strategy", "create_strategy", "list_strategies", "register_strategy",
    "export", "load_export", "Exported", "standalone", "retrain", "fine_tune", "evaluation_graph",
]
