"""SET (Mocanu et al. 2018): removes the weights nearest zero on each side of zero, regrows
exactly as many at uniformly random absent positions, and keeps every block's count."""

import numpy as np
import pytest
import torch
from unit_search_helpers import mini_state, tiny_cnn, tiny_mlp, train_step

from supernet.errors import ConfigError, SearchError
from supernet.search import BilevelSearch
from supernet.search.creation import CREATIONS, SET
from supernet.search.discretize.units import grow
from supernet.search.scores import entry_weights
from supernet.units import mlp


def _data(n=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, generator=gen)
    return x, x[:, :3].argmax(1)


def _masks(graph):
    return {f"{u}->{v}": np.asarray(e["mask"].toarray(), bool)
            for u, v, e in graph.nx.edges(data=True)}


def _signed(state, key):
    """Signed weights as a dense (n_dst, n_src) array, NaN where no connection."""
    u, v = key.split("->")
    m = state.graph.edge(u, v)["mask"]
    out = np.full(m.shape, np.nan)
    rows, cols = m.nonzero()
    order = np.lexsort((cols, rows))
    w = entry_weights(state.module.block(u, v)).detach().reshape(len(rows))
    out[rows[order], cols[order]] = w.numpy()
    return out


def _state(seed=0, density=0.5):
    g = mlp([12, 16, 3], density=density, seed=seed)
    state = mini_state(g, _data(), seed=seed)
    for _ in range(3):
        train_step(state, _data(), arch=False)
    return state


def test_removes_the_weights_nearest_zero_on_each_side_and_regrows_as_many():
    state = _state()
    s = SET(zeta=0.3, seed=1)
    s.on_search_start(state)
    before, w = _masks(state.graph), {k: _signed(state, k) for k in _masks(state.graph)}
    removed = s.drop(state, s.fraction(1))
    mid = _masks(state.graph)
    grown = s.regrow(state, {k: p + n for k, (p, n) in removed.items()})
    after = _masks(state.graph)
    for k in before:
        gone, kept = before[k] & ~mid[k], mid[k]
        pos, neg = w[k] >= 0, w[k] < 0
        n_pos, n_neg = int((before[k] & pos).sum()), int((before[k] & neg).sum())
        assert removed[k] == (int(np.floor(0.3 * n_pos)), int(np.floor(0.3 * n_neg)))
        assert int((gone & pos).sum()) == removed[k][0] > 0
        assert int((gone & neg).sum()) == removed[k][1] > 0
        # the smallest positive and the largest (nearest zero) negative weights went
        assert w[k][gone & pos].max() <= w[k][kept & pos].min()
        assert w[k][gone & neg].min() >= w[k][kept & neg].max()
        assert grown[k] == sum(removed[k])
        assert after[k].sum() == before[k].sum()
        assert (after[k] & mid[k]).sum() == mid[k].sum()  # growth removes nothing


def test_regrowth_is_uniform_over_the_absent_positions():
    # One block at 50% density; many regrowth draws of 40 connections each: every absent
    # position is drawn about equally often, just removed ones included.
    state = _state(density=0.5)
    s = SET(zeta=0.3, seed=3, edges=[("x", "h1")])
    s.on_search_start(state)
    mask = _masks(state.graph)["x->h1"]
    absent = ~mask
    hits = np.zeros(mask.shape)
    for _ in range(300):
        for edit in grow(state.graph, {"x->h1": s.rng.random(mask.shape)}, 40):
            rows = np.searchsorted(state.graph.node("h1")["units"], edit.dst)
            cols = np.searchsorted(state.graph.node("x")["units"], edit.src)
            hits[rows, cols] += 1
    assert hits[mask].sum() == 0  # never on a present connection
    freq = hits[absent] / 300
    expected = 40 / absent.sum()
    assert abs(freq.mean() - expected) < 1e-9
    assert freq.std() < 0.25 * expected  # binomial spread, not a fixed ranking
    assert freq.min() > 0


def test_regrowth_positions_depend_on_the_seed_and_random_init_moves_the_outputs():
    grown = []
    for seed in (0, 1):
        state = _state()
        s = SET(zeta=0.3, seed=seed)
        s.on_search_start(state)
        state.epoch = 1
        mid_before = _masks(state.graph)
        s.update(state)
        grown.append({k: _masks(state.graph)[k] & ~mid_before[k] for k in mid_before})
    assert any((grown[0][k] != grown[1][k]).any() for k in grown[0])
    state = _state()
    s = SET(zeta=0.3, init="zero", seed=0)
    s.on_search_start(state)
    x = _data()[0][:8]
    state.module.eval()
    removed = s.drop(state, 0.3)
    with torch.no_grad():
        mid = state.module(x)
    s.regrow(state, {k: p + n for k, (p, n) in removed.items()})
    with torch.no_grad():  # zero-initialized growth leaves the outputs where they were
        assert torch.equal(state.module(x), mid)


@pytest.mark.filterwarnings("ignore::supernet.search.loop.SearchWarning")  # 8 steps: no learning
def test_in_a_search_every_epoch_but_the_last_evolves_at_constant_counts():
    g = tiny_mlp(gated="units")
    start = {k: int(m.sum()) for k, m in _masks(g).items()}
    s = CREATIONS.resolve("set")(zeta=0.2, seed=0)
    x = torch.randn(48, 8, generator=torch.Generator().manual_seed(0))
    search = BilevelSearch(g, (x, x[:, :3].argmax(1)), strategy="darts", creation=[s], discretization=None,
                           config={"epochs": 4, "batch_size": 16, "steps_per_epoch": 2})
    search.run()
    assert [r["epoch"] for r in s.history] == [1, 2, 3]
    assert {k: int(m.sum()) for k, m in _masks(g).items()} == start
    assert s.state_dict()["rng"] == s.rng.bit_generator.state
    restored = SET(seed=9)
    restored.load_state_dict(s.state_dict())
    assert restored.rng.random() == s.rng.random()


def test_cosine_decay_follows_rigl_and_bad_settings_are_refused():
    s = SET(zeta=0.4, decay="cosine", end=4)
    assert [round(s.fraction(t), 4) for t in (0, 2, 4)] == [0.4, 0.2, 0.0]
    for bad, match in (({"zeta": 1.0}, "zeta must be in"), ({"decay": "step"}, "decay is"),
                       ({"init": "split"}, "init is")):
        with pytest.raises(ConfigError, match=match):
            SET(**bad)
    cnn = tiny_cnn(gated=())
    state = mini_state(cnn, (torch.randn(4, 3, 8, 8), torch.zeros(4, dtype=torch.long)))
    with pytest.raises(SearchError, match="this graph is channel-level.*use RigL"):
        SET().on_search_start(state)
