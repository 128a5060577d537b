"""Each relaxation's defining property, on small compiled graphs."""

import math
import random

import pytest
import torch
from search_graphs import chain, darts_like

from supernet import Graph, compile
from supernet.edits import AddOp, Editor
from supernet.errors import ConfigError, SearchError
from supernet.gates import Softmax
from supernet.search.relaxations import (
    BinaryGates,
    GumbelMax,
    GumbelSoftmax,
    Sigmoid,
    UniformPath,
    binary_gate_grad,
    set_phase,
    use_relaxation,
    zero_one_loss,
)

OPS = ["conv_3x3", "conv_1x1", "skip_connect", "avg_pool_3x3"]


def one_edge(ops=OPS, C=4):
    g = Graph("layer", name="edge")
    g.add_input("x", channels=C)
    g.add_node("h", channels=C)
    g.add_edge("x", "h", list(ops))
    g.set_outputs(["h"])
    return g


def count_calls(module):
    """Forward calls per op of edge x->h."""
    calls = {}
    edge = module.edge_module("x", "h")
    for name in edge.names:
        calls[name] = 0

        def hook(mod, inp, out, name=name):
            calls[name] += 1

        edge[name].register_forward_hook(hook)
    return calls


def test_softmax_weights_sum_to_one_and_every_op_runs():
    net = compile(one_edge())
    with torch.no_grad():
        net.arch["x->h"].copy_(torch.tensor([[1.0, -2.0, 0.5, 3.0]]))
    d = Softmax().decide("x->h", net.arch["x->h"])
    assert torch.allclose(d.weights.sum(-1), torch.ones(1))
    calls = count_calls(net)
    x = torch.randn(2, 4, 6, 6)
    y = net(x)
    assert all(c == 1 for c in calls.values())
    edge = net.edge_module("x", "h")
    want = sum(w * edge[o](x) for w, o in zip(d.weights[0], edge.names))
    assert torch.allclose(y, want, atol=1e-6)


def test_sigmoid_weights_are_independent():
    relax = Sigmoid()
    a = torch.tensor([[0.3, -1.0, 2.0]])
    b = a.clone()
    b[0, 2] = -5.0  # changing one logit leaves the others' weights alone
    wa, wb = relax.decide("e", a).weights, relax.decide("e", b).weights
    assert torch.equal(wa[0, :2], wb[0, :2])
    assert wa.sum() != pytest.approx(1.0)
    assert torch.allclose(wa, torch.sigmoid(a))


def test_zero_one_loss_matches_its_definition():
    alphas = [torch.tensor([[0.0, 2.0]]), torch.tensor([[-1.0, 0.5, 3.0]])]
    flat = torch.tensor([0.0, 2.0, -1.0, 0.5, 3.0])
    want = -((torch.sigmoid(flat) - 0.5) ** 2).sum() / 5
    assert float(zero_one_loss(alphas)) == pytest.approx(float(want))
    net = compile(one_edge())
    use_relaxation(net, Sigmoid(w01=10.0))
    want = 10 * float(zero_one_loss([net.arch["x->h"].detach()]))
    assert float(net.relaxation.loss(net).detach()) == pytest.approx(want)


@pytest.mark.parametrize("init,source", [("split", "conv_3x3"), ("zero", None)])
def test_sigmoid_grow_keeps_outputs(init, source):
    ops = OPS if init == "split" else [*OPS, "none"]
    g = one_edge(ops)
    net = compile(g).eval()
    use_relaxation(net, Sigmoid())
    with torch.no_grad():
        net.arch["x->h"].copy_(torch.randn(1, len(ops)))
    x = torch.randn(2, 4, 6, 6)
    before = net(x)
    Editor(g, net).apply(AddOp("x", "h", "sep_conv_3x3" if init == "zero" else "conv",
                               init=init, source=source))
    assert len(net.arch["x->h"][0]) == len(ops) + 1
    assert torch.allclose(net(x), before, atol=1e-5)


