"""A GNN space: a DAG of message-passing layers from PyTorch Geometric.

Node 0 is the input features after ``pre`` linear layers (the raw input when ``pre=0``);
computing nodes ``1..nodes`` each apply an op to earlier nodes and sum; the output sums the
computing nodes; ``post`` linear layers, an optional per-graph readout and a linear
classifier follow. Every layer of the DAG is followed by ``act`` (ReLU by default). Ops:
``gcn, gat, gin, sage, cheb, arma, graphconv`` (:mod:`supernet.ops.gnn`), ``linear``,
``skip`` (registry ``identity``) and ``none``.

Super-network (:func:`gnn`): every computing node has a gated in-edge from every earlier
node; ``graph.meta["constraints"]`` asks the discretization to keep ``max_inputs`` (1) of
them and never ``none``, so a discretized graph is a DAG in which each node has one input
and one op: the macro space of NAS-Bench-Graph (Qin et al., NeurIPS 2022 Datasets and
Benchmarks), whose evaluated results ship offline in the PyPI package
``nas-bench-graph``. That benchmark has 4 computing nodes, 9 ops and sends every *leaf*
(a node no other node reads) to the output; :func:`decode` builds exactly that DAG, so
``decode(encode(discretized))`` turns a discretized super-network (whose output sums all
computing nodes) into the benchmark's architecture. The package ships results, not model
code: the DAG, the op list (GAT with 2 heads) and the leaves-to-output rule are its facts;
summing the leaves, the GIN MLP, ``K=2`` for Chebyshev (as AutoGL's op map) and the
placement of ``act`` are our choices. Its hyper-parameters (hidden ``dim``, ``num_pre``,
``num_pro``, ``dropout``) are the arguments ``hidden``, ``pre``, ``post``, ``dropout``.

Text form: one token per computing node, separated by spaces; a token is ``op~input``, or
several joined by ``+`` when a node has several inputs, e.g. ``"gcn~0 gin~1 linear~2
cheb~1"``. :func:`to_nas_bench_graph` / :func:`from_nas_bench_graph` map to and from the
benchmark's ``Arch(link, ops)``: ``link[i]`` is the input of computing node ``i + 1`` and
ops use its names (``graph`` for ``graphconv``, ``fc`` for ``linear``).

Running on PyG data: ``net(data.x, edge_index=data.edge_index)`` (add ``batch=data.batch``
with a readout), or wrap the compiled module in :class:`OnData`.

Examples:
    >>> import torch, supernet
    >>> from search_spaces import gnn
    >>> g = gnn.from_nas_bench_graph([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"], in_channels=5,
    ...                              hidden=8, num_classes=3)
    >>> gnn.encode(g), gnn.to_nas_bench_graph(g)
    ('gcn~0 gin~1 linear~2 cheb~1', ([0, 1, 2, 1], ['gcn', 'gin', 'fc', 'cheb']))
    >>> net = supernet.compile(g)
    >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    >>> net(torch.randn(3, 5), edge_index=edge_index).shape
    torch.Size([3, 3])
"""

from __future__ import annotations

import functools
import re

import torch
import torch.nn as nn

from supernet import Graph
from supernet.errors import ConfigError, GenotypeError, ShapeError
from supernet.ops import resolve_op
from supernet.spaces import Example, check_names, check_number, check_size, register_space

__all__ = [
    "GNN_OPS",
    "OP_TO_REGISTRY",
    "BENCH_LINKS",
    "BENCH_OPS",
    "gnn",
    "decode",
    "encode",
    "to_nas_bench_graph",
    "from_nas_bench_graph",
    "OnData",
]

