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

import difflib

import numpy as np
import torch

from supernet.edits.units import AddConnections, RemoveConnections, RemoveUnits
from supernet.errors import EditError
from supernet.units.build import check_unit_graph, columns_per_unit, connection_ids, edge_key
from supernet.units.deps import Ties
from supernet.units.masks import block_mask, entry_keys

__all__ = ["connection_ids", "decision_edits", "grow", "prune", "set_gated"]


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


def _unknown_key(graph, key, known, what: str) -> EditError:
    close = difflib.get_close_matches(str(key), [str(k) for k in known], n=3, cutoff=0.5)
    maybe = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    return EditError(f"{graph.name}: scores name {key!r}, which is no {what} of this graph"
                     f"{maybe} ({what}s: {', '.join(map(str, known))})")


def _floor(floor, n: int, where: str) -> int:
    """Entries that must stay of ``n``: ``floor`` itself (an int) or ``ceil(floor * n)``."""
    if isinstance(floor, bool) or not isinstance(floor, (int, float, np.integer, np.floating)):
        raise EditError(f"prune: floor is an int count or a fraction in [0, 1), got {floor!r}")
    if isinstance(floor, (float, np.floating)):
        if not 0.0 <= floor < 1.0:
            raise EditError(f"prune: a fractional floor must be in [0, 1), got {floor}")
        return min(n, int(np.ceil(floor * n)))
    if floor < 0:
        raise EditError(f"prune: floor must be >= 0, got {floor}")
    return min(n, int(floor))


def prune(graph, scores: dict, sparsity: float, what: str = "connections",
          scope: str = "global", *, protect=None, floor=1) -> list:
    """Edits removing the lowest-scored connections (or units) at ``sparsity``.

    Args:
        scores: ``what="connections"``: edge key ``"u->v"`` -> one score per mask entry
            (e.g. :func:`supernet.search.scores.magnitude`). ``what="units"``: node -> one
            score per unit (``magnitude(net, what="units")``, ``taylor``), or edge keys with
            one score per connection, summed into the unit each connection enters (so
            ``|w|`` scores become the L1 norm of a unit's incoming weights). Only what is
            scored is pruned; a key that names nothing of ``graph`` fails, naming it.
        sparsity: fraction removed, in ``[0, 1)``: exactly ``round(sparsity * total)``
            connections, with ``total`` over everything scored (``scope="global"``) or per
            edge (``scope="layer"``). For units the count is of scored units, over all of
            them or per node; units tied together (:mod:`supernet.units.deps`) go as one
            dependency group, ranked by the mean score of its units, and a group that would
            overshoot the count is passed over for smaller ones, so the count is met
            exactly where the groups allow and never exceeded. A group also removes the
            tied units of other nodes, which count towards those nodes under
            ``scope="layer"``.
        protect: nodes never pruned when ``what="units"`` (a dependency group touching one
            stays whole); default the graph's inputs and outputs, so that a classifier
            keeps its logits. Pass ``()`` to prune every scored node.
        floor: what every edge (connections) or node (units) keeps at least: a count, or a
            fraction in ``[0, 1)`` of its current size; the default 1 never empties a
            layer. Under the global scope the lowest scores go except where a layer is at
            its floor; if the floors leave too little to remove, the call fails.
    """
    check_unit_graph(graph, "prune")
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float, np.integer,
                                                               np.floating)) \
            or not 0.0 <= float(sparsity) < 1.0:
        raise EditError(f"prune: sparsity must be in [0, 1), got {sparsity!r}")
    if what not in ("connections", "units"):
        raise EditError(f"prune: what is 'connections' or 'units', got {what!r}")
    if scope not in ("global", "layer"):
        raise EditError(f"prune: scope is 'global' or 'layer', got {scope!r}")
    if not isinstance(scores, dict) or not scores:
        raise EditError("prune: scores is a non-empty dict of edge keys or node names")
    arrays = {k: _array(s).reshape(-1) for k, s in scores.items()}
    if what == "units":
        return _prune_units(graph, arrays, float(sparsity), scope, protect, floor)
    return _removals(graph, _pick(graph, _edge_scores(graph, arrays), float(sparsity), scope,
                                  floor))


def _edge_scores(graph, arrays: dict) -> dict:
    """``arrays`` checked against the graph's edges: one score per mask entry."""
    edges = {edge_key(u, v): (u, v) for u, v in graph.nx.edges}
    for key, s in arrays.items():
        if key not in edges:
            raise _unknown_key(graph, key, list(edges), "edge")
        nnz = graph.edge(*edges[key])["mask"].nnz
        if len(s) != nnz:
            raise EditError(f"{graph.name}: edge {key}: {len(s)} scores for {nnz} connections "
                            f"(one per mask entry)")
    return arrays