def test_gumbel_softmax_samples_are_soft_random_and_follow_the_probabilities():
    relax = GumbelSoftmax(tau0=1.0, tau_min=0.33)
    alpha = torch.tensor([[1.0, 0.0, -1.0]])
    s1, s2 = relax.sample(alpha), relax.sample(alpha)
    assert torch.allclose(s1.sum(-1), torch.ones(1))
    assert not torch.equal(s1, s2)
    assert (s1 > 0).all() and (s1 < 1).all()  # relaxed, not one-hot
    # Gumbel-max: the argmax of a sample is distributed as softmax(alpha)
    torch.manual_seed(1)
    draws = torch.stack([relax.sample(alpha)[0].argmax() for _ in range(4000)])
    freq = torch.bincount(draws, minlength=3).float() / 4000
    assert torch.allclose(freq, torch.softmax(alpha, -1)[0], atol=0.03)
    relax.on_epoch_start(0, 5)
    assert float(relax.tau) == pytest.approx(1.0)
    relax.on_epoch_start(4, 5)
    assert float(relax.tau) == pytest.approx(0.33)
    relax.on_epoch_start(2, 5)
    assert float(relax.tau) == pytest.approx(math.sqrt(0.33), rel=1e-4)  # exponential


def test_gumbel_softmax_runs_every_op():
    net = compile(one_edge())
    use_relaxation(net, GumbelSoftmax())
    calls = count_calls(net)
    net(torch.randn(2, 4, 6, 6)).sum().backward()
    assert all(c == 1 for c in calls.values())
    assert (net.arch["x->h"].grad != 0).all()


def test_gdas_runs_one_op_per_edge_with_straight_through_gradient():
    net = compile(one_edge())
    use_relaxation(net, GumbelMax())
    calls = count_calls(net)
    x = torch.randn(2, 4, 6, 6)
    d = net.relaxation.decide("x->h", net.arch["x->h"])
    assert d.active is not None and len(d.active[0]) == 1
    assert d.weights[0].detach().tolist().count(1.0) == 1  # hard one-hot values
    y = net(x)
    assert sum(calls.values()) == 1
    chosen = [o for o, c in calls.items() if c == 1][0]
    y.pow(2).sum().backward()
    edge = net.edge_module("x", "h")
    for name in edge.names:
        for p in edge[name].parameters():
            if name == chosen:
                assert p.grad is not None
            else:
                assert p.grad is None, f"unsampled op {name} received a gradient"
    g = net.arch["x->h"].grad
    assert g is not None and g.abs().sum() > 0  # through the softmax, to every logit
    assert torch.allclose(y, edge[chosen](x), atol=1e-6)  # forward value is the op alone


def test_gdas_samples_follow_the_probabilities_and_tau_decays_linearly():
    relax = GumbelMax(tau_max=10.0, tau_min=0.1)
    relax.on_epoch_start(0, 3)
    assert float(relax.tau) == pytest.approx(10.0)
    relax.on_epoch_start(1, 3)
    assert float(relax.tau) == pytest.approx(5.05)
    relax.on_epoch_start(2, 3)
    assert float(relax.tau) == pytest.approx(0.1)
    alpha = torch.tensor([[0.5, 0.0, -0.5, 1.0]])
    picks = [relax.decide("e", alpha).active[0][0] for _ in range(4000)]
    freq = torch.bincount(torch.tensor(picks), minlength=4).float() / 4000
    assert torch.allclose(freq, torch.softmax(alpha, -1)[0], atol=0.03)
    relax.set_phase("eval")
    assert relax.decide("e", alpha).active == [[3]]


def test_proxyless_arch_step_runs_at_most_two_paths_and_gradient_matches_estimator():
    g = one_edge()
    net = compile(g)
    relax = BinaryGates()
    use_relaxation(net, relax)
    calls = count_calls(net)
    with torch.no_grad():
        net.arch["x->h"].copy_(torch.tensor([[0.2, -0.3, 0.1, 0.4]]))
    x = torch.randn(2, 4, 6, 6)
    target = torch.randn(2, 4, 6, 6)
    set_phase(net, "arch")
    torch.manual_seed(3)
    y = net(x)
    d = relax._pending[0]
    assert sum(calls.values()) == 1  # forward: the active op only
    loss = ((y - target) ** 2).sum()
    loss.backward()
    assert sum(calls.values()) == 2  # backward recomputes the inactive one, nothing else
    assert {o for o, c in calls.items() if c} == {net.gates()["x->h"][k] for k in d.involved}
    # by hand: dL/dg_m = <dL/dout, o_m(x)>, then the binarized softmax Jacobian
    edge = net.edge_module("x", "h")
    names = net.gates()["x->h"]
    with torch.no_grad():
        outs = [edge[names[k]](x) for k in d.involved]
        grad_out = 2 * (outs[d.pick] - target)
        gg = torch.stack([(o * grad_out).sum() for o in outs])
        p = torch.softmax(torch.tensor([0.2, -0.3, 0.1, 0.4])[d.involved], -1)
        want = torch.zeros(4)
        for a in range(2):
            for m in range(2):
                want[d.involved[a]] += gg[m] * p[m] * (float(a == m) - p[a])
    assert torch.allclose(net.arch["x->h"].grad[0], want, atol=1e-5)
    assert torch.allclose(binary_gate_grad(p, gg), want[d.involved], atol=1e-6)
    # architecture steps train the logits only: the op's weights get no gradient
    assert all(q.grad is None for q in edge[names[d.involved[d.pick]]].parameters())


