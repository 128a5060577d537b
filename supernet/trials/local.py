"""Local search (hill climbing with random restarts).

White, Nolen, Savani, "Exploring the Loss Landscape in Neural Architecture Search"
(UAI 2021; arXiv 2005.02960, "Local Search is State of the Art for NAS Benchmarks"),
Algorithm 1: start from a uniform random architecture; evaluate its whole neighbourhood
(every architecture one decision away, :func:`~supernet.trials.moves.neighbours`, asked
in a random order); move to the best neighbour if it beats the current architecture;
otherwise the current one is a local optimum, and the search restarts from a new random
architecture, as the paper's experiments do until the budget is spent.

``move="best"`` (default) is Algorithm 1 (the full neighbourhood, then the best);
``move="first"`` is the paper's variant that moves as soon as one neighbour improves.
A neighbour asked already is not asked again: its told metrics count as its evaluation
(one still pending is skipped, as is one that ``accept`` refuses). With several workers, asks made while the rest of a
neighbourhood is pending are uniform random architectures (they do not steer the climb).

Examples:
    >>> from supernet.spaces import create_space
    >>> g = create_space("gnn", in_channels=4, hidden=8, num_classes=2, nodes=2)
    >>> s = LocalSearch(g, seed=0)
    >>> start = s.ask(); s.tell(start, {"val_accuracy": 0.5})
    >>> s.current.id, len(s.queue) == len(neighbours(s.space, start.choice))
    (0, True)
"""

from __future__ import annotations

from supernet.errors import SearchError
from supernet.trials.base import Trial, TrialStrategy, register_trial_strategy
from supernet.trials.moves import neighbours

__all__ = ["LocalSearch"]


@register_trial_strategy("local")
class LocalSearch(TrialStrategy):
    """Local search with random restarts (module docstring).

    Args:
        move: ``"best"`` (Algorithm 1) or ``"first"`` (first improvement).
        **kwargs: of :class:`~supernet.trials.base.TrialStrategy`.

    Attributes:
        current: the told architecture the climb stands on (``None`` before a start).
        queue: its neighbours not asked yet.
        optima: the local optima reached (one per restart).
    """

    def __init__(self, supernet_graph, *, move: str = "best", **kwargs):
        if move not in ("best", "first"):
            raise SearchError(f"local: move must be 'best' or 'first', got {move!r}")
        super().__init__(supernet_graph, **kwargs)
        self.move = move
        self.current: Trial | None = None
        self.queue: list[dict] = []
        self.optima: list[Trial] = []
        self._start: dict | None = None  # the proposed start of a climb
        self._start_id: int | None = None
        self._round: set = set()  # encodes of this neighbourhood asked and not told
        self._best_near: Trial | None = None
        self._proposed: dict | None = None

    # ------------------------------------------------------------------ proposals
    def propose(self) -> dict:
        self._proposed = None
        if self.current is not None and not self.queue and not self._round:
            self._settle()  # the rest of the neighbourhood was skipped (seen or refused)
        if self.current is None and self._start is None and self._start_id is None:
            self._start = self._proposed = self.space.sample(self.rng)
        elif self.current is not None and self.queue:
            self._proposed = self.queue.pop()
        else:  # a start or the rest of a neighbourhood is pending
            return self.space.sample(self.rng)
        return self._proposed

    def duplicate(self, choice: dict, seen: Trial) -> None:
        if self._proposed is None or choice is not self._proposed:
            return
        if choice is self._start:  # a start seen already: climb from it once told
            self._start = None
            if any(seen is t for t in self.optima):
                return  # a local optimum found before: draw another start
            if seen.metrics is not None:
                self._climb_from(seen)
            else:
                self._start_id = seen.id
            return
        if seen.metrics is not None:  # a told neighbour counts as evaluated
            self._neighbour_told(seen)

    def adopt(self, choice: dict) -> None:
        if self.current is None and self._start_id is None:
            self._start = choice

    def ask(self) -> Trial:
        trial = super().ask()
        picked = self.space.encode(trial.choice)
        if self._start is not None and picked == self.space.encode(self._start):
            self._start_id, self._start = trial.id, None
        elif self.current is not None and self._proposed is not None \
                and picked == self.space.encode(self._proposed):
            self._round.add(trial.key)
        self._proposed = None
        return trial

    # ------------------------------------------------------------------ results
    def observe(self, trial: Trial) -> None:
        if trial.id == self._start_id:
            self._start_id = None
            self._climb_from(trial)
        elif trial.key in self._round:
            self._round.discard(trial.key)
            self._neighbour_told(trial)

    def _climb_from(self, trial: Trial) -> None:
        self.current, self._best_near, self._round = trial, None, set()
        self.queue = neighbours(self.space, trial.choice)
        self.rng.shuffle(self.queue)  # popped from the end: a random order
        self._settle()

    def _neighbour_told(self, trial: Trial) -> None:
        if self._best_near is None or self.value(trial) > self.value(self._best_near):
            self._best_near = trial
        if self.move == "first" and self.value(trial) > self.value(self.current):
            self._climb_from(trial)
            return
        self._settle()

    def _settle(self) -> None:
        """When the whole neighbourhood is told: move to the best neighbour if it
        improves, else record a local optimum and restart."""
        if self.queue or self._round:
            return
        near = self._best_near
        if near is not None and self.value(near) > self.value(self.current):
            self._climb_from(near)
            return
        self.optima.append(self.current)
        self.current, self._best_near = None, None
