"""SDARTS: the weight step's mixing weights perturbed in the ε-ball (RS: uniform draws,
ADV: a PGD attack), the architecture step and α left alone."""

import pytest
import torch
from search_graphs import chain, data, small_config

from supernet.errors import ConfigError
from supernet.search import BilevelSearch, create_strategy
from supernet.search.stabilizers import SDARTS, Stabilizer, clip_rows


class Seen(Stabilizer):
    """Records the mixing weights every pass mixes with, after the stabilizers before it."""

    def __init__(self):
        super().__init__()
        self.passes = []

    def decisions(self, module, decisions, phase):
        clean = {k: torch.softmax(module.arch[k].detach(), -1) for k in decisions}
        self.passes.append((phase, {k: d.weights.detach().clone() for k, d in decisions.items()},
                            clean))
        return decisions


def _search(name, seen=None, **config):
    strategy = create_strategy(name)
    if seen is not None:
        strategy.stabilizers.append(seen)
    return BilevelSearch(chain(), data(), strategy=strategy, discretization=None,
                         config=small_config(**config))


def test_clip_is_the_authors_projection():
    w = torch.tensor([[0.6, -0.1, 0.7], [-0.2, -0.3, -0.1]])
    torch.testing.assert_close(clip_rows(w), torch.tensor([[0.6 / 1.3, 0.0, 0.7 / 1.3],
                                                           [0.0, 0.0, 1.0]]))


def test_rs_draws_in_the_ball_every_weight_step_and_never_in_the_arch_step():
    seen = Seen()
    s = _search("sdarts_rs", seen, epochs=2, steps_per_epoch=2)
    sd = s.stabilizers.items[0]
    deltas = []
    orig = sd.before_weight_step

    def record(search, batch):
        orig(search, batch)
        deltas.append({k: d.clone() for k, d in sd.delta.items()})

    sd.before_weight_step = record
    s.run()
    assert len(deltas) == 4
    eps = [0.03] * 2 + [0.03 + 0.27 / 2] * 2  # ε_e = 0.03 + (0.3 - 0.03) e / E
    scaled = torch.cat([v.flatten() / e for d, e in zip(deltas, eps) for v in d.values()])
    assert scaled.abs().max() <= 1 + 1e-6  # in the ball of each epoch's ε
    assert scaled.max() > 0.8 and scaled.min() < -0.8  # drawn over the whole ball
    flat = [torch.cat([v.flatten() for v in d.values()]) for d in deltas]
    assert all(not torch.equal(a, b) for a, b in zip(flat, flat[1:]))  # redrawn each step
    weights = [p for p in seen.passes if p[0] == "weights"]
    arch = [p for p in seen.passes if p[0] == "arch"]
    assert len(weights) == 4 and len(arch) == 4
    for (_, w, clean), d in zip(weights, deltas):
        for k in w:  # the weight step mixes clip(softmax(α) + δ)
            torch.testing.assert_close(w[k], clip_rows(clean[k] + d[k]))
            assert not torch.allclose(w[k], clean[k])
    for _, w, clean in arch:  # the architecture step is not perturbed
        for k in w:
            torch.testing.assert_close(w[k], clean[k])


def _tiny():
    torch.manual_seed(0)
    s = _search("sdarts_adv", epochs=1)
    s.stabilizers.on_epoch_start(0, 1)
    sd = s.stabilizers.items[0]
    sd.eps.fill_(0.3)
    with torch.no_grad():  # an architecture away from uniform: the attack has room
        for a in s.module.arch_parameters():
            a.copy_(torch.tensor([[1.0, 0.5, -0.5, 0.0]]))
    batch = s.batch_fn(next(iter(s.train_loader)))
    return s, sd, batch


def _train_loss(s, sd, batch, perturbed):
    m = s.module
    m.eval()
    sd.perturbed = perturbed
    with torch.no_grad(), s.stabilizers.in_phase("weights"):
        out = float(s.loss_fn(m(*batch[0], **batch[1]), batch[2]))
    m.train()
    return out


def test_adv_raises_the_training_loss_above_clean_and_random_points_of_the_ball():
    s, sd, batch = _tiny()
    alphas = [a.detach().clone() for a in s.module.arch_parameters()]
    with s.stabilizers.in_phase("weights"):
        sd.before_weight_step(s, batch)
    adv, delta = dict(sd.perturbed), dict(sd.delta)
    assert all(torch.equal(a, b) for a, b in zip(alphas, s.module.arch_parameters()))
    assert all(a.grad is None for a in s.module.arch_parameters())
    clean = sd._clean(s.module)
    for k, d in delta.items():
        assert d.abs().max() <= 0.3 + 1e-6  # in the ball
        torch.testing.assert_close(adv[k], clip_rows(clean[k] + d))
    loss_adv = _train_loss(s, sd, batch, adv)
    loss_clean = _train_loss(s, sd, batch, clean)
    gen = torch.Generator().manual_seed(1)
    randoms = []
    for _ in range(10):
        rand = {k: clip_rows(a + (torch.rand(a.shape, generator=gen) * 0.6 - 0.3))
                for k, a in clean.items()}
        randoms.append(_train_loss(s, sd, batch, rand))
    assert loss_adv > loss_clean
    assert loss_adv > max(randoms)


def test_adv_keeps_the_clean_point_when_the_attack_ends_below_it():
    s, sd, batch = _tiny()
    real, calls = s.loss_fn, []

    def loss(out, y):  # the clean point's loss (the first call) made the highest
        calls.append(1)
        return real(out, y) + (100.0 if len(calls) == 1 else 0.0)

    s.loss_fn = loss
    with s.stabilizers.in_phase("weights"):
        sd.before_weight_step(s, batch)
    assert len(calls) == 1 + sd.steps + 1  # before, the steps, after
    assert all(torch.equal(d, torch.zeros_like(d)) for d in sd.delta.values())
    perturbed = dict(sd.perturbed)
    clean = sd._clean(s.module)
    assert all(torch.equal(perturbed[k], clip_rows(clean[k])) for k in clean)


def test_options_and_relaxations_are_checked():
    with pytest.raises(ConfigError, match=r"mode='pgd'; expected one of \['random', 'adv"):
        SDARTS(mode="pgd")
    with pytest.raises(ConfigError, match="epsilon=2"):
        SDARTS(epsilon=2)
    with pytest.raises(ConfigError, match="perturbs softmax mixing weights.*Sigmoid"):
        BilevelSearch(chain(), data(), config=small_config(),
                      strategy=create_strategy("fairdarts", stabilizers=["sdarts"]))
    s = create_strategy("sdarts_adv", steps=3).stabilizers[0]
    assert (s.mode, s.steps, s.epsilon) == ("adversarial", 3, 0.3)
