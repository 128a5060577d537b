"""β-DARTS: the Beta-Decay term's gradient, its λ schedule, and its effect on a search."""

import math

import pytest
import torch
from search_graphs import chain, data, small_config

from supernet import compile
from supernet.errors import ConfigError
from supernet.gates import gate_probabilities
from supernet.search import BilevelSearch, create_strategy
from supernet.search.stabilizers import BetaDecay, beta_decay_loss


def test_the_gradient_is_lambda_softmax_over_the_number_of_edges():
    m = compile(chain(n=3))
    rows = [[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, -0.5, 3.0], [0.0, 0.2, 0.4, -2.0]]
    with torch.no_grad():
        for a, r in zip(m.arch_parameters(), rows):
            a.copy_(torch.tensor([r]))
    reg = BetaDecay(lam_max=8.0)
    reg.on_epoch_start(1, 4)  # λ = 8 * 1/4 = 2
    assert float(reg.lam) == 2.0
    reg.loss(m, "arch").backward()
    for a, r in zip(m.arch_parameters(), rows):
        z = sum(math.exp(v) for v in r)
        want = [2.0 * math.exp(v) / z / 3 for v in r]  # λ softmax(α) / |E|, |E| = 3 edges
        torch.testing.assert_close(a.grad, torch.tensor([want]))
    # the value: λ times the mean over the edges of log sum exp
    lse = [math.log(sum(math.exp(v) for v in r)) for r in rows]
    assert float(reg.loss(m, "arch")) == pytest.approx(2.0 * sum(lse) / 3)


def test_a_descent_step_pulls_the_softmax_weights_toward_uniform():
    alpha = torch.tensor([[2.0, 0.0, -1.0, 0.5]], requires_grad=True)
    before = torch.softmax(alpha, -1)
    beta_decay_loss([alpha]).backward()
    after = torch.softmax(alpha.detach() - 1.0 * alpha.grad, -1)
    assert after.var() < before.var()
    assert after.max() < before.max() and after.min() > before.min()


def test_the_schedule_is_linear_in_the_epochs():
    reg = BetaDecay()
    assert [reg.schedule(e, 50) for e in (0, 10, 25, 49)] == [0.0, 10.0, 25.0, 49.0]
    authors = BetaDecay(ramp_epochs=100)  # the authors' 0 + 50 * epoch / 100
    assert [authors.schedule(e, 50) for e in (0, 10, 49)] == [0.0, 5.0, 24.5]
    assert authors.schedule(150, 200) == 50.0  # held at lam_max after the ramp
    assert BetaDecay(lam_max=10, lam_min=2).schedule(5, 10) == 6.0
    with pytest.raises(ConfigError, match="lam_max=-1"):
        BetaDecay(lam_max=-1)
    with pytest.raises(ConfigError, match="ramp_epochs=0"):
        BetaDecay(ramp_epochs=0)


def _variance(search):
    p = gate_probabilities(search.module)
    return float(torch.stack([v.var(-1).mean() for v in p.values()]).mean())


def test_a_search_with_it_ends_with_more_uniform_weights_than_without():
    cfg = small_config(epochs=3, steps_per_epoch=4, arch_lr=0.05)
    variances, searches = {}, {}
    for name in ("darts", "beta_darts"):
        s = searches[name] = BilevelSearch(chain(), data(64), strategy=create_strategy(name),
                                           config=cfg, discretization=None)
        s.run()
        variances[name] = _variance(s)
    # about ten times lower on this problem; half is a margin no seed comes near
    assert variances["beta_darts"] < 0.5 * variances["darts"]
    assert float(searches["beta_darts"].stabilizers.items[0].lam) == pytest.approx(50.0 * 2 / 3)
