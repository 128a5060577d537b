"""Saliency scores checked against their definitions computed by hand."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from units_helpers import residual_cnn

from supernet import compile
from supernet.edits import Editor
from supernet.search import scores
from supernet.search.discretize.units import grow, prune
from supernet.units import mlp


@pytest.fixture(params=["dense", "sparse"])
def setup(request):
    g = mlp([6, 9, 4], density=0.5, seed=1)
    net = compile(g, seed=0, kernel=request.param)
    x, y = torch.randn(10, 6), torch.randint(0, 4, (10,))
    masks = {k: torch.from_numpy(g.edge(*k.split("->"))["mask"].toarray())
             for k in ("x->h1", "h1->y")}
    return g, net, (x, y), masks


def _manual(net, masks, batch):
    """Dense weights (zeros at missing synapses) as leaves, the loss, and h1."""
    x, y = batch
    w1 = net.block("x", "h1").effective().detach().clone().requires_grad_(True)
    w2 = net.block("h1", "y").effective().detach().clone().requires_grad_(True)
    h = torch.relu(F.linear(x, w1, net.unit_params("h1").bias.detach()))
    h.retain_grad()
    out = F.linear(h, w2, net.unit_params("y").bias.detach())
    loss = F.cross_entropy(out, y)
    loss.backward()
    return w1, w2, h


def test_magnitude(setup):
    g, net, batch, masks = setup
    s = scores.magnitude(net)
    w1 = net.block("x", "h1").effective().detach()
    assert np.allclose(s["x->h1"], w1[masks["x->h1"]].abs().numpy())
    units = scores.magnitude(net, "units")
    assert np.allclose(units["h1"], w1.abs().sum(1).numpy())


def test_snip_is_normalized_connection_sensitivity(setup):
    g, net, batch, masks = setup
    s = scores.snip(net, batch)
    w1, w2, _ = _manual(net, masks, batch)
    raw = [(w1 * w1.grad)[masks["x->h1"]].abs().detach(),
           (w2 * w2.grad)[masks["h1->y"]].abs().detach()]
    total = sum(float(r.sum()) for r in raw)
    assert np.allclose(s["x->h1"], raw[0].numpy() / total, atol=1e-7)
    assert np.allclose(s["h1->y"], raw[1].numpy() / total, atol=1e-7)


def test_taylor_is_the_first_order_unit_criterion(setup):
    g, net, batch, masks = setup
    s = scores.taylor(net, batch)
    _, _, h = _manual(net, masks, batch)
    theta = (h * h.grad).abs().mean(0)
    assert np.allclose(s["h1"], (theta / theta.norm()).detach().numpy(), atol=1e-6)
    assert s["y"].shape == (4,)


def test_gradient_covers_missing_connections(setup):
    g, net, batch, masks = setup
    s = scores.gradient(net, batch)
    w1, w2, _ = _manual(net, masks, batch)
    assert np.allclose(s["x->h1"], w1.grad.abs().numpy(), atol=1e-7)
    assert np.abs(s["x->h1"][~masks["x->h1"].numpy()]).sum() > 0


def test_channel_level_scores_are_per_kernel():
    g = residual_cnn()
    net = compile(g, seed=0)
    batch = (torch.randn(2, 3, 6, 6), torch.randint(0, 5, (2,)))
    mag = scores.magnitude(net)
    w = net.block("x", "s0").weight.detach()
    assert np.allclose(mag["x->s0"], w.abs().sum((2, 3)).reshape(-1).numpy())
    grad = scores.gradient(net, batch)
    assert grad["s0->c1"].shape == (8, 8)
    tay = scores.taylor(net, batch)
    assert tay["c2"].shape == (8,)


def test_a_rigl_step_keeps_each_layer_size(setup):
    g, net, batch, masks = setup
    n = g.edge("x", "h1")["mask"].nnz
    k = n // 4
    ed = Editor(g, net)
    drop = prune(g, {"x->h1": scores.magnitude(net)["x->h1"]}, k / n, scope="layer")
    regrow = grow(g, {"x->h1": scores.gradient(net, batch)["x->h1"]}, k)
    for edit in drop + regrow:
        ed.apply(edit)
    assert g.edge("x", "h1")["mask"].nnz == n
    assert int((net.block("x", "h1").effective() != 0).sum()) == n - k  # grown at zero
