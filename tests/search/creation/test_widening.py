"""The neuron-growth policies: registered by name, run in the search loop up to their target
width, and bad schedules, targets and nodes fail before training with the key and the
allowed values."""

import pytest
import torch
from growth_helpers import grow_state

from supernet.errors import ConfigError, SearchError
from supernet.search import BilevelSearch
from supernet.search.creation import CREATIONS
from supernet.units import mlp

POLICIES = [("splitting", {}), ("firefly", {"steps": 2}), ("gradmax", {})]


@pytest.mark.parametrize("name,opts", POLICIES)
def test_grows_in_the_search_loop_up_to_max_units(name, opts):
    g = mlp([5, 3, 3, 3], act="tanh", seed=0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(48, 5, generator=gen)
    policy = CREATIONS.resolve(name)(count=2, at=[1, 2], max_units={"h1": 6, "h2": 4},
                                     **opts)
    search = BilevelSearch(g, (x, x[:, :3].argmax(1)), strategy="darts", creation=[policy],
                           discretization=None,
                           config={"epochs": 3, "batch_size": 16, "arch_update": False})
    search.run()
    widths = {n: len(g.node(n)["units"]) for n in ("h1", "h2")}
    if name == "splitting":  # splits only where λ_min < 0: at most the target
        assert widths["h1"] <= 6 and widths["h2"] <= 4 and sum(widths.values()) > 6
    else:
        assert widths == {"h1": 6, "h2": 4}
    assert set(search.editor.log.counts()) == {"neuron_creation"}


@pytest.mark.parametrize("name,opts", POLICIES)
def test_bad_input_fails_before_training(name, opts):
    state, _, _ = grow_state(epochs=4)
    cls = CREATIONS.resolve(name)
    with pytest.raises(ConfigError, match=r"at=\[2, 4\] reaches past the search: growth happens "
                                          r"at the end of an epoch in 1..3"):
        cls(at=[2, 4], **opts).on_search_start(state)
    with pytest.raises(ConfigError, match="max_units for node 'h1' is 4, smaller than its 6 "
                                          "units; give an int >= 6"):
        cls(at=1, max_units={"h1": 4}, **opts).on_search_start(state)
    with pytest.raises(ConfigError, match=r"max_units names \['h9'\].*among \['h1', 'h2'\]"):
        cls(at=1, max_units={"h9": 4}, **opts).on_search_start(state)
    with pytest.raises(SearchError, match=r"node 'y' is an output.*hidden nodes: \['h1', 'h2'\]"):
        cls(at=1, nodes=["y"], **opts).on_search_start(state)
    with pytest.raises(SearchError, match="node 'x' is an input"):
        cls(at=1, nodes=["x"], **opts).on_search_start(state)
    with pytest.raises(ConfigError, match="count must be a positive int, got 0"):
        cls(count=0, at=1, **opts)
    with pytest.raises(ConfigError, match=r"give at="):
        cls(**opts)