def test_proxyless_passes_the_input_gradient_to_upstream_gates():
    g = Graph("layer", name="two")
    g.add_input("x", channels=4)
    g.add_node("a", channels=4)
    g.add_edge("x", "a", ["conv_3x3", "conv_1x1"])
    g.add_node("b", channels=4)
    g.add_edge("a", "b", ["conv_3x3", "conv_1x1", "skip_connect"])
    g.set_outputs(["b"])
    net = compile(g)
    use_relaxation(net, BinaryGates())
    set_phase(net, "arch")
    net(torch.randn(2, 4, 5, 5)).pow(2).sum().backward()
    assert net.arch["x->a"].grad.abs().sum() > 0 and net.arch["a->b"].grad.abs().sum() > 0


def test_proxyless_rescale_keeps_unsampled_mass_and_weight_phase_is_single_path():
    net = compile(one_edge())
    relax = BinaryGates()
    use_relaxation(net, relax)
    opt = torch.optim.Adam(net.arch_parameters(), lr=0.5)
    set_phase(net, "arch")
    net(torch.randn(2, 4, 6, 6)).pow(2).mean().backward()
    d = relax._pending[0]
    others = [k for k in range(4) if k not in d.involved]
    before = torch.softmax(net.arch["x->h"].detach(), -1)[0, others].sum()
    opt.step()
    relax.after_arch_step(net)
    after = torch.softmax(net.arch["x->h"].detach(), -1)[0, others].sum()
    assert float(after) == pytest.approx(float(before), rel=1e-5)
    set_phase(net, "weights")
    calls = count_calls(net)
    net(torch.randn(2, 4, 6, 6))
    assert sum(calls.values()) == 1


def test_proxyless_expected_cost_loss():
    net = compile(one_edge())
    costs = {"conv_3x3": 9.0, "conv_1x1": 1.0, "skip_connect": 0.0, "avg_pool_3x3": 0.5}
    relax = BinaryGates(cost=costs, cost_weight=2.0)
    use_relaxation(net, relax)
    p = torch.softmax(net.arch["x->h"].detach(), -1)[0]
    want = 2.0 * float((p * torch.tensor([9.0, 1.0, 0.0, 0.5])).sum())
    loss = relax.loss(net)
    assert float(loss.detach()) == pytest.approx(want, rel=1e-5)
    loss.backward()
    assert net.arch["x->h"].grad[0, 0] > 0  # the expensive op is pushed down
    relax2 = BinaryGates(cost=lambda m: {"x->h": [1, 2, 3, 4]}, cost_weight=1.0)
    use_relaxation(net, relax2)
    assert float(relax2.expected_cost(net).detach()) == pytest.approx(float((p * torch.arange(1., 5.)).sum()),
                                                             rel=1e-5)
    use_relaxation(net, BinaryGates(cost={"conv_3x3": 1.0}, cost_weight=1.0))
    with pytest.raises(ConfigError, match=r"no cost for op\(s\) \['conv_1x1'"):
        net.relaxation.loss(net)


def test_spos_samples_uniformly_and_respects_constraints():
    g = chain(n=2)
    net = compile(g)
    relax = UniformPath(seed=0)
    use_relaxation(net, relax)
    counts = torch.zeros(4)
    for _ in range(2000):
        d = relax(dict(net.arch.items()))["b0->b1"]
        counts[d.active[0][0]] += 1
    assert torch.allclose(counts / 2000, torch.full((4,), 0.25), atol=0.03)
    # under DARTS constraints: two inputs per node, 'none' never chosen
    g = darts_like()
    net = compile(g)
    relax = UniformPath(seed=1)
    use_relaxation(net, relax)
    choice = relax.space.sample(random.Random(0))
    for grp in relax.space.groups:
        kept = [choice[(grp.cell, e.u, grp.v)] for e in grp.edges]
        assert sum(k is not None for k in kept) == min(2, len(grp.edges))
        assert "none" not in kept
    calls = {}
    for name, mod in net.named_modules():
        if "cell0.cell.steps.n1.inputs" in name and name.count(".") == 7:
            calls[name] = 0
            mod.register_forward_hook(lambda m, i, o, name=name: calls.__setitem__(name, calls[name] + 1))
    net(torch.randn(2, 3, 8, 8))
    assert sum(calls.values()) == 3  # one op per edge (dropped edges run their zero op)


