"""NORTH*: a layer grows when the effective dimension of its activations is near its width,
by the gap, with the candidates that add most to it; redundant layers do not grow."""

import pytest
import torch
from unit_search_helpers import mini_state

from supernet.errors import ConfigError
from supernet.search.creation import NORTH
from supernet.search.creation.north import effective_dimension
from supernet.units import mlp


def _state(sizes, n=64, seed=0):
    g = mlp(sizes, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, sizes[0], generator=gen)
    return mini_state(g, (x, x[:, :3].argmax(1) % sizes[-1]), batch_size=n, epochs=5)


def test_effective_dimension_counts_directions_not_units():
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(64, 6, generator=gen)
    assert effective_dimension(h) == 6
    mixed = h[:, :2] @ torch.randn(2, 6, generator=gen)  # six units, two directions
    assert effective_dimension(mixed) == 2
    assert effective_dimension(torch.zeros(8, 3)) == 0
    assert effective_dimension(h, partial=True) == pytest.approx(
        6 + float(torch.linalg.svdvals(h.double() / 8).sum()))


def test_a_full_rank_layer_grows_and_a_redundant_one_does_not():
    state = _state([8, 6, 6, 3])
    net, g = state.module, state.graph
    with torch.no_grad():  # h2's six units read one direction of h1: rank-one activations
        w = net.block("h1", "h2").weight
        w.copy_(w[:1].abs().repeat(6, 1) * torch.arange(1.0, 7.0)[:, None])
        net.unit_params("h2").bias.zero_()
    x = state.train_batches().__next__()[0][0]
    with torch.no_grad():
        before = net(x)
    policy = NORTH(gamma=0.9, candidates=5)
    record = policy.update(state)
    h1, h2 = record["nodes"]["h1"], record["nodes"]["h2"]
    assert (h1["efdim"], h1["threshold"], len(h1["added"])) == (6, 5, 1)
    assert (h2["efdim"], h2["added"]) == (1, [])
    assert len(g.node("h1")["units"]) == 7 and len(g.node("h2")["units"]) == 6
    with torch.no_grad():  # a new neuron starts with zero outgoing weights; to rounding:
        # the product's inner dimension grew, and some CPUs' GEMMs then sum in another order
        torch.testing.assert_close(net(x), before, rtol=0, atol=1e-6)
    assert state.editor.log.counts() == {"neuron_creation": 1, "neuron_removal": 1}


def test_growth_is_the_gap_above_the_threshold_and_respects_the_cap():
    state = _state([8, 20, 3], n=128)
    policy = NORTH(gamma=0.7, candidates=4)
    record = policy.update(state)["nodes"]["h1"]
    assert record["threshold"] == 14
    assert len(record["added"]) == record["efdim"] - 14 > 0
    capped = NORTH(gamma=0.5, candidates=2, max_width=22)
    state2 = _state([8, 20, 3], n=128)
    assert len(capped.update(state2)["nodes"]["h1"]["added"]) == 2


def test_the_kept_candidates_are_the_most_orthogonal():
    state = _state([8, 6, 3])
    policy = NORTH(gamma=0.5, candidates=6)
    g = state.graph
    old = g.node("h1")["units"].copy()
    kept = policy.update(state)["nodes"]["h1"]["added"]
    acts = policy.activations(state, 0)["h1"]
    units = g.node("h1")["units"].tolist()
    base = acts[:, [units.index(u) for u in old]]
    scores = {u: effective_dimension(torch.cat([base, acts[:, [units.index(u)]]], 1),
                                     partial=True) for u in kept}
    # the removed candidates are gone; redraw them to compare (same seeds: same weights)
    log = state.editor.log
    dropped = log[1].units["h1"]
    assert len(kept) + len(dropped) == len(kept) + 6
    state2 = _state([8, 6, 3])
    state2.editor.apply(log[0])
    acts2 = policy.activations(state2, 0)["h1"]
    units2 = state2.graph.node("h1")["units"].tolist()
    all_scores = {u: effective_dimension(torch.cat([base, acts2[:, [units2.index(u)]]], 1),
                                         partial=True) for u in kept + list(dropped)}
    assert all(scores[u] == pytest.approx(all_scores[u]) for u in kept)
    assert min(all_scores[u] for u in kept) >= max(all_scores[u] for u in dropped)


def test_bad_settings_fail_before_training():
    state = _state([8, 6, 3])
    with pytest.raises(ConfigError, match="max_width 4 of node 'h1' is below its current "
                                          "width 6; give a max_width >= 6"):
        NORTH(max_width=4).on_search_start(state)
    with pytest.raises(ConfigError, match=r"end=\[9\] is outside the search: give epochs in "
                                          r"1\.\.4"):
        NORTH(end=9).on_search_start(state)
    with pytest.raises(ConfigError, match=r"nodes entry 'y' is not a hidden group.*\['h1'\]"):
        NORTH(nodes=["y"]).on_search_start(state)
    with pytest.raises(ConfigError, match=r"gamma must be in \(0, 1\)"):
        NORTH(gamma=1.5)
