"""Optimal Brain Damage saliency against the Hessian computed by torch on a hand-written
network with the same weights."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from supernet import compile
from supernet.errors import SupernetError
from supernet.search import scores
from supernet.units import mlp


def _oracle(net, g, batch):
    """``h_kk w_k² / 2`` per mask entry, from torch.autograd.functional.hessian of a dense
    two-layer network written here."""
    x, y = batch
    w1 = net.block("x", "h1").effective().detach()
    w2 = net.block("h1", "y").effective().detach()
    b1, b2 = net.unit_params("h1").bias.detach(), net.unit_params("y").bias.detach()
    out = {}
    for key, w, make in (("x->h1", w1, lambda w: F.linear(torch.relu(F.linear(x, w, b1)), w2, b2)),
                         ("h1->y", w2, lambda w: F.linear(torch.relu(F.linear(x, w1, b1)), w, b2))):
        def loss(flat, make=make, w=w):
            return F.cross_entropy(make(flat.view_as(w)), y)

        h = torch.autograd.functional.hessian(loss, w.reshape(-1)).diagonal().view_as(w)
        s = (0.5 * h * w ** 2).numpy()
        u, v = key.split("->")
        mask = g.edge(u, v)["mask"]
        rows = np.repeat(np.arange(mask.shape[0]), np.diff(mask.indptr))
        out[key] = s[rows, mask.indices]
    return out


@pytest.mark.parametrize("kernel", ["dense", "sparse"])
def test_obd_is_half_the_hessian_diagonal_times_the_squared_weight(kernel):
    g = mlp([4, 5, 3], density=0.6, seed=1)
    torch.manual_seed(0)
    net = compile(g, kernel=kernel)
    batch = (torch.randn(6, 4), torch.randint(0, 3, (6,)))
    want = _oracle(net, g, batch)
    exact = scores.obd(net, batch, exact=True)
    for key in want:
        assert exact[key].shape == (g.edge(*key.split("->"))["mask"].nnz,)
        np.testing.assert_allclose(exact[key], want[key], rtol=1e-4, atol=1e-7)
    # Hutchinson's estimate converges to it as the samples grow
    total = sum(abs(w).sum() for w in want.values())

    def error(samples):
        est = scores.obd(net, batch, samples=samples, seed=3)
        return sum(abs(est[k] - want[k]).sum() for k in want) / total

    coarse, fine = error(32), error(2048)
    assert fine < 0.3 and fine < 0.5 * coarse, (coarse, fine)
    with pytest.raises(SupernetError, match="obd: samples must be >= 1"):
        scores.obd(net, batch, samples=0)
