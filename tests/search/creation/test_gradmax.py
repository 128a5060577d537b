"""GradMax: the function is unchanged at growth, the new fan-in gradient has the closed-form
norm σ'(0)² c² Σ top s_i², larger than under a random fan-out of equal norm; activations
without σ(0) = 0 and σ'(0) != 0 are refused."""

import pytest
import torch
import torch.nn.functional as F
from growth_helpers import grow_state

from supernet.edits.units import AddUnits
from supernet.errors import ConfigError, SearchError
from supernet.search.creation.gradmax import GradMax, gradient_matrix, gradmax_fan_out
from supernet.search.creation.widening import dense_layer, write_units


def _new_fan_in_grad(state, x, y, created):
    net = state.module
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    pos = torch.as_tensor([list(state.graph.node("h1")["units"]).index(i) for i in created])
    return net.block("x", "h1").weight.grad[pos]


def test_function_unchanged_and_gradient_norm_is_the_closed_form():
    state, x, y = grow_state()
    with torch.no_grad():
        before = state.module(x)
    layer = dense_layer(state.graph, "h1")
    grad = gradient_matrix(state.module, layer, [(x, y)], F.cross_entropy)
    gm = GradMax(count=2, at=1, nodes=["h1"], scale=0.7)
    gm.on_epoch_end(state)
    r = gm.grown[0]
    with torch.no_grad():
        # zero fan-in, tanh(0) = 0; to rounding: the products' dimensions grew, and some
        # CPUs' GEMMs then sum in another order
        torch.testing.assert_close(state.module(x), before, rtol=0, atol=1e-12)
    g = _new_fan_in_grad(state, x, y, r["created"])
    s = torch.linalg.svdvals(grad)
    expected = 0.7 ** 2 * float((s[:2] ** 2).sum())  # tanh'(0) = 1
    assert float(g.pow(2).sum()) == pytest.approx(expected, rel=1e-8)
    assert r["gradient_norm2"] == pytest.approx(expected, rel=1e-8)
    # the fan-out is c times orthonormal columns: the top left singular vectors of G
    v = torch.cat([state.module.block("h1", "h2").weight.detach()[:, -2:]], 0)
    assert torch.allclose(v.T @ v, 0.49 * torch.eye(2, dtype=v.dtype), atol=1e-10)


def test_gradmax_beats_random_fan_out_of_equal_norm():
    state, x, y = grow_state()
    layer = dense_layer(state.graph, "h1")
    grad = gradient_matrix(state.module, layer, [(x, y)], F.cross_entropy)
    best = float((gradmax_fan_out(grad, 2, 1.0).T @ grad).pow(2).sum())
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        st, _, _ = grow_state()
        res = st.editor.apply(AddUnits("h1", count=2, init="zero"))
        created = res.report["created"]["h1"]
        v = torch.randn(4, 2, generator=gen, dtype=torch.float64)
        v = v / v.norm() * 2 ** 0.5  # the Frobenius norm of c U_2 with c = 1
        write_units(st.module, layer, created, incoming=torch.zeros(2, 6, dtype=v.dtype),
                    outgoing=v)
        random = float(_new_fan_in_grad(st, x, y, created).pow(2).sum())
        assert random < best


@pytest.mark.parametrize("act,why", [("relu", r"act'\(0\) = 0"), ("softplus", r"act\(0\) = 0.69")])
def test_activations_without_the_premises_are_refused_before_training(act, why):
    state, _, _ = grow_state(act=act)
    with pytest.raises(SearchError, match=f"node 'h1' has act='{act}' with {why}"):
        GradMax(count=1, at=1).on_search_start(state)


def test_more_units_than_orthogonal_fan_outs_is_refused_before_training():
    state, _, _ = grow_state()  # h2 feeds the 3 logits
    with pytest.raises(ConfigError, match=r"count=4 exceeds the 3 pre-activations node 'h2' "
                                          r"feeds \(consumers \['y'\]\).*count <= 3"):
        GradMax(count=4, at=1).on_search_start(state)
