"""Ask/tell multi-trial search over the discrete architectures of a super-network.

A *multi-trial* search evaluates whole architectures one by one -- by training each
briefly, or by looking it up in a tabular benchmark (:mod:`supernet.tabular`) -- beside
the one-shot searches that train one super-network (:mod:`supernet.search`). Its
strategies speak one protocol, as Optuna's and NNI's do:

* :meth:`TrialStrategy.ask` returns a :class:`Trial`: an id, a ``choice`` of the
  super-network's choice space (:func:`supernet.search.choices.choice_space`) and
  ``graph``, the discretized graph of that choice (the space's edits applied to a copy of
  the super-network, nodes left without a use removed: what
  :func:`supernet.search.discretize.discretize` keeps);
* :meth:`TrialStrategy.tell` gives back the trial's metrics (a dict of finite numbers, one
  of them the strategy's ``metric``, maximized unless ``mode="min"``).

No architecture is asked twice unless the space is exhausted: two choices are the same
architecture when their ``encode`` is, or, with ``identity=``, when ``identity(graph)`` of
their discretized graphs is (e.g. ``bench.key`` of a tabular benchmark, which numbers
isomorphic DAGs as one). With ``accept=``, choices whose discretized graph fails
``accept(graph)`` are never asked (e.g. ``bench.__contains__``: what the table holds). A
strategy whose proposals keep repeating falls back to unseen uniform samples. Strategies register in
:data:`TRIAL_STRATEGIES`; :func:`trial_strategy` builds one by name.
:func:`supernet.trials.run_trials` drives a strategy against an ``evaluate(graph)``,
in-process or on Ray.

Examples:
    >>> from supernet.spaces import create_space
    >>> g = create_space("gnn", in_channels=4, hidden=8, num_classes=2, nodes=2)
    >>> s = trial_strategy("random", g, seed=0)
    >>> t = s.ask(); t.id, sorted(t.choice.values(), key=str)[-1] is not None
    (0, True)
    >>> s.tell(t, {"val_accuracy": 0.5}); s.best().id, len(s.history)
    (0, 1)
    >>> s.tell(t, {"val_accuracy": 0.5})
    Traceback (most recent call last):
        ...
    supernet.errors.SearchError: random: trial 0 was told already; ask() a new trial
"""

from __future__ import annotations

import abc
import itertools
import math
import random
from dataclasses import dataclass, field

from supernet.compiler import compile
from supernet.edits import Editor
from supernet.errors import SearchError
from supernet.lint import lint
from supernet.registry import Registry
from supernet.search.choices import choice_space
from supernet.trials.moves import enumerate_choices, space_size

__all__ = [
    "TRIAL_STRATEGIES",
    "Trial",
    "TrialHistory",
    "TrialStrategy",
    "discretized",
    "register_trial_strategy",
    "trial_strategy",
]

_REJECTED = object()  # the key of a choice that ``accept`` refuses

#: Name -> :class:`TrialStrategy` subclass.
TRIAL_STRATEGIES: Registry[type] = Registry(
    "trial strategy",
    hint="register one with @supernet.trials.register_trial_strategy(name)",
)


def register_trial_strategy(name: str, override: bool = False):
    """Class decorator: register a :class:`TrialStrategy` subclass as ``name``."""

    def wrap(cls):
        TRIAL_STRATEGIES.register(name, cls, override=override)
        cls.name = name
        return cls

    return wrap


def trial_strategy(name: str, supernet_graph, **options) -> TrialStrategy:
    """The strategy registered as ``name``, built on ``supernet_graph`` with ``options``."""
    return TRIAL_STRATEGIES.resolve(name)(supernet_graph, **options)


def discretized(graph, space, choice: dict):
    """``choice`` made permanent on a copy of ``graph`` (``graph`` is unchanged): the
    space's edits applied by an :class:`~supernet.edits.Editor` without a module, then the
    copy linted."""
    copy = graph.copy()
    space.apply(Editor(copy), choice)
    lint(copy)
    return copy


@dataclass
class Trial:
    """One architecture asked by a strategy.

    Attributes:
        id: the ask counter of its strategy (0, 1, ...).
        choice: the choice of the super-network's choice space.
        graph: the discretized graph of ``choice``.
        metrics: what :meth:`TrialStrategy.tell` gave (``None`` until then).
        seconds: wall time of its evaluation (set by :func:`~supernet.trials.run_trials`).
        key: its identity (the choice's ``encode``, or the strategy's ``identity(graph)``).
    """

    id: int
    choice: dict
    graph: object = field(repr=False)
    metrics: dict | None = None
    seconds: float | None = None
    key: object = field(default=None, repr=False)


