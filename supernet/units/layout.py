"""Where each connection's weights live in a compiled block, and how they move on an edit.

A weighted block stores its weights in one of two layouts:

* **grid**: a dense tensor ``(n_dst, n_src / groups, taps)`` (a masked ``nn.Linear`` or
  ``nn.Conv*d`` weight); positions without a connection hold zero;
* **sparse**: one value per connection, in the mask's row-major (CSR) order.

An edit changes the units of the two ends (``rmap``/``cmap``: for each new position, the old
position it continues, a template it copies, or ``-1``) and the mask. :func:`remap` computes,
for every storage position of the new layout, the old position whose value it takes (or
``-1``), vectorized over all positions, so that weights, optimizer state and gate logits
all move the same way.

Examples:
    >>> import numpy as np
    >>> from supernet.units.masks import full_mask
    >>> from supernet.units.layout import Layout, remap
    >>> old = Layout("grid", full_mask(2, 3), taps=1)
    >>> new = Layout("grid", full_mask(2, 2), taps=1)
    >>> remap(old, new, np.array([0, 1]), np.array([0, 2])).src.reshape(2, 2)
    array([[0, 2],
           [3, 5]])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supernet.units.masks import entry_keys
from supernet.units.masks import find as _find

__all__ = ["Layout", "Remap", "remap", "entry_remap"]


class Layout:
    """The storage layout of one weighted block.

    Args:
        kind: ``"grid"`` or ``"sparse"``.
        mask: the block's mask, ``(n_dst, n_src)`` or per tap ``(n_dst, n_src * taps)``.
        taps: scalar weights per kernel (1 for dense blocks).
        per_tap: whether the mask has one entry per tap (neuron-level conv).
        groups: conv groups (grid only).
    """

    def __init__(self, kind: str, mask, taps: int = 1, per_tap: bool = False, groups: int = 1):
        self.kind, self.mask, self.taps = kind, mask, taps
        self.per_tap, self.groups = per_tap, groups
        self.r = mask.shape[0]
        self.c = mask.shape[1] // (taps if per_tap else 1)
        self.s_in = self.c // groups if groups else 0
        self.s_out = max(self.r // groups, 1) if groups else 1
        self.keys = entry_keys(mask)
        if kind == "sparse" and (taps != 1 or groups != 1):
            raise ValueError("sparse layouts hold dense (non-conv) blocks only")

    @property
    def size(self) -> int:
        return len(self.keys) if self.kind == "sparse" else self.r * self.s_in * self.taps

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.keys),) if self.kind == "sparse" else (self.r, self.s_in, self.taps)

    def coords(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(dst, src, tap)`` of every storage position, in storage order."""
        if self.kind == "sparse":
            c = max(self.c, 1)
            return self.keys // c, self.keys % c, np.zeros(len(self.keys), np.int64)
        i = np.repeat(np.arange(self.r, dtype=np.int64), self.s_in * self.taps)
        local = np.tile(np.arange(self.s_in * self.taps, dtype=np.int64), self.r)
        jl, t = local // self.taps, local % self.taps
        return i, (i // self.s_out) * self.s_in + jl, t

    def pos(self, i, j, t) -> np.ndarray:
        """Storage positions of connections ``(i, j, t)``; ``-1`` where there is none."""
        if self.kind == "sparse":
            return _find(self.keys, i * self.c + j)
        grp = i // self.s_out
        jl = j - grp * self.s_in
        ok = (jl >= 0) & (jl < self.s_in)
        return np.where(ok, (i * self.s_in + jl) * self.taps + t, -1)

    def exists(self, i, j, t) -> np.ndarray:
        """Whether connection ``(i, j, t)`` is in the mask."""
        if self.per_tap:
            key = i * (self.c * self.taps) + j * self.taps + t
        else:
            key = i * self.c + j
        return _find(self.keys, key) >= 0

    def entry_index(self) -> np.ndarray:
        """Storage positions of the mask entries: ``(nnz,)``, or ``(nnz, taps)`` when one
        entry (a kernel) holds several taps."""
        if self.kind == "sparse":
            return np.arange(len(self.keys), dtype=np.int64)
        cols = self.mask.shape[1]
        i, col = self.keys // max(cols, 1), self.keys % max(cols, 1)
        if self.per_tap:
            return self.pos(i, col // self.taps, col % self.taps)
        t = np.arange(self.taps, dtype=np.int64)
        return self.pos(i[:, None], col[:, None], t[None, :]).reshape(len(i), self.taps)


@dataclass
class Remap:
    """How the storage of a new layout is filled from an old one.

    Attributes:
        src: per new position, the old position whose value it takes, or ``-1``.
        state: as ``src``, but ``-1`` for copies (created entries start with fresh
            optimizer state).
        fresh: positions of new connections that need an initial value.
        fresh_new_src: for each fresh position, whether its source unit is new (the
            ``"zero"`` policy zeroes those: new units start with zero outgoing weights).
        fresh_new_dst: for each fresh position, whether its destination unit is new.
        factor: per new position, the scale of a copy-and-split (1 elsewhere), or ``None``.
        noisy: positions that receive split noise (rows of copied units), or ``None``.
    """

    src: np.ndarray
    state: np.ndarray
    fresh: np.ndarray
    fresh_new_src: np.ndarray
    fresh_new_dst: np.ndarray
    factor: np.ndarray | None = None
    noisy: np.ndarray | None = None


def remap(old: Layout, new: Layout, rmap: np.ndarray, cmap: np.ndarray,
          rnew: np.ndarray | None = None, cnew: np.ndarray | None = None) -> Remap:
    """Map the storage of ``new`` onto ``old``.

    Args:
        rmap, cmap: for each new destination / source position, the old position it
            continues or copies, or ``-1`` for a unit without predecessor.
        rnew, cnew: which new positions are created units (copies included).
    """
    rnew = np.zeros(new.r, bool) if rnew is None else rnew
    cnew = np.zeros(new.c, bool) if cnew is None else cnew
    if old.kind == new.kind == "sparse":
        return _remap_sparse(old, new, rmap, cmap, rnew, cnew)
    i, j, t = new.coords()
    ex1 = np.ones(len(i), bool) if new.kind == "sparse" else new.exists(i, j, t)
    oi, oj = rmap[i], cmap[j]
    valid = ex1 & (oi >= 0) & (oj >= 0)
    src = np.full(len(i), -1, np.int64)
    if valid.any():
        vi, vj, vt = oi[valid], oj[valid], t[valid]
        p = old.pos(vi, vj, vt)
        p = np.where((p >= 0) & old.exists(vi, vj, vt), p, -1)
        src[valid] = p
    created = rnew[i] | cnew[j]
    state = np.where(created, -1, src)
    fresh = np.nonzero(ex1 & (src < 0))[0]
    out = Remap(src, state, fresh, cnew[j[fresh]], rnew[i[fresh]])
    split_cols = cnew & (cmap >= 0)
    if split_cols.any():
        templates = np.unique(cmap[split_cols])
        in_split = np.isin(cmap, templates) & (cmap >= 0)
        sel = np.nonzero(ex1 & in_split[j])[0]
        key = (i[sel] * (old.c + 1) + cmap[j[sel]]) * new.taps + t[sel]
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        factor = np.ones(len(i))
        factor[sel] = 1.0 / counts[inverse]
        out.factor = factor
    copied_rows = rnew & (rmap >= 0)
    if copied_rows.any():
        out.noisy = np.nonzero(ex1 & copied_rows[i] & (src >= 0))[0]
    return out


def _identity(m: np.ndarray, n: int) -> bool:
    return len(m) == n and bool((m == np.arange(n)).all())


def _remap_sparse(old, new, rmap, cmap, rnew, cnew) -> Remap:
    """:func:`remap` between two sparse layouts, which store existing connections only (the
    common path of connection edits at neuron level: one search per connection)."""
    c = max(new.c, 1)
    if (not rnew.any() and not cnew.any() and _identity(rmap, old.r) and _identity(cmap, old.c)
            and new.c == old.c):
        src = _find(old.keys, new.keys)
        fresh = np.flatnonzero(src < 0)
        zeros = np.zeros(len(fresh), bool)
        return Remap(src, src, fresh, zeros, zeros)
    i, j = new.keys // c, new.keys % c
    oi, oj = rmap[i], cmap[j]
    ok = (oi >= 0) & (oj >= 0)
    src = np.full(len(i), -1, np.int64)
    src[ok] = _find(old.keys, oi[ok] * old.c + oj[ok])
    created = rnew[i] | cnew[j]
    fresh = np.flatnonzero(src < 0)
    out = Remap(src, np.where(created, -1, src), fresh, cnew[j[fresh]], rnew[i[fresh]])
    split_cols = cnew & (cmap >= 0)
    if split_cols.any():
        templates = np.unique(cmap[split_cols])
        sel = np.flatnonzero(np.isin(cmap, templates)[j] & (cmap[j] >= 0))
        key = i[sel] * (old.c + 1) + cmap[j[sel]]
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        out.factor = np.ones(len(i))
        out.factor[sel] = 1.0 / counts[inverse]
    copied_rows = rnew & (rmap >= 0)
    if copied_rows.any():
        out.noisy = np.flatnonzero(copied_rows[i] & (src >= 0))
    return out


def entry_remap(old_mask, new_mask, rmap: np.ndarray, cmap: np.ndarray, taps: int = 1,
                rnew: np.ndarray | None = None, cnew: np.ndarray | None = None):
    """For each entry of ``new_mask``, the index of the old entry it continues, or ``-1``;
    and the same with ``-1`` for created entries (for optimizer state)."""
    if taps > 1:  # per-tap columns: map unit positions to column ranges
        t = np.arange(taps)
        cmap = np.where(cmap[:, None] >= 0, cmap[:, None] * taps + t, -1).reshape(-1)
        cnew = None if cnew is None else np.repeat(cnew, taps)
    keys = entry_keys(new_mask)
    c1, c0 = max(new_mask.shape[1], 1), old_mask.shape[1]
    i, j = keys // c1, keys % c1
    oi, oj = rmap[i], cmap[j]
    ok = (oi >= 0) & (oj >= 0)
    src = np.full(len(keys), -1, np.int64)
    src[ok] = _find(entry_keys(old_mask), oi[ok] * c0 + oj[ok])
    created = np.zeros(len(keys), bool)
    if rnew is not None:
        created |= rnew[i]
    if cnew is not None:
        created |= cnew[j]
    return src, np.where(created, -1, src)