def test_proxyless_cost_loss_in_arch_steps_moves_only_the_two_sampled_logits():
    # As the reference: in an architecture step the expected cost is taken over the two
    # sampled candidates (softmax of their two logits), so with the strategy's Adam
    # (beta1 = 0, no decay) the unsampled logits stay put and keep their total mass.
    net = compile(one_edge())
    costs = {"conv_3x3": 9.0, "conv_1x1": 1.0, "skip_connect": 0.0, "avg_pool_3x3": 0.5}
    relax = BinaryGates(cost=costs, cost_weight=1.0)
    use_relaxation(net, relax)
    with torch.no_grad():
        net.arch["x->h"].copy_(torch.tensor([[0.3, -0.2, 0.1, 0.5]]))
    opt = torch.optim.Adam(net.arch_parameters(), lr=0.1, betas=(0.0, 0.999), weight_decay=0.0)
    set_phase(net, "arch")
    torch.manual_seed(0)
    y = net(torch.randn(2, 4, 6, 6))
    d = relax._pending[0]
    others = [k for k in range(4) if k not in d.involved]
    cost = relax.loss(net)
    p = torch.softmax(torch.tensor([0.3, -0.2, 0.1, 0.5])[d.involved], -1)
    want = float((p * torch.tensor([9.0, 1.0, 0.0, 0.5])[d.involved]).sum())
    assert float(cost.detach()) == pytest.approx(want, rel=1e-5)
    (y.pow(2).mean() + cost).backward()
    assert (net.arch["x->h"].grad[0, others] == 0).all()
    a0 = net.arch["x->h"].detach().clone()
    opt.step()
    relax.after_arch_step(net)
    a1 = net.arch["x->h"].detach()
    assert torch.equal(a1[0, others], a0[0, others])
    mass = [float(torch.softmax(a, -1)[0, others].sum()) for a in (a0, a1)]
    assert mass[1] == pytest.approx(mass[0], rel=1e-6)
    # outside an architecture step the loss is the expectation over every candidate
    set_phase(net, "weights")
    full = float((torch.softmax(a1, -1)[0] * torch.tensor([9.0, 1.0, 0.0, 0.5])).sum())
    assert float(relax.loss(net).detach()) == pytest.approx(full, rel=1e-5)


@pytest.mark.parametrize("relax", [Softmax, Sigmoid])
@pytest.mark.parametrize("init,ops,source", [("split", ["conv_1x1"], "conv_1x1"),
                                             ("zero", ["none"], None)])
def test_growing_an_ungated_edge_into_a_gate_keeps_outputs(relax, init, ops, source):
    # The single op of an edge without a gate has weight one; after the growth the two
    # candidates' weights under the relaxation must still add up to what it was.
    g = Graph("layer", name="grow")
    g.add_input("x", channels=4)
    g.add_node("h", channels=4)
    g.add_edge("x", "h", ["conv_3x3", "skip_connect"])
    g.add_node("y", channels=4)
    g.add_edge("h", "y", ops)
    g.set_outputs(["y"])
    net = compile(g).eval()
    use_relaxation(net, relax())
    x = torch.randn(2, 4, 6, 6)
    before = net(x)
    Editor(g, net).apply(AddOp("h", "y", "conv_3x3", init=init, source=source))
    assert net.gates()["h->y"] == [*ops, "conv_3x3"]
    assert torch.allclose(net(x), before, atol=1e-5)
    w = net.relaxation.decide("h->y", net.arch["h->y"].detach()).weights[0]
    if init == "split":
        assert float(w.sum()) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_gdas_refuses_non_finite_logits_instead_of_redrawing_forever(bad):
    with pytest.raises(SearchError, match=r"GDAS: the architecture logits of gate 'e' are not finite"):
        GumbelMax().decide("e", torch.tensor([[bad, 0.0, 1.0]]))
    net = compile(one_edge())
    use_relaxation(net, GumbelMax())
    with torch.no_grad():
        net.arch["x->h"][0, 1] = bad
    with pytest.raises(SearchError, match="x->h"):
        net(torch.randn(1, 4, 6, 6))
