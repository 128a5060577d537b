"""Multi-trial search: ask/tell strategies over the discrete architectures of a
super-network, and a runner that evaluates them in-process or on Ray.

* :mod:`~supernet.trials.base` -- :class:`Trial`, :class:`TrialStrategy`,
  :class:`TrialHistory`, the registry :data:`TRIAL_STRATEGIES`, :func:`trial_strategy`
* :mod:`~supernet.trials.moves` -- neighbours and one-decision mutations of a choice
* :mod:`~supernet.trials.random_search` -- ``random`` (uniform samples)
* :mod:`~supernet.trials.evolution` -- ``evolution`` (regularized evolution, Real et al. 2019)
* :mod:`~supernet.trials.local` -- ``local`` (local search, White et al. 2021)
* :mod:`~supernet.trials.predictor` -- ``predictor`` (a GIN predictor, BANANAS's loop)
* :mod:`~supernet.trials.optuna_search` -- ``optuna`` (an Optuna sampler; optional extra)
* :mod:`~supernet.trials.encoding` -- discretized graphs as PyTorch Geometric ``Data``
* :mod:`~supernet.trials.runner` -- :func:`run_trials` (``engine="local"`` or ``"ray"``)
* :mod:`~supernet.trials.evaluate` -- :func:`tabular`, :func:`trained`
"""

from supernet.trials.base import (
                                  TRIAL_STRATEGIES,
                                  Trial,
                                  TrialHistory,
                                  TrialStrategy,
                                  discretized,
                                  register_trial_strategy,
                                  trial_strategy,
)
from supernet.trials.encoding import GraphEncoder
from supernet.trials.evaluate import tabular, trained
from supernet.trials.evolution import RegularizedEvolution
from supernet.trials.local import LocalSearch
from supernet.trials.moves import enumerate_choices, mutate_one, neighbours, space_size
from supernet.trials.optuna_search import OptunaSearch
from supernet.trials.predictor import GINRegressor, PredictorSearch
from supernet.trials.random_search import RandomSearch
from supernet.trials.runner import ENGINES, run_trials

__all__ = [
                                  "ENGINES",
                                  "TRIAL_STRATEGIES",
                                  "GINRegressor",
                                  "GraphEncoder",
                                  "LocalSearch",
                                  "OptunaSearch",
                                  "PredictorSearch",
                                  "RandomSearch",
                                  "RegularizedEvolution",
                                  "Trial",
                                  "TrialHistory",
                                  "TrialStrategy",
                                  "discretized",
                                  "enumerate_choices",
                                  "mutate_one",
                                  "neighbours",
                                  "register_trial_strategy",
                                  "run_trials",
                                  "space_size",
                                  "tabular",
                                  "trained",
                                  "trial_strategy",
]
