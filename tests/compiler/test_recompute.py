"""The memory-lean mode: the candidates of mixed edges recomputed in backward give the
normal mode's losses, gradients and batch-norm statistics, exactly."""

import copy

import pytest
import torch
import torch.nn as nn

import supernet
from search_spaces import create_space
from supernet.compiler.recompute import recompute_mix, running_stats_frozen, use_memory_mode
from supernet.config import RunConfig
from supernet.errors import ConfigError
from supernet.gates import Decision
from supernet.run import make_strategy, search_settings
from supernet.search import BilevelSearch, SearchConfig


def _darts():
    return create_space("darts", C=4, layers=3, steps=2, multiplier=2, num_classes=3)


def _compiled(drop_path, share=True, memory="normal"):
    torch.manual_seed(0)  # the same initialization every time
    net = supernet.compile(_darts())
    net.drop_path_prob = drop_path
    net.share_prefixes = share
    use_memory_mode(net, memory)
    return net


def _pair(drop_path=0.0):
    """The normal and the lean mode, each candidate computing its own prefix: the same
    arithmetic, so equal to the bit."""
    return _compiled(drop_path, share=False), _compiled(drop_path, False, "lean")


def _state(net):
    grads = {n: p.grad for n, p in net.named_parameters()}
    return grads, dict(net.named_buffers())


def _same(a, b, exact=True):
    return torch.equal(a, b) if exact else torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def _assert_same(a, b, exact=True):
    ga, ba = _state(a)
    gb, bb = _state(b)
    assert ga.keys() == gb.keys() and ba.keys() == bb.keys()
    for n in ga:
        assert (ga[n] is None) == (gb[n] is None), n
        if ga[n] is not None:
            assert _same(ga[n], gb[n], exact), n
    for n in ba:
        assert _same(ba[n].double(), bb[n].double(), exact), n
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        assert _same(p, q, exact), n


def _step(net, x, y, seed, opt=None):
    torch.manual_seed(seed)  # drop-path draws alike
    loss = nn.functional.cross_entropy(net(x), y)
    loss.backward()
    if opt is not None:
        opt.step()
        opt.zero_grad(set_to_none=False)
    return loss.detach()


def test_one_step_gives_the_normal_loss_gradients_and_running_statistics():
    normal, lean = _pair(drop_path=0.3)
    shared = _compiled(0.3)  # the default modes: prefixes shared, equal up to rounding
    shared_lean = _compiled(0.3, memory="lean")
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    assert torch.equal(_step(normal, x, y, 1), _step(lean, x, y, 1))
    _assert_same(normal, lean)  # weights and α: gradients; BN: mean, var, batches tracked
    bn = [m for m in lean.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bn and all(int(m.num_batches_tracked) == 1 for m in bn)  # once, not twice
    assert lean.arch[next(iter(lean.arch.keys()))].grad.abs().sum() > 0
    _step(shared, x, y, 1)
    _step(shared_lean, x, y, 1)
    _assert_same(shared, shared_lean, exact=False)
    _assert_same(lean, shared_lean, exact=False)


def test_several_optimizer_steps_stay_equal():
    normal, lean = _pair(drop_path=0.2)
    opts = [torch.optim.SGD(n.parameters(), 0.1, momentum=0.9) for n in (normal, lean)]
    x, y = torch.randn(2, 3, 8, 8), torch.tensor([0, 2])
    for seed in range(2):
        assert torch.equal(_step(normal, x, y, seed, opts[0]), _step(lean, x, y, seed, opts[1]))
    _assert_same(normal, lean)


def test_the_recompute_draws_the_forwards_random_numbers():
    torch.manual_seed(0)
    ops = [nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.Dropout(0.5), nn.BatchNorm2d(2)),
           nn.Conv2d(2, 2, 1)]
    twin = copy.deepcopy(ops)
    x = torch.randn(3, 2, 5, 5)
    alpha = torch.zeros(1, 2, requires_grad=True)
    grads = []
    for run, modules in ((lambda *a: Decision.mix(*a), ops), (None, twin)):
        d = Decision(torch.softmax(alpha, -1))
        torch.manual_seed(7)
        y = (d.mix(0, modules, [False, False], x) if run is not None
             else recompute_mix(d, 0, modules, [False, False], x))
        torch.manual_seed(99)  # other draws between the forward and the backward
        torch.rand(10)
        grads.append(torch.autograd.grad(y.square().sum(), [alpha, *modules[0].parameters()]))
    for a, b in zip(*grads):
        assert torch.equal(a, b)
    assert torch.equal(ops[0][2].running_mean, twin[0][2].running_mean)


def test_frozen_running_statistics_are_put_back():
    bn = nn.BatchNorm1d(3)
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    with running_stats_frozen([bn, lambda x: x]):
        bn(torch.randn(5, 3))
        assert int(bn.num_batches_tracked) == 1
    for k, v in bn.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("second_order", [False, True])
def test_a_bilevel_search_step_is_the_same_in_both_modes(second_order):
    x = torch.randn(8, 3, 8, 8)
    y = torch.randint(0, 3, (8,))
    searches = []
    for memory in ("normal", "lean"):
        cfg = {"epochs": 1, "batch_size": 2, "second_order": second_order, "memory": memory,
               "drop_path_prob": 0.2, "seed": 3}
        s = BilevelSearch(_darts(), (x, y), config=cfg, discretization=None)
        s.module.drop_path_prob = 0.2
        assert s.module.memory == memory
        torch.manual_seed(5)
        batches = [(x[:2], y[:2]), (x[2:4], y[2:4])]
        s._arch_step(batches[1], s.batch_fn(batches[0]), 0.025, 0)
        s._weight_step(*s.batch_fn(batches[0]))
        searches.append(s.module)
    normal, lean = searches  # the normal mode shares prefixes: equal up to rounding
    for (n, p), q in zip(normal.named_parameters(), lean.parameters()):
        assert _same(p, q, exact=False), n
    for (n, b), c in zip(normal.named_buffers(), lean.buffers()):
        assert _same(b.double(), c.double(), exact=False), n
        if n.endswith("num_batches_tracked"):
            assert torch.equal(b, c), n


def test_the_switch_is_a_config_key_checked_before_training():
    assert SearchConfig(memory="lean").memory == "lean"
    with pytest.raises(ConfigError, match=r"memory='low': must be one of \['normal', 'lean'\]"):
        SearchConfig(memory="low")
    cfg = RunConfig.from_dict({"search": {"memory": "lean"}})
    assert search_settings(cfg, make_strategy(cfg))["memory"] == "lean"
    with pytest.raises(ConfigError, match=r"search.memory.*expected one of"):
        RunConfig.from_dict({"search": {"memory": "small"}})
    units = create_space("neuron_mlp", in_features=4, hidden=[3], num_classes=2)
    with pytest.raises(ConfigError, match="memory='lean' recomputes the candidate ops of "
                                          "layer-level gates.*neuron-level"):
        BilevelSearch(units, (torch.randn(8, 4), torch.randint(0, 2, (8,))),
                      config={"epochs": 1, "batch_size": 4, "memory": "lean"})