class TrialHistory:
    """The told trials of a search, in the order they were asked (trial id).

    ``metric`` is the objective; ``mode`` ``"max"`` or ``"min"``.
    """

    def __init__(self, metric: str = "val_accuracy", mode: str = "max", trials=()):
        self.metric, self.mode = metric, mode
        self.trials: list[Trial] = sorted(trials, key=lambda t: t.id)
        self.seconds: float = 0.0

    def add(self, trial: Trial) -> None:
        self.trials.append(trial)
        if len(self.trials) > 1 and self.trials[-2].id > trial.id:
            self.trials.sort(key=lambda t: t.id)

    def __len__(self) -> int:
        return len(self.trials)

    def __iter__(self):
        return iter(self.trials)

    def __getitem__(self, i):
        return self.trials[i]

    def _sign(self) -> float:
        return 1.0 if self.mode == "max" else -1.0

    def best(self, metric: str | None = None) -> Trial:
        """The trial of best ``metric`` (the history's; the earliest among ties)."""
        metric = metric or self.metric
        if not self.trials:
            raise SearchError(f"no trial has been told yet: no best {metric!r}")
        sign = self._sign()
        return max(self.trials, key=lambda t: (sign * t.metrics[metric], -t.id))

    def curve(self, report: str | None = None, metric: str | None = None) -> list[float]:
        """After each trial (in ask order), ``report`` of the best trial so far by ``metric``
        (both default to the history's metric): e.g. the test accuracy of the
        architecture of best validation accuracy."""
        metric = metric or self.metric
        report = report or metric
        for key in dict.fromkeys((metric, report)):
            missing = [t for t in self.trials if key not in t.metrics]
            if missing:
                raise SearchError(f"trial(s) {[t.id for t in missing[:5]]} have no metric "
                                  f"{key!r}; keys of trial {missing[0].id}: "
                                  f"{sorted(missing[0].metrics)}")
        sign, best, out = self._sign(), None, []
        for t in self.trials:
            if best is None or sign * t.metrics[metric] > sign * best.metrics[metric]:
                best = t
            out.append(float(best.metrics[report]))
        return out

    def __repr__(self) -> str:
        return f"TrialHistory({len(self)} trials, metric={self.metric!r}, mode={self.mode!r})"


