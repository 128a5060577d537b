"""Graph-side changes of the unit levels: add and remove units and connections, vectorized.

Every function checks all of its input first and changes the graph only when everything is
valid (then bumps its version once), so a failed edit leaves the graph as it was. Masks
are replaced by new canonical matrices, never changed in place. The edit records of
:mod:`supernet.edits.units` call these and then synchronize the compiled module.

Examples:
    >>> from supernet.units import mlp
    >>> from supernet.units.surgery import add_units, remove_units
    >>> g = mlp([3, 4, 2])
    >>> add_units(g, "h1", 2)["created"]["h1"].tolist()
    [4, 5]
    >>> remove_units(g, {"h1": [0, 4]})["h1"].tolist(), g.edge("x", "h1")["mask"].shape
    ([0, 4], (4, 3))
"""

from __future__ import annotations

import numpy as np

from supernet.errors import EditError
from supernet.ops.activations import ACTIVATIONS
from supernet.units.build import add_group, columns_per_unit, connect, units_of
from supernet.units.deps import Ties, close_units
from supernet.units.masks import (
    diagonal_mask,
    entry_keys,
    find,
    from_keys,
    full_mask,
    positions,
    sorted_unique,
)

__all__ = ["remove_units", "add_units", "remove_connections", "add_connections", "conn_keys",
           "insert_group", "INSERT_CONNECT"]

#: How :func:`insert_group` joins the new group to its source: every pair, or unit ``i`` to
#: unit ``i`` only.
INSERT_CONNECT = ("full", "diagonal")


def _per(graph, e) -> int:
    return columns_per_unit(graph, e)