GNN_OPS = ("gcn", "gat", "gin", "sage", "cheb", "arma", "graphconv", "linear", "skip", "none")
#: space op name -> registry op name.
OP_TO_REGISTRY = {**{op: op for op in GNN_OPS}, "skip": "identity"}
_FROM_REGISTRY = {v: k for k, v in OP_TO_REGISTRY.items()}
#: NAS-Bench-Graph facts (nas_bench_graph/architecture.py, ``link_list`` and ``gnn_list``):
#: the 9 link patterns of its 4 computing nodes (one per isomorphism class) and its 9 ops.
BENCH_LINKS = ((0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 1), (0, 0, 1, 2), (0, 0, 1, 3),
               (0, 1, 1, 1), (0, 1, 1, 2), (0, 1, 2, 2), (0, 1, 2, 3))
BENCH_OPS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
_BENCH_TO_SPACE = {**{op: op for op in BENCH_OPS}, "graph": "graphconv", "fc": "linear"}
_SPACE_TO_BENCH = {v: k for k, v in _BENCH_TO_SPACE.items()}
_INDEX = re.compile(r"0|[1-9][0-9]{0,8}")  # an earlier node: never 10 digits


#: The most computing nodes of the DAG (node ``i`` has an edge from every earlier node).
MAX_NODES = 256


#: ``_check_int(key, value, lo=1, hi=MAX_SIZE)``: a size or count of the space, checked.
_check_int = functools.partial(check_size, "gnn")


def _skeleton(in_channels, hidden, pre, act):
    """Input, pre-processing layers; returns the graph and the name of DAG node 0."""
    for name, value, lo in (("in_channels", in_channels, 1), ("hidden", hidden, 1),
                            ("pre", pre, 0)):
        _check_int(name, value, lo)
    if act is not None:
        resolve_op(act, "gnn: act")
    g = Graph("layer", name="gnn")
    g.add_input("x", channels=in_channels)
    prev = "x"
    for k in range(1, pre + 1):
        g.add_node(f"pre{k}", channels=hidden, op=act)
        g.add_edge(prev, f"pre{k}", "linear")
        prev = f"pre{k}"
    return g, prev


def _head(g, sources, hidden, num_classes, post, act, dropout, readout, dag):
    check_number("gnn", "dropout", dropout, 0, 1)
    _check_int("num_classes", num_classes)
    _check_int("post", post, 0)
    g.add_node("out", channels=hidden)
    for s in sources:
        g.add_edge(s, "out", "identity")
    prev = "out"
    for k in range(1, post + 1):
        g.add_node(f"post{k}", channels=hidden, op=act)
        g.add_edge(prev, f"post{k}", "linear")
        prev = f"post{k}"
    if readout is not None:
        if readout not in ("mean", "add"):
            raise ConfigError(f"gnn: readout {readout!r}; accepted: [None, 'mean', 'add']")
        g.add_node("readout")
        g.add_edge(prev, "readout", f"global_{readout}_pool")
        prev = "readout"
    if dropout:
        g.add_node("dropout")
        g.add_edge(prev, "dropout", "dropout", p=dropout)
        prev = "dropout"
    g.add_node("logits", channels=num_classes)
    g.add_edge(prev, "logits", "linear")
    g.set_outputs(["logits"])
    g.set_meta(space="gnn")
    g.set_meta(dag=dag)


def gnn(in_channels: int = 16, hidden: int = 64, num_classes: int = 7, nodes: int = 4,
        ops=GNN_OPS, pre: int = 1, post: int = 0, act: str | None = "relu",
        dropout: float = 0.0, readout: str | None = None, max_inputs: int | None = 1) -> Graph:
    """The GNN super-network: computing node ``i`` has a gate over ``ops`` on an edge from
    every earlier node (``skip`` is left out where the widths differ).

    ``max_inputs`` (1, as NAS-Bench-Graph) is the number of in-edges the discretization
    keeps per node; ``none`` is never kept.
    """
    _check_int("nodes", nodes, hi=MAX_NODES)
    ops = check_names("gnn", "ops", ops)
    unknown = [op for op in ops if op not in GNN_OPS]
    if unknown or not ops:
        raise GenotypeError(f"gnn: unknown op(s) {unknown or list(ops)}; accepted: {list(GNN_OPS)}")
    g, node0 = _skeleton(in_channels, hidden, pre, act)
    width0 = hidden if pre else in_channels
    dag = [node0]
    for i in range(1, nodes + 1):
        g.add_node(f"n{i}", channels=hidden, op=act)
        for j, src in enumerate(dag):
            cands = [op for op in ops if not (op == "skip" and j == 0 and width0 != hidden)]
            if not cands:
                raise ShapeError(
                    f"gnn: edge {src}->n{i}: no candidate fits ({width0} -> {hidden} channels; "
                    f"'skip' keeps the width); add other ops or set pre >= 1"
                )
            g.add_edge(src, f"n{i}", [OP_TO_REGISTRY[op] for op in cands])
        dag.append(f"n{i}")
    _head(g, dag[1:], hidden, num_classes, post, act, dropout, readout, dag)
    g.set_meta(constraints={"": {"max_inputs": max_inputs, "exclude": ["none"]}})
    return g


