"""One protocol for the choice spaces of every level, and the registry of the level's class.

A *choice space* holds the discrete architectures of a super-network: at the layer level one
op (or none) per gated edge under the space's constraints
(:class:`~supernet.search.choices.layer.LayerChoiceSpace`), at the channel and neuron levels
keep or drop per unit group and connection
(:class:`~supernet.search.choices.units.UnitChoiceSpace`). Every search talks to one
through :class:`ChoiceSpace`:

* :meth:`~ChoiceSpace.decide` -- the decision of the module's relaxation (or a given
  choice, checked), :meth:`~ChoiceSpace.best` -- the best choice under gate probabilities;
* :meth:`~ChoiceSpace.sample`, :meth:`~ChoiceSpace.mutate`, :meth:`~ChoiceSpace.crossover`,
  :meth:`~ChoiceSpace.encode` -- SPOS and its evolutionary search;
* :meth:`~ChoiceSpace.decisions` -- the gates running a choice (``module(x, gates=...)``);
* :meth:`~ChoiceSpace.edits`, :meth:`~ChoiceSpace.apply`, :meth:`~ChoiceSpace.check` -- the
  edits making a choice permanent, applied, and the discretized graph checked.

:func:`choice_space` (or ``ChoiceSpace(graph, module)`` itself) builds the space of
``graph.level`` from :data:`CHOICE_SPACES`; a new level registers its class with
:func:`register_choice_space`.

Examples:
    >>> from supernet import Graph, compile
    >>> from supernet.units import mlp
    >>> from supernet.search.discretize.units import set_gated
    >>> g = Graph("layer"); g.add_input("x", channels=4); g.add_node("h", channels=4)
    >>> g.add_edge("x", "h", ["conv_3x3", "skip_connect"]); g.set_outputs(["h"])
    >>> type(choice_space(g, compile(g))).__name__
    'LayerChoiceSpace'
    >>> u = mlp([4, 3, 2], seed=0); set_gated(u, units=["h1"])
    >>> type(ChoiceSpace(u, compile(u))).__name__, CHOICE_SPACES.list()
    ('UnitChoiceSpace', ['channel', 'layer', 'neuron'])
"""

from __future__ import annotations

import abc
import random

import torch

from supernet.errors import SearchError
from supernet.gates import Decision
from supernet.registry import Registry
from supernet.units.build import UNIT_LEVELS

__all__ = ["ChoiceSpace", "CHOICE_SPACES", "register_choice_space", "choice_space",
           "choice_space_class", "is_unit_level"]

#: Level name -> the :class:`ChoiceSpace` class of graphs of that level.
CHOICE_SPACES: Registry[type] = Registry(
    "choice space level",
    hint="register the class of a level with supernet.search.choices.register_choice_space",
)


def register_choice_space(*levels: str, override: bool = False):
    """Class decorator: ``cls`` is the choice space of graphs of ``levels``."""

    def wrap(cls):
        for name in levels:
            CHOICE_SPACES.register(name, cls, override=override)
        cls.levels = tuple(dict.fromkeys((*getattr(cls, "levels", ()), *levels)))
        return cls

    return wrap


def choice_space_class(graph) -> type:
    """The :class:`ChoiceSpace` class registered for ``graph.level``."""
    return CHOICE_SPACES.resolve(getattr(graph, "level", None), getattr(graph, "name", ""))


def choice_space(graph, module) -> "ChoiceSpace":
    """The choice space of ``graph`` compiled as ``module``, of the class of its level."""
    return choice_space_class(graph)(graph, module)


def is_unit_level(graph) -> bool:
    """Whether ``graph`` is a channel- or neuron-level graph."""
    return getattr(graph, "level", None) in UNIT_LEVELS


class ChoiceSpace(abc.ABC):
    """The discrete architectures of ``graph`` compiled as ``module``.

    ``ChoiceSpace(graph, module)`` builds the space of ``graph``'s level (as
    :func:`choice_space` does); a level's class builds only graphs of its levels.

    Attributes:
        graph: the graph the space was taken from.
        levels: the levels of a class (set by :func:`register_choice_space`).
    """

    levels: tuple[str, ...] = ()

    def __new__(cls, graph=None, module=None):
        if cls is ChoiceSpace and graph is not None:
            cls = choice_space_class(graph)
        return super().__new__(cls)

    def __init__(self, graph, module):
        expected = choice_space_class(graph)
        if not isinstance(self, expected):
            raise SearchError(
                f"{graph.name}: {type(self).__name__} is the choice space of "
                f"{'/'.join(self.levels) or 'no'}-level graphs; this graph is "
                f"{graph.level}-level, whose space is {expected.__name__}: use "
                "choice_space(graph, module)"
            )
        self.graph = graph

    # ---------------------------------------------------------------- decide
    @abc.abstractmethod
    def decide(self, module, choice: dict | None = None) -> dict:
        """The choice a discretization keeps: the decision of ``module``'s relaxation, or
        ``choice`` made valid (e.g. the best path of an evolutionary search)."""

    @abc.abstractmethod
    def best(self, probs: dict[str, torch.Tensor]) -> dict:
        """The best choice under gate probabilities ``probs`` (gate key -> ``(n, K)``)."""

    # ---------------------------------------------------------------- sample (SPOS)
    @abc.abstractmethod
    def sample(self, rng: random.Random | None = None) -> dict:
        """A uniform random choice."""

    @abc.abstractmethod
    def mutate(self, choice: dict, prob: float, rng: random.Random) -> dict:
        """``choice`` with each decision resampled with probability ``prob``."""

    @abc.abstractmethod
    def crossover(self, a: dict, b: dict, rng: random.Random) -> dict:
        """Each decision from parent ``a`` or ``b``, uniformly."""

    @abc.abstractmethod
    def encode(self, choice: dict):
        """A hashable form of ``choice`` (to skip duplicates)."""

    # ---------------------------------------------------------------- use
    @abc.abstractmethod
    def decisions(self, choice: dict, like: torch.Tensor | None = None) -> dict[str, Decision]:
        """Gate decisions running exactly ``choice`` (``module(x, gates=...)``); ``like``
        gives their dtype and device."""

    @abc.abstractmethod
    def edits(self, choice: dict) -> list:
        """The edits that make ``choice`` permanent."""

    def apply(self, editor, choice: dict) -> list:
        """Apply the edits of ``choice`` through ``editor``; returns the edits applied."""
        return [editor.apply(edit).edit for edit in self.edits(choice)]

    @abc.abstractmethod
    def check(self, module) -> None:
        """Raise :class:`~supernet.errors.SearchError` unless the discretized graph (and
        ``module``) have no gate left and meet the space's constraints."""
