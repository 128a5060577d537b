"""Compiled blocks: masked, sparse and identity maps."""

import torch
from units_helpers import residual_cnn

from supernet import compile
from supernet.units import mlp


def test_identity_blocks_add_matched_units():
    net = compile(residual_cnn(), seed=0)
    block = net.block("s0", "y")
    assert block.same
    x = torch.randn(2, 8, 3, 3)
    assert block(x) is x
    keep = torch.rand(8)
    assert torch.allclose(block(x, keep), x * keep.view(1, -1, 1, 1))


def test_effective_weights_are_masked_and_gated():
    g = mlp([6, 4], density=0.5, seed=0)
    for kernel in ("dense", "sparse"):
        block = compile(g, kernel=kernel, seed=0).block("x", "y")
        m = torch.from_numpy(g.edge("x", "y")["mask"].toarray())
        w = block.effective().detach()
        assert (w[~m] == 0).all() and (w[m] != 0).all()
        keep = torch.zeros(int(m.sum()))
        assert block.effective(keep).abs().sum() == 0


def test_connection_gates_scale_whole_kernels_at_channel_level():
    net = compile(residual_cnn(), seed=0)
    block = net.block("s0", "c1")
    keep = torch.rand(64)
    w = block.effective(keep).detach()
    assert torch.allclose(w, block.weight.detach() * keep.view(8, 8, 1, 1))
