"""Regularized (aging) evolution.

Real, Aggarwal, Huang, Le, "Regularized Evolution for Image Classifier Architecture
Search" (AAAI 2019), Algorithm 1: the first ``population`` (P) asks are uniform random
architectures; afterwards each ask draws ``sample`` (S) members of the population
uniformly *with replacement* (a drawn member stays), takes the best of them as parent and
mutates it -- exactly one decision changed
(:func:`~supernet.trials.moves.mutate_one`: a uniform neighbour, the op of one edge or one
input of a node). Each told child joins the population on the right and the *oldest*
member leaves on the left, whatever its accuracy: the aging that gives the method its
name and distinguishes it from tournament selection that removes the worst.

Defaults: the paper's large-scale run uses P=100, S=25; at the budgets of tabular
benchmarks (100-200 queries) a population of 100 would hardly evolve, so the defaults are
P=20, S=5 (S/P = 1/4, as the paper's). With several workers (:func:`run_trials` with
``workers > 1``) the algorithm is the paper's asynchronous form: a child is bred from the
population as it is when a worker asks, and joins it when told. Duplicates are not asked:
a child seen already is mutated again (see :class:`~supernet.trials.base.TrialStrategy`).

Examples:
    >>> from supernet.spaces import create_space
    >>> g = create_space("gnn", in_channels=4, hidden=8, num_classes=2, nodes=3)
    >>> s = RegularizedEvolution(g, population=3, sample=2, seed=0)
    >>> for i in range(5):
    ...     t = s.ask(); s.tell(t, {"val_accuracy": i / 10})
    >>> [t.id for t in s.population]  # the three youngest, not the three best
    [2, 3, 4]
"""

from __future__ import annotations

import collections

from supernet.errors import SearchError
from supernet.trials.base import Trial, TrialStrategy, register_trial_strategy
from supernet.trials.moves import mutate_one

__all__ = ["RegularizedEvolution"]


@register_trial_strategy("evolution")
class RegularizedEvolution(TrialStrategy):
    """Regularized evolution (module docstring).

    Args:
        population: P, the number of members kept (the youngest).
        sample: S, the tournament size (drawn with replacement).
        **kwargs: of :class:`~supernet.trials.base.TrialStrategy` (``metric``, ``mode``,
            ``seed``, ...).
    """

    def __init__(self, supernet_graph, *, population: int = 20, sample: int = 5, **kwargs):
        for key, value in (("population", population), ("sample", sample)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SearchError(f"evolution: {key} must be a positive int, got {value!r}")
        super().__init__(supernet_graph, **kwargs)
        self.size, self.sample_size = population, sample
        self.population: collections.deque[Trial] = collections.deque()

    def propose(self) -> dict:
        asked = len(self.history) + len(self.pending)
        if asked < self.size or not self.population:
            return self.space.sample(self.rng)
        drawn = [self.rng.choice(self.population) for _ in range(self.sample_size)]
        parent = max(drawn, key=lambda t: (self.value(t), -t.id))
        return mutate_one(self.space, parent.choice, self.rng)

    def observe(self, trial: Trial) -> None:
        self.population.append(trial)
        while len(self.population) > self.size:
            self.population.popleft()  # the oldest dies, not the worst
