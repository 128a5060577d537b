"""An Optuna sampler driving the ask/tell protocol (TPE, random, or any other).

Akiba, Sano, Yanase, Ohta, Koyama, "Optuna: A Next-generation Hyperparameter Optimization
Framework" (KDD 2019). Each :meth:`~OptunaSearch.ask` runs ``study.ask()`` and builds the
choice define-by-run from ``trial.suggest_categorical``:

* layer level: per node with gated in-edges, ``"<v>:inputs"`` -- which in-edges it keeps,
  one category per allowed set (e.g. ``"n1"`` or ``"n1+n3"``; only asked when the node
  keeps fewer than it has) -- then, per kept edge, ``"<u>-><v>"`` -- its op among the
  allowed ones (names are prefixed with ``"<cell>/"`` inside a cell template). The
  constraints of the space (``max_inputs``, ``exclude``) are thus built into the
  categories, and every suggested combination is valid: the ops of an edge are only
  suggested when the edge is kept (a conditional parameter, which TPE handles);
* channel and neuron levels: one ``"drop<i>"`` in ``{0, 1}`` per decision variable; a
  combination that empties a node is repaired by the space (one unit kept), and the value
  of the repaired architecture is told for the suggested parameters.

A suggestion asked already is not evaluated again: the study is told the known value (or
a failure while it is pending, or when ``accept`` refuses it) and asked again; after ``max_tries`` such repeats an unseen
uniform sample is enqueued (``study.enqueue_trial``) so the study records what is
evaluated. :meth:`~supernet.trials.base.TrialStrategy.tell` calls ``study.tell``.

``sampler``: ``"tpe"`` (``TPESampler(seed=seed)``, default), ``"random"``
(``RandomSampler(seed=seed)``) or an ``optuna.samplers.BaseSampler``. Optuna is an optional
extra: ``pip install supernet[optuna]``. Optuna logs every told trial at INFO level;
``optuna.logging.set_verbosity(optuna.logging.WARNING)`` silences it.

Examples:
    >>> import pytest; _ = pytest.importorskip("optuna")
    >>> from supernet.spaces import create_space
    >>> g = create_space("gnn", in_channels=4, hidden=8, num_classes=2, nodes=2)
    >>> s = OptunaSearch(g, sampler="random", seed=0)
    >>> t = s.ask(); sorted(s.study.trials[0].params)
    ['n1->n2', 'n2:inputs', 'pre1->n1']
"""

from __future__ import annotations

import itertools

import numpy as np

from supernet.errors import ConfigError, SearchError
from supernet.search.choices.layer import LayerChoiceSpace
from supernet.trials.base import Trial, TrialStrategy, register_trial_strategy

__all__ = ["OptunaSearch", "import_optuna"]


def import_optuna():
    """The ``optuna`` module, or a :class:`~supernet.errors.ConfigError` naming the extra."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("the optuna trial strategy needs Optuna, which is not installed; "
                          "pip install supernet[optuna]") from None
    return optuna


@register_trial_strategy("optuna")
class OptunaSearch(TrialStrategy):
    """Choices suggested by an Optuna study (module docstring).

    Args:
        sampler: ``"tpe"``, ``"random"`` or an Optuna sampler.
        **kwargs: of :class:`~supernet.trials.base.TrialStrategy` (``seed`` seeds the
            named samplers).

    Attributes:
        study: the Optuna study (direction from ``mode``).
    """

    def __init__(self, supernet_graph, *, sampler="tpe", **kwargs):
        optuna = import_optuna()
        super().__init__(supernet_graph, **kwargs)
        if sampler == "tpe":
            sampler = optuna.samplers.TPESampler(seed=self.seed)
        elif sampler == "random":
            sampler = optuna.samplers.RandomSampler(seed=self.seed)
        elif not isinstance(sampler, optuna.samplers.BaseSampler):
            raise ConfigError(f"optuna: sampler must be 'tpe', 'random' or an "
                              f"optuna.samplers.BaseSampler, got {sampler!r}")
        self._optuna = optuna
        self.study = optuna.create_study(
            sampler=sampler, direction="maximize" if self.mode == "max" else "minimize")
        self._layer = isinstance(self.space, LayerChoiceSpace)
        self._current = None
        self._open: dict[int, object] = {}  # strategy trial id -> optuna trial

    # ------------------------------------------------------------------ choice <-> params
    def _groups(self):
        for grp in self.space.groups:
            prefix = f"{grp.cell}/" if grp.cell else ""
            keys = [(grp.cell, e.u, grp.v) for e in grp.edges]
            sets = None
            if grp.budget < len(grp.edges):
                sets = ["+".join(grp.edges[j].u for j in kept)
                        for kept in itertools.combinations(range(len(grp.edges)), grp.budget)]
            yield grp, prefix, keys, sets

    def _suggest(self, otrial) -> dict:
        if not self._layer:
            vec = np.array([otrial.suggest_categorical(f"drop{i}", [0, 1])
                            for i in range(self.space.size)], bool)
            return self.space.choice(self.space.repair(vec, gen=np.random.default_rng(0)))
        choice = {}
        for grp, prefix, keys, sets in self._groups():
            if sets is None:
                kept = {e.u for e in grp.edges}
            else:
                kept = set(otrial.suggest_categorical(f"{prefix}{grp.v}:inputs", sets).split("+"))
            for key, e in zip(keys, grp.edges):
                choice[key] = (otrial.suggest_categorical(f"{prefix}{e.u}->{grp.v}",
                                                          [e.ops[i] for i in e.allowed])
                               if e.u in kept else None)
        return choice

    def _params(self, choice: dict) -> dict:
        if not self._layer:
            return {f"drop{i}": int(b) for i, b in enumerate(self.space.vector(choice))}
        params = {}
        for grp, prefix, keys, sets in self._groups():
            if sets is not None:
                params[f"{prefix}{grp.v}:inputs"] = "+".join(
                    e.u for k, e in zip(keys, grp.edges) if choice[k] is not None)
            for key, e in zip(keys, grp.edges):
                if choice[key] is not None:
                    params[f"{prefix}{e.u}->{grp.v}"] = choice[key]
        return params

    # ------------------------------------------------------------------ hooks
    def propose(self) -> dict:
        self._current = self.study.ask()
        return self._suggest(self._current)

    def duplicate(self, choice: dict, seen: Trial) -> None:
        if seen.metrics is not None:
            self.study.tell(self._current, seen.metrics[self.metric])
        else:
            self.study.tell(self._current, state=self._optuna.trial.TrialState.FAIL)
        self._current = None

    def rejected(self, choice: dict) -> None:
        self.study.tell(self._current, state=self._optuna.trial.TrialState.FAIL)
        self._current = None

    def adopt(self, choice: dict) -> None:
        self.study.enqueue_trial(self._params(choice))
        self._current = self.study.ask()
        got = self._suggest(self._current)
        if self.space.encode(got) != self.space.encode(choice):
            raise SearchError("optuna: the enqueued choice came back changed; the sampler "
                              "does not honour enqueued trials")

    def ask(self) -> Trial:
        trial = super().ask()
        self._open[trial.id] = self._current
        self._current = None
        return trial

    def observe(self, trial: Trial) -> None:
        self.study.tell(self._open.pop(trial.id), trial.metrics[self.metric])
