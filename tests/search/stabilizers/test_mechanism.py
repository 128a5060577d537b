"""The stabilizer part of a strategy: hooks called in their phases, losses, decisions,
gradients, checkpoints, and the errors of a bad configuration."""

import pytest
import torch
from search_graphs import chain, data, small_config

from supernet.config import RunConfig
from supernet.errors import ConfigError, SearchError, UnknownNameError
from supernet.run import make_strategy
from supernet.search import BilevelSearch, create_strategy
from supernet.search.stabilizers import STABILIZERS, Stabilizer, StabilizerSet, with_weights


class Recorder(Stabilizer):
    """Records what the loop calls; counts its calls in a buffer (checkpointed)."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.calls = []
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def on_epoch_start(self, epoch, epochs):
        self.calls.append(("epoch", epoch, epochs))

    def decisions(self, module, decisions, phase):
        self.calls.append(("decisions", phase))
        return decisions

    def before_weight_step(self, search, batch):
        self.calls.append(("before_weight_step", search.stabilizers.phase))
        self.steps += 1

    def loss(self, module, phase):
        self.calls.append(("loss", phase))
        return 0.0

    def after_arch_backward(self, search, arch, batch):
        self.calls.append(("after_arch_backward", search.stabilizers.phase, len(batch)))


def _search(stabilizers, **config):
    return BilevelSearch(chain(), data(), config=small_config(**config), discretization=None,
                         strategy=create_strategy("darts", stabilizers=stabilizers))


def test_hooks_are_called_in_their_phases_and_never_outside_the_loop():
    rec = Recorder()
    s = _search([rec], epochs=2, steps_per_epoch=1, eval_batches=1)
    s.run()
    kinds = [c for c in rec.calls if c[0] != "decisions"]
    assert kinds == [("epoch", 0, 2), ("loss", "arch"), ("after_arch_backward", "arch", 3),
                     ("before_weight_step", "weights"),
                     ("epoch", 1, 2), ("loss", "arch"), ("after_arch_backward", "arch", 3),
                     ("before_weight_step", "weights")]
    phases = {c[1] for c in rec.calls if c[0] == "decisions"}
    assert phases == {"arch", "weights", "eval"}
    n = len(rec.calls)
    s.module(data()[0][:2])  # outside a step: no phase, the relaxation decides alone
    assert len(rec.calls) == n and s.stabilizers.phase is None


def test_single_level_calls_the_joint_phase():
    rec = Recorder()
    s = BilevelSearch(chain(), data(), config=small_config(steps_per_epoch=1),
                      discretization=None, strategy=create_strategy("snas", stabilizers=[rec]))
    s.run()
    assert ("loss", "joint") in rec.calls and ("after_arch_backward", "joint", 3) in rec.calls
    assert {c[1] for c in rec.calls if c[0] == "decisions"} == {"joint"}


class Scale(Stabilizer):
    """Multiplies the weights of every decision of the weight step by ``factor``."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def decisions(self, module, decisions, phase):
        if phase != "weights":
            return decisions
        return {k: with_weights(d, d.weights * self.factor) for k, d in decisions.items()}


def test_decisions_change_the_mixing_weights_of_their_phase_only():
    s = _search([Scale(0.0)])
    m, x = s.module, data()[0][:4]
    m.eval()
    plain = m(x)
    with s.stabilizers.in_phase("weights"):
        zeroed = m(x)
    with s.stabilizers.in_phase("arch"):
        arch = m(x)
    assert torch.equal(arch, plain) and not torch.allclose(zeroed, plain)
    # every gated edge mixed with weight 0: the output does not depend on the edges' ops
    with torch.no_grad():
        for p in m.weights():
            if p.dim() == 4 and p.shape[-1] == 3:
                p.add_(1.0)
    with s.stabilizers.in_phase("weights"):
        assert torch.equal(m(x), zeroed)


class ZeroGrad(Stabilizer):
    def after_arch_backward(self, search, arch, batch):
        for p in arch:
            assert p.grad is not None
            p.grad.zero_()


def test_after_arch_backward_changes_the_gradient_the_optimizer_steps():
    s = _search([ZeroGrad()], arch_weight_decay=0.0)
    before = [p.detach().clone() for p in s.module.arch_parameters()]
    s.run()
    assert all(torch.equal(a, b) for a, b in zip(before, s.module.arch_parameters()))
    moved = _search([], arch_weight_decay=0.0)
    moved.run()
    assert any(not torch.equal(a, b) for a, b in zip(before, moved.module.arch_parameters()))


class Pull(Stabilizer):
    """A loss ``w * sum(alpha^2)``: its gradient is known."""

    def __init__(self, w: float):
        super().__init__()
        self.w = w

    def loss(self, module, phase):
        return self.w * sum((p ** 2).sum() for p in module.arch_parameters())


def test_the_loss_joins_the_architecture_gradient():
    grads = {}
    for w in (0.0, 5.0):
        class Grab(Stabilizer):
            def after_arch_backward(self, search, arch, batch, w=w):
                grads[w] = [p.grad.clone() for p in arch]
                for p in arch:
                    p.grad.zero_()

        s = _search([Pull(w), Grab()], steps_per_epoch=1)
        with torch.no_grad():
            for p in s.module.arch_parameters():
                p.copy_(torch.arange(p.numel(), dtype=p.dtype).view_as(p) / 10)
        alphas = [p.detach().clone() for p in s.module.arch_parameters()]
        s.run()
    for g0, g5, a in zip(grads[0.0], grads[5.0], alphas):
        torch.testing.assert_close(g5 - g0, 2 * 5.0 * a)


def test_state_survives_a_checkpoint(tmp_path):
    STABILIZERS.register("recorder_test", Recorder, override=True)
    try:
        spec = {"name": "darts", "stabilizers": [{"name": "recorder_test"}]}
        s = BilevelSearch(chain(), data(), strategy=spec, discretization=None,
                          config=small_config(epochs=2, checkpoint_dir=str(tmp_path)))
        s.run(until=1)
        assert int(s.stabilizers.items[0].steps) == 2
        r = BilevelSearch.resume(str(tmp_path / "last.safetensors"), data(), discretization=None)
        assert isinstance(r.stabilizers.items[0], Recorder)
        assert int(r.stabilizers.items[0].steps) == 2
        with pytest.raises(SearchError, match=r"had 1 stabilizer\(s\), this one has 0"):
            BilevelSearch.resume(str(tmp_path / "last.safetensors"), data(),
                                 discretization=None, strategy=create_strategy("darts"))
        r.run()
        assert int(r.stabilizers.items[0].steps) == 4
    finally:
        STABILIZERS.unregister("recorder_test")


def test_bad_stabilizers_fail_naming_the_key_and_the_choices():
    with pytest.raises(UnknownNameError,
                       match=r"strategy.stabilizers\[0\]: could not resolve stabilizer"):
        create_strategy("darts", stabilizers=["no_such"])
    with pytest.raises(ConfigError, match=r"strategy.stabilizers\[0\] needs a 'name'"):
        create_strategy("darts", stabilizers=[{"lam": 1.0}])
    cfg = RunConfig.from_dict({"strategy": {"name": "darts", "stabilizers": [{"name": "nope"}]}})
    with pytest.raises(UnknownNameError, match=r"strategy.stabilizers\[0\]"):
        make_strategy(cfg)


def test_an_empty_set_changes_nothing():
    a, b = _search([]), _search(None)
    a.run(), b.run()
    for p, q in zip(a.module.parameters(), b.module.parameters()):
        assert torch.equal(p, q)
    assert len(StabilizerSet()) == 0
