"""Connection masks and unit ids: the vectorized primitives under the unit levels.

A mask is a canonical ``scipy.sparse.csr_array`` of dtype bool (sorted indices, no
duplicates, no stored ``False``), so that two equal masks serialize to equal documents. All
functions here work on whole arrays: no Python loop over units or connections.

Examples:
    >>> import numpy as np
    >>> from supernet.units.masks import full_mask, random_mask, positions
    >>> full_mask(2, 3).nnz
    6
    >>> random_mask(100, 100, 0.1, seed=0).nnz
    1000
    >>> positions(np.array([7, 3, 9]), [9, 7], "h")
    array([2, 0])
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from supernet.errors import EditError, GraphError

__all__ = [
    "canonical",
    "as_mask",
    "full_mask",
    "empty_mask",
    "random_mask",
    "sample_keys",
    "sorted_unique",
    "find",
    "diagonal_mask",
    "block_mask",
    "entry_keys",
    "from_keys",
    "positions",
    "lookup",
    "expand_taps",
]


def canonical(m) -> sp.csr_array:
    """``m`` as a canonical boolean CSR array (a new object)."""
    m = sp.csr_array(m, dtype=bool, copy=True)
    m.eliminate_zeros()
    m.sum_duplicates()
    m.sort_indices()
    return m


def as_mask(value, shape: tuple[int, int], where: str) -> sp.csr_array:
    """Turn ``"full"``, a dense array or a sparse matrix into a canonical mask of ``shape``."""
    if isinstance(value, str):
        if value != "full":
            raise GraphError(f"{where}: mask {value!r} is not 'full', an array or a sparse matrix")
        return full_mask(*shape)
    if not sp.issparse(value):
        value = np.asarray(value)
        if value.ndim != 2:
            raise GraphError(f"{where}: a mask is 2-D, got an array of shape {value.shape}")
    if tuple(value.shape) != tuple(shape):
        raise GraphError(
            f"{where}: mask has shape {tuple(value.shape)}, expected {tuple(shape)} "
            "(destination units, source units[ * kernel taps])"
        )
    return canonical(value)


def full_mask(n_dst: int, n_src: int) -> sp.csr_array:
    """Every destination connected to every source."""
    indptr = np.arange(0, (n_dst + 1) * n_src, n_src, dtype=np.int64)
    indices = np.tile(np.arange(n_src, dtype=np.int64), n_dst)
    return _csr(indptr, indices, (n_dst, n_src))


def empty_mask(n_dst: int, n_src: int) -> sp.csr_array:
    return _csr(np.zeros(n_dst + 1, np.int64), np.zeros(0, np.int64), (n_dst, n_src))


def diagonal_mask(n: int, offset: int = 0, n_dst: int | None = None) -> sp.csr_array:
    """A matching: source ``i`` to destination ``i + offset`` (a residual add or a concat)."""
    n_dst = n + offset if n_dst is None else n_dst
    rows = np.arange(n) + offset
    return from_keys(rows * n + np.arange(n), (n_dst, n))


def block_mask(n_dst: int, n_src: int, groups: int, taps: int = 1) -> sp.csr_array:
    """The block-diagonal pattern of a grouped convolution (``taps`` columns per source)."""
    s_out, s_in = n_dst // groups, n_src // groups
    rows = np.repeat(np.arange(n_dst), s_in * taps)
    grp = rows // max(s_out, 1)
    local = np.tile(np.arange(s_in * taps), n_dst)
    cols = grp * s_in * taps + local
    return from_keys(rows * (n_src * taps) + cols, (n_dst, n_src * taps))


def random_mask(n_dst: int, n_src: int, density: float, seed=None) -> sp.csr_array:
    """A uniformly random mask with exactly ``round(density * n_dst * n_src)`` entries."""
    if not 0.0 <= density <= 1.0:
        raise GraphError(f"density must be in [0, 1], got {density}")
    total = n_dst * n_src
    k = int(round(density * total))
    rng = np.random.default_rng(seed)
    if k > total // 2:  # draw the complement: fewer draws, same distribution
        keep = np.ones(total, bool)
        keep[sample_keys(rng, total, total - k)] = False
        return from_keys(np.flatnonzero(keep), (n_dst, n_src), unique=True)
    return from_keys(sample_keys(rng, total, k), (n_dst, n_src), unique=True)


def sample_keys(rng, total: int, k: int) -> np.ndarray:
    """``k`` distinct integers below ``total``, uniformly, sorted.

    A Bernoulli draw with a slightly higher rate (as geometric gaps, so the keys come out
    sorted and distinct) is trimmed to ``k`` uniformly: a uniform subset of a uniform
    subset is uniform. Linear in ``k``, no sort of the keys.
    """
    if k <= 0:
        return np.zeros(0, np.int64)
    if k >= total:
        return np.arange(total, dtype=np.int64)
    p = min(1.0, (k + 6.0 * np.sqrt(k) + 10.0) / total)
    while True:
        n = int(total * p + 6.0 * np.sqrt(total * p) + 10)
        keys = np.cumsum(rng.geometric(p, size=n), dtype=np.int64) - 1
        keys = keys[keys < total]
        if len(keys) >= k:
            break
        p = min(1.0, p * 1.5)
    extra = len(keys) - k
    if extra:
        drop = np.zeros(len(keys), bool)
        drop[_small_sample(rng, len(keys), extra)] = True
        keys = keys[~drop]
    return keys


def _small_sample(rng, total: int, k: int) -> np.ndarray:
    """``k`` distinct integers below ``total`` (for ``k`` much smaller than ``total``)."""
    out = np.zeros(0, np.int64)
    while len(out) < k:
        draw = rng.integers(0, total, size=int((k - len(out)) * 1.1) + 16, dtype=np.int64)
        out = sorted_unique(np.concatenate([out, draw]))
    return rng.permutation(out)[:k]


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (fast on the nearly sorted key arrays of edits)."""
    a = np.sort(np.asarray(a, dtype=np.int64), kind="stable")
    if len(a) < 2:
        return a
    keep = np.empty(len(a), bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def find(sorted_keys: np.ndarray, keys) -> np.ndarray:
    """Index of each of ``keys`` in the sorted ``sorted_keys``, or ``-1``."""
    keys = np.asarray(keys, dtype=np.int64)
    if len(sorted_keys) == 0:
        return np.full(keys.shape, -1, np.int64)
    at = np.searchsorted(sorted_keys, keys).clip(max=len(sorted_keys) - 1)
    return np.where(sorted_keys[at] == keys, at, -1)


def _csr(indptr, indices, shape) -> sp.csr_array:
    data = np.ones(len(indices), dtype=bool)
    m = sp.csr_array((data, indices, indptr), shape=shape)
    m.has_canonical_format = True
    return m


def entry_keys(m: sp.csr_array) -> np.ndarray:
    """Row-major keys ``row * n_cols + col`` of the entries, in storage (sorted) order."""
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return rows * m.shape[1] + m.indices.astype(np.int64)


def from_keys(keys: np.ndarray, shape: tuple[int, int], unique: bool = False) -> sp.csr_array:
    """The canonical mask whose entries are ``keys`` (duplicates merged; ``unique=True``
    says they are sorted and distinct already)."""
    keys = np.asarray(keys, dtype=np.int64) if unique else sorted_unique(keys)
    n_rows, n_cols = shape
    rows = keys // max(n_cols, 1)
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return _csr(indptr, keys % max(n_cols, 1), (n_rows, n_cols))


def lookup(units: np.ndarray, ids) -> np.ndarray:
    """Positions of ``ids`` in ``units``, ``-1`` for ids that are not there."""
    units = np.asarray(units, dtype=np.int64)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(units) == 0:
        return np.full(len(ids), -1, np.int64)
    order = np.argsort(units, kind="stable")
    srt = units[order]
    at = np.searchsorted(srt, ids).clip(max=len(srt) - 1)
    found = srt[at] == ids
    return np.where(found, order[at], -1)


def positions(units: np.ndarray, ids, node: str) -> np.ndarray:
    """Positions of ``ids`` in the units of ``node``; :class:`EditError` if any is missing."""
    pos = lookup(units, ids)
    if (pos < 0).any():
        missing = np.asarray(ids, dtype=np.int64).reshape(-1)[pos < 0]
        raise EditError(
            f"node {node!r} has no unit(s) {_few(missing)}; its units are {_few(units)}"
        )
    return pos


def expand_taps(m: sp.csr_array, taps: int) -> sp.csr_array:
    """A per-kernel mask ``(r, c)`` as a per-tap mask ``(r, c * taps)`` (all taps kept)."""
    if taps == 1:
        return canonical(m)
    keys = entry_keys(m)
    rows, cols = keys // max(m.shape[1], 1), keys % max(m.shape[1], 1)
    new_cols = (cols[:, None] * taps + np.arange(taps)[None, :]).reshape(-1)
    new_rows = np.repeat(rows, taps)
    return from_keys(new_rows * (m.shape[1] * taps) + new_cols, (m.shape[0], m.shape[1] * taps))


def _few(values, n: int = 8) -> str:
    values = [int(v) for v in np.asarray(values).reshape(-1)]
    head = ", ".join(map(str, values[:n]))
    return f"[{head}{', ...' if len(values) > n else ''}] ({len(values)} in all)"
