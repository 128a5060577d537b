"""The NAS-Bench-201 search space (Dong & Yang, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search", ICLR 2020).

A cell is a DAG of 4 nodes: node 0 is the cell input, nodes 1, 2 and 3 each sum one op
applied to every earlier node (6 edges), node 3 is the output. Ops: ``none``,
``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3`` (defined as the
reference code defines them, see :mod:`supernet.ops.nb201`). The macro skeleton, as the
reference ``TinyNetwork``: a 3x3 conv - BN stem, three stages of ``N`` cells at widths
``C``, ``2C``, ``4C`` joined by two ResNet basic blocks of stride 2, then BN - ReLU, global
average pooling and a linear classifier.

Text form: the NAS-Bench-201 arch string, one ``|op~input|...|`` group per node joined by
``+``, e.g. ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|
nor_conv_3x3~2|``. The order of the ops inside a group is kept (it is the order of the
reference's layers, hence of the parameters).

Graphs: the cell is one template (``graph.cells["cell"]``, nodes ``"0"`` to ``"3"``) that
every cell calls with its width bound to ``"$C"``, so all cells share its gates as the
reference shares one set of architecture parameters; the basic block is the template
``"resblock"``. :func:`nasbench201` builds the search super-network (every cell edge gated
over the 5 ops, ``affine=False`` batch norms as in the reference search cells),
:func:`decode` the evaluation network of an arch string, :func:`network` compiles it.

Examples:
    >>> from search_spaces import nasbench201 as nb
    >>> arch = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    ...         "+|skip_connect~0|none~1|nor_conv_3x3~2|")
    >>> nb.encode(nb.decode(arch, C=4, N=1)) == arch
    True
    >>> net = nb.network(arch, C=4, N=1, num_classes=3)
    >>> import torch; net(torch.randn(2, 3, 8, 8)).shape  # the logits
    torch.Size([2, 3])
"""

from __future__ import annotations

import re

import torch
import torch.nn as nn

from supernet import Graph, compile
from supernet.errors import GenotypeError
from supernet.ops import resolve_op
from supernet.spaces import MAX_SIZE, Example, check_names, check_size, register_space

