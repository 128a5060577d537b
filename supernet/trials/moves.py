"""Moves between the discrete architectures of a choice space: neighbours, one-decision
mutations, the size of the space and its enumeration.

The choice-space protocol (:mod:`supernet.search.choices`) samples, mutates every decision
with a probability, crosses over and encodes; multi-trial searches also need the
architectures *one decision away* from a given one -- the neighbourhood of local search
(White et al., UAI 2021) and the mutation of regularized evolution (Real et al., AAAI
2019). A decision is:

* layer level (:class:`~supernet.search.choices.layer.LayerChoiceSpace`): the op of a kept
  gated edge (changed to another allowed op), or, at a node that keeps fewer gated
  in-edges than it has (``max_inputs``), one kept input (swapped for a dropped one; the
  edge's op is kept when the new edge allows it, else every allowed op of the new edge is a
  neighbour);
* channel and neuron levels (:class:`~supernet.search.choices.units.UnitChoiceSpace`): the
  keep/drop flag of one variable (a dependency group of units or a connection), flipped;
  a flip that would empty a node is repaired by the space, and repeated neighbours are
  dropped.

Examples:
    >>> from supernet import Graph, compile
    >>> from supernet.search.choices import choice_space
    >>> g = Graph("layer"); g.add_input("x", channels=4)
    >>> g.add_node("a", channels=4); g.add_edge("x", "a", ["conv_3x3", "skip_connect", "none"])
    >>> g.add_node("b", channels=4); g.add_edge("x", "b", ["conv_3x3", "none"])
    >>> g.add_edge("a", "b", ["skip_connect", "none"]); g.set_outputs(["b"])
    >>> g.meta["constraints"] = {"": {"max_inputs": 1, "exclude": ["none"]}}
    >>> space = choice_space(g, compile(g))
    >>> c = {("", "x", "a"): "conv_3x3", ("", "x", "b"): None, ("", "a", "b"): "skip_connect"}
    >>> [sorted((k[1] + "->" + k[2], v) for k, v in n.items() if v) for n in neighbours(space, c)]
    [[('a->b', 'skip_connect'), ('x->a', 'skip_connect')], [('x->a', 'conv_3x3'), ('x->b', 'conv_3x3')]]
    >>> space_size(space), len(enumerate_choices(space))
    (4, 4)
"""

from __future__ import annotations

import itertools
import math
import random

import numpy as np

from supernet.errors import SearchError
from supernet.search.choices.layer import LayerChoiceSpace
from supernet.search.choices.units import UnitChoiceSpace

__all__ = ["enumerate_choices", "mutate_one", "neighbours", "space_size"]


def _unsupported(space):
    return SearchError(
        f"multi-trial search: no moves for choice space {type(space).__name__}; supported: "
        "LayerChoiceSpace (layer level), UnitChoiceSpace (channel and neuron levels)"
    )


def _layer_neighbours(space: LayerChoiceSpace, choice: dict) -> list[dict]:
    out = []
    for grp in space.groups:
        keys = [(grp.cell, e.u, grp.v) for e in grp.edges]
        for key, e in zip(keys, grp.edges):  # change the op of a kept edge
            op = choice[key]
            if op is None:
                continue
            for i in e.allowed:
                if e.ops[i] != op:
                    out.append({**choice, key: e.ops[i]})
        if grp.budget >= len(grp.edges):
            continue
        kept = [(k, e) for k, e in zip(keys, grp.edges) if choice[k] is not None]
        dropped = [(k, e) for k, e in zip(keys, grp.edges) if choice[k] is None]
        for k_out, _ in kept:  # swap one kept input for a dropped one
            op = choice[k_out]
            for k_in, e_in in dropped:
                allowed = [e_in.ops[i] for i in e_in.allowed]
                for new in ([op] if op in allowed else allowed):
                    out.append({**choice, k_out: None, k_in: new})
    return out


def _unit_neighbours(space: UnitChoiceSpace, choice: dict) -> list[dict]:
    base = space.vector(choice)
    seen = {space.encode(choice)}
    out = []
    gen = np.random.default_rng(0)
    for i in range(space.size):
        vec = base.copy()
        vec[i] = not vec[i]
        new = space.choice(space.repair(vec, gen=gen))
        key = space.encode(new)
        if key not in seen:
            seen.add(key)
            out.append(new)
    return out


def neighbours(space, choice: dict) -> list[dict]:
    """Every valid choice one decision away from ``choice`` (module docstring), in a fixed
    order (shuffle it for a random order)."""
    if isinstance(space, LayerChoiceSpace):
        return _layer_neighbours(space, choice)
    if isinstance(space, UnitChoiceSpace):
        return _unit_neighbours(space, choice)
    raise _unsupported(space)


def mutate_one(space, choice: dict, rng: random.Random) -> dict:
    """A uniformly chosen neighbour of ``choice`` (one decision changed); ``choice`` itself
    when it has none (a space of one architecture)."""
    near = neighbours(space, choice)
    return rng.choice(near) if near else dict(choice)


def _group_options(grp) -> list[dict]:
    keys = [(grp.cell, e.u, grp.v) for e in grp.edges]
    options = []
    for kept in itertools.combinations(range(len(grp.edges)), grp.budget):
        per_edge = [[grp.edges[j].ops[i] for i in grp.edges[j].allowed] if j in kept else [None]
                    for j in range(len(grp.edges))]
        for ops in itertools.product(*per_edge):
            options.append(dict(zip(keys, ops)))
    return options


def space_size(space) -> int | float:
    """The number of distinct choices of ``space`` (layer level: exact; unit levels: the
    ``2 ** variables`` bound before repairs, ``inf`` past 2**1023)."""
    if isinstance(space, LayerChoiceSpace):
        total = 1
        for grp in space.groups:
            count = 0
            for kept in itertools.combinations(range(len(grp.edges)), grp.budget):
                count += math.prod(len(grp.edges[j].allowed) for j in kept)
            total *= count
        return total
    if isinstance(space, UnitChoiceSpace):
        return 2 ** space.size if space.size < 1024 else math.inf
    raise _unsupported(space)


def enumerate_choices(space, limit: int = 100_000) -> list[dict]:
    """Every choice of ``space``, in a fixed order; refused past ``limit`` choices."""
    size = space_size(space)
    if size > limit:
        raise SearchError(
            f"multi-trial search: the space has {size} choices, more than limit={limit} "
            "to enumerate"
        )
    if isinstance(space, LayerChoiceSpace):
        out = []
        for parts in itertools.product(*[_group_options(g) for g in space.groups]):
            choice = {}
            for p in parts:
                choice.update(p)
            out.append(choice)
        return out
    out, seen = [], set()
    for bits in itertools.product([False, True], repeat=space.size):
        c = space.choice(space.repair(np.array(bits, bool), gen=np.random.default_rng(0)))
        key = space.encode(c)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out
