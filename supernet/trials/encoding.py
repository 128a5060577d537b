"""Discretized graphs as PyTorch Geometric ``Data``: the input of the predictor.

:class:`GraphEncoder` turns a discretized layer-level graph of a super-network into one
``torch_geometric.data.Data``. Only the parts of the graph where the super-network decides
are encoded: the top-level graph when it has gated edges, and every cell template that has
(NAS-Bench-201: the one cell every call shares; the fixed stem and skeleton are the same in
every architecture and would only add a constant). Each part is one component:

* nodes: the tensors of the part, in the super-network's order (nodes the choice leaves
  without a use are gone, as discretization removes them);
* node features: the count of each op of the node's in-edges, over the ops of the
  super-network's parts (a node that merges two inputs of the same op counts 2), then two
  flags: the node is an input, the node is an output;
* edges: the part's edges, in both directions (messages flow both ways), sorted.

:meth:`GraphEncoder.from_graph` reads a discretized graph; :meth:`GraphEncoder.from_choice`
builds the same ``Data`` from a choice without discretizing a copy (no graph copy, no
edit, no lint), which is what scoring hundreds of candidates needs; both agree exactly
(tested).

Examples:
    >>> import random
    >>> from supernet import compile
    >>> from supernet.search.choices import choice_space
    >>> from supernet.spaces import create_space
    >>> from supernet.trials import discretized
    >>> g = create_space("gnn", in_channels=4, hidden=8, num_classes=2, nodes=2)
    >>> space = choice_space(g, compile(g)); enc = GraphEncoder(g, space)
    >>> c = space.sample(random.Random(0)); d = enc.from_choice(c)
    >>> d.x.shape[1] == len(enc.vocab) + 2, enc.same(d, enc.from_graph(discretized(g, space, c)))
    (True, True)
"""

from __future__ import annotations

import networkx as nx
import torch
from torch_geometric.data import Data

from supernet.errors import SearchError
from supernet.search.choices.layer import LayerChoiceSpace

__all__ = ["GraphEncoder"]


class GraphEncoder:
    """Encode the discretized graphs of ``supernet_graph`` (module docstring).

    Args:
        supernet_graph: the super-network (a layer-level graph).
        space: its :class:`~supernet.search.choices.layer.LayerChoiceSpace`.
    """

    def __init__(self, supernet_graph, space):
        if not isinstance(space, LayerChoiceSpace):
            raise SearchError(
                f"{supernet_graph.name}: the graph encoding reads layer-level graphs (ops "
                f"on edges); this space is {type(space).__name__} of a "
                f"{supernet_graph.level}-level graph"
            )
        self.supernet, self.space = supernet_graph, space
        cells = {grp.cell for grp in space.groups}
        self.parts = [c for c in ["", *supernet_graph.cells] if c in cells]
        ops = set()
        for part in self.parts:
            for _, _, d in self._part(supernet_graph, part).nx.edges(data=True):
                ops.update(d.get("ops") or [])
        self.vocab = sorted(ops)
        self._index = {op: i for i, op in enumerate(self.vocab)}

    @staticmethod
    def _part(graph, part: str):
        return graph.cells[part] if part else graph

    @property
    def num_features(self) -> int:
        """The width of the node features."""
        return len(self.vocab) + 2

    def _data(self, parts) -> Data:
        """``parts``: per part, its nodes (in order), input and output names and edges
        ``(u, v, op)``."""
        feats, edges, offset = [], [], 0
        for nodes, inputs, outputs, part_edges in parts:
            pos = {n: offset + i for i, n in enumerate(nodes)}
            x = torch.zeros(len(nodes), self.num_features)
            for n in nodes:
                x[pos[n] - offset, len(self.vocab)] = float(n in inputs)
                x[pos[n] - offset, len(self.vocab) + 1] = float(n in outputs)
            for u, v, op in part_edges:
                if op not in self._index:
                    raise SearchError(f"{self.supernet.name}: edge {u}->{v} keeps op {op!r}, "
                                      f"which the super-network has on no edge")
                x[pos[v] - offset, self._index[op]] += 1.0
                edges += [(pos[u], pos[v]), (pos[v], pos[u])]
            feats.append(x)
            offset += len(nodes)
        edges.sort()
        index = torch.tensor(edges, dtype=torch.long).t().reshape(2, -1)
        return Data(x=torch.cat(feats), edge_index=index)

    def from_graph(self, graph) -> Data:
        """The ``Data`` of a discretized graph of the super-network."""
        parts = []
        for part in self.parts:
            g = self._part(graph, part)
            edges = [(u, v, d["ops"][0]) for u, v, d in g.nx.edges(data=True)]
            parts.append((list(g.nx.nodes), set(g.inputs), set(g.outputs), edges))
        return self._data(parts)

    def from_choice(self, choice: dict) -> Data:
        """The ``Data`` of the discretized graph of ``choice``, without making it."""
        parts = []
        for part in self.parts:
            g = self._part(self.supernet, part)
            kept = nx.DiGraph()
            kept.add_nodes_from(g.nx.nodes)
            edges = []
            for u, v, d in g.nx.edges(data=True):
                ops = d.get("ops") or []
                op = choice.get((part, u, v), ops[0]) if len(ops) > 1 else ops[0]
                if op is not None:
                    kept.add_edge(u, v)
                    edges.append((u, v, op))
            used = set(g.outputs)
            for o in g.outputs:
                used |= nx.ancestors(kept, o)
            alive = [n for n in g.nx.nodes if n in used or n in g.inputs
                     or g.nx.nodes[n].get("kind") == "input" or g.nx.nodes[n].get("keep")]
            live = set(alive)
            edges = [e for e in edges if e[0] in live and e[1] in live]
            parts.append((alive, set(g.inputs), set(g.outputs), edges))
        return self._data(parts)

    @staticmethod
    def same(a: Data, b: Data) -> bool:
        """Whether two encodings are equal (features and edges)."""
        return (a.x.shape == b.x.shape and bool(torch.equal(a.x, b.x))
                and bool(torch.equal(a.edge_index, b.edge_index)))
