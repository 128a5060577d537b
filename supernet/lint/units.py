"""Lint of channel- and neuron-level graphs (registered with :func:`supernet.lint.register_lint`).

Every problem names the node or edge at fault and how to fix it. The checks are vectorized,
so linting a graph of millions of connections is cheap.

Examples:
    >>> import numpy as np
    >>> from supernet import lint
    >>> from supernet.units import mlp
    >>> g = mlp([3, 4, 2])
    >>> g.node("h1")["units"] = np.array([0, 1, 1, 2])
    >>> lint(g)
    Traceback (most recent call last):
    ...
    supernet.errors.LintError: mlp: 1 problem(s) found
      - mlp: node 'h1' lists unit id(s) [1] more than once; give each unit its own id ...
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from supernet.errors import UnknownNameError
from supernet.lint.base import _reachability, register_lint
from supernet.ops.activations import resolve_activation
from supernet.units.build import EDGE_KINDS, NORMS, UNIT_LEVELS, columns_per_unit, normalize_pool
from supernet.units.masks import block_mask

__all__ = ["lint_units"]


def lint_units(graph, bind=None) -> list[str]:
    """All problems of a unit-level graph, as messages (empty when it is valid).

    ``bind`` is accepted as by every lint rule and unused: unit graphs have no symbols."""
    problems, sizes = [], {}
    for n, d in graph.nx.nodes(data=True):
        where = f"{graph.name}: node {n!r}"
        try:
            found = _node(graph, n, d, where)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            found = [f"{where}: malformed attributes ({exc!r}); rebuild it with add_group()"]
        problems += found
        if not found:
            sizes[n] = len(d["units"])
    for u, v, e in graph.nx.edges(data=True):
        where = f"{graph.name}: edge {u}->{v}"
        if u not in sizes or v not in sizes:
            continue  # its nodes are reported already
        try:
            problems += _edge(graph, u, v, e, sizes, where)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            problems.append(f"{where}: malformed attributes ({exc!r}); rebuild it with connect()")
    return problems + _reachability(graph)


def _node(graph, n, d, where) -> list[str]:
    kind = d.get("kind")
    if kind not in ("input", "units"):
        return [f"{where} has kind {kind!r}; unit-level nodes are 'input' or 'units' "
                "(add them with add_input / add_group)"]
    ids = d.get("units")
    if not isinstance(ids, np.ndarray) or ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        return [f"{where}: 'units' must be a 1-D integer numpy array of unit ids, got "
                f"{type(ids).__name__}"]
    out = []
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1][:8].tolist()
        out.append(f"{where} lists unit id(s) {dup} more than once; give each unit its own id "
                   f"(the next free id is {int(ids.max()) + 1})")
    if len(ids) and ids.min() < 0:
        out.append(f"{where} has negative unit ids; ids are integers >= 0")
    nxt = d.get("next_id")
    if not isinstance(nxt, (int, np.integer)) or (len(ids) and nxt <= ids.max()):
        top = int(ids.max()) + 1 if len(ids) else 0
        out.append(f"{where}: next_id {nxt!r} must be an int above every unit id; set it to {top}")
    if kind == "input":
        width = d.get("width")
        if not isinstance(width, (int, np.integer)) or width < 0:
            out.append(f"{where}: an input needs width= (the caller's tensor width), got {width!r}")
        elif len(ids) and ids.max() >= width:
            out.append(f"{where}: unit ids index the caller's tensor of width {width}, but the "
                       f"largest is {int(ids.max())}; drop it or widen the input")
        if graph.nx.in_degree(n):
            out.append(f"{where} is an input but has in-edges; inputs are fed by the caller")
        return out
    try:
        resolve_activation(d.get("act", "identity"), where)
    except UnknownNameError as exc:
        out.append(str(exc))
    if d.get("norm") not in NORMS:
        out.append(f"{where}: norm {d.get('norm')!r} is not one of {list(NORMS)}")
    if not isinstance(d.get("bias", True), (bool, np.bool_)):
        out.append(f"{where}: bias must be True or False, got {d.get('bias')!r}")
    return out


def _edge(graph, u, v, e, sizes, where) -> list[str]:
    kind = e.get("kind")
    if kind not in EDGE_KINDS:
        return [f"{where} has kind {kind!r}; choose one of {list(EDGE_KINDS)}"]
    out, per = [], 1
    if kind == "conv":
        out += _conv(e, sizes[u], sizes[v], where)
        if out:
            return out
        per = columns_per_unit(graph, e)
    try:
        normalize_pool(e.get("pool"), where)
    except Exception as exc:  # noqa: BLE001 (normalize_pool raises GraphError with the fix)
        out.append(str(exc))
    m = e.get("mask")
    expected = (sizes[v], sizes[u] * per)
    if not sp.issparse(m) or m.ndim != 2:
        return out + [f"{where}: mask must be a scipy.sparse matrix of shape {expected}, got "
                      f"{type(m).__name__}; build it with connect()"]
    if tuple(m.shape) != expected:
        detail = f" x {per} kernel taps" if per > 1 else ""
        return out + [f"{where}: mask has shape {tuple(m.shape)} but {v!r} has {sizes[v]} units "
                      f"and {u!r} has {sizes[u]}{detail} (expected {expected}); rebuild the mask "
                      "or fix the unit lists"]
    if m.dtype != bool:
        out.append(f"{where}: mask has dtype {m.dtype}; masks are boolean (use m.astype(bool))")
    if m.format != "csr" or not m.has_canonical_format:
        out.append(f"{where}: mask is not a canonical CSR matrix; pass it through "
                   "supernet.units.masks.canonical()")
        return out
    if kind == "identity":
        rows = np.diff(m.indptr)
        cols = np.bincount(m.indices, minlength=m.shape[1])
        if (rows > 1).any() or (cols > 1).any():
            out.append(f"{where}: an identity mask is a matching (one entry per row and column "
                       "at most); use a dense or conv edge to mix units")
    if kind == "conv" and e["groups"] > 1:
        allowed = block_mask(sizes[v], sizes[u], e["groups"], per)
        outside = m.nnz - m.multiply(allowed).nnz
        if outside:
            out.append(f"{where}: {outside} connection(s) lie outside the {e['groups']} groups; "
                       "a grouped conv only connects units of the same group")
    return out


def _conv(e, n_src, n_dst, where) -> list[str]:
    k = e.get("kernel")
    if not isinstance(k, list) or len(k) not in (1, 2) or not all(
            isinstance(x, (int, np.integer)) and x >= 1 for x in k):
        return [f"{where}: kernel {k!r} is not a list of 1 or 2 positive ints (e.g. [3, 3])"]
    out = []
    for name, low in (("stride", 1), ("padding", 0), ("dilation", 1)):
        val = e.get(name)
        if not isinstance(val, list) or len(val) != len(k) or not all(
                isinstance(x, (int, np.integer)) and x >= low for x in val):
            out.append(f"{where}: {name} {val!r} must be a list of {len(k)} ints >= {low}")
    g = e.get("groups", 1)
    if not isinstance(g, (int, np.integer)) or g < 1 or n_src % g or n_dst % g:
        out.append(f"{where}: groups={g!r} must be an int dividing both widths "
                   f"({n_src} -> {n_dst} units); remove units group by group")
    return out


for _level in UNIT_LEVELS:
    register_lint(_level)(lint_units)
