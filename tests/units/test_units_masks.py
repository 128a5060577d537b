"""Mask primitives: canonical form, exact random densities, id lookups."""

import numpy as np
import pytest
import scipy.sparse as sp

from supernet.errors import EditError, GraphError
from supernet.units.masks import (
    as_mask,
    block_mask,
    canonical,
    diagonal_mask,
    entry_keys,
    expand_taps,
    from_keys,
    lookup,
    positions,
    random_mask,
)


def test_random_mask_has_exactly_the_density_asked():
    for d in (0.0, 0.1, 0.5, 0.9, 1.0):
        m = random_mask(30, 40, d, seed=1)
        assert m.nnz == round(d * 1200) and m.has_canonical_format
    assert (random_mask(30, 40, 0.3, seed=1) != random_mask(30, 40, 0.3, seed=1)).nnz == 0


def test_keys_round_trip_and_canonical_form():
    m = canonical(sp.random(7, 9, density=0.4, random_state=0) > 0.5)
    assert (from_keys(entry_keys(m), m.shape) != m).nnz == 0
    with_false = sp.csr_array((np.array([True, False]), np.array([0, 1]), np.array([0, 2])),
                              shape=(1, 2))
    assert canonical(with_false).nnz == 1


def test_structured_masks():
    assert diagonal_mask(2, offset=1, n_dst=4).toarray().astype(int).tolist() == [
        [0, 0], [1, 0], [0, 1], [0, 0]]
    assert block_mask(4, 4, 2).toarray().sum() == 8
    assert expand_taps(diagonal_mask(2), 3).shape == (2, 6)
    assert expand_taps(diagonal_mask(2), 3).nnz == 6


def test_lookups():
    units = np.array([5, 2, 9])
    assert lookup(units, [9, 4, 5]).tolist() == [2, -1, 0]
    with pytest.raises(EditError, match="node 'h' has no unit\\(s\\) \\[4\\]"):
        positions(units, [4], "h")
    with pytest.raises(GraphError, match="mask has shape \\(2, 2\\), expected \\(3, 2\\)"):
        as_mask(np.ones((2, 2)), (3, 2), "e")