def _parse(text: str) -> list[list[tuple[str, int]]]:
    if not isinstance(text, str) or not text.split():
        raise GenotypeError(
            f"gnn: expected one 'op~input' token per computing node, e.g. 'gcn~0 gat~1', "
            f"got {text!r:.80}"
        )
    tokens = text.split()
    if len(tokens) > MAX_NODES:
        raise GenotypeError(f"gnn: {len(tokens)} computing nodes; the space has at most "
                            f"{MAX_NODES} (MAX_NODES)")
    nodes = []
    for i, token in enumerate(tokens, start=1):
        items = []
        for part in token.split("+"):
            op, sep, index = part.partition("~")
            if not sep or not _INDEX.fullmatch(index):
                raise GenotypeError(
                    f"gnn: node {i}: token {part!r:.80} is not of the form 'op~input' "
                    "(e.g. 'gcn~0')"
                )
            if op not in GNN_OPS:
                raise GenotypeError(
                    f"gnn: node {i}: token {part!r} names unknown op {op!r}; accepted ops: "
                    f"{list(GNN_OPS)}"
                )
            j = int(index)
            if j >= i or j in [k for _, k in items]:
                raise GenotypeError(
                    f"gnn: node {i}: token {part!r}: input {j} is not an earlier node or is "
                    f"repeated; accepted inputs: {list(range(i))}"
                )
            items.append((op, j))
        nodes.append(items)
    return nodes


def decode(text: str, in_channels: int = 16, hidden: int = 64, num_classes: int = 7,
           pre: int = 1, post: int = 0, act: str | None = "relu", dropout: float = 0.0,
           readout: str | None = None) -> Graph:
    """The network of ``text``; the output sums the leaves (nodes no other node reads)."""
    nodes = _parse(text)
    g, node0 = _skeleton(in_channels, hidden, pre, act)
    width0 = hidden if pre else in_channels
    dag, used = [node0], set()
    for i, items in enumerate(nodes, start=1):
        g.add_node(f"n{i}", channels=hidden, op=act)
        for op, j in items:
            if op == "skip" and j == 0 and width0 != hidden:
                raise GenotypeError(
                    f"gnn: node {i}: token '{op}~{j}': skip keeps the width, but node 0 has "
                    f"{width0} channels and computing nodes {hidden}; use another op or pre >= 1"
                )
            g.add_edge(dag[j], f"n{i}", OP_TO_REGISTRY[op])
            used.add(j)
        dag.append(f"n{i}")
    leaves = [dag[i] for i in range(1, len(dag)) if i not in used]
    _head(g, leaves, hidden, num_classes, post, act, dropout, readout, dag)
    g.set_meta(constraints={"": {"max_inputs": None, "exclude": ["none"]}})
    return g