def _pick(graph, arrays: dict, sparsity: float, scope: str, floor) -> dict:
    """``{key: sorted entry indices}`` to remove: the lowest scores, floors respected."""
    keys = list(arrays)
    lows = {k: _floor(floor, len(arrays[k]), k) for k in keys}
    drop = {}
    if scope == "layer":
        for k in keys:
            n = len(arrays[k])
            take = min(round(sparsity * n), n - lows[k])
            drop[k] = np.sort(_order(arrays[k])[:take])
        return drop
    sizes = [len(arrays[k]) for k in keys]
    flat = np.concatenate([arrays[k] for k in keys]) if keys else np.zeros(0)
    owner = np.repeat(np.arange(len(keys)), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    want = round(sparsity * len(flat))
    room = np.array([n - lows[k] for k, n in zip(keys, sizes)], np.int64)
    chosen = _order(flat)[:want]
    taken = np.bincount(owner[chosen], minlength=len(keys))
    if (taken > room).any():  # some layers hit their floor: walk the ranking, skip them
        picked, left = [], room.copy()
        for i in _order(flat):
            if len(picked) == want:
                break
            if left[owner[i]] > 0:
                picked.append(i)
                left[owner[i]] -= 1
        if len(picked) < want:
            raise EditError(f"{graph.name}: cannot remove {want} of {len(flat)} entries at "
                            f"sparsity {sparsity}: the floor of {floor!r} per layer leaves "
                            f"{int(room.sum())} removable")
        chosen = np.asarray(picked, np.int64)
    for i, k in enumerate(keys):
        sel = chosen[owner[chosen] == i]
        drop[k] = np.sort(sel - starts[i])
    return drop


def _unit_arrays(graph, arrays: dict) -> dict:
    """Unit scores by node; edge-keyed connection scores summed into destination units."""
    edges = {edge_key(u, v): (u, v) for u, v in graph.nx.edges}
    by_edge = [k for k in arrays if not graph.nx.has_node(k) and (k in edges or "->" in str(k))]
    if by_edge and len(by_edge) < len(arrays):
        raise EditError(f"{graph.name}: unit scores are keyed by node or all by edge, got both "
                        f"(edges {by_edge[:3]}, nodes "
                        f"{[k for k in arrays if k not in by_edge][:3]})")
    if not by_edge:
        return arrays
    out = {}
    for key, s in _edge_scores(graph, arrays).items():
        u, v = edges[key]
        mask = graph.edge(u, v)["mask"]
        rows = np.repeat(np.arange(mask.shape[0]), np.diff(mask.indptr))
        acc = out.setdefault(v, np.zeros(mask.shape[0]))
        np.add.at(acc, rows, s)
    return out


def _prune_units(graph, arrays, sparsity, scope, protect, floor):
    arrays = _unit_arrays(graph, arrays)
    nodes = list(graph.nx.nodes)
    for n in arrays:
        if not graph.nx.has_node(n):
            raise _unknown_key(graph, n, nodes, "node")
    protect = set(graph.inputs) | set(graph.outputs) if protect is None else set(protect)
    for n in protect:
        if not graph.nx.has_node(n):
            raise _unknown_key(graph, n, nodes, "node")
    ties = Ties(graph)
    frozen = set()  # dependency groups with a protected unit
    for n in protect:
        frozen.update(ties.labels[ties.offsets[n] + np.arange(len(graph.nx.nodes[n]["units"]))]
                      .tolist())
    labels, score, named = [], [], []
    for n, s in arrays.items():
        if n in protect:
            continue
        d = graph.node(n)
        if d["kind"] != "units" or len(s) != len(d["units"]):
            raise EditError(f"{graph.name}: node {n!r}: give one score per unit of a computed "
                            f"node ({len(d['units'])}), got {len(s)}")
        labels.append(ties.labels[ties.offsets[n] + np.arange(len(s))])
        score.append(s)
        named.append(n)
    lab = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    sc = np.concatenate(score) if score else np.zeros(0)
    keep = ~np.isin(lab, np.fromiter(frozen, np.int64, len(frozen)))
    lab, sc = lab[keep], sc[keep]
    uniq, inv = np.unique(lab, return_inverse=True)
    scored = np.bincount(inv, minlength=len(uniq))  # scored units of every group
    mean = np.zeros(len(uniq))
    np.add.at(mean, inv, sc)
    mean = mean / np.maximum(scored, 1)  # a group ranks by its units' mean score
    # units of every node each group holds, for the floors and the per-node counts
    members, group = ties.members(uniq)
    node_idx = ties.node_of[members]
    span = [{} for _ in uniq]
    for gidx, i in zip(group.tolist(), node_idx.tolist()):
        span[gidx][i] = span[gidx].get(i, 0) + 1
    left = {}
    for i in np.unique(node_idx).tolist():
        n = len(graph.nx.nodes[ties.nodes[i]]["units"])
        left[i] = n - _floor(floor, n, ties.nodes[i])
    chosen, blocked = set(), False

    def fits(gidx) -> bool:
        nonlocal blocked
        ok = all(left[i] >= c for i, c in span[gidx].items())
        blocked |= not ok
        return ok

    def take(gidx) -> None:
        chosen.add(gidx)
        for i, c in span[gidx].items():
            left[i] -= c

    if scope == "global":
        want, done = round(sparsity * len(lab)), 0
        for gidx in _order(mean).tolist():
            if done == want:
                break
            if done + scored[gidx] <= want and fits(gidx):
                take(gidx)
                done += int(scored[gidx])
        if done < want and blocked:
            raise EditError(f"{graph.name}: cannot remove {want} of {len(lab)} units at "
                            f"sparsity {sparsity}: the floor of {floor!r} per node leaves "
                            f"{done} removable")
    else:
        removed = {}  # units of each node gone with the groups chosen so far
        index = {n: k for k, n in enumerate(ties.nodes)}
        mine = {index[n]: lab_n[np.isin(lab_n, uniq)] for n, lab_n in zip(named, labels)}
        wants = {i: round(sparsity * len(m)) for i, m in mine.items()}

        def within(gidx) -> bool:  # no scored node past its own count
            return all(removed.get(j, 0) + c <= wants[j] for j, c in span[gidx].items()
                       if j in wants)

        for i, m in mine.items():
            local = np.unique(np.searchsorted(uniq, m))
            for gidx in local[_order(mean[local])].tolist():
                if removed.get(i, 0) >= wants[i]:
                    break
                if gidx not in chosen and within(gidx) and fits(gidx):
                    take(gidx)
                    for j, c in span[gidx].items():
                        removed[j] = removed.get(j, 0) + c
    if not chosen:
        return []
    members, _ = ties.members(uniq[np.asarray(sorted(chosen), np.int64)])
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
