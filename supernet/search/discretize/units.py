"""From gates and scores to edits: discretization, pruning at a target sparsity, regrowth.

Gate groups live in ``module.arch``: ``(n, 2)`` logits (keep, drop) per gated node and
``(nnz, 2)`` per gated edge (connections in mask order). :func:`set_gated` turns them on,
:func:`decision_edits` turns a discrete decision into edits, :func:`prune` turns scores and a
sparsity into edits that leave exactly ``total - round(sparsity * total)`` connections (or
dependency groups of units), and :func:`grow` turns gradient scores into zero-initialized
connections (RigL). Scores come from :mod:`supernet.search.scores`.

Examples:
    >>> import numpy as np
    >>> from supernet.edits import Editor
    >>> from supernet.units import mlp
    >>> from supernet.search.discretize.units import prune
    >>> g = mlp([10, 20, 5], seed=0)
    >>> scores = {"x->h1": np.arange(200.0), "h1->y": np.arange(100.0)}
    >>> ed = Editor(g)
    >>> for edit in prune(g, scores, 0.9):
    ...     _ = ed.apply(edit)
    >>> g.edge("x->h1".split("->")[0], "h1")["mask"].nnz + g.edge("h1", "y")["mask"].nnz
    30
"""

from __future__ import annotations

import numpy as np
import torch

from supernet.edits.units import AddConnections, RemoveConnections, RemoveUnits
from supernet.errors import EditError
from supernet.units.build import check_unit_graph, columns_per_unit, connection_ids, edge_key
from supernet.units.deps import Ties
from supernet.units.masks import block_mask, entry_keys

__all__ = ["set_gated", "decision_edits", "prune", "grow", "connection_ids"]


def set_gated(graph, units=(), connections=(), gated: bool = True) -> None:
    """Give nodes ``units`` per-unit gates and edges ``connections`` per-connection gates."""
    check_unit_graph(graph, "set_gated")
    for n in units:
        if graph.node(n)["kind"] != "units":
            raise EditError(f"{graph.name}: node {n!r} is an input; gate computed units only")
        graph.set_node_attrs(n, gated=bool(gated))
    for u, v in connections:
        graph.set_edge_attrs(u, v, gated=bool(gated))
    graph.touch()


def _split_key(graph, key):
    for u, v in graph.nx.edges:
        if edge_key(u, v) == key:
            return u, v
    return None


def _removals(graph, drop: dict) -> list:
    """Edits removing connections ``{edge key: entry indices}`` and units ``{node: positions}``."""
    edits = []
    for key, idx in drop.items():
        uv = _split_key(graph, key)
        if uv is None or len(idx) == 0:
            continue
        dst, src, tp = connection_ids(graph, *uv, idx)
        edits.append(RemoveConnections(uv[0], uv[1], dst.tolist(), src.tolist(),
                                       None if tp is None else tp.tolist()))
    return edits


def decision_edits(module, choice: dict | None = None, keep_one: bool = True) -> list:
    """Edits applying a discrete decision: units and connections whose choice is 1 (drop)
    are removed.

    Args:
        choice: gate key -> ``(n,)`` indices (0 keep, 1 drop); default: the relaxation's
            :meth:`~supernet.gates.Relaxation.discrete` of each group (argmax).
        keep_one: keep the unit with the largest keep logit of a node whose every unit
            would be dropped (a node cannot lose all its units).
    """
    graph = module.graph
    groups = module.gate_groups()
    if choice is None:
        relax = module.relaxation
        choice = {k: (relax.discrete(a) if relax is not None else a.argmax(-1))
                  for k, a in module.arch.items() if k in groups}
    conns, units = {}, {}
    for key, pick in choice.items():
        if key not in groups:
            raise EditError(f"{graph.name}: no gate group {key!r}; groups: {sorted(groups)}")
        pick = torch.as_tensor(pick).detach().cpu().numpy().reshape(-1)
        what, where = groups[key]
        drop = np.nonzero(pick == 1)[0]
        if what == "connections":
            conns[edge_key(*where)] = drop
        elif len(drop):
            if keep_one and len(drop) == len(pick):
                alpha = module.arch[key].detach()
                best = int((alpha[:, 0] - alpha[:, 1]).argmax())
                drop = drop[drop != best]
            if len(drop):
                units[where] = graph.nx.nodes[where]["units"][drop].tolist()
    edits = _removals(graph, conns)
    if units:
        edits.append(RemoveUnits(units))
    return edits


def _array(s) -> np.ndarray:
    if torch.is_tensor(s):
        s = s.detach().cpu().numpy()
    return np.asarray(s, dtype=np.float64)


def _order(values: np.ndarray) -> np.ndarray:
    """Indices sorting ``values`` ascending, ties broken by position (deterministic)."""
    return np.argsort(values, kind="stable")