def _nodes(graph: Graph) -> list[list[tuple[str, int]]]:
    dag = graph.meta.get("dag")
    if not dag:
        raise GenotypeError(f"{graph.name}: no DAG node list in graph.meta; encode graphs made "
                            "by gnn() or decode()")
    index = {name: j for j, name in enumerate(dag)}
    nodes = []
    for i, v in enumerate(dag[1:], start=1):
        items = []
        for u, _ in graph.in_edges(v):
            ops = graph.edge(u, v)["ops"]
            if len(ops) != 1:
                raise GenotypeError(
                    f"{graph.name}: edge {u}->{v} still has {len(ops)} candidate ops {ops}; "
                    "discretize the graph first (one op per edge)"
                )
            if u not in index or ops[0] not in _FROM_REGISTRY:
                raise GenotypeError(
                    f"{graph.name}: edge {u}->{v} ({ops[0]}) is not an edge of the space; "
                    f"accepted ops: {sorted(_FROM_REGISTRY)} from nodes {dag[:i]}"
                )
            items.append((_FROM_REGISTRY[ops[0]], index[u]))
        nodes.append(items)
    return nodes


def encode(graph: Graph) -> str:
    """The text form of a discretized GNN graph (see the module docstring)."""
    return " ".join("+".join(f"{op}~{j}" for op, j in node) for node in _nodes(graph))


def to_nas_bench_graph(graph: Graph) -> tuple[list[int], list[str]]:
    """``(link, ops)`` of NAS-Bench-Graph's ``Arch`` for a discretized GNN graph."""
    nodes = _nodes(graph)
    if len(nodes) != 4 or any(len(n) != 1 for n in nodes):
        raise GenotypeError(
            f"{graph.name}: NAS-Bench-Graph architectures have 4 computing nodes of one input "
            f"each; this graph is {encode(graph)!r}"
        )
    bad = [op for ((op, _),) in nodes if op not in _SPACE_TO_BENCH]
    if bad:
        raise GenotypeError(f"{graph.name}: op(s) {bad} are not NAS-Bench-Graph ops; accepted: "
                            f"{sorted(_SPACE_TO_BENCH)}")
    return [j for ((_, j),) in nodes], [_SPACE_TO_BENCH[op] for ((op, _),) in nodes]


def from_nas_bench_graph(link, ops=None, **kwargs) -> Graph:
    """The network of NAS-Bench-Graph architecture ``Arch(link, ops)`` (or an object with
    ``.link`` and ``.ops``); ``kwargs`` are those of :func:`decode`."""
    if ops is None and hasattr(link, "ops"):
        link, ops = link.link, link.ops
    link, ops = list(link or []), list(ops or [])
    if len(link) != 4 or len(ops) != 4:
        raise GenotypeError(f"NAS-Bench-Graph: link {link} and ops {ops} must have 4 entries")
    for i, (j, op) in enumerate(zip(link, ops)):
        if not isinstance(j, int) or isinstance(j, bool) or not 0 <= j <= i:
            raise GenotypeError(
                f"NAS-Bench-Graph: link[{i}] = {j!r}; accepted: {list(range(i + 1))}"
            )
        if op not in BENCH_OPS:
            raise GenotypeError(f"NAS-Bench-Graph: op {op!r}; accepted: {list(BENCH_OPS)}")
    text = " ".join(f"{_BENCH_TO_SPACE[op]}~{j}" for j, op in zip(link, ops))
    return decode(text, **kwargs)


class OnData(nn.Module):
    """Run a compiled GNN graph on a PyG ``Data`` or ``Batch``: ``OnData(net)(data)``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, data):
        return self.net(data.x, edge_index=data.edge_index, batch=getattr(data, "batch", None))


def _example() -> Example:
    """A small instance for the registry-wide tests: 6 graph nodes on a ring, 3 computing
    nodes; the module takes ``edge_index=`` by keyword."""

    def inputs(graph):
        n = 6
        ring = torch.arange(n)
        edge_index = torch.stack([torch.cat([ring, (ring + 1) % n]),
                                  torch.cat([(ring + 1) % n, ring])])
        return (torch.randn(n, graph.node("x")["channels"]),), {"edge_index": edge_index}

    return Example({"in_channels": 5, "hidden": 8, "num_classes": 3, "nodes": 3}, inputs)


register_space("gnn", encode=encode, decode=decode, example=_example)(gnn)
