"""SNAS (Xie et al., ICLR 2019) as the paper and the authors' code define it: single level,
their temperature schedule, the resource constraint."""

import pytest
import torch
from data_helpers import toy

import supernet
from supernet.errors import ConfigError
from supernet.search import BilevelSearch, create_strategy
from supernet.search.relaxations import SNASGumbel, set_phase, use_relaxation
from supernet.search.relaxations.gumbel import concrete_log_prob


def _toy(shape=True):
    g = toy(classes=2)  # x -> h: conv_3x3 | conv_1x1, conv_1x1 the cheaper op
    if shape:
        g.set_node_attrs("x", shape=[3, 8, 8])
    return g


class Counted(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        gen = torch.Generator().manual_seed(seed)
        self.x, self.y = torch.randn(n, 3, 8, 8, generator=gen), torch.randint(0, 2, (n,),
                                                                                 generator=gen)
        self.reads = 0

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        self.reads += 1
        return self.x[i], self.y[i]


@pytest.mark.parametrize("epoch", [0, 9, 74, 148, 149, 300])
def test_the_temperature_follows_the_authors_linear_schedule(epoch):
    relax = SNASGumbel()  # τ0 = 1, τ_min = 0.03, over 150 epochs whatever the run's length
    relax.on_epoch_start(epoch, 10)
    assert float(relax.tau) == pytest.approx(max(0.03, 1 - 0.97 * (epoch + 1) / 150), abs=1e-6)


def test_single_level_steps_weights_and_alpha_together_on_train_batches_only():
    train, val = Counted(16, 0), Counted(16, 1)
    seen = []  # α at each epoch end, before the final decision removes the gate
    s = BilevelSearch(_toy(), train, val, strategy="snas",
                      config={"epochs": 2, "batch_size": 4, "eval_batches": 0},
                      callbacks=[lambda st, rec: seen.append(st.module.arch["x->h"].detach().clone())])
    assert s.single_level
    train.reads = val.reads = 0  # the checks of the data before training read a batch each
    forwards, steps = [], {"w": 0, "a": 0}
    s.module.register_forward_hook(lambda *a: forwards.append(1))
    for name, opt in (("w", s.w_opt), ("a", s.a_opt)):
        opt.register_step_post_hook(lambda *a, name=name: steps.__setitem__(name, steps[name] + 1))
    alpha = s.module.arch["x->h"].detach().clone()
    result = s.run()
    assert val.reads == 0  # the validation split trains nothing
    assert train.reads == 2 * 16
    assert steps == {"w": 8, "a": 8} and len(forwards) == 8  # one forward per joint step
    assert [r["tau"] for r in result.history] == pytest.approx([1 - 0.97 / 150, 1 - 0.97 * 2 / 150])
    assert not torch.equal(alpha, seen[0]) and not torch.equal(seen[0], seen[1])  # α moved


def test_the_bilevel_variant_keeps_reading_the_validation_split():
    train, val = Counted(16, 0), Counted(16, 1)
    s = BilevelSearch(_toy(), train, val, strategy="gumbel_softmax_bilevel",
                      config={"epochs": 1, "batch_size": 4, "eval_batches": 0})
    val.reads = 0
    s.run()
    assert not s.single_level and val.reads == 16


def _penalty_grad(estimator, log_penalty, draws):
    torch.manual_seed(0)
    net = supernet.compile(_toy())
    relax = SNASGumbel(resource_weight=1.0, estimator=estimator, log_penalty=log_penalty)
    use_relaxation(net, relax)
    set_phase(net, "arch")
    alpha = net.arch["x->h"]
    total = torch.zeros_like(alpha)
    for _ in range(draws):
        relax(dict(net.arch.items()))  # one sample, as a forward pass draws it
        total += torch.autograd.grad(relax.loss(net), alpha)[0]
    return total / draws


@pytest.mark.parametrize("estimator,log_penalty,draws", [
    ("reparametrization", True, 1), ("reparametrization", False, 1), ("discrete", True, 1),
    ("policy_gradient", True, 2000)])
def test_the_resource_gradient_moves_alpha_towards_the_cheaper_op(estimator, log_penalty, draws):
    g = _penalty_grad(estimator, log_penalty, draws)[0]
    # descent raises conv_1x1 (index 1, fewer parameters and MACs) over conv_3x3
    assert g[1] < g[0], g


def test_the_policy_gradient_estimates_the_gradient_of_the_expected_cost():
    # two unbiased estimators of ∇_α E_z[C(z)]: the score function and the reparametrization
    pg = _penalty_grad("policy_gradient", False, 1500)[0, 0]
    rep = _penalty_grad("reparametrization", False, 1500)[0, 0]
    assert rep > 0 and float(pg) == pytest.approx(float(rep), rel=0.25)


def test_the_resource_term_is_the_log_cost_of_the_sample():
    net = supernet.compile(_toy())
    relax = SNASGumbel(resource_weight=0.5)
    use_relaxation(net, relax)
    z = relax(dict(net.arch.items()))["x->h"].weights[0]
    cost = relax.cost_table(net)["x->h"]  # rows: params, flops; columns: conv_3x3, conv_1x1
    assert cost.shape == (2, 2) and (cost[:, 0] > cost[:, 1]).all()
    r = (cost * z.detach().double()).sum(-1)
    assert float(relax.loss(net)) == pytest.approx(0.5 * float(torch.log(r).mean()), rel=1e-5)


def test_concrete_log_prob_is_a_density():
    # n = 2: z = (t, 1 - t), t = sigmoid(u); integrate the density over u (dt = t (1 - t) du)
    u = torch.linspace(-30, 30, 30001, dtype=torch.float64)
    t = torch.sigmoid(u)
    z = torch.stack([t, torch.sigmoid(-u)], -1)
    for alpha, tau in ((torch.tensor([0.3, -0.5]), 0.7), (torch.tensor([1.0, 0.0]), 2.0)):
        dens = concrete_log_prob(alpha.double().expand(len(t), 2), z, tau, eps=0).exp()
        assert float(torch.trapezoid(dens * t * (1 - t), u)) == pytest.approx(1.0, abs=1e-4)


def test_bad_settings_fail_before_training():
    with pytest.raises(ConfigError, match="estimator 'reinforce' is unknown"):
        create_strategy("snas", estimator="reinforce")
    with pytest.raises(ConfigError, match="resources"):
        create_strategy("snas", resources=["latency"])
    data = (torch.randn(8, 3, 8, 8), torch.randint(0, 2, (8,)))
    with pytest.raises(ConfigError, match="single level"):
        BilevelSearch(_toy(), data, strategy="snas", config={"second_order": True})
    with pytest.raises(ConfigError, match="shape"):  # the cost model needs the input size
        BilevelSearch(_toy(shape=False), data, strategy=create_strategy(
            "snas", resource_weight=1e-2), config={"epochs": 1, "batch_size": 4})
