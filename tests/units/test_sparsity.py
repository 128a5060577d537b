"""Erdős–Rényi(-Kernel) densities (supernet.units.sparsity)."""

import math

import pytest

from supernet.errors import ConfigError, GraphError
from supernet.units import mlp
from supernet.units.sparsity import block_shapes, erk_counts, erk_densities

MLP = [(100, 40), (100, 100), (10, 100)]


@pytest.mark.parametrize("density", [0.05, 0.1, 0.2, 0.5, 0.9, 1.0])
def test_overall_count_is_exact(density):
    counts = erk_counts(MLP, density)
    total = sum(math.prod(s) for s in MLP)
    assert sum(counts) == round(density * total)
    assert all(0 <= c <= math.prod(s) for c, s in zip(counts, MLP))


def test_density_follows_the_erdos_renyi_rule():
    d = erk_densities(MLP, 0.1)
    raw = [(a + b) / (a * b) for a, b in MLP]
    # smaller layers are denser, in proportion to (n_in + n_out) / (n_in n_out)
    assert d[2] > d[0] > d[1]
    for di, ri in zip(d, raw):
        assert di / ri == pytest.approx(d[1] / raw[1], rel=2e-3)


def test_a_layer_that_would_pass_one_is_dense_and_the_rest_share_what_is_left():
    d = erk_densities(MLP, 0.5)
    assert d[2] == 1.0  # (110/1000) eps > 1: the 10-output layer keeps every weight
    counts = erk_counts(MLP, 0.5)
    assert counts[2] == 1000 and sum(counts) == 7500
    assert d[0] / d[1] == pytest.approx((140 / 4000) / (200 / 10000), rel=2e-3)


def test_kernel_shapes_count_their_taps():
    shapes = [(16, 3, 3, 3), (32, 16, 3, 3)]
    counts = erk_counts(shapes, 0.3)
    assert sum(counts) == round(0.3 * (16 * 27 + 32 * 144))
    assert counts[0] / (16 * 27) > counts[1] / (32 * 144)


def test_mlp_takes_the_densities_and_block_shapes_reads_them_back():
    sizes = [40, 100, 100, 10]
    shapes = list(zip(sizes[1:], sizes[:-1]))
    g = mlp(sizes, density=erk_densities(shapes, 0.1), seed=0)
    assert block_shapes(g) == shapes
    assert [g.edge(u, v)["mask"].nnz for u, v in g.nx.edges] == erk_counts(shapes, 0.1)
    with pytest.raises(GraphError, match="2 densities for 3 blocks"):
        mlp(sizes, density=[0.1, 0.2])


@pytest.mark.parametrize("bad", [0.0, 1.5, True, "0.1"])
def test_bad_density_is_refused(bad):
    with pytest.raises(ConfigError, match="density must be in"):
        erk_counts(MLP, bad)
    with pytest.raises(ConfigError, match="block 0 has shape"):
        erk_counts([(0, 4)], 0.5)
