"""The sparse kernel: forward, input gradient and values gradient at synapses only."""

import torch

from supernet.compiler.kernels import SparsePattern, pool, sparse_linear


def test_sparse_linear_matches_dense_and_passes_gradcheck():
    torch.manual_seed(0)
    mask = torch.rand(7, 5) < 0.4
    pattern = SparsePattern.from_dense(mask)
    values = torch.randn(int(mask.sum()), dtype=torch.double, requires_grad=True)
    x = torch.randn(3, 5, dtype=torch.double, requires_grad=True)
    dense = torch.zeros(7, 5, dtype=torch.double).index_put(tuple(mask.nonzero().t()), values)
    assert torch.allclose(sparse_linear(x, values, pattern), x @ dense.t())
    assert torch.autograd.gradcheck(lambda a, b: sparse_linear(a, b, pattern), (x, values))


def test_empty_pattern_and_pooling():
    pattern = SparsePattern.from_dense(torch.zeros(3, 2, dtype=torch.bool))
    v = torch.zeros(0, requires_grad=True)
    assert sparse_linear(torch.randn(4, 2), v, pattern).shape == (4, 3)
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(pool(x, "global_avg"), x.mean((2, 3)))
    assert pool(x, {"kind": "max", "kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]}).shape \
        == (2, 3, 2, 2)
