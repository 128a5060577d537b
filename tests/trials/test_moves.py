import random

import numpy as np
import pytest

from supernet import compile
from supernet.errors import SearchError
from supernet.search.choices import choice_space
from supernet.search.discretize.units import set_gated
from supernet.trials import enumerate_choices, mutate_one, neighbours, space_size
from supernet.units import mlp


def _diff(a, b):
    return {k for k in a if a[k] != b[k]}


def test_layer_neighbours_change_one_decision(gnn2):
    space = choice_space(gnn2, compile(gnn2))
    everything = enumerate_choices(space)
    assert len(everything) == space_size(space) == 18
    keys = {space.encode(c) for c in everything}
    assert len(keys) == 18
    c = everything[5]
    near = neighbours(space, c)
    # node 1: 2 other ops; node 2: 2 other ops + 1 other input (op kept)
    assert len(near) == 5 and all(space.encode(n) in keys for n in near)
    for n in near:
        changed = _diff(c, n)
        assert len(changed) == 1 or (len(changed) == 2 and len({k[2] for k in changed}) == 1)
    # every choice is reachable from every other: the neighbour graph is connected
    seen, todo = {space.encode(c)}, [c]
    while todo:
        for n in neighbours(space, todo.pop()):
            if space.encode(n) not in seen:
                seen.add(space.encode(n))
                todo.append(n)
    assert seen == keys
    assert space.encode(mutate_one(space, c, random.Random(0))) in {space.encode(n) for n in near}


def test_unit_neighbours_flip_one_variable():
    g = mlp([3, 4, 2], seed=0)
    set_gated(g, units=["h1"])
    space = choice_space(g, compile(g))
    c = space.choice(np.zeros(space.size, bool))
    near = neighbours(space, c)
    assert len(near) == space.size == 4
    assert all(space.vector(n).sum() == 1 for n in near)
    assert len(enumerate_choices(space)) == 15  # every subset but the empty node


def test_enumeration_refuses_a_big_space(gnn2):
    space = choice_space(gnn2, compile(gnn2))
    with pytest.raises(SearchError, match="18 choices, more than limit=10"):
        enumerate_choices(space, limit=10)
