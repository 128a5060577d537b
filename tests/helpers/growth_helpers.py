"""A small tanh MLP in double precision, one batch of data and a search state over them,
shared by the tests of the neuron-growth policies."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from supernet import compile
from supernet.edits import EditLog, Editor
from supernet.search import SearchState
from supernet.units import mlp


def grow_state(sizes=(5, 6, 4, 3), act="tanh", n=64, epochs=3, seed=0):
    """``(state, x, y)``: a double-precision MLP (second-order effects are ~1e-5 of the
    loss), its editor with an SGD optimizer, and one training batch."""
    g = mlp(list(sizes), act=act, seed=seed)
    net = compile(g, seed=seed).double()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, sizes[0], generator=gen, dtype=torch.float64)
    y = torch.randint(0, sizes[-1], (n,), generator=gen)
    opt = torch.optim.SGD(net.weights(), lr=0.1)
    state = SearchState(g, net, Editor(g, net, [opt], log=EditLog()), epoch=1, epochs=epochs,
                        train_batches=lambda: iter([((x,), {}, y)]), weight_optimizer=opt)
    return state, x, y


def loss(state, x, y) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(state.module(x), y))