__all__ = [
    "NB201_OPS",
    "OP_TO_REGISTRY",
    "parse_arch",
    "format_arch",
    "nasbench201",
    "decode",
    "encode",
    "network",
]

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: arch-string op name -> registry op name (where the NAS-Bench-201 op differs from the
#: DARTS op of the same name, it is registered under its own name).
OP_TO_REGISTRY = {
    "none": "none",
    "skip_connect": "nb201_skip_connect",
    "nor_conv_1x1": "nor_conv_1x1",
    "nor_conv_3x3": "nor_conv_3x3",
    "avg_pool_3x3": "nb201_avg_pool_3x3",
}
_FROM_REGISTRY = {v: k for k, v in OP_TO_REGISTRY.items()}
NODES = 4
CELL, BLOCK = "cell", "resblock"
_EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
_INDEX = re.compile(r"0|[1-9][0-9]{0,8}")  # an earlier node: never 10 digits


# ---------------------------------------------------------------------- arch strings
#: The most cells per stage (``N``): the network has ``3 N + 2`` cells.
MAX_CELLS = 1024


def parse_arch(arch: str) -> list[list[tuple[str, int]]]:
    """Parse an arch string into ``[[(op, input), ...] for nodes 1, 2, 3]``.

    Raises :class:`GenotypeError` quoting the offending token and what is accepted.

    Examples:
        >>> parse_arch("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|")[1]
        [('none', 0), ('skip_connect', 1)]
    """
    if not isinstance(arch, str):
        raise GenotypeError(f"a NAS-Bench-201 arch string is a str, got {type(arch).__name__}")
    groups = arch.split("+")
    if len(groups) != NODES - 1:
        raise GenotypeError(
            f"arch string {arch!r:.80} has {len(groups)} node group(s) separated by '+'; a "
            f"NAS-Bench-201 cell has {NODES - 1} (nodes 1 to {NODES - 1}), e.g. {_EXAMPLE!r}"
        )
    nodes = []
    for i, group in enumerate(groups, start=1):
        if len(group) < 3 or group[0] != "|" or group[-1] != "|":
            raise GenotypeError(
                f"node {i}: group {group!r:.80} of {arch!r:.80} must be '|op~input|...|' (start "
                "and end with '|')"
            )
        items, seen = [], set()
        for token in group[1:-1].split("|"):
            op, sep, index = token.partition("~")
            if not sep or not _INDEX.fullmatch(index):
                raise GenotypeError(
                    f"node {i}: token {token!r:.80} is not of the form 'op~input' (an op name and "
                    f"the index of an earlier node, e.g. 'nor_conv_3x3~0')"
                )
            if op not in NB201_OPS:
                raise GenotypeError(
                    f"node {i}: token {token!r} names unknown op {op!r}; accepted ops: "
                    f"{list(NB201_OPS)}"
                )
            j = int(index)
            if j >= i:
                raise GenotypeError(
                    f"node {i}: token {token!r} takes input {j}, which is not an earlier node; "
                    f"accepted inputs: {list(range(i))}"
                )
            if j in seen:
                raise GenotypeError(f"node {i}: token {token!r} repeats input {j}")
            seen.add(j)
            items.append((op, j))
        if seen != set(range(i)):
            missing = sorted(set(range(i)) - seen)
            raise GenotypeError(
                f"node {i}: group {group!r:.80} has no op from node(s) {missing}; every "
                f"NAS-Bench-201 node takes one op from each earlier node {list(range(i))} (write "
                "'none~j' for no connection)"
            )
        nodes.append(items)
    return nodes


def format_arch(nodes: list[list[tuple[str, int]]]) -> str:
    """The arch string of ``[[(op, input), ...], ...]`` (inverse of :func:`parse_arch`)."""
    return "+".join("|" + "|".join(f"{op}~{j}" for op, j in node) + "|" for node in nodes)


# ---------------------------------------------------------------------- graphs
def _taken(registry_ops, args: dict) -> dict:
    """The ``args`` that at least one of ``registry_ops`` takes."""
    params = set().union(*(resolve_op(op).params for op in registry_ops))
    return {k: v for k, v in args.items() if k in params}


def _cell(edges: list[list[tuple[list[str], int]]], args: dict) -> Graph:
    """The cell template: ``edges[i - 1]`` lists ``(arch op names, input)`` of node ``i``."""
    t = Graph("layer", name=CELL)
    t.add_input("0", channels="$C")
    for i, node in enumerate(edges, start=1):
        t.add_node(str(i), channels="$C")
        for ops, j in node:
            registry_ops = [OP_TO_REGISTRY[op] for op in ops]
            t.add_edge(str(j), str(i), registry_ops, **_taken(registry_ops, args))
    t.set_outputs([str(NODES - 1)])
    return t


def _resblock() -> Graph:
    """The reference ``ResNetBasicblock`` at stride 2: two ReLU - 3x3 conv - BN and a
    2x2 average pooling - 1x1 conv residual branch, summed."""
    t = Graph("layer", name=BLOCK)
    t.add_input("x")
    t.add_node("a", channels="$C")
    t.add_edge("x", "a", "nor_conv_3x3", stride=2)
    t.add_node("b", channels="$C")
    t.add_edge("a", "b", "nor_conv_3x3")
    t.add_node("out", channels="$C")
    t.add_edge("b", "out", "identity")
    t.add_edge("x", "out", "nb201_downsample", stride=2)
    t.set_outputs(["out"])
    return t


def _network(cell: Graph, C: int, N: int, num_classes: int, name: str) -> Graph:
    for key, value, hi in (("C", C, MAX_SIZE), ("N", N, MAX_CELLS),
                           ("num_classes", num_classes, MAX_SIZE)):
        check_size(name, key, value, 1, hi)
    g = Graph("layer", name=name)
    g.add_cell(CELL, cell)
    g.add_cell(BLOCK, _resblock())
    g.add_input("x", channels=3)
    g.add_node("stem", channels=C)
    g.add_edge("x", "stem", "stem_conv_bn")
    widths = [C] * N + [2 * C] + [2 * C] * N + [4 * C] + [4 * C] * N
    reductions = [False] * N + [True] + [False] * N + [True] + [False] * N
    prev = "stem"
    for index, (width, reduction) in enumerate(zip(widths, reductions)):
        # Named as the reference's ``cells[index]``, reduction blocks included.
        g.add_call(f"cell{index}", BLOCK if reduction else CELL, [prev], bind={"C": width})
        prev = f"cell{index}"
    g.add_node("lastact")
    g.add_edge(prev, "lastact", "bn_relu")
    g.add_node("pool")
    g.add_edge("lastact", "pool", "adaptive_avg_pool")
    g.add_node("logits", channels=num_classes)
    g.add_edge("pool", "logits", "classifier")
    g.set_outputs(["logits"])
    keep_all = {"max_inputs": None, "exclude": []}
    g.set_meta(space="nasbench201")
    # NAS-Bench-201 keeps every edge and takes the argmax over all ops, 'none' included.
    g.set_meta(constraints={"": dict(keep_all), CELL: dict(keep_all), BLOCK: dict(keep_all)})
    return g


def nasbench201(C: int = 16, N: int = 5, num_classes: int = 10, ops=NB201_OPS,
                affine: bool = False, track_running_stats: bool = True) -> Graph:
    """The NAS-Bench-201 search super-network.

    Every edge of the shared cell template is a gate over ``ops`` (arch-string names). As in
    the reference search cells, its batch norms are built with ``affine`` (default
    ``False``, so its convolutions have biases) and ``track_running_stats``.

    Examples:
        >>> g = nasbench201(C=4, N=1)
        >>> len(g.cells["cell"].gate_edges()), g.cells["cell"].edge("0", "1")["ops"][:2]
        (6, ['none', 'nb201_skip_connect'])
    """
    ops = check_names("nasbench201", "ops", ops)
    unknown = [op for op in ops if op not in NB201_OPS]
    if unknown or not ops:
        raise GenotypeError(
            f"nasbench201: unknown op(s) {unknown or ops}; accepted ops: {list(NB201_OPS)}"
        )
    edges = [[(ops, j) for j in range(i)] for i in range(1, NODES)]
    args = {"affine": affine, "track_running_stats": track_running_stats}
    return _network(_cell(edges, args), C, N, num_classes, "nasbench201")


def decode(text: str, C: int = 16, N: int = 5, num_classes: int = 10) -> Graph:
    """The evaluation network (``TinyNetwork`` with ``InferCell``) of arch string ``text``.

    Every edge keeps its op, ``none`` included, as the reference keeps every layer even
    when its output is unused.
    """
    nodes = parse_arch(text)
    edges = [[([op], j) for op, j in node] for node in nodes]
    return _network(_cell(edges, {}), C, N, num_classes, "nasbench201")


def encode(graph: Graph) -> str:
    """The arch string of a discretized NAS-Bench-201 graph (one op per cell edge).

    A cell edge removed from the graph (pruned) is written as ``none``.
    """
    if CELL not in graph.cells:
        raise GenotypeError(
            f"{graph.name}: no cell template {CELL!r}; encode graphs made by nasbench201() "
            f"or decode() (templates here: {sorted(graph.cells)})"
        )
    t = graph.cells[CELL]
    nodes = []
    for i in range(1, NODES):
        if str(i) not in t:
            raise GenotypeError(f"{graph.name}: cell {CELL!r} has no node '{i}'")
        items = []
        for u, _ in t.in_edges(str(i)):
            ops = t.edge(u, str(i))["ops"]
            where = f"{graph.name}: cell edge {u}->{i}"
            if not _INDEX.fullmatch(u) or int(u) >= i:
                raise GenotypeError(f"{where}: {u!r} is not an earlier NAS-Bench-201 node")
            if len(ops) != 1:
                raise GenotypeError(
                    f"{where} still has {len(ops)} candidate ops {ops}; discretize the graph "
                    "first (one op per edge)"
                )
            if ops[0] not in _FROM_REGISTRY:
                raise GenotypeError(
                    f"{where}: op {ops[0]!r} has no NAS-Bench-201 name; accepted: "
                    f"{sorted(_FROM_REGISTRY)}"
                )
            items.append((_FROM_REGISTRY[ops[0]], int(u)))
        present = {j for _, j in items}
        items += [("none", j) for j in range(i) if j not in present]
        nodes.append(items)
    return format_arch(nodes)


def network(arch: str, C: int = 16, N: int = 5, num_classes: int = 10) -> nn.Module:
    """The NAS-Bench-201 evaluation network of ``arch``, compiled.

    Its modules, parameter count and parameter/buffer order are those of the reference
    ``TinyNetwork(C, N, genotype, num_classes)``. ``forward(images)`` returns the logits
    ``(N, num_classes)`` (the reference returns ``(pooled features, logits)``).
    """
    return compile(decode(arch, C=C, N=N, num_classes=num_classes))


def _example() -> Example:
    """A small instance for the registry-wide tests: width 4, one cell per stage, 8x8."""
    return Example({"C": 4, "N": 1, "num_classes": 3},
                   lambda graph: ((torch.randn(2, 3, 8, 8),), {}))


register_space("nasbench201", encode=encode, decode=decode, example=_example)(nasbench201)
