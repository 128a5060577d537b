"""DrNAS (Chen et al., ICLR 2021) as the authors' code defines it: mixing weights sampled
from ``Dir(ELU(α) + 1)`` with the pathwise gradient, the KL to the uniform prior."""

import math

import pytest
import torch
from data_helpers import toy
from search_graphs import data, small_config

import supernet
from supernet.errors import ConfigError, SearchError
from supernet.search import BilevelSearch, create_strategy
from supernet.search.relaxations import RELAXATIONS, DirichletGates, set_phase, use_relaxation

ALPHA = torch.tensor([[0.5, -0.3, 1.2], [-1.5, 0.0, 0.4]], dtype=torch.float64)


def _beta(alpha):
    return torch.where(alpha > 0, alpha + 1, alpha.exp())  # ELU(α) + 1, written out


def test_the_concentration_is_elu_plus_one():
    assert torch.allclose(DirichletGates.concentration(ALPHA), _beta(ALPHA))


def test_the_samples_mean_converges_to_the_dirichlet_mean():
    relax = DirichletGates()
    w = torch.stack([relax.decide("e", ALPHA).weights for _ in range(4000)])
    assert torch.allclose(w.sum(-1), torch.ones(4000, 2, dtype=w.dtype))
    assert (w.std(0) > 0.05).all()  # a sample, not the mean
    beta = _beta(ALPHA)
    mean = beta / beta.sum(-1, keepdim=True)
    b0 = beta.sum(-1, keepdim=True)
    se = (mean * (1 - mean) / (b0 + 1) / 4000).sqrt()  # the Dirichlet variance of a mean
    assert ((w.mean(0) - mean).abs() < 4 * se).all()
    relax.set_phase("eval")
    assert torch.allclose(relax.decide("e", ALPHA).weights, mean)


def test_the_gradient_reaches_alpha_through_the_sample():
    # f(w) = Σ c_k w_k², E[w_k²] = β_k (β_k + 1) / (β0 (β0 + 1)): the pathwise gradient
    # averaged over samples is the gradient of the expected loss, which a softmax
    # (point estimate) does not give.
    c = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)

    def expected(alpha):
        beta = _beta(alpha)
        b0 = beta.sum(-1, keepdim=True)
        return (c * beta * (beta + 1) / (b0 * (b0 + 1))).sum()

    alpha = ALPHA.clone().requires_grad_(True)
    relax = DirichletGates()
    n = 20000
    batch = alpha.unsqueeze(0).expand(n, 2, 3).reshape(-1, 3)  # n samples of each row
    w = relax.decide("e", batch).weights
    ((c * w ** 2).sum() / n).backward()
    eps = 1e-5
    fd = torch.zeros_like(ALPHA)
    for i in range(2):
        for k in range(3):
            d = torch.zeros_like(ALPHA)
            d[i, k] = eps
            fd[i, k] = (expected(ALPHA + d) - expected(ALPHA - d)) / (2 * eps)
    assert torch.allclose(alpha.grad, fd, atol=0.02), (alpha.grad, fd)
    assert fd.abs().max() > 0.1


def test_the_kl_regularizer_is_the_closed_form_summed_over_gates():
    net = supernet.compile(toy(classes=2, ops=("conv_3x3", "conv_1x1", "dil_conv_3x3")))
    relax = DirichletGates(reg_scale=0.5)
    use_relaxation(net, relax)
    with torch.no_grad():
        net.arch["x->h"].copy_(torch.tensor([[0.7, -0.4, 0.1]]))

    def closed(beta):  # KL(Dir(β) || Dir(1)), by hand
        b0, k = sum(beta), len(beta)
        dig = lambda x: float(torch.digamma(torch.tensor(x, dtype=torch.float64)))
        return (math.lgamma(b0) - sum(math.lgamma(b) for b in beta) - math.lgamma(k)
                + sum((b - 1) * (dig(b) - dig(b0)) for b in beta))

    beta = [1.7, math.exp(-0.4), 1.1]
    assert float(relax.loss(net).detach()) == pytest.approx(0.5 * closed(beta), rel=1e-5)
    with torch.no_grad():
        net.arch["x->h"].zero_()  # β = 1: the prior itself
    assert float(relax.loss(net).detach()) == pytest.approx(0.0, abs=1e-6)
    l2 = DirichletGates(reg="l2", reg_scale=0.5)
    use_relaxation(net, l2)
    with torch.no_grad():
        net.arch["x->h"].copy_(torch.tensor([[0.7, -0.4, 0.1]]))
    assert float(l2.loss(net).detach()) == pytest.approx(0.25 * (0.49 + 0.16 + 0.01), rel=1e-5)
    assert DirichletGates(reg=None).loss(net) == 0.0


