"""Storage layouts: where each connection's weight lives, and how it moves."""

import numpy as np

from supernet.units.layout import Layout, entry_remap, remap
from supernet.units.masks import block_mask, full_mask, random_mask


def test_grid_positions_of_a_grouped_conv():
    lay = Layout("grid", block_mask(4, 4, 2), taps=9, groups=2)
    assert lay.shape == (4, 2, 9)
    assert lay.pos(np.array([3]), np.array([2]), np.array([4])).tolist() == [(3 * 2 + 0) * 9 + 4]
    assert lay.pos(np.array([3]), np.array([0]), np.array([0])).tolist() == [-1]
    assert lay.entry_index().shape == (8, 9)


def test_sparse_remap_after_removal_and_creation():
    old = Layout("sparse", full_mask(2, 3))
    new = Layout("sparse", full_mask(3, 2))
    rm = remap(old, new, np.array([0, 1, -1]), np.array([0, 2]), rnew=np.array([0, 0, 1], bool))
    assert rm.src.tolist() == [0, 2, 3, 5, -1, -1]
    assert rm.fresh.tolist() == [4, 5] and rm.fresh_new_dst.all()


def test_split_factor_divides_outgoing_weights_per_row():
    old = Layout("grid", full_mask(2, 2))
    new = Layout("grid", full_mask(2, 3))
    rm = remap(old, new, np.array([0, 1]), np.array([0, 1, 1]), cnew=np.array([0, 0, 1], bool))
    assert rm.src.tolist() == [0, 1, 1, 2, 3, 3]
    assert rm.factor.tolist() == [1.0, 0.5, 0.5, 1.0, 0.5, 0.5]
    assert rm.state.tolist() == [0, 1, -1, 2, 3, -1]


def test_entry_remap_for_gates():
    old = random_mask(4, 5, 0.5, seed=0)
    src, state = entry_remap(old, old, np.arange(4), np.arange(5))
    assert src.tolist() == list(range(old.nnz)) == state.tolist()
