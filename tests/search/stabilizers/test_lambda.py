"""Λ-DARTS (Movahedi et al., ICLR 2023) as the authors' code defines it: the weight gradient
gets ``-λ ∇_w Λ``, ``Λ`` the mean pairwise cosine of the per-cell gradients of the shared
mixing weights, by a central finite difference of step ``ε₀ / ||v||``."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from data_helpers import toy
from search_graphs import darts_like, data, small_config
from unit_search_helpers import tiny_mlp

import supernet
from search_spaces import create_space
from supernet import Graph
from supernet.errors import ConfigError, SearchError
from supernet.search import BilevelSearch, create_strategy
from supernet.search.stabilizers import STABILIZERS
from supernet.search.stabilizers.lambda_ import (
    LambdaDARTS,
    correlation_direction,
    gradient_correlation,
)

CALLS = 3


def _smooth(calls=CALLS, dtype=torch.float64):
    """x -> c0 -> c1 -> c2 -> y, the cells sharing ``α`` (two gates) and owning their
    weights; linear ops only, so the loss is smooth in ``ζ`` and the weights."""
    t = Graph("layer", name="cell")
    t.add_input("i", channels=4)
    t.add_node("h", channels=4)
    t.add_node("o", channels=4)
    t.add_edge("i", "h", ["linear", "identity"])
    t.add_edge("h", "o", ["linear", "identity"])
    t.add_edge("i", "o", ["linear"])
    t.set_outputs(["o"])
    g = Graph("layer", name="smooth")
    g.add_input("x", channels=4)
    g.add_cell("c", t)
    prev = "x"
    for i in range(calls):
        g.add_call(f"c{i}", "c", [prev])
        prev = f"c{i}"
    g.add_node("y", channels=3)
    g.add_edge(prev, "y", "linear")
    g.set_outputs(["y"])
    torch.manual_seed(0)
    net = supernet.compile(g).to(dtype)
    with torch.no_grad():
        for a in net.arch.values():
            a.normal_()
    return net


def _batch(dtype=torch.float64):
    gen = torch.Generator().manual_seed(1)
    return torch.randn(6, 4, generator=gen, dtype=dtype), torch.randint(0, 3, (6,), generator=gen)


def _reference_loss(net, zetas, x, y):
    """The network written out by hand, cell ``l`` mixing with its own ``zetas[l]``
    (``{"i->h": (K,), "h->o": (K,)}``)."""
    def linear(i, u, w):  # cell i's linear op of edge u -> w
        return net.get_submodule(f"steps.c{i}.cell.steps.{w}.inputs.{u}.linear")

    v = x
    for i, z in enumerate(zetas):
        h = z["i->h"][0] * linear(i, "i", "h")(v) + z["i->h"][1] * v
        v = z["h->o"][0] * linear(i, "h", "o")(h) + z["h->o"][1] * h + linear(i, "i", "o")(v)
    return F.cross_entropy(net.get_submodule("steps.y.inputs.c2.linear")(v), y)


def _zetas(net, calls=CALLS, grad=True):
    p = {k.split(":")[1]: torch.softmax(a.detach(), -1)[0] for k, a in net.arch.items()}
    return [{k: v.clone().requires_grad_(grad) for k, v in p.items()} for _ in range(calls)]


def _search(net):
    return SimpleNamespace(module=net, loss_fn=F.cross_entropy)


def _run(net, x, y):
    return lambda gates: F.cross_entropy(net(x, gates=gates), y)


def test_the_cell_gradients_are_those_of_per_cell_copies_of_alpha():
    net, (x, y) = _smooth(), _batch()
    stab = LambdaDARTS()
    stab.attach(net)
    decisions = net.relaxation(dict(net.arch.items()))
    keys, grads = stab.cell_gradients(net, decisions, _run(net, x, y))["c"]
    assert keys == ["c:i->h", "c:h->o"] and len(grads) == CALLS
    zetas = _zetas(net)
    loss = _reference_loss(net, zetas, x, y)
    assert float(loss.detach()) == pytest.approx(float(F.cross_entropy(net(x), y).detach()),
                                                 rel=1e-12)
    ref = torch.autograd.grad(loss, [z[k] for z in zetas for k in ("i->h", "h->o")])
    for i in range(CALLS):
        assert torch.allclose(grads[i], torch.cat(ref[2 * i:2 * i + 2]), atol=1e-12)
    # their sum is the gradient of the shared ζ: back through the softmax, α's gradient
    F.cross_entropy(net(x), y).backward()
    for j, k in enumerate(keys):
        alpha = net.arch[k]
        total = sum(g[2 * j:2 * j + 2] for g in grads)
        p = torch.softmax(alpha.detach(), -1)[0]
        jac = torch.diag(p) - torch.outer(p, p)
        assert torch.allclose(jac @ total, alpha.grad[0], atol=1e-12)
    # the paper's quantity: the mean pairwise cosine
    cos = [F.cosine_similarity(grads[i], grads[j], dim=0)
           for i in range(3) for j in range(i + 1, 3)]
    assert float(gradient_correlation(grads)) == pytest.approx(float(sum(cos) / 3), rel=1e-12)


def test_the_direction_is_the_gradient_of_the_correlation():
    gen = torch.Generator().manual_seed(0)
    g = [torch.randn(7, generator=gen, dtype=torch.float64).requires_grad_() for _ in range(4)]
    exact = torch.autograd.grad(gradient_correlation(g), g)
    for a, b in zip(correlation_direction([x.detach() for x in g]), exact):
        assert torch.allclose(a, b, atol=1e-12)


def test_the_finite_difference_is_the_exact_gradient_of_the_regularizer():
    net, (x, y) = _smooth(), _batch()
    params = [p for n, p in net.named_parameters() if not n.startswith("arch")]
    assert len(params) == 2 * (3 * CALLS + 1)
    stab = LambdaDARTS(weight=0.5, epsilon=1e-5, ramp=False)
    stab.attach(net)
    # exact: Λ of the per-cell gradients, differentiated again w.r.t. the weights
    zetas = _zetas(net)
    leaves = [z[k] for z in zetas for k in ("i->h", "h->o")]
    g = torch.autograd.grad(_reference_loss(net, zetas, x, y), leaves, create_graph=True)
    per_cell = [torch.cat(g[2 * i:2 * i + 2]) for i in range(CALLS)]
    lam = gradient_correlation(per_cell)
    exact = torch.autograd.grad(lam, params)
    for p in params:
        p.grad = torch.zeros_like(p)
    stab.after_weight_backward(_search(net), params, ((x,), {}, y))
    assert stab.correlation == pytest.approx(float(lam), rel=1e-9)
    got = torch.cat([p.grad.reshape(-1) for p in params])
    want = -0.5 * torch.cat([e.reshape(-1) for e in exact])
    assert want.abs().max() > 1e-3
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-8)
    # the step it gives raises the cells' agreement
    with torch.no_grad():
        for p in params:
            p.sub_(0.5 * p.grad)
    zetas = _zetas(net)
    g = torch.autograd.grad(_reference_loss(net, zetas, x, y),
                            [z[k] for z in zetas for k in ("i->h", "h->o")])
    after = gradient_correlation([torch.cat(g[2 * i:2 * i + 2]) for i in range(CALLS)])
    assert float(after) > float(lam)


def test_lambda_ramps_linearly_from_zero_as_the_authors():
    stab = LambdaDARTS(weight=0.25)
    for e, want in ((0, 0.0), (5, 0.125), (10, 0.25)):
        stab.on_epoch_start(e, 11)
        assert float(stab.lam) == pytest.approx(want)
    assert float(LambdaDARTS(weight=0.25, ramp=False).lam) == 0.25
    assert STABILIZERS.resolve("lambda") is LambdaDARTS


def _searched(stabilizers, epochs=1):
    torch.manual_seed(0)
    s = BilevelSearch(darts_like(layers=4), data(n=16), strategy=create_strategy(
        "darts", stabilizers=stabilizers),
        config=small_config(epochs=epochs, steps_per_epoch=1, batch_size=4), discretization=None)
    s.run()
    return s.module.state_dict()


def test_lambda_zero_reproduces_darts_exactly_and_lambda_changes_the_weights():
    darts = _searched([])
    zero = _searched([{"name": "lambda", "weight": 0.0}])
    assert darts.keys() == zero.keys()
    assert all(torch.equal(darts[k], zero[k]) for k in darts)
    ramped = _searched([{"name": "lambda", "weight": 1.0}])  # λ_0 = 0: DARTS' first epoch
    assert all(torch.equal(darts[k], ramped[k]) for k in darts)
    on = _searched([{"name": "lambda", "weight": 1.0, "ramp": False}])
    changed = [k for k in darts if not torch.equal(darts[k], on[k])]
    assert any(k.endswith(".weight") for k in changed)  # the weight step's gradient changed


def test_the_named_strategy_searches_and_discretizes():
    g = create_space("darts", C=4, layers=3, steps=2, multiplier=2, num_classes=3)
    s = BilevelSearch(g, data(n=16), strategy="lambda_darts",  # the reduce cell is called twice
                      config=small_config(epochs=2, steps_per_epoch=1, batch_size=4))
    stab = s.stabilizers.items[0]
    assert isinstance(stab, LambdaDARTS) and stab.weight == 0.125 and stab.epsilon == 1e-4
    result = s.run()
    assert float(stab.lam) == 0.125 and -1.0 <= stab.correlation <= 1.0
    assert not result.module.gates()


def test_bad_settings_fail_before_training():
    with pytest.raises(ConfigError, match="weight must be a number >= 0"):
        create_strategy("darts", stabilizers=[{"name": "lambda", "weight": -1}])
    with pytest.raises(ConfigError, match="epsilon must be a number > 0"):
        LambdaDARTS(epsilon=0.0)
    with pytest.raises(ConfigError, match=r"cells \['normall'\] are no gated cell template .*"
                                          r"known: \['normal', 'reduce'\]"):
        BilevelSearch(darts_like(layers=4), data(n=8),
                      strategy=create_strategy("lambda_darts", cells=["normall"]),
                      config=small_config())
    with pytest.raises(ConfigError, match="toy has no gated cell template that more than one"):
        LambdaDARTS().attach(supernet.compile(toy()))  # one gate, in no cell
    with pytest.raises(ConfigError, match=r"calls: \{'normal': 1, 'reduce': 1\}"):
        LambdaDARTS().attach(supernet.compile(darts_like(layers=2)))
    with pytest.raises(SearchError, match="layer-level"):
        LambdaDARTS().attach(supernet.compile(tiny_mlp()))


def test_a_single_level_step_gets_the_term_too():
    x, y = _batch(torch.float32)

    def searched(stabilizers):
        net = _smooth(dtype=torch.float32)
        s = BilevelSearch(net.graph, (x, y), module=net, discretization=None,
                          strategy=create_strategy("snas", stabilizers=stabilizers),
                          config=small_config(epochs=1, steps_per_epoch=1, batch_size=6))
        s.run()
        return s.module.state_dict()

    snas = searched([])
    on = searched([{"name": "lambda", "weight": 1.0, "ramp": False}])
    assert any(not torch.equal(snas[k], on[k]) for k in snas if k.endswith(".weight"))
