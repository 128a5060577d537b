"""Dependency groups: units that must be edited together.

Some units cannot change alone without breaking a tensor operation:

* an **identity** edge (a residual add, a concat) adds source unit ``i`` into destination
  unit ``j``: removing ``j`` must remove ``i`` from the stream, and every other unit added
  into ``j``, so that the remaining channels still line up;
* a **grouped conv** keeps its groups equal: in a depthwise conv (one source per group)
  source channel ``i`` and its output channels go together; in a grouped conv with several
  channels per group, the channel at the same offset of every group goes together.

Normalization is a per-unit attribute of a node (its affine entries and running statistics
belong to the unit), so it never needs a separate tie. A dependency group is a connected
component of the tie relation, computed at once for the whole graph with
``scipy.sparse.csgraph``.

Examples:
    >>> from supernet import Graph
    >>> from supernet.units import add_input, add_group, connect, dependency_groups
    >>> g = Graph("channel")
    >>> add_input(g, "x", 2)
    >>> add_group(g, "c", 2); connect(g, "x", "c", "conv", kernel=3)
    >>> add_group(g, "y", 2, act="relu", bias=False)
    >>> connect(g, "c", "y", "identity"); connect(g, "x", "y", "identity")
    >>> [{k: v.tolist() for k, v in grp.items()} for grp in dependency_groups(g)]
    [{'x': [0], 'c': [0], 'y': [0]}, {'x': [1], 'c': [1], 'y': [1]}]
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from supernet.units.masks import entry_keys

__all__ = ["Ties", "tie_pairs", "dependency_groups", "close_units"]


def tie_pairs(graph, offsets: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of global unit positions (``offsets[node] + position``) that are tied."""
    a_parts, b_parts = [], []
    for u, v, e in graph.nx.edges(data=True):
        kind = e.get("kind")
        n_src = len(graph.nx.nodes[u]["units"])
        n_dst = len(graph.nx.nodes[v]["units"])
        if kind == "identity":
            keys = entry_keys(e["mask"])
            cols = max(e["mask"].shape[1], 1)
            a_parts.append(offsets[v] + keys // cols)
            b_parts.append(offsets[u] + keys % cols)
        elif kind == "conv" and e.get("groups", 1) > 1:
            g = e["groups"]
            s_in, s_out = n_src // g, n_dst // g
            src, dst = np.arange(n_src), np.arange(n_dst)
            if s_in == 1 or s_out == 1:  # whole groups go together (depthwise)
                anchor_src = offsets[u] + (src // s_in) * s_in
                a_parts += [anchor_src, offsets[u] + (dst // s_out) * s_in]
                b_parts += [offsets[u] + src, offsets[v] + dst]
            else:  # the same offset in every group goes together
                a_parts += [offsets[u] + src % s_in, offsets[v] + dst % s_out]
                b_parts += [offsets[u] + src, offsets[v] + dst]
    if not a_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(a_parts).astype(np.int64), np.concatenate(b_parts).astype(np.int64)


class Ties:
    """The tie relation of a graph, as one component label per unit.

    Attributes:
        nodes: node names in graph order; ``offsets[node]`` is the global position of its
            first unit, ``labels[offsets[node] + p]`` the component of its unit at ``p``.
        tied: whether any two units are tied at all.
    """

    def __init__(self, graph):
        self.graph = graph
        self.nodes = list(graph.nx.nodes)
        sizes = [len(graph.nx.nodes[n]["units"]) for n in self.nodes]
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.offsets = {n: int(s) for n, s in zip(self.nodes, starts[:-1])}
        self.total = int(starts[-1])
        self.node_of = np.repeat(np.arange(len(self.nodes)), sizes)
        self.pos_of = np.arange(self.total) - starts[:-1][self.node_of] if self.total else \
            np.zeros(0, np.int64)
        a, b = tie_pairs(graph, self.offsets)
        self.tied = len(a) > 0
        if self.tied:
            adj = sp.coo_array((np.ones(len(a), bool), (a, b)), shape=(self.total, self.total))
            _, self.labels = connected_components(adj, directed=False)
        else:
            self.labels = np.arange(self.total)

    def members(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global positions of every unit whose label is in ``labels``, and for each the
        index in ``labels`` of its group, ordered by group then global position."""
        labels = np.asarray(labels, dtype=np.int64)
        if not self.tied:
            return labels.copy(), np.arange(len(labels))
        order = np.argsort(self.labels, kind="stable")
        srt = self.labels[order]
        lo = np.searchsorted(srt, labels, "left")
        hi = np.searchsorted(srt, labels, "right")
        counts = hi - lo
        group = np.repeat(np.arange(len(labels)), counts)
        starts = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        return order[starts + np.arange(counts.sum())], group

    def split(self, glob: np.ndarray) -> dict[str, np.ndarray]:
        """Global positions as ``{node: positions}`` (nodes in graph order)."""
        out = {}
        nodes = self.node_of[glob]
        for i in np.unique(nodes):
            out[self.nodes[i]] = self.pos_of[glob[nodes == i]]
        return out


def dependency_groups(graph, min_size: int = 2) -> list[dict[str, np.ndarray]]:
    """The groups of tied units, as ``{node: unit ids}`` dicts (only groups of at least
    ``min_size`` units, in the order of their first unit)."""
    ties = Ties(graph)
    if not ties.tied:
        return []
    counts = np.bincount(ties.labels)
    first = np.full(len(counts), ties.total, np.int64)
    np.minimum.at(first, ties.labels, np.arange(ties.total))
    wanted = np.nonzero(counts >= min_size)[0]
    wanted = wanted[np.argsort(first[wanted], kind="stable")]
    glob, group = ties.members(wanted)
    out = []
    bounds = np.searchsorted(group, np.arange(len(wanted) + 1))
    for k in range(len(wanted)):
        part = ties.split(glob[bounds[k]:bounds[k + 1]])
        out.append({n: graph.nx.nodes[n]["units"][p] for n, p in part.items()})
    return out


def close_units(graph, units: dict[str, np.ndarray], ties: Ties | None = None) -> dict:
    """``units`` (``{node: positions}``) closed under the ties: every tied unit added."""
    ties = ties or Ties(graph)
    if not ties.tied:
        return units
    glob = np.concatenate([ties.offsets[n] + np.asarray(p, np.int64) for n, p in units.items()]
                          or [np.zeros(0, np.int64)])
    labels = np.unique(ties.labels[glob])
    members, _ = ties.members(labels)
    return ties.split(np.sort(members))