class TrialStrategy(abc.ABC):
    """Ask/tell search over the choices of ``supernet_graph`` (module docstring).

    Subclasses implement :meth:`propose` (the next choice) and may override the hooks
    :meth:`observe` (a trial told), :meth:`duplicate` (a proposal seen already) and
    :meth:`adopt` (a fallback choice replaces a proposal).

    Args:
        supernet_graph: a super-network (e.g. ``supernet.spaces.create_space("gnn")``);
            compiled once to take its choice space, never changed.
        metric: the metric key to optimize; ``mode``: ``"max"`` or ``"min"``.
        seed: seeds every random draw of the strategy.
        max_tries: proposals tried before falling back to an unseen uniform sample.
        identity: ``identity(graph) -> hashable``: architectures with equal identity are
            one (default: the choice space's ``encode`` of the choice).
        accept: ``accept(graph) -> bool``: only architectures it accepts are asked.
    """

    name: str = "strategy"

    def __init__(self, supernet_graph, *, metric: str = "val_accuracy", mode: str = "max",
                 seed: int = 0, max_tries: int = 1000, identity=None, accept=None):
        if mode not in ("max", "min"):
            raise SearchError(f"{self.name}: mode must be 'max' or 'min', got {mode!r}")
        if not isinstance(metric, str) or not metric:
            raise SearchError(f"{self.name}: metric must be a non-empty str, got {metric!r}")
        self.supernet = supernet_graph
        self.space = choice_space(supernet_graph, compile(supernet_graph))
        if space_size(self.space) <= 1:
            raise SearchError(f"{self.name}: {supernet_graph.name} has no gate (one "
                              "architecture): there is nothing to search")
        self.metric, self.mode, self.seed = metric, mode, seed
        self.rng = random.Random(seed)
        self.max_tries = max_tries
        if identity is not None and not callable(identity):
            raise SearchError(f"{self.name}: identity must be callable as identity(graph), "
                              f"got {type(identity).__name__}")
        if accept is not None and not callable(accept):
            raise SearchError(f"{self.name}: accept must be callable as accept(graph), "
                              f"got {type(accept).__name__}")
        self.identity, self.accept = identity, accept
        self.history = TrialHistory(metric, mode)
        self.pending: dict[int, Trial] = {}
        self._seen: dict[object, Trial] = {}
        self._choices: set = set()
        self._last_accepted: dict | None = None
        self._ids = itertools.count()
        self._size: int | float | None = None

    # ------------------------------------------------------------------ protocol
    def ask(self) -> Trial:
        """The next architecture to evaluate."""
        choice = None
        for _ in range(self.max_tries):
            proposal = self.propose()
            key, graph = self._identify(proposal)
            if key is _REJECTED:
                self.rejected(proposal)
                continue
            if key not in self._seen:
                choice = proposal
                break
            self.duplicate(proposal, self._seen[key])
        else:
            choice = self._unseen()
            if choice is None:  # exhausted: asking again is the only way on
                choice = self._last_accepted
            if choice is None:
                raise SearchError(f"{self.name}: {self.max_tries} proposals and as many "
                                  "uniform samples were all refused by accept(graph); does "
                                  "it accept any architecture of this space?")
            self.adopt(choice)
            key, graph = self._identify(choice)
        if graph is None:
            graph = discretized(self.supernet, self.space, choice)
        trial = Trial(next(self._ids), choice, graph, key=key)
        self._seen.setdefault(key, trial)
        self._choices.add(self.space.encode(choice))
        self.pending[trial.id] = trial
        return trial

    def _identify(self, choice: dict):
        """``(key, graph)``: the identity of ``choice`` and its discretized graph (``None``
        when neither ``identity`` nor ``accept`` needs it); the key is a marker of refusal
        when ``accept`` refuses the graph."""
        if self.identity is None and self.accept is None:  # no graph needed to decide
            self._last_accepted = choice
            return self.space.encode(choice), None
        graph = discretized(self.supernet, self.space, choice)
        if self.accept is not None and not self.accept(graph):
            return _REJECTED, graph
        self._last_accepted = choice
        key = self.space.encode(choice) if self.identity is None else self.identity(graph)
        return key, graph

    def asked(self, choice: dict) -> bool:
        """Whether ``choice`` itself has been asked (by its ``encode``)."""
        return self.space.encode(choice) in self._choices

    def tell(self, trial: Trial, metrics: dict) -> None:
        """Record ``metrics`` of an asked ``trial``."""
        tid = getattr(trial, "id", trial)
        if tid not in self.pending:
            told = any(t.id == tid for t in self.history)
            raise SearchError(
                f"{self.name}: trial {tid} was told already; ask() a new trial" if told else
                f"{self.name}: trial {tid!r} was never asked by this strategy; tell only "
                f"trials returned by ask() (pending: {sorted(self.pending)})"
            )
        metrics = self.check_metrics(metrics, f"trial {tid}")
        trial = self.pending.pop(tid)
        trial.metrics = metrics
        self.history.add(trial)
        self.observe(trial)

    def best(self, metric: str | None = None) -> Trial:
        """The told trial of best ``metric`` (default: the strategy's)."""
        return self.history.best(metric)

    def value(self, trial: Trial) -> float:
        """The objective of a told ``trial``, larger is better (negated for ``mode="min"``)."""
        v = trial.metrics[self.metric]
        return v if self.mode == "max" else -v

    def check_metrics(self, metrics, where: str) -> dict:
        """``metrics`` as a dict of floats; refused without the strategy's metric or with a
        non-finite one."""
        if not isinstance(metrics, dict):
            raise SearchError(f"{self.name}: {where}: metrics must be a dict of numbers, "
                              f"got {type(metrics).__name__}")
        if self.metric not in metrics:
            raise SearchError(f"{self.name}: {where}: metrics have no key {self.metric!r} "
                              f"(the strategy's metric); got keys {sorted(metrics)}")
        out = {}
        for k, v in metrics.items():
            try:
                out[k] = float(v)
            except (TypeError, ValueError):
                if k == self.metric:
                    raise SearchError(f"{self.name}: {where}: metric {k!r} is not a number: "
                                      f"{v!r}") from None
                out[k] = v
        if not math.isfinite(out[self.metric]):
            raise SearchError(f"{self.name}: {where}: metric {self.metric!r} is "
                              f"{out[self.metric]}; tell finite values only")
        return out

    # ------------------------------------------------------------------ hooks
    @abc.abstractmethod
    def propose(self) -> dict:
        """The next choice the strategy would like evaluated."""

    def observe(self, trial: Trial) -> None:
        """Called by :meth:`tell` once ``trial.metrics`` is set."""

    def duplicate(self, choice: dict, seen: Trial) -> None:
        """``choice`` was proposed but is ``seen`` already (told or pending)."""

    def rejected(self, choice: dict) -> None:
        """``choice`` was proposed but ``accept`` refuses its graph."""

    def adopt(self, choice: dict) -> None:
        """After ``max_tries`` seen proposals, ``choice`` (an unseen sample, or the last
        proposal when the space is exhausted) is asked instead."""

    # ------------------------------------------------------------------ helpers
    def exhausted(self) -> bool:
        """Whether every choice of the space has been asked."""
        if self._size is None:
            self._size = space_size(self.space)
        return len(self._seen) >= self._size

    def _unseen(self) -> dict | None:
        """An unseen choice: a uniform sample, or the first unseen one of the enumeration
        of a small space; ``None`` when the space is exhausted (with ``identity``: when
        ``max_tries`` samples found none)."""
        for _ in range(self.max_tries):
            c = self.space.sample(self.rng)
            key = self._identify(c)[0]
            if key is not _REJECTED and key not in self._seen:
                return c
        if self.identity is not None or self.accept is not None or self.exhausted():
            return None
        for c in enumerate_choices(self.space):
            if self.space.encode(c) not in self._seen:
                return c
        return None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.supernet.name!r}, metric={self.metric!r}, "
                f"mode={self.mode!r}, seed={self.seed}, told={len(self.history)}, "
                f"pending={len(self.pending)})")
