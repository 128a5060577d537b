"""The hypergradient check of the DARTS second-order step: the exact hypergradient (double
backward through the virtual step) against a central finite difference of the validation
loss in α, and the warning when the finite-difference approximation is off."""

import warnings

import pytest
import torch
from search_graphs import chain, data, small_config
from torch.func import functional_call

from supernet import Graph, compile
from supernet.errors import ConfigError
from supernet.search import SearchConfig, search
from supernet.search.loop import SearchWarning
from supernet.search.unrolled import HypergradientCheck, exact_arch_grads, unrolled_arch_grads

ce = torch.nn.functional.cross_entropy
LR, MOM, WD = 0.1, 0.9, 3e-4


def _kinked():
    """ReLU - conv - BN, max-pooling and skip on one gate: piecewise smooth in w."""
    return chain(C=3, ops=("conv_3x3", "max_pool_3x3", "skip_connect"), n=1, classes=3)


def _smooth():
    """Linear maps and identities only: smooth in w and α."""
    g = Graph("layer", name="smooth")
    g.add_input("x", channels=3)
    prev = "x"
    for node, width, ops in (("h", 3, ["linear", "identity"]), ("y", 2, ["linear", "none"])):
        g.add_node(node, channels=width)
        g.add_edge(prev, node, ops)
        prev = node
    g.set_outputs(["y"])
    return g


def _setup(graph, shape, classes, seed=0):
    torch.manual_seed(seed)
    net = compile(graph).double()
    with torch.no_grad():
        for p in net.arch_parameters():
            p.normal_()
    xt, xv = torch.randn(8, *shape, dtype=torch.double), torch.randn(8, *shape, dtype=torch.double)
    yt, yv = torch.randint(0, classes, (8,)), torch.randint(0, classes, (8,))
    opt = torch.optim.SGD(net.weights(), lr=LR, momentum=MOM, weight_decay=WD)
    ce(net(xt), yt).backward()  # one real step: momentum buffers exist
    opt.step()
    opt.zero_grad()
    return net, (xt, yt), (xv, yv), opt


def test_exact_hypergradient_matches_a_central_difference_in_alpha():
    net, (xt, yt), (xv, yv), opt = _setup(_kinked(), (3, 6, 6), 3)
    exact = exact_arch_grads(net, lambda: ce(net(xt), yt), lambda: ce(net(xv), yv), opt, LR)

    params = dict(net.named_parameters())
    arch_names = [n for n in params if n.startswith("arch.")]
    names = [n for n, p in params.items()
             if not n.startswith("arch.") and any(p is w for w in net.weights())]
    w = [params[n].detach() for n in names]
    bufs = [opt.state[params[n]]["momentum_buffer"] for n in names]
    state = {k: v.clone() for k, v in net.state_dict().items()}

    def F(alpha):  # L_val(w'(alpha), alpha), w' = w - lr (mu m + grad_w L_train + wd w)
        net.load_state_dict(state)
        ws = [t.clone().requires_grad_() for t in w]
        al = dict(zip(arch_names, alpha))
        g = torch.autograd.grad(ce(functional_call(net, {**dict(zip(names, ws)), **al}, (xt,)),
                                   yt), ws)
        stepped = [t - LR * (MOM * b + gi + WD * t) for t, b, gi in zip(w, bufs, g)]
        with torch.no_grad():
            return float(ce(functional_call(net, {**dict(zip(names, stepped)), **al}, (xv,)), yv))

    alpha = [params[n].detach().clone() for n in arch_names]
    h = 1e-6
    for i, a in enumerate(alpha):
        fd = torch.zeros_like(a)
        for j in range(a.numel()):
            plus = [t.clone() for t in alpha]
            minus = [t.clone() for t in alpha]
            plus[i].view(-1)[j] += h
            minus[i].view(-1)[j] -= h
            fd.view(-1)[j] = (F(plus) - F(minus)) / (2 * h)
        assert torch.allclose(exact[i], fd, rtol=1e-5, atol=1e-8), (exact[i], fd)
    net.load_state_dict(state)


def _checked(graph, shape, classes, eps):
    net, (xt, yt), (xv, yv), opt = _setup(graph, shape, classes)
    check = HypergradientCheck()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            unrolled_arch_grads(net, lambda: ce(net(xt), yt), lambda: ce(net(xv), yv), opt, LR,
                                eps=eps, check=check)
    return check, [w for w in caught if issubclass(w.category, SearchWarning)]


def test_a_large_eps_is_caught_and_warned_once():
    check, caught = _checked(_kinked(), (3, 6, 6), 3, eps=30.0)
    assert len(check.records) == 2 and check.warned
    assert len(caught) == 1  # once, though both steps are off
    _, cos, rel = check.records[0]
    assert cos < 0.95 or rel > 0.2
    assert f"cosine {cos:.3f}" in str(caught[0].message)
    assert f"relative error {100 * rel:.0f}%" in str(caught[0].message)


def test_a_small_smooth_network_at_the_default_eps_does_not_warn():
    check, caught = _checked(_smooth(), (3,), 2, eps=0.01)
    assert not caught and not check.warned
    for _, cos, rel in check.records:
        assert cos > 0.9999 and rel < 1e-3


def test_every_n_steps_and_the_compare_figures():
    check = HypergradientCheck(every=3)
    assert [check.due() for _ in range(7)] == [True, False, False, True, False, False, True]
    cos, rel = HypergradientCheck.compare([torch.tensor([3.0, 4.0])], [torch.tensor([4.0, 3.0])])
    assert cos == pytest.approx(24 / 25) and rel == pytest.approx(2 ** 0.5 / 5)


def test_the_search_option_warns_once_and_is_validated():
    cfg = small_config(check_hypergradient=True, unroll_eps=30.0, steps_per_epoch=2)
    with pytest.warns(SearchWarning, match=r"finite-difference hypergradient.*cosine") as rec:
        search(chain(C=3, ops=("conv_3x3", "max_pool_3x3", "skip_connect"), n=1), data(),
               strategy="darts2", config=cfg)
    assert sum("finite-difference" in str(w.message) for w in rec) == 1
    with pytest.raises(ConfigError, match="check_hypergradient"):
        SearchConfig(check_hypergradient=-1).validate()