def _reindex(mask, rowmap, colmap, shape):
    """Entries of ``mask`` moved by ``rowmap``/``colmap`` (old -> new position or -1)."""
    keys = entry_keys(mask)
    c0 = max(mask.shape[1], 1)
    rows, cols = rowmap[keys // c0], colmap[keys % c0]
    ok = (rows >= 0) & (cols >= 0)
    return from_keys(rows[ok] * shape[1] + cols[ok], shape)


def _tap_map(colmap, per):
    if per == 1:
        return colmap
    t = np.arange(per)
    return np.where(colmap[:, None] >= 0, colmap[:, None] * per + t, -1).reshape(-1)


def _group_case(graph, e, n_src, n_dst):
    g = e.get("groups", 1)
    if e.get("kind") != "conv" or g <= 1:
        return None
    return "whole" if n_src // g == 1 or n_dst // g == 1 else "offset"


# ---------------------------------------------------------------------- removal
def remove_units(graph, units: dict, tied: bool = True) -> dict[str, np.ndarray]:
    """Remove units (``{node: ids}``) and all their connections.

    With ``tied`` (default) every unit tied to a removed one goes too (see
    :mod:`supernet.units.deps`); otherwise a removal that would break a tie is refused.
    Returns the removed ids per node.
    """
    if not isinstance(units, dict) or not units:
        raise EditError("remove_units: give {node: [unit ids]} with at least one node")
    pos = {}
    for n, ids in units.items():
        graph.node(n)
        pos[n] = np.unique(positions(units_of(graph, n), ids, n))
    ties = Ties(graph)
    closed = close_units(graph, pos, ties)
    if not tied:
        for n, p in closed.items():
            extra = np.setdiff1d(p, pos.get(n, np.zeros(0, np.int64)))
            if len(extra):
                ids = units_of(graph, n)[extra][:8].tolist()
                raise EditError(
                    f"{graph.name}: removing these units breaks ties with node {n!r} unit(s) "
                    f"{ids} (residual add, concat or grouped conv); pass tied=True to remove "
                    "the whole dependency groups"
                )
    keep, new_units, removed = {}, {}, {}
    for n, p in closed.items():
        d = graph.nx.nodes[n]
        k = np.ones(len(d["units"]), bool)
        k[p] = False
        if not k.any() and d["kind"] == "units":
            raise EditError(
                f"{graph.name}: the edit would remove every unit of node {n!r}; keep at least "
                "one, or remove the node and its edges with graph.remove_node()"
            )
        keep[n] = k
        new_units[n] = d["units"][k]
        removed[n] = d["units"][p]
    masks, groups = {}, {}
    for u, v, e in graph.nx.edges(data=True):
        if u not in keep and v not in keep:
            continue
        n_src, n_dst = len(units_of(graph, u)), len(units_of(graph, v))
        ku = keep.get(u, np.ones(n_src, bool))
        kv = keep.get(v, np.ones(n_dst, bool))
        per = _per(graph, e)
        rowmap = np.where(kv, np.cumsum(kv) - 1, -1)
        colmap = _tap_map(np.where(ku, np.cumsum(ku) - 1, -1), per)
        shape = (int(kv.sum()), int(ku.sum()) * per)
        masks[(u, v)] = _reindex(e["mask"], rowmap, colmap, shape)
        case = _group_case(graph, e, n_src, n_dst)
        if case == "whole":
            g = e["groups"]
            groups[(u, v)] = shape[1] // per if n_src // g == 1 else shape[0]
    for n, ids in new_units.items():
        graph.set_node_attrs(n, units=ids)
    for (u, v), m in masks.items():
        graph.set_edge_attrs(u, v, mask=m)
    for (u, v), g in groups.items():
        graph.set_edge_attrs(u, v, groups=int(g))
    graph.touch()
    return removed


# ---------------------------------------------------------------------- creation
def add_units(graph, node: str, count: int, source=None, connect: str = "full") -> dict:
    """Add ``count`` units to ``node``, and to every node tied to it, as new dependency
    groups shaped like the group of a template unit (``source`` ids, one per new unit, for a
    copy; else the node's first unit, for structure only).

    Returns ``{"created": {node: new ids}, "templates": {node: template ids}}``.
    """
    d = graph.node(node)
    where = f"{graph.name}: node {node!r}"
    if d["kind"] == "input":
        raise EditError(f"{where} is an input; its units are the caller's features")
    if connect not in ("full", "none"):
        raise EditError(f"{where}: connect must be 'full' or 'none', got {connect!r}")
    if source is not None:
        tmpl = positions(d["units"], source, node)
        count = len(tmpl)
    elif count is None or int(count) < 1:
        raise EditError(f"{where}: add at least one unit (count >= 1)")
    else:
        count = int(count)
        tmpl = np.zeros(count, np.int64) if len(d["units"]) else None
    ties = Ties(graph)
    if tmpl is not None and ties.tied:
        members, inst = ties.members(ties.labels[ties.offsets[node] + tmpl])
    else:
        members = None
    per_node = _instances(graph, ties, node, count, tmpl, members, inst if members is not None
                          else None)
    for n in per_node:
        if graph.nx.nodes[n]["kind"] == "input":
            raise EditError(f"{where}: its units are tied to input {n!r}, whose units are the "
                            "caller's features; new units cannot join them")
    plan = {}
    for n, (tpos, inst_n) in per_node.items():
        nd = graph.nx.nodes[n]
        new_ids = nd["next_id"] + np.arange(len(tpos), dtype=np.int64)
        plan[n] = (new_ids, tpos, inst_n)
    masks, groups = {}, {}
    for u, v, e in graph.nx.edges(data=True):
        if u not in plan and v not in plan:
            continue
        masks[(u, v)], g = _grown_mask(graph, u, v, e, plan, source is not None, connect)
        if g is not None:
            groups[(u, v)] = g
    created, templates = {}, {}
    for n, (new_ids, tpos, _) in plan.items():
        nd = graph.nx.nodes[n]
        templates[n] = nd["units"][tpos] if tpos is not None else np.zeros(0, np.int64)
        graph.set_node_attrs(n, units=np.concatenate([nd["units"], new_ids]),
                             next_id=int(nd["next_id"] + len(new_ids)))
        created[n] = new_ids
    for (u, v), m in masks.items():
        graph.set_edge_attrs(u, v, mask=m)
    for (u, v), g in groups.items():
        graph.set_edge_attrs(u, v, groups=int(g))
    graph.touch()
    return {"created": created, "templates": templates}


def _instances(graph, ties, node, count, tmpl, members, inst):
    """``{node: (template positions or None, instance index)}`` of the units to create."""
    if members is None:
        return {node: (tmpl, np.arange(count))}
    out = {}
    nodes = ties.node_of[members]
    for i in np.unique(nodes):
        sel = nodes == i
        out[ties.nodes[i]] = (ties.pos_of[members[sel]], inst[sel])
    return out


def _grown_mask(graph, u, v, e, plan, split, connect):
    n_src, n_dst = len(units_of(graph, u)), len(units_of(graph, v))
    per = _per(graph, e)
    case = _group_case(graph, e, n_src, n_dst)
    if case == "offset":
        raise EditError(
            f"{graph.name}: edge {u}->{v} is a grouped conv with several units per group; "
            "units cannot be added to it one group at a time (use groups=1 or a depthwise conv)"
        )
    su = plan.get(u, (np.zeros(0, np.int64), None, np.zeros(0, np.int64)))
    sv = plan.get(v, (np.zeros(0, np.int64), None, np.zeros(0, np.int64)))
    a_src, a_dst = len(su[0]), len(sv[0])
    shape = (n_dst + a_dst, (n_src + a_src) * per)
    old = entry_keys(e["mask"])
    c0 = max(e["mask"].shape[1], 1)
    keys = [(old // c0) * shape[1] + old % c0]
    tied = e["kind"] == "identity" or case == "whole"
    if tied or split:
        # Copy the template pattern: a new row takes its template's row (new columns their
        # template's column); tie edges only join units created together.
        rowsrc = np.concatenate([np.arange(n_dst), sv[1] if sv[1] is not None else []])
        colsrc = np.concatenate([np.arange(n_src), su[1] if su[1] is not None else []])
        rowsrc, colsrc = rowsrc.astype(np.int64), _tap_map(colsrc.astype(np.int64), per)
        ri = np.concatenate([np.full(n_dst, -1), sv[2]]).astype(np.int64)
        ci = np.concatenate([np.full(n_src, -1), su[2]]).astype(np.int64)
        ci = np.repeat(ci, per)
        dense_rows = np.nonzero(ri >= 0)[0]
        dense_cols = np.nonzero(ci >= 0)[0]
        cand = []
        if tied:  # new x new of the same instance
            r = np.repeat(dense_rows, len(dense_cols))
            c = np.tile(dense_cols, len(dense_rows))
            same = ri[r] == ci[c]
            cand.append((r[same], c[same]))
        else:
            cand.append((np.repeat(dense_rows, shape[1]), np.tile(np.arange(shape[1]),
                                                                   len(dense_rows))))
            old_rows = np.arange(n_dst)
            cand.append((np.repeat(old_rows, len(dense_cols)), np.tile(dense_cols, n_dst)))
        for r, c in cand:
            if len(r):
                hit = _has(e["mask"], rowsrc[r], colsrc[c])
                keys.append(r[hit] * shape[1] + c[hit])
    elif connect == "full":
        new_rows = np.arange(n_dst, shape[0])
        new_cols = np.arange(n_src * per, shape[1])
        keys.append(np.repeat(new_rows, shape[1]) * shape[1] + np.tile(np.arange(shape[1]),
                                                                       len(new_rows)))
        keys.append(np.repeat(np.arange(n_dst), len(new_cols)) * shape[1]
                    + np.tile(new_cols, n_dst))
    g = None
    if case == "whole":
        g = e["groups"] + (a_src if n_src // e["groups"] == 1 else a_dst)
    return from_keys(np.concatenate(keys), shape), g


def _has(mask, rows, cols) -> np.ndarray:
    keys = entry_keys(mask)
    want = rows.astype(np.int64) * mask.shape[1] + cols.astype(np.int64)
    if len(keys) == 0:
        return np.zeros(len(want), bool)
    at = np.searchsorted(keys, want).clip(max=len(keys) - 1)
    return keys[at] == want


# ---------------------------------------------------------------------- connections
def conn_keys(graph, u, v, dst, src, taps=None):
    """Mask keys of connections given by unit ids (and kernel taps at neuron level)."""
    e = graph.edge(u, v)
    per = _per(graph, e)
    d = positions(units_of(graph, v), dst, v)
    s = positions(units_of(graph, u), src, u)
    if len(d) != len(s):
        raise EditError(f"{graph.name}: edge {u}->{v}: dst and src have different lengths "
                        f"({len(d)} and {len(s)}); give one (dst, src) pair per connection")
    if per > 1:
        if taps is None:
            raise EditError(f"{graph.name}: edge {u}->{v} is a neuron-level conv; give taps= "
                            f"(kernel positions 0..{per - 1}) with each connection")
        t = np.asarray(taps, dtype=np.int64).reshape(-1)
        if len(t) != len(d) or (len(t) and (t.min() < 0 or t.max() >= per)):
            raise EditError(f"{graph.name}: edge {u}->{v}: taps must be one int in "
                            f"[0, {per}) per connection")
        s = s * per + t
    elif taps is not None:
        raise EditError(f"{graph.name}: edge {u}->{v} holds whole kernels; taps= applies to "
                        "neuron-level conv edges only")
    return sorted_unique(d.astype(np.int64) * e["mask"].shape[1] + s)


def remove_connections(graph, u, v, dst, src, taps=None) -> int:
    """Remove connections ``(dst[k], src[k])`` of edge ``u -> v``; returns how many."""
    e = graph.edge(u, v)
    keys = conn_keys(graph, u, v, dst, src, taps)
    have = entry_keys(e["mask"])
    at = find(have, keys)
    found = at >= 0
    if not found.all():
        c = e["mask"].shape[1]
        bad = keys[~found][:4]
        raise EditError(f"{graph.name}: edge {u}->{v} has no connection at mask position(s) "
                        f"{[(int(k // c), int(k % c)) for k in bad]} (row, column); remove "
                        "only existing connections")
    gone = np.zeros(len(have), bool)
    gone[at] = True
    graph.set_edge_attrs(u, v, mask=from_keys(have[~gone], e["mask"].shape, unique=True))
    graph.touch()
    return len(keys)


def add_connections(graph, u, v, dst, src, taps=None) -> int:
    """Add connections ``(dst[k], src[k])`` to edge ``u -> v``; returns how many."""
    e = graph.edge(u, v)
    keys = conn_keys(graph, u, v, dst, src, taps)
    m = e["mask"]
    have = entry_keys(m)
    dup = find(have, keys) >= 0
    c = max(m.shape[1], 1)
    if dup.any():
        bad = keys[dup][:4]
        raise EditError(f"{graph.name}: edge {u}->{v} already has connection(s) at "
                        f"{[(int(k // c), int(k % c)) for k in bad]} (row, column)")
    rows, cols = keys // c, keys % c
    if e["kind"] == "identity":
        nr = np.bincount(np.concatenate([have // c, rows]), minlength=m.shape[0])
        nc = np.bincount(np.concatenate([have % c, cols]), minlength=c)
        if (nr > 1).any() or (nc > 1).any():
            raise EditError(f"{graph.name}: edge {u}->{v} is an identity (a matching); a unit "
                            "can be matched once: use a dense or conv edge to mix units")
    if e["kind"] == "conv" and e.get("groups", 1) > 1:
        per = _per(graph, e)
        g = e["groups"]
        s_in = len(units_of(graph, u)) // g
        s_out = len(units_of(graph, v)) // g
        if (rows // s_out != (cols // per) // s_in).any():
            raise EditError(f"{graph.name}: edge {u}->{v} is a grouped conv; new connections "
                            "must join units of the same group")
    graph.set_edge_attrs(u, v, mask=from_keys(np.concatenate([have, keys]), m.shape))
    graph.touch()
    return len(keys)


# ---------------------------------------------------------------------- a whole group
def insert_group(graph, u: str, v: str, name: str, act: str = "relu", connect_as: str = "full",
                 bias: bool = True) -> dict:
    """Put a new group ``name`` on edge ``u -> v``: ``u -> name -> v`` replaces it.

    ``name`` gets one unit per unit of ``u`` (ids ``0 .. n-1``, unit ``i`` standing for the
    ``i``-th unit of ``u``), the edge ``u -> name`` is dense (``connect_as="full"``: every
    pair; ``"diagonal"``: unit ``i`` to unit ``i`` only), and ``name -> v`` takes the mask,
    port and attributes of ``u -> v``, which goes. Only an ungated, unpooled dense edge
    between two groups can take a group in between.

    Returns ``{"node": name, "u": u, "v": v, "width": n}``.
    """
    where = f"{graph.name}: insert a group on edge {u}->{v}"
    for end in (u, v):
        graph.node(end)
    if not graph.nx.has_edge(u, v):
        edges = [f"{a}->{b}" for a, b, e in graph.nx.edges(data=True) if e["kind"] == "dense"]
        raise EditError(f"{where}: there is no such edge; the insertion point is a dense edge "
                        f"between two groups, one of {edges[:12]}")
    e = graph.nx.edges[u, v]
    if e["kind"] != "dense":
        raise EditError(f"{where}: the edge is of kind {e['kind']!r}; a group goes on a "
                        "'dense' edge only (identity and conv edges keep their pattern)")
    if e.get("pool") is not None:
        raise EditError(f"{where}: the edge pools its source ({e['pool']!r}); insert on an "
                        "unpooled edge")
    if e.get("gated"):
        raise EditError(f"{where}: the edge's connections are gated; decide them first "
                        "(discretize, or UngateConnections) and then insert")
    if not isinstance(name, str) or not name or name in graph.nx:
        raise EditError(f"{where}: the new group needs a new node name, got {name!r}"
                        + (" (it exists already)" if name in graph.nx else ""))
    if connect_as not in INSERT_CONNECT:
        raise EditError(f"{where}: connect must be one of {list(INSERT_CONNECT)}, got "
                        f"{connect_as!r}")
    if act not in ACTIVATIONS:
        raise EditError(f"{where}: act {act!r} is not one of {sorted(ACTIVATIONS)}")
    n = len(units_of(graph, u))
    if n == 0:
        raise EditError(f"{where}: {u!r} has no units; the new group would be empty")
    attrs = {k: val for k, val in e.items() if k not in ("mask", "kind", "gated", "port",
                                                         "pool")}
    mask, port = e["mask"], e.get("port")
    add_group(graph, name, n, act=act, bias=bias)
    inner = full_mask(n, n) if connect_as == "full" else diagonal_mask(n)
    connect(graph, u, name, "dense", mask=inner)
    graph.remove_edge(u, v)
    connect(graph, name, v, "dense", mask=mask, port=port, **attrs)
    graph.touch()
    return {"node": name, "u": u, "v": v, "width": n}
