"""Network slimming (Liu et al., 2017): the L1 term on the batch-norm scales and its score."""

import numpy as np
import pytest
import torch

from supernet import Graph, compile
from supernet.edits import Editor
from supernet.errors import ConfigError, SupernetError
from supernet.search import scores
from supernet.search.discretize.units import prune
from supernet.train import bn_scales, l1_scales, slimming_loss, train_module
from supernet.train.training import default_loss
from supernet.units import add_group, add_input, connect


def _cnn():
    """x -> a (BN) -> b (BN) -> head: no ties, so each node prunes on its own."""
    g = Graph("channel", name="slim")
    add_input(g, "x", 2, shape=[2, 6, 6])
    add_group(g, "a", 6, act="relu", bias=False, norm="batchnorm")
    connect(g, "x", "a", "conv", kernel=3)
    add_group(g, "b", 8, act="relu", bias=False, norm="batchnorm")
    connect(g, "a", "b", "conv", kernel=3)
    add_group(g, "head", 3)
    connect(g, "b", "head", "dense", pool="global_avg")
    g.set_outputs(["head"])
    return g


def _data(n=32):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, 6, 6, generator=gen)
    return x, (x[:, 0].mean((1, 2)) > 0).long() + (x[:, 1].mean((1, 2)) > 0).long()


def test_the_subgradient_of_the_l1_term_is_lambda_sign_gamma():
    g = _cnn()
    net = compile(g, seed=0)
    gammas = {"a": torch.tensor([0.5, -1.0, 0.0, 2.0, -0.1, 0.3]),
              "b": torch.linspace(-1, 1, 8)}
    with torch.no_grad():
        for n, v in gammas.items():
            net.unit_params(n).norm_weight.copy_(v)
    lam = 0.03
    x, y = _data()
    out = net(x)
    base = torch.autograd.grad(default_loss(out, y), [net.unit_params(n).norm_weight
                                                      for n in gammas], retain_graph=True)
    total = torch.autograd.grad(slimming_loss(net, lam)(out, y),
                                [net.unit_params(n).norm_weight for n in gammas])
    for (n, v), gb, gt in zip(gammas.items(), base, total):
        assert ((gt - gb) - lam * torch.sign(v)).abs().max() < 1e-7
    assert float(l1_scales(net, lam).detach()) == pytest.approx(
        lam * sum(float(v.abs().sum()) for v in gammas.values()))


def test_slimming_training_shrinks_the_scales_and_the_score_prunes_the_smallest():
    x, y = _data()
    sums = {}
    for lam in (0.0, 0.1):
        g = _cnn()
        net = compile(g, seed=0)
        train_module(net, (x, y), epochs=6, batch_size=8, lr=0.05, weight_decay=0.0,
                     loss_fn=slimming_loss(net, lam), device="cpu", seed=0)
        sums[lam] = sum(float(v.detach().abs().sum()) for v in bn_scales(net).values())
    assert sums[0.1] < 0.8 * sums[0.0]  # the penalty, not the task, moved the scales down

    s = scores.bn_scale(net)  # the λ > 0 network
    assert set(s) == {"a", "b"}
    for n in s:
        np.testing.assert_array_equal(s[n], net.unit_params(n).norm_weight.detach().abs().numpy())
    before = {n: g.node(n)["units"].copy() for n in s}
    smallest = {n: set(before[n][np.argsort(s[n], kind="stable")[:len(s[n]) // 2]].tolist())
                for n in s}
    ed = Editor(g, net)
    for edit in prune(g, s, 0.5, what="units", scope="layer"):
        ed.apply(edit)
    for n in s:
        gone = set(before[n].tolist()) - set(g.node(n)["units"].tolist())
        assert gone == smallest[n]
        assert net.unit_params(n).norm_weight.shape == (len(before[n]) - len(gone),)


def test_bad_input_names_what_is_wrong():
    net = compile(_cnn(), seed=0)
    with pytest.raises(ConfigError, match=r"λ must be a number >= 0, got -0.1"):
        slimming_loss(net, -0.1)
    with pytest.raises(ConfigError, match=r"\['nope'\].*choose from \['a', 'b'\]"):
        l1_scales(net, 0.1, nodes=["nope"])
    with pytest.raises(ConfigError, match="no batch norm"):
        bn_scales(torch.nn.Linear(2, 2))
    with pytest.raises(SupernetError, match="no node 'ghost'"):
        scores.bn_scale(net, nodes=["ghost"])
    with pytest.raises(SupernetError, match="channel- or neuron-level module"):
        scores.bn_scale(torch.nn.BatchNorm2d(3))


def test_bn_scales_of_plain_torch_modules():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3),
                              torch.nn.BatchNorm2d(3, affine=False))
    assert list(bn_scales(net)) == ["1"]
