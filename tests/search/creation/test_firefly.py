"""Firefly: the kept candidates are those of largest first-order gain |∂L/∂ε|, the loss of
the grown network moves by the predicted first-order change, and optimizing the directions
raises the gain."""

import pytest
from growth_helpers import grow_state, loss

from supernet.search.creation.firefly import Firefly


def test_keeps_the_largest_first_order_gains_and_the_loss_follows():
    state, x, y = grow_state()
    before = loss(state, x, y)
    ff = Firefly(count=3, at=1, nodes=["h1"], epsilon=1e-3, steps=10, candidates=6)
    ff.on_epoch_end(state)
    r = ff.grown[0]
    scores = [abs(s) for s in r["scores"]]
    assert len(scores) == 12  # 6 splits, 6 new units
    assert sorted(r["kept"]) == sorted(sorted(range(12), key=lambda i: -scores[i])[:3])
    assert len(state.graph.node("h1")["units"]) == 9 == 6 + r["splits"] + r["new"]
    assert r["predicted_change"] == pytest.approx(-1e-3 * sum(scores[i] for i in r["kept"]))
    assert loss(state, x, y) - before == pytest.approx(r["predicted_change"], rel=2e-2)


def test_optimizing_the_directions_raises_the_gain():
    gains = []
    for steps in (0, 20):
        state, _, _ = grow_state()
        ff = Firefly(count=3, at=1, nodes=["h1"], epsilon=0.05, steps=steps, seed=3)
        ff.on_epoch_end(state)
        r = ff.grown[0]
        gains.append(sum(abs(r["scores"][i]) for i in r["kept"]))
    assert gains[1] > gains[0]
