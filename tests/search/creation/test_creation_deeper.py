"""GrowDeeper (Net2DeeperNet) in a search: identity groups inserted on schedule, in the log,
and bad schedules or insertion points refused before training."""

import pytest
import torch

from supernet.errors import ConfigError
from supernet.search import BilevelSearch
from supernet.search.creation import CREATIONS, GrowDeeper
from supernet.units import mlp


def _data(n=48, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=gen)
    return x, x[:, :3].argmax(1)


def _search(graph, policy, epochs=3):
    return BilevelSearch(graph, _data(), strategy="darts", creation=[policy],
                         discretization=None,
                         config={"epochs": epochs, "batch_size": 8, "steps_per_epoch": 2,
                                 "arch_update": False})


def test_two_growths_deepen_under_the_head_and_replay():
    g = mlp([8, 6, 3], seed=0)
    start = g.copy()
    policy = CREATIONS.resolve("grow_deeper")(at=[1, 2])
    search = _search(g, policy, epochs=4)
    search.run()
    assert [r["node"] for r in policy.grown] == ["h1_deep1", "h1_deep1_deep1"]
    assert all(r["exact"] for r in policy.grown)
    assert sorted(g.nx.edges) == [("h1", "h1_deep1"), ("h1_deep1", "h1_deep1_deep1"),
                                  ("h1_deep1_deep1", "y"), ("x", "h1")]
    assert [e.kind for e in search.editor.log] == ["insert_group"] * 2
    search.editor.log.replay(start)
    assert start.same_as(g)


def test_named_edges_follow_the_inserted_group():
    g = mlp([8, 6, 3], seed=0)
    policy = GrowDeeper(edges=[("x", "h1")], at=[1, 2], act="identity")
    _search(g, policy).run()
    assert sorted(g.nx.edges) == [("h1", "y"), ("x", "x_deep1"), ("x_deep1", "x_deep1_deep1"),
                                  ("x_deep1_deep1", "h1")]


def test_bad_schedule_and_insertion_points_fail_before_training():
    with pytest.raises(ConfigError, match=r"at=\[3\] is outside the search: give epochs in 1\.\.2"):
        _search(mlp([8, 6, 3], seed=0), GrowDeeper(at=3)).run()
    with pytest.raises(ConfigError, match=r"edges entry \('x', 'y'\) is not an ungated dense "
                                          r"edge.*allowed: \[\['x', 'h1'\], \['h1', 'y'\]\]"):
        _search(mlp([8, 6, 3], seed=0), GrowDeeper(edges=[("x", "y")], at=1)).run()
    with pytest.raises(ConfigError, match="edges are \\(u, v\\) pairs"):
        GrowDeeper(edges=["h1"], at=1)
    with pytest.raises(ConfigError, match=r"connect must be one of \['full', 'diagonal'\]"):
        GrowDeeper(at=1, connect="dense")
