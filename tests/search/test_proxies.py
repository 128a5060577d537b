"""Zero-cost proxies against hand computations and their defining properties."""

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from supernet import compile
from supernet.cost import cost
from supernet.errors import SearchError, UnknownNameError
from supernet.search import proxies
from supernet.search.proxies import PROXIES, score, score_all
from supernet.spaces import create_space, space_example


def mlp(widths, bias=False, seed=0):
    torch.manual_seed(seed)
    layers = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b, bias=bias), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def xy(n=8, d=4, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ((torch.randn(n, d, generator=g),), {}, torch.randint(0, classes, (n,), generator=g))


def linears(net):
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def test_synflow_is_data_free_and_sign_free():
    net = mlp([4, 6, 5, 3])
    a = score("synflow", net, xy(seed=0))
    assert score("synflow", net, xy(seed=1)) == pytest.approx(a, rel=1e-12)
    with torch.no_grad():
        linears(net)[0].weight[::2].neg_()
        linears(net)[2].weight.neg_()
    assert score("synflow", net, xy()) == pytest.approx(a, rel=1e-12)
    assert score("synflow", net, None, input_shape=(4,)) == pytest.approx(a, rel=1e-12)


def test_synflow_conservation_law():
    # a bias-free ReLU network is homogeneous of degree 1 in each layer's weights, so every
    # layer's synaptic flow Σ θ ∂R/∂θ equals R: the score is L·R, linear in a layer's scale
    net = mlp([4, 6, 5, 3])
    w = [m.weight.detach().abs().double() for m in linears(net)]
    r = float((w[2] @ w[1] @ w[0] @ torch.ones(4, dtype=torch.float64)).sum())
    s = score("synflow", net, xy())
    assert s == pytest.approx(3 * r, rel=1e-10)
    with torch.no_grad():
        linears(net)[1].weight.mul_(2.5)
    assert score("synflow", net, xy()) == pytest.approx(2.5 * s, rel=1e-6)  # float32 scaling


def _hand_grads(net, batch, loss_fn=nn.functional.cross_entropy):
    (x,), _, y = batch
    ws = [m.weight for m in linears(net)]
    loss = loss_fn(net(x), y)
    return ws, torch.autograd.grad(loss, ws, create_graph=True)


def test_snip_and_grad_norm_by_hand():
    net, batch = mlp([4, 5, 3]), xy()
    ws, gs = _hand_grads(net, batch)
    assert score("snip", net, batch) == pytest.approx(
        sum(float((w * g).abs().sum().detach()) for w, g in zip(ws, gs)), rel=1e-6)
    assert score("grad_norm", net, batch) == pytest.approx(
        sum(float(g.norm().detach()) for g in gs), rel=1e-6)


def test_grasp_against_an_explicit_hessian():
    net, batch = mlp([3, 4, 2], seed=1), xy(d=3, classes=2)
    (x,), _, y = batch
    ws = [m.weight for m in linears(net)]
    shapes = [w.shape for w in ws]
    flat = torch.cat([w.detach().reshape(-1) for w in ws]).double()

    def loss_of(theta):
        parts, i = [], 0
        for s in shapes:
            parts.append(theta[i:i + math.prod(s)].reshape(s))
            i += math.prod(s)
        h = torch.relu(x.double() @ parts[0].T)
        return nn.functional.cross_entropy(h @ parts[1].T, y)

    g = torch.autograd.functional.jacobian(loss_of, flat)
    hess = torch.autograd.functional.hessian(loss_of, flat)
    want = float(-(flat * (hess @ g)).sum())
    assert score("grasp", net, batch) == pytest.approx(want, rel=1e-4, abs=1e-9)


def test_fisher_by_hand():
    net, batch = mlp([4, 5, 3]), xy()
    (x,), _, y = batch
    l1, l2 = linears(net)
    a1 = l1(x)
    a2 = l2(torch.relu(a1))
    g1, g2 = torch.autograd.grad(nn.functional.cross_entropy(a2, y), [a1, a2])
    want = sum(float(0.5 * (a * g).pow(2).mean(0).sum().detach())
               for a, g in ((a1, g1), (a2, g2)))
    assert score("fisher", net, batch) == pytest.approx(want, rel=1e-5)


def test_jacov_against_numpy():
    net, batch = mlp([4, 6, 3], seed=2), xy(n=6)
    (x,), _, _ = batch
    jac = np.stack([torch.autograd.functional.jacobian(lambda v: net(v).sum(), xi).numpy()
                    for xi in x]).astype(np.float64)
    lam = np.real(np.linalg.eig(np.corrcoef(jac))[0])
    want = -np.sum(np.log(lam + 1e-5) + 1.0 / (lam + 1e-5))
    assert score("jacov", net, batch) == pytest.approx(want, rel=1e-5)


def test_naswot_hand_computed_and_scale_invariant():
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(2))
    net = nn.Sequential(lin, nn.ReLU())
    x = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    # codes 11, 10, 00 over N_A = 2 ReLUs: K_H = [[2, 1, 0], [1, 2, 1], [0, 1, 2]], det 4
    assert score("naswot", net, ((x,), {}, None)) == pytest.approx(math.log(4.0))
    deep = mlp([4, 8, 8, 3])
    (x,), _, _ = xy(n=6)
    assert score("naswot", deep, ((3.7 * x,), {}, None)) == pytest.approx(
        score("naswot", deep, ((x,), {}, None)))