def test_each_forward_of_a_pass_draws_a_new_sample_and_eval_mixes_with_the_mean():
    net = supernet.compile(toy(classes=2))
    use_relaxation(net, DirichletGates())
    x = torch.randn(2, 3, 6, 6)
    for phase in ("weights", "arch"):
        set_phase(net, phase)
        assert not torch.equal(net(x), net(x))
    set_phase(net, "eval")
    assert torch.equal(net(x), net(x))
    set_phase(net, "arch")
    net(x).sum().backward()
    assert net.arch["x->h"].grad.abs().sum() > 0


def test_probabilities_rank_by_softmax_as_the_authors_or_by_the_mean():
    net = supernet.compile(toy(classes=2))
    with torch.no_grad():
        net.arch["x->h"].copy_(torch.tensor([[2.0, -1.0]]))
    use_relaxation(net, DirichletGates())
    assert torch.allclose(net.relaxation.probabilities(net)["x->h"],
                          torch.softmax(torch.tensor([[2.0, -1.0]]), -1))
    use_relaxation(net, DirichletGates(rank="mean"))
    beta = torch.tensor([3.0, math.exp(-1.0)])
    assert torch.allclose(net.relaxation.probabilities(net)["x->h"], beta / beta.sum())


@pytest.mark.parametrize("policy", ["zero", "split"])
def test_a_grown_candidate_keeps_the_dirichlet_mean(policy):
    relax = DirichletGates()
    alpha = torch.tensor([[0.3, -0.8, 1.1]])
    grown = relax.grow(alpha, policy, source=1, share=0.25)
    before, after = relax.mean(alpha)[0], relax.mean(grown)[0]
    frac = 0.5 if policy == "split" else 0.25
    assert torch.allclose(after[[0, 2]], before[[0, 2]], atol=1e-6)
    assert after[1] == pytest.approx(float(before[1]) * (1 - frac), abs=1e-6)
    assert after[3] == pytest.approx(float(before[1]) * frac, abs=1e-6)


@pytest.mark.parametrize("name", ["drnas", "darts"])
def test_a_search_runs_and_discretizes(name):
    strategy = create_strategy(name) if name == "drnas" else create_strategy(
        "darts", relaxation="dirichlet")
    assert isinstance(strategy.relaxation, DirichletGates)
    g = toy(classes=3, ops=("conv_3x3", "conv_1x1", "dil_conv_3x3"))
    s = BilevelSearch(g, data(n=16), strategy=strategy,
                      config=small_config(epochs=1, steps_per_epoch=2, batch_size=4))
    alpha = s.module.arch["x->h"].detach().clone()
    seen = []
    s.callbacks.append(lambda st, rec: seen.append(st.module.arch["x->h"].detach().clone()))
    result = s.run()
    assert not torch.equal(alpha, seen[0])  # α moved
    assert len(result.graph.edge("x", "h")["ops"]) == 1  # argmax kept one op
    assert not result.module.gates()


def test_the_strategy_has_the_authors_loop_settings():
    s = create_strategy("drnas")
    assert s.config == {"batch_size": 64, "w_lr": 0.1, "w_lr_min": 0.0, "arch_lr": 6e-4,
                        "arch_betas": (0.5, 0.999), "arch_weight_decay": 0.0}
    assert "dirichlet" in RELAXATIONS and s.relaxation.reg == "kl"
    assert s.relaxation.reg_scale == 1e-3


def test_bad_settings_fail_clearly():
    with pytest.raises(ConfigError, match="reg 'l1' is unknown"):
        create_strategy("drnas", reg="l1")
    with pytest.raises(ConfigError, match="reg_scale must be a number >= 0"):
        DirichletGates(reg_scale=-1.0)
    with pytest.raises(ConfigError, match="rank 'max' is unknown"):
        create_strategy("darts", relaxation={"name": "dirichlet", "rank": "max"})
    with pytest.raises(SearchError, match="gate 'e' are not finite"):
        DirichletGates().decide("e", torch.tensor([[0.0, float("nan")]]))
