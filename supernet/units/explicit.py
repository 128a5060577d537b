"""The explicit view: one networkx node per unit, one edge per connection, made on demand.

A unit graph keeps connectivity as sparse blocks; this view is for inspection, drawing and
graph algorithms on small networks. It costs one Python object per unit and per connection,
so build it only when it fits in memory.

Examples:
    >>> from supernet.units import mlp, explicit
    >>> g = mlp([3, 4, 2], density=1.0)
    >>> view = explicit(g)
    >>> view.number_of_nodes(), view.number_of_edges()
    (9, 20)
    >>> view.edges[("x", 0), ("h1", 0)]["block"]
    'x->h1'
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from supernet.units.build import check_unit_graph, columns_per_unit, edge_key
from supernet.units.masks import entry_keys

__all__ = ["explicit"]


def explicit(graph) -> nx.DiGraph:
    """The unit-level view of ``graph``.

    Nodes are ``(group, unit_id)`` with attributes ``group``, ``unit``, ``kind`` and (for
    computed units) ``act``. Edges carry ``block`` (the ``"u->v"`` key of the edge they
    belong to) and ``kind``; at neuron level, a conv connection between two channels also
    lists the kernel taps it holds (``taps``), since several scalar weights join the same two
    channels.
    """
    check_unit_graph(graph, "explicit")
    view = nx.DiGraph(level=graph.level, name=graph.name)
    for n, d in graph.nx.nodes(data=True):
        extra = {"act": d.get("act")} if d.get("kind") == "units" else {}
        view.add_nodes_from(
            ((n, int(i)), {"group": n, "unit": int(i), "kind": d.get("kind"), **extra})
            for i in d["units"]
        )
    for u, v, e in graph.nx.edges(data=True):
        src_ids, dst_ids = graph.nx.nodes[u]["units"], graph.nx.nodes[v]["units"]
        keys = entry_keys(e["mask"])
        cols = max(e["mask"].shape[1], 1)
        rows, cols = keys // cols, keys % cols
        per = columns_per_unit(graph, e)
        src, tap = cols // per, cols % per
        block, kind = edge_key(u, v), e.get("kind")
        if per == 1:
            view.add_edges_from(
                ((u, int(a)), (v, int(b)), {"block": block, "kind": kind})
                for a, b in zip(src_ids[src], dst_ids[rows])
            )
            continue
        pair = rows * len(src_ids) + src
        uniq, start = np.unique(pair, return_index=True)
        ends = np.append(start[1:], len(pair))
        for p, s, t in zip(uniq, start, ends):
            a, b = src_ids[p % len(src_ids)], dst_ids[p // len(src_ids)]
            view.add_edge((u, int(a)), (v, int(b)), block=block, kind=kind,
                          taps=tap[s:t].tolist())
    return view