def test_naswot_reads_the_relu_units_of_a_unit_level_module():
    from supernet.units import mlp as unit_mlp

    net = compile(unit_mlp([4, 6, 5, 3], seed=0), seed=0)
    x = torch.randn(7, 4)
    with torch.no_grad():
        values = net.run((x,))
    codes = torch.cat([(values[n] > 0).double() for n in ("h1", "h2")], 1)  # relu nodes
    k = codes @ codes.T + (1 - codes) @ (1 - codes).T
    want = float(torch.linalg.slogdet(k)[1])
    assert score("naswot", net, ((x,), {}, None)) == pytest.approx(want)


def test_synflow_on_graph_data_reads_the_edges_not_the_features():
    g, ((x,), ctx, y) = _level_batch("gnn")
    net = compile(g)
    a = score("synflow", net, ((x,), ctx, y))
    assert score("synflow", net, ((torch.randn_like(x),), ctx, None)) == pytest.approx(a)
    fewer = {"edge_index": ctx["edge_index"][:, ::2]}
    assert score("synflow", net, ((x,), fewer, None)) != pytest.approx(a)


def test_zico_hand_computed():
    net = nn.Sequential(nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.fill_(0.5)
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.0, 1.0], [2.0, 2.0]])

    def summed(out, target):
        return out.sum()

    # dL/dw per half is its samples' sum: [4, 1] and [2, 3]; mean|g| [3, 2], std [1, 1]
    value = score("zico", net, ((x,), {}, torch.zeros(4)), loss_fn=summed)
    assert value == pytest.approx(math.log(3 / 1 + 2 / 1))


def test_meco_min_eigenvalue_against_numpy():
    torch.manual_seed(0)
    c1, c2 = nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.Conv2d(3, 4, 3, padding=1)
    net = nn.Sequential(c1, nn.ReLU(), c2, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 2))
    x = torch.randn(3, 2, 5, 5)
    with torch.no_grad():
        f1 = c1(x)
        f2 = c2(torch.relu(f1))
    want = sum(np.linalg.eigvalsh(np.corrcoef(f[1].reshape(f.shape[1], -1).double().numpy()))[0]
               for f in (f1, f2))
    assert score("meco", net, ((x,), {}, None), sample=1) == pytest.approx(want, rel=1e-9)
    assert score_all(net, ((x,), {}, None), names=["meco"], meco={"sample": 1}) == {
        "meco": pytest.approx(want, rel=1e-9)}


def test_params_and_flops_are_the_cost_model():
    ex = space_example("channel_cnn")
    g = create_space("channel_cnn", **ex.kwargs)
    net = compile(g)
    total = cost(g).total
    assert score("params", net) == total.params
    assert score("flops", net) == total.macs
    g2 = create_space("nasbench201", C=4, N=1, num_classes=3)
    batch = ((torch.randn(2, 3, 8, 8),), {}, torch.tensor([0, 1]))
    assert score("flops", compile(g2), batch) == cost(g2, input_shape=[3, 8, 8]).total.macs


