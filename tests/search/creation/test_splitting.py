"""Splitting steepest descent: the loss moves by ε²/2 λ_min per split, the split direction is
the minimum eigenvector (no other direction does better on the real network), ReLU is
refused."""

import pytest
import torch
import torch.nn.functional as F
from growth_helpers import grow_state, loss

from supernet.edits.units import AddUnits
from supernet.errors import SearchError
from supernet.search.creation.splitting import SplittingSteepestDescent, splitting_matrices
from supernet.search.creation.widening import dense_layer, write_units

EPS = 1e-2


def _split_along(state, layer, unit, direction):
    """Split ``unit`` into θ ± ε δ by hand, through the same edit."""
    res = state.editor.apply(AddUnits(layer.node, init="split", source=[unit]))
    copy = res.report["created"][layer.node]
    write_units(state.module, layer, [unit], incoming=EPS * direction[None], add=True)
    write_units(state.module, layer, copy, incoming=-EPS * direction[None], add=True)


def test_loss_change_is_half_eps_squared_lambda_min():
    state, x, y = grow_state()
    before = loss(state, x, y)
    ssd = SplittingSteepestDescent(count=2, at=1, nodes=["h1"], epsilon=EPS)
    ssd.on_epoch_end(state)
    r = ssd.grown[0]
    assert len(r["split"]) == 2 and len(state.graph.node("h1")["units"]) == 8
    lam = r["eigenvalues"]
    assert sorted(lam)[:2] == sorted(lam[i] for i in r["split"])  # the most negative
    predicted = EPS ** 2 / 2 * sum(lam[i] for i in r["split"])
    assert predicted < 0
    assert loss(state, x, y) - before == pytest.approx(predicted, rel=2e-2)
    # the two offspring differ by 2 ε v_min, each with half the outgoing weight
    w = state.module.block("x", "h1").weight.detach()
    b = state.module.unit_params("h1").bias.detach()
    for unit, copy, v in zip(r["split"], r["created"], r["directions"]):
        diff = torch.cat([w[unit] - w[copy], (b[unit] - b[copy])[None]])
        assert torch.allclose(diff, 2 * EPS * torch.tensor(v, dtype=diff.dtype), atol=1e-12)


def test_min_eigenvector_beats_other_directions_on_the_network():
    state, x, y = grow_state()
    layer = dense_layer(state.graph, "h1")
    s = splitting_matrices(state.module, layer, [(x, y)], F.cross_entropy)
    lam, vec = torch.linalg.eigh(s)
    unit = int(torch.argmin(lam[:, 0]))
    v = vec[unit, :, 0]
    assert torch.allclose(s[unit] @ v, lam[unit, 0] * v, atol=1e-10)
    base = loss(state, x, y)
    changes = []
    gen = torch.Generator().manual_seed(1)
    for k in range(4):
        st, _, _ = grow_state()
        d = v if k == 0 else torch.nn.functional.normalize(
            torch.randn(len(v), generator=gen, dtype=v.dtype), dim=0)
        _split_along(st, layer, unit, d)
        changes.append(loss(st, x, y) - base)
    assert changes[0] == pytest.approx(EPS ** 2 / 2 * float(lam[unit, 0]), rel=2e-2)
    assert all(c > changes[0] for c in changes[1:])


def test_relu_is_refused_with_the_reason():
    state, _, _ = grow_state(act="relu")
    with pytest.raises(SearchError, match="act='relu', whose second derivative is zero"):
        SplittingSteepestDescent(count=1, at=1).on_epoch_end(state)