def prune(graph, scores: dict, sparsity: float, what: str = "connections",
          scope: str = "global") -> list:
    """Edits removing the lowest-scored connections (or units) at ``sparsity``.

    Args:
        scores: edge key -> one score per mask entry (``what="connections"``), or node ->
            one score per unit (``what="units"``). Only the keys given are pruned.
        sparsity: fraction removed: exactly ``round(sparsity * total)`` entries, with
            ``total`` over all scored edges (``scope="global"``) or per edge/node
            (``scope="layer"``). Units tied together are scored and removed as one
            dependency group (the sum of their scores).
    """
    check_unit_graph(graph, "prune")
    if not 0.0 <= sparsity <= 1.0:
        raise EditError(f"sparsity must be in [0, 1], got {sparsity}")
    if what not in ("connections", "units") or scope not in ("global", "layer"):
        raise EditError("prune: what is 'connections' or 'units', scope 'global' or 'layer'")
    arrays = {k: _array(s).reshape(-1) for k, s in scores.items()}
    if what == "units":
        return _prune_units(graph, arrays, sparsity, scope)
    for key, s in arrays.items():
        uv = _split_key(graph, key)
        if uv is None:
            raise EditError(f"{graph.name}: scores name unknown edge {key!r}")
        if len(s) != graph.edge(*uv)["mask"].nnz:
            raise EditError(f"{graph.name}: edge {key}: {len(s)} scores for "
                            f"{graph.edge(*uv)['mask'].nnz} connections (one per mask entry)")
    drop = {}
    if scope == "layer":
        for key, s in arrays.items():
            drop[key] = np.sort(_order(s)[:int(round(sparsity * len(s)))])
    else:
        keys = list(arrays)
        flat = np.concatenate([arrays[k] for k in keys]) if keys else np.zeros(0)
        owner = np.repeat(np.arange(len(keys)), [len(arrays[k]) for k in keys])
        starts = np.concatenate([[0], np.cumsum([len(arrays[k]) for k in keys])])
        chosen = _order(flat)[:int(round(sparsity * len(flat)))]
        for i, key in enumerate(keys):
            sel = chosen[owner[chosen] == i]
            drop[key] = np.sort(sel - starts[i])
    return _removals(graph, drop)


def _prune_units(graph, arrays, sparsity, scope):
    ties = Ties(graph)
    labels, score = [], []
    for n, s in arrays.items():
        d = graph.node(n)
        if d["kind"] != "units" or len(s) != len(d["units"]):
            raise EditError(f"{graph.name}: node {n!r}: give one score per unit of a computed "
                            f"node ({len(d['units'])}), got {len(s)}")
        labels.append(ties.labels[ties.offsets[n] + np.arange(len(s))])
        score.append(s)
    lab = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    sc = np.concatenate(score) if score else np.zeros(0)
    uniq, inv = np.unique(lab, return_inverse=True)
    total = np.zeros(len(uniq))
    np.add.at(total, inv, sc)
    if scope == "global":
        chosen = uniq[_order(total)[:int(round(sparsity * len(uniq)))]]
    else:
        chosen, start = [], 0
        for s in score:
            local = np.unique(lab[start:start + len(s)])
            loc_total = total[np.searchsorted(uniq, local)]
            chosen.append(local[_order(loc_total)[:int(round(sparsity * len(local)))]])
            start += len(s)
        chosen = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    members, _ = ties.members(np.unique(chosen))
    units = {n: graph.nx.nodes[n]["units"][p].tolist() for n, p in ties.split(members).items()}
    return [RemoveUnits(units)] if units else []


def grow(graph, scores: dict, count, init: str = "zero") -> list:
    """Edits adding the missing connections with the largest scores (RigL regrowth).

    Args:
        scores: edge key -> dense array of the mask's shape (e.g. ``|gradient|`` from
            :func:`supernet.search.scores.gradient`); existing connections are skipped.
        count: connections to add, an int per edge (dict) or one int for every edge.
        init: ``"zero"`` (RigL: new connections start at zero) or ``"random"``.
    """
    check_unit_graph(graph, "grow")
    edits = []
    for key, s in scores.items():
        uv = _split_key(graph, key)
        if uv is None:
            raise EditError(f"{graph.name}: scores name unknown edge {key!r}")
        m = graph.edge(*uv)["mask"]
        s = _array(s)
        if s.shape != m.shape:
            raise EditError(f"{graph.name}: edge {key}: grow scores have shape {s.shape}, the "
                            f"mask {m.shape}")
        k = count.get(key, 0) if isinstance(count, dict) else int(count)
        e = graph.edge(*uv)
        per = columns_per_unit(graph, e)
        flat = s.reshape(-1).copy()
        if e["kind"] == "conv" and e.get("groups", 1) > 1:  # only within groups
            allowed = np.zeros(flat.size, bool)
            allowed[entry_keys(block_mask(m.shape[0], m.shape[1] // per, e["groups"], per))] = True
            flat[~allowed] = -np.inf
        elif e["kind"] == "identity":
            raise EditError(f"{graph.name}: edge {key} is an identity; it has no weights to grow")
        flat[entry_keys(m)] = -np.inf
        missing = int(np.isfinite(flat).sum())
        k = min(k, missing)
        if k <= 0:
            continue
        top = np.argsort(-flat, kind="stable")[:k]
        c = max(m.shape[1], 1)
        rows, cols = top // c, top % c
        dst = graph.nx.nodes[uv[1]]["units"][rows]
        src = graph.nx.nodes[uv[0]]["units"][cols // per]
        tp = (cols % per).tolist() if per > 1 else None
        edits.append(AddConnections(uv[0], uv[1], dst.tolist(), src.tolist(), tp, init=init))
    return edits