def test_a_proxy_leaves_the_module_as_it_was():
    g = create_space("nasbench201", C=4, N=1, num_classes=3)
    net = compile(g)
    net.eval()
    net.train(False)
    list(net.modules())[3].train()  # mixed modes survive
    frozen = next(net.parameters())
    frozen.requires_grad_(False)
    some = next(p for p in net.parameters() if p.requires_grad)
    some.grad = torch.full_like(some, 0.25)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]
    flags = [p.requires_grad for p in net.parameters()]
    dtypes = [p.dtype for p in net.parameters()]
    x = torch.randn(4, 3, 8, 8)
    score_all(net, ((x,), {}, torch.tensor([0, 1, 2, 0])))
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [m.training for m in net.modules()] == modes
    assert [p.requires_grad for p in net.parameters()] == flags
    assert [p.dtype for p in net.parameters()] == dtypes
    assert torch.equal(some.grad, torch.full_like(some, 0.25))
    assert all(p.grad is None for p in net.parameters() if p is not some)


def test_deterministic_and_leaves_the_global_generator():
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    batch = xy()
    torch.manual_seed(5)
    a = score("snip", net, batch, seed=3)
    drawn = torch.rand(1)
    torch.manual_seed(5)
    assert score("snip", net, batch, seed=3) == a
    assert torch.equal(torch.rand(1), drawn)
    assert score("snip", net, batch, seed=4) != a  # dropout draws from the seed


def _level_batch(name, n=6):
    ex = space_example(name)
    g = create_space(name, **ex.kwargs)
    (x,), ctx = ex.inputs(g)
    if not ctx:
        x = torch.randn(n, *x.shape[1:])
    y = torch.randint(0, ex.kwargs["num_classes"], (x.shape[0],))
    return g, ((x,), ctx, y)


@pytest.mark.parametrize("space", ["nasbench201", "channel_cnn", "neuron_mlp", "gnn"])
def test_every_level(space):
    g, batch = _level_batch(space)
    net = compile(g)
    names = [n for n in PROXIES.list() if not (space == "neuron_mlp" and n == "meco")
             and not (space == "gnn" and n in ("params", "flops"))]
    values = score_all(net, batch, names=names)
    assert set(values) == set(names)
    for n in ("synflow", "grad_norm", "snip", "fisher", "zico"):
        assert values[n] > 0 and math.isfinite(values[n]), (n, values[n])
    assert math.isfinite(values["grasp"]) and not math.isnan(values["naswot"])
    if space == "neuron_mlp":
        with pytest.raises(SearchError, match="meco.*positions"):
            score("meco", net, batch)


def test_bad_input_is_named():
    net, batch = mlp([4, 5, 3]), xy()
    with pytest.raises(UnknownNameError, match="did you mean 'snip'"):
        score("snp", net, batch)
    with pytest.raises(SearchError, match="'grasp' needs a batch"):
        score("grasp", net)
    with pytest.raises(SearchError, match="'snip' takes the gradient of a loss"):
        score("snip", net, ((batch[0][0],), {}, None))
    with pytest.raises(SearchError, match="'naswot'.*no ReLU"):
        score("naswot", nn.Sequential(nn.Linear(4, 3)), batch)
    with pytest.raises(SearchError, match="'synflow'.*no weight layer"):
        score("synflow", nn.Sequential(), batch)
    with pytest.raises(SearchError, match="'params'.*compiled module"):
        score("params", net, batch)
    with pytest.raises(SearchError, match="'meco': unknown option.*sample"):
        score("meco", net, batch, samples=2)
    with pytest.raises(SearchError, match="'zico'.*cannot be split"):
        score("zico", net, xy(n=3))
    assert proxies.weight_layers(nn.Sequential()) == []


def test_the_users_page_runs():
    """docs/proxies.md: its python blocks, in order, in one namespace."""
    import builtins
    import pathlib
    import re

    page = pathlib.Path(__file__).resolve().parents[2] / "docs" / "proxies.md"
    blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.DOTALL | re.MULTILINE)
    assert len(blocks) >= 3
    namespace = {"__name__": "docs_proxies"}
    for k, block in enumerate(blocks):
        exec(builtins.compile(block, f"proxies.md[block {k}]", "exec"), namespace)
    assert "weight_l2" not in PROXIES
