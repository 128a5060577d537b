"""NeST: the bridging gradient is the gradient of a direct connection, grown neurons wire
the pair of largest |B| and start as a descent direction, connection growth takes the
largest gradients, and the schedule grows then prunes to the stated size."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from unit_search_helpers import mini_state

from supernet import compile
from supernet.edits import AddConnections, Editor
from supernet.errors import ConfigError
from supernet.search import BilevelSearch
from supernet.search.creation import NeST
from supernet.search.creation.nest import bridging_gradient, connection_count
from supernet.search.scores import gradient
from supernet.units import mlp


def _data(n=48, features=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=gen)
    return x, x[:, :3].argmax(1)


def test_the_bridging_gradient_is_the_gradient_of_a_direct_block_at_zero():
    g = mlp([5, 4, 3], seed=0)
    net = compile(g, seed=0)
    batch = _data(features=5)
    b = bridging_gradient(net, batch, "x", "y")
    rows, cols = np.nonzero(np.ones((3, 5)))
    Editor(g, net).apply(AddConnections("x", "y", dst=rows, src=cols, init="zero",
                                        edge={"kind": "dense"}))
    direct = gradient(net, batch)["x->y"]  # |dL/dW| of the new zero block
    assert np.allclose(np.abs(b), direct, atol=1e-6)
    assert all(p.grad is None for p in net.parameters())  # parameter gradients untouched


def test_a_grown_neuron_wires_the_largest_pair_and_lowers_the_loss():
    x, y = _data()
    state = mini_state(mlp([8, 6, 4, 3], density=0.5, seed=0), (x, y), batch_size=48)
    net, g = state.module, state.graph
    with torch.no_grad():
        loss0 = float(F.cross_entropy(net(x), y))
    b = bridging_gradient(net, (x, y), "h1", "y")
    j, i = np.unravel_index(np.abs(b).argmax(), b.shape)
    policy = NeST(grow_at=1, connections=0.0, neurons=1, scale=0.1)
    new = policy.add_neurons(state, "h1", "h2", "y", b, 1)
    assert len(new) == 1
    col = list(g.node("h2")["units"]).index(new[0])
    w_in = net.block("h1", "h2").effective().detach()[col]
    w_out = net.block("h2", "y").effective().detach()[:, col]
    assert torch.nonzero(w_in).flatten().tolist() == [i] and w_in[i] > 0
    assert torch.nonzero(w_out).flatten().tolist() == [j]
    assert np.sign(float(w_out[j])) == -np.sign(b[j, i])
    with torch.no_grad():  # h1 >= 0 and w_in > 0: the path adds w_in w_out h1_i, against B
        assert float(F.cross_entropy(net(x), y)) < loss0


def test_connection_growth_adds_the_largest_missing_gradients():
    x, y = _data()
    state = mini_state(mlp([8, 6, 3], density=0.3, seed=0), (x, y), batch_size=48)
    g = state.graph
    before = {k: g.edge(*k.split("->"))["mask"].toarray() for k in ("x->h1", "h1->y")}
    grads = gradient(state.module, (x, y))
    NeST(grow_at=1, connections=0.5, neurons=0).grow(state)
    for k, m0 in before.items():
        m1 = g.edge(*k.split("->"))["mask"].toarray()
        new = m1 & ~m0
        assert new.sum() == int(np.ceil(0.5 * m0.sum()))
        rest = ~m1
        if rest.any():
            assert grads[k][new].min() >= grads[k][rest].max()


def test_grow_then_prune_to_the_stated_size_in_a_search_and_replay():
    g = mlp([8, 6, 6, 3], density=0.3, seed=0)
    start, seed_count = g.copy(), connection_count(g)
    policy = NeST(grow_at=[1, 2], prune_at=[3, 4], prune_to=30, connections=0.5, neurons=2)
    search = BilevelSearch(g, _data(), strategy="darts", creation=[policy],
                           discretization=None,
                           config={"epochs": 4, "batch_size": 8, "steps_per_epoch": 2,
                                   "arch_update": False})
    search.run()
    phases = [(r["epoch"], r["phase"]) for r in policy.history]
    assert phases == [(1, "grow"), (2, "grow"), (3, "prune"), (4, "prune")]
    grown = policy.history[1]["connections"]
    assert grown > seed_count and len(g.node("h1")["units"]) >= 6
    assert policy.history[-1]["target"] == 30
    # dead neurons leave with their weights: the pruning stops where that lands nearest
    assert abs(connection_count(g) - 30) <= 4
    assert set(search.editor.log.counts()) == {"synaptogenesis", "neuron_creation",
                                               "synaptic_pruning", "neuron_removal"}
    search.editor.log.replay(start)
    assert start.same_as(g)


def test_bad_schedules_and_targets_fail_before_training():
    state = mini_state(mlp([8, 6, 3], density=0.3, seed=0), _data(), epochs=4)
    now = connection_count(state.graph)
    with pytest.raises(ConfigError, match=f"grow_to=10 is not above the seed's {now} "
                                          f"connections; give grow_to > {now}"):
        NeST(grow_at=1, grow_to=10).on_search_start(state)
    with pytest.raises(ConfigError, match=r"grow_at=\[4\] is outside the search: give epochs "
                                          r"in 1\.\.3"):
        NeST(grow_at=[1, 4]).on_search_start(state)
    with pytest.raises(ConfigError, match=r"prune_at=\[7\] is outside the search: give epochs "
                                          r"in 1\.\.4"):
        NeST(grow_at=1, prune_at=7, prune_to=5).on_search_start(state)
    with pytest.raises(ConfigError, match=r"prune_at=\[2\] must come after the growth phase"):
        NeST(grow_at=[1, 3], prune_at=2, prune_to=5)
    with pytest.raises(ConfigError, match="prune_to must be a positive int"):
        NeST(grow_at=1, prune_at=2)
