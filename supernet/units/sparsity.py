"""How a global sparsity is shared among the blocks of a network: Erdős–Rényi(-Kernel).

Evci, Gale, Menick, Castro and Elsen, "Rigging the Lottery: Making All Tickets Winners"
(ICML 2020), Section 3 ("Sparsity distribution"), after Mocanu et al. (2018): the density
of block ``l`` is proportional to

    ``(n_in + n_out) / (n_in n_out)``                       (Erdős–Rényi, a dense layer)
    ``(n_in + n_out + k_h + k_w) / (n_in n_out k_h k_w)``   (Erdős–Rényi-Kernel, a conv)

with the common factor ``ε`` solved so that the whole network has the asked number of
connections; a block whose density would exceed one is made dense and ``ε`` is solved
again on the others (as the reference code does). Small blocks (the first and last layers
of an MLP) are kept denser than large ones, where uniform sparsity gives every block the
same density.

:func:`erk_counts` returns whole connection counts whose sum is exactly
``round(density * total)`` (largest remainders get the rounding), and :func:`erk_densities`
the same counts over the block sizes, which :func:`supernet.units.mlp` takes per block.

Examples:
    >>> shapes = [(100, 40), (100, 100), (10, 100)]       # the 40-100-100-10 MLP
    >>> counts = erk_counts(shapes, 0.1)
    >>> counts, sum(counts) == round(0.1 * (4000 + 10000 + 1000))
    ([467, 666, 367], True)
    >>> [round(d, 4) for d in erk_densities(shapes, 0.1)]
    [0.1168, 0.0666, 0.367]
"""

from __future__ import annotations

import math

import numpy as np

from supernet.errors import ConfigError

__all__ = ["erk_counts", "erk_densities", "block_shapes"]


def block_shapes(graph) -> list[tuple[int, ...]]:
    """``(n_dst, n_src)`` of every dense or conv block of a unit graph (in edge order) --
    ``(n_dst, n_src / groups, k_h, k_w)`` for a conv -- the shapes :func:`erk_counts`
    takes."""
    out = []
    for u, v, e in graph.nx.edges(data=True):
        if e["kind"] == "identity":
            continue
        n_dst, n_src = len(graph.nx.nodes[v]["units"]), len(graph.nx.nodes[u]["units"])
        if e["kind"] == "conv":
            out.append((n_dst, n_src // e.get("groups", 1), *e["kernel"]))
        else:
            out.append((n_dst, n_src))
    return out


def _check(shapes, density):
    if isinstance(density, bool) or not isinstance(density, (int, float)) \
            or not 0.0 < density <= 1.0:
        raise ConfigError(f"erk: density must be in (0, 1], got {density!r}")
    shapes = [tuple(int(d) for d in s) for s in shapes]
    for i, s in enumerate(shapes):
        if len(s) < 2 or min(s) < 1:
            raise ConfigError(f"erk: block {i} has shape {s}; give (n_out, n_in) or "
                              "(n_out, n_in, k_h, k_w) with positive sizes")
    if not shapes:
        raise ConfigError("erk: no block to share the connections among")
    return shapes


def erk_counts(shapes, density: float) -> list[int]:
    """Connections per block under Erdős–Rényi(-Kernel) at overall ``density``.

    Args:
        shapes: one shape per block, ``(n_out, n_in)`` or ``(n_out, n_in, k_h, k_w)``.
        density: fraction of all connections kept, in ``(0, 1]``.

    Returns:
        One count per block, each at most the block's size, summing to
        ``round(density * total)``.
    """
    shapes = _check(shapes, density)
    size = np.array([math.prod(s) for s in shapes], dtype=np.float64)
    raw = np.array([sum(s) / math.prod(s) for s in shapes], dtype=np.float64)
    want = round(float(density * size.sum()))
    dense = np.zeros(len(shapes), bool)
    while True:
        left = want - size[dense].sum()
        eps = left / float((raw * size)[~dense].sum()) if (~dense).any() else 0.0
        over = ~dense & (eps * raw > 1.0)
        if not over.any():
            break
        dense[np.flatnonzero(over)[np.argmax(raw[over])]] = True
    exact = np.where(dense, size, eps * raw * size)
    counts = np.minimum(np.floor(exact + 1e-9), size).astype(np.int64)
    short = want - int(counts.sum())
    frac = np.where(counts < size, exact - counts, -np.inf)
    for i in np.argsort(-frac, kind="stable")[:max(short, 0)]:
        counts[i] += 1
    return [int(c) for c in counts]


def erk_densities(shapes, density: float) -> list[float]:
    """The densities of :func:`erk_counts` (count over block size), one per block."""
    counts = erk_counts(shapes, density)
    return [c / math.prod(tuple(int(d) for d in s)) for c, s in zip(counts, shapes)]
