"""DARTS cell templates, and the network of cells that calls them.

A cell template is a layer-level :class:`supernet.Graph` with two inputs ``s0, s1`` (the
outputs of the two previous cells) and one output ``out``:

=========== ===================================================================
``p0``      ``preprocess`` of ``s0``: ReLU - conv 1x1 - BN, or factorized reduce when the
            previous cell reduced (edge argument ``stride="$stride0"``, bound per call)
``p1``      ``preprocess`` of ``s1``
``n2 ...``  intermediate nodes (``state`` 2, 3, ...): the sum of their in-edges
``out``     ``concat`` of the concatenated states (identity edges, in concat order)
=========== ===================================================================

Every state node has the attribute ``state`` (its index in a genotype: 0 and 1 for ``p0``
and ``p1``) and ``keep=True``: the reference computes every state of a cell, used or not
(an unused ``p0``, a node outside the concat), and so do we. Node widths are the symbol ``"$C"``, bound by each call. In a search cell every
state ``j < i`` feeds node ``i`` through a gated edge (port ``j``). In a cell made from a
genotype node ``i`` keeps its two ``(op, input)`` pairs; the two ports are the two input
indices, assigned in genotype order, so the text order survives a round trip and a
discretized search cell (ports ``j``) is the same graph as the decoded genotype. When a
genotype feeds both ops of a node from the same input (ENAS), each op gets its own ``branch``
node (``n2_0``, ``n2_1``), summed into ``n2`` by identity edges, since a graph holds one
edge per pair of nodes.

A genotype in the FairDARTS form (``(op, node, input)`` triples, any number per node) makes
:func:`fair_cell`: only the nodes present (:meth:`Genotype.present`) are built, an op that
reads an absent node is left out (the reference's ``DCOCell`` skips it; the cell's
``meta["skipped"]`` keeps it, so that the genotype text is written back whole), and the
output concatenates the present nodes of the concat. A second op on the same input goes to
a branch node (``n2_0_1``); a node's in-edges take, in text order, the ports of the search
cell's edges (their inputs), then ``i, i + 1, ...`` for node ``i``'s branches, the ports a
threshold discretization leaves (:mod:`supernet.search.discretize.threshold`). Such graphs
carry ``meta["genotype"] = "fair"`` and :func:`cell_triples` reads them back.

:func:`frc_cell` is GDAS's fixed reduction cell (FRC), a hand-designed template without
gates that a search network can take in place of the searched reduction cell.

Examples:
    >>> from search_spaces.darts.cells import genotype_cell, cell_pairs
    >>> t = genotype_cell("normal", [("sep_conv_3x3", 1), ("skip_connect", 0)], [2], False)
    >>> [(u, t.edge(u, "n2")["ops"], t.edge(u, "n2")["port"]) for u, _ in t.in_edges("n2")]
    [('p1', ['sep_conv_3x3'], 0), ('p0', ['skip_connect'], 1)]
    >>> cell_pairs(t)
    ([('sep_conv_3x3', 1), ('skip_connect', 0)], [2])
"""

from __future__ import annotations

import networkx as nx
from torch import nn

from search_spaces.darts.genotype import Genotype
from supernet import Graph
from supernet.errors import GenotypeError
from supernet.ops import register_op

__all__ = ["search_cell", "genotype_cell", "genotype_cells", "cell_pairs", "cell_states",
           "cell_network", "state_name", "fair_cell", "cell_triples", "FAIR",
           "frc_cell", "FRCBranch", "FRC_GROUPS"]

#: ``graph.meta["genotype"]`` of a graph whose genotype is written in the FairDARTS form.
FAIR = "fair"


#: Bounds of the counts of a DARTS network: more cells or steps would take minutes to build.
MAX_LAYERS, MAX_STEPS = 1024, 64


def state_name(k: int) -> str:
    """Node name of cell state ``k`` (``p0``, ``p1``, ``n2``, ...)."""
    return f"p{k}" if k < 2 else f"n{k}"


def _skeleton(name: str, affine: bool, dim: int) -> Graph:
    t = Graph("layer", name=name)
    t.add_input("s0")
    t.add_input("s1")
    _state(t, 0)
    t.add_edge("s0", "p0", "preprocess", stride="$stride0", affine=affine, dim=dim)
    _state(t, 1)
    t.add_edge("s1", "p1", "preprocess", affine=affine, dim=dim)
    return t


def _state(t: Graph, k: int) -> None:
    t.add_node(state_name(k), channels="$C", state=k, keep=True)


def _op_args(j: int, reduction: bool, affine: bool, pool_bn: bool, dim: int) -> dict:
    args = {"stride": 2 if reduction and j < 2 else 1, "affine": affine}
    if pool_bn:
        args["pool_bn"] = True
    args["dim"] = dim
    return args


def _output(t: Graph, concat, present=None) -> None:
    """The output concatenating the states of ``concat`` (those in ``present``, if given)."""
    t.add_node("out", merge="concat")
    for k in concat:
        if present is not None and k not in present:
            continue
        t.add_edge(state_name(k), "out", "identity")
    t.set_outputs(["out"])
    t.set_meta(concat_range=(
        [concat.start, concat.stop, concat.step] if isinstance(concat, range) else None
    ))


def search_cell(name: str, steps: int, multiplier: int, reduction: bool, ops: list[str],
                dim: int = 2) -> Graph:
    """The DARTS search cell: every earlier state feeds every node through a gate of ``ops``.

    Ops are built as in the DARTS ``MixedOp``: non-affine, pools followed by a non-affine BN,
    stride 2 on the edges from the inputs of a reduction cell.
    """
    t = _skeleton(name, affine=False, dim=dim)
    for i in range(2, steps + 2):
        _state(t, i)
    for i in range(2, steps + 2):
        for j in range(i):
            t.add_edge(state_name(j), state_name(i), list(ops), port=j,
                       **_op_args(j, reduction, False, True, dim))
    _output(t, range(2 + steps - multiplier, steps + 2))
    return t


#: Groups of the two factorized convolutions of an FRC branch (the authors' 8).
FRC_GROUPS = 8


class FRCBranch(nn.Sequential):
    """The convolution branch of GDAS's fixed reduction cell (Dong and Yang, CVPR 2019,
    Section 3.3 and Figure 3; ``GDAS_Reduction_Cell.ops1`` of the authors' AutoDL-Projects):
    ReLU - grouped 1x3 conv (stride 1x2) - grouped 3x1 conv (stride 2x1) - BN - ReLU - conv
    1x1 - BN, ``C`` channels throughout, ``groups`` groups; the convolutions have a bias
    when the BNs are not affine, as the authors' final code."""

    def __init__(self, C: int, affine: bool = False, groups: int = FRC_GROUPS):
        bias = not affine
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, (1, 3), stride=(1, 2), padding=(0, 1), groups=groups, bias=bias),
            nn.Conv2d(C, C, (3, 1), stride=(2, 1), padding=(1, 0), groups=groups, bias=bias),
            nn.BatchNorm2d(C, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, 1, bias=bias),
            nn.BatchNorm2d(C, affine=affine),
        )


@register_op("gdas_frc_conv")
def gdas_frc_conv(C_in, C_out, stride=2, affine=False, groups=FRC_GROUPS):
    """GDAS' fixed reduction branch: grouped 1x3 and 3x1 convs at stride 2, then conv 1x1."""
    if stride != 2:
        raise ValueError(f"gdas_frc_conv halves the resolution: stride=2, got {stride}")
    if C_in != C_out or C_in % groups:
        raise ValueError(f"gdas_frc_conv keeps the width, a multiple of groups={groups}; got "
                         f"{C_in} -> {C_out} channels")
    return FRCBranch(C_in, affine, groups)


def frc_cell(name: str = "reduce", affine: bool = False) -> Graph:
    """GDAS's fixed reduction cell (FRC): the preprocessing of a DARTS cell (``p0``,
    ``p1``), then four states concatenated, ``n2 = branch(p0)``, ``n3 = branch(p1)``
    (:class:`FRCBranch`), ``n4 = maxpool(p0)``, ``n5 = maxpool(p1)`` (3x3 max pooling at
    stride 2, padding 1, then a non-affine BN): ``4 C`` channels at half the resolution,
    whatever the steps and multiplier of the normal cells (the authors'
    ``GDAS_Reduction_Cell`` of the search network, ``affine=False``; 2-D only).

    Examples:
        >>> t = frc_cell()
        >>> for u, v in sorted(t.nx.edges):
        ...     if v.startswith("n"):
        ...         print(u, v, t.edge(u, v)["ops"])
        p0 n2 ['gdas_frc_conv']
        p0 n4 ['max_pool_3x3']
        p1 n3 ['gdas_frc_conv']
        p1 n5 ['max_pool_3x3']
    """
    t = _skeleton(name, affine=affine, dim=2)
    for i in range(2, 6):
        _state(t, i)
    for src, dst in (("p0", "n2"), ("p1", "n3")):
        t.add_edge(src, dst, "gdas_frc_conv", stride=2, affine=affine)
    for src, dst in (("p0", "n4"), ("p1", "n5")):
        t.add_edge(src, dst, "max_pool_3x3", stride=2, pool_bn=True, dim=2)
    _output(t, range(2, 6))
    t.set_meta(fixed="frc")
    return t


def genotype_cell(name: str, pairs: list, concat, reduction: bool, dim: int = 2, *,
                  affine: bool = True, pool_bn: bool = False, drop_path: bool = True) -> Graph:
    """A cell with the ``(op, input)`` pairs of one half of a genotype.

    Args:
        pairs: two pairs per intermediate node, as in :attr:`Genotype.normal`.
        concat: concatenated states (a list or a ``range``; the form is kept in
            ``meta["concat_range"]``).
        affine, pool_bn: op arguments: ``affine=True, pool_bn=False`` for the evaluation
            network (DARTS ``model.Cell``), ``affine=False, pool_bn=True`` for the
            discretized search cell.
        drop_path: mark the op edges for drop-path (applied in training to every op but the
            identity, as the reference).
    """
    t = _skeleton(name, affine=affine, dim=dim)
    for i in range(2, len(pairs) // 2 + 2):
        node = state_name(i)
        (op_a, j_a), (op_b, j_b) = pairs[2 * i - 4], pairs[2 * i - 3]
        if j_a == j_b:
            branches = [f"{node}_0", f"{node}_1"]
            for b in branches:
                t.add_node(b, channels="$C", branch=True, keep=True)
            _state(t, i)
            src = state_name(j_a)
            for b, op in zip(branches, (op_a, op_b)):
                t.add_edge(src, b, [op], drop_path=drop_path,
                           **_op_args(j_a, reduction, affine, pool_bn, dim))
                t.add_edge(b, node, "identity")
            continue
        _state(t, i)
        port = {j_a: min(j_a, j_b), j_b: max(j_a, j_b)}
        for op, j in sorted([(op_a, j_a), (op_b, j_b)], key=lambda p: p[1]):
            t.add_edge(state_name(j), node, [op], port=port[j], drop_path=drop_path,
                       **_op_args(j, reduction, affine, pool_bn, dim))
    _output(t, concat)
    return t


def fair_cell(name: str, genotype: Genotype, kind: str, reduction: bool, dim: int = 2, *,
              affine: bool = True, pool_bn: bool = False, drop_path: bool = True) -> Graph:
    """The cell ``kind`` of a genotype in the FairDARTS form (arguments as
    :func:`genotype_cell`): the present nodes, each the sum of its ops on present inputs.

    The modules, parameters and outputs are the reference's (``model.DCOCell``). One
    difference, in training with drop-path only: the reference drops each node's sum
    (identity inputs included), here each op but the identity is dropped, as in DARTS'
    cell."""
    t = _skeleton(name, affine=affine, dim=dim)
    present = genotype.present(kind)
    have = {0, 1, *present}
    skipped = [[i, k, op, j] for i in range(2, genotype.steps(kind) + 2)
               for k, (op, j) in enumerate(genotype.inputs(kind, i)) if j not in have]
    for i in present:
        _state(t, i)
        node = state_name(i)
        entries = [(op, j) for op, j in genotype.inputs(kind, i) if j in have]
        direct = sorted({j for _, j in entries})
        # ports: the search cell's (input j) for the first op of each input, then i, i+1,
        # ... for the branches, assigned in text order so that the order survives
        ports = iter(direct + [i + k for k in range(len(entries) - len(direct))])
        seen: dict[int, int] = {}
        for op, j in entries:
            args = _op_args(j, reduction, affine, pool_bn, dim)
            if j not in seen:
                t.add_edge(state_name(j), node, [op], port=next(ports), drop_path=drop_path,
                           **args)
            else:  # one more op on the same input: its own branch node
                branch = f"{node}_{j}_{seen[j]}"
                t.add_node(branch, channels="$C", branch=True, keep=True)
                t.add_edge(state_name(j), branch, [op], drop_path=drop_path, **args)
                t.add_edge(branch, node, "identity", port=next(ports))
            seen[j] = seen.get(j, 0) + 1
    concat = getattr(genotype, kind + "_concat")
    if not any(k in present for k in concat):
        raise GenotypeError(f"genotype {kind}: no node of the concat {list(concat)} is present "
                            f"(present: {present}); the cell would output nothing")
    _output(t, concat, present)
    if skipped:  # written back by cell_triples, at their places
        t.set_meta(skipped=skipped)
    return t


def _node_inputs(t: Graph, node: str, states: dict) -> list[tuple[str, int]]:
    """``[(op, input state), ...]`` of state ``node`` of a discretized cell, in port order."""
    found = []
    for u, _ in t.in_edges(node):
        src, edge = u, (u, node)
        if u not in states:
            preds = list(t.nx.predecessors(u))
            if not t.nx.nodes[u].get("branch") or len(preds) != 1 or preds[0] not in states:
                raise GenotypeError(
                    f"cell {t.name!r}: node {node!r} takes {u!r}, which is neither a cell "
                    "state nor the branch of one; this is not a DARTS cell"
                )
            src, edge = preds[0], (preds[0], u)
        ops = t.nx.edges[edge]["ops"]
        if len(ops) != 1:
            raise GenotypeError(
                f"cell {t.name!r}: edge {edge[0]}->{edge[1]} keeps {len(ops)} ops {ops}; a "
                "genotype has one op per edge: discretize the graph first (see "
                "graph.meta['constraints'])"
            )
        found.append((ops[0], states[src]))
    return found


def _concat(t: Graph, states: dict) -> list | range:
    """The concatenated states of cell ``t``, as its ``range`` when it was given as one;
    nodes of the range that are absent from ``t`` (a FairDARTS cell) do not count."""
    (out,) = t.outputs
    concat = []
    for u, _ in t.in_edges(out):
        if u not in states:
            raise GenotypeError(f"cell {t.name!r}: the output concatenates {u!r}, not a state")
        concat.append(states[u])
    r = t.meta.get("concat_range")
    present = set(states.values())
    if r is not None and [k for k in range(*r) if k in present] == concat:
        return range(*r)
    return concat


def cell_pairs(t: Graph) -> tuple[list, list | range]:
    """The genotype half of a discretized cell template: ``(pairs, concat)``.

    Raises:
        GenotypeError: the cell is not discretized (an edge keeps several ops, a node keeps
            more or fewer than two inputs) or is not a DARTS cell.
    """
    states = cell_states(t)
    index = sorted(k for k in states.values() if k >= 2)
    if index != list(range(2, len(index) + 2)) or not index:
        raise GenotypeError(
            f"cell {t.name!r} has states {sorted(states.values())}; a DARTS cell has states "
            "0, 1 (p0, p1) and 2, 3, ... without gaps"
        )
    name_of = {k: n for n, k in states.items()}
    pairs = []
    for i in index:
        node = name_of[i]
        found = _node_inputs(t, node, states)
        if len(found) != 2:
            raise GenotypeError(
                f"cell {t.name!r}: node {node!r} keeps {len(found)} input(s) "
                f"{[p[1] for p in found]}; a DARTS genotype has exactly two per node"
            )
        pairs += found
    return pairs, _concat(t, states)


def cell_triples(t: Graph) -> tuple[list, list | range]:
    """The FairDARTS-form genotype half of a discretized cell: ``(triples, concat)``, each
    node's ``(op, node, input)`` in port order, any number per node.

    Raises:
        GenotypeError: an edge keeps several ops, a node has no input, or the cell is not
            a DARTS cell.
    """
    states = cell_states(t)
    name_of = {k: n for n, k in states.items()}
    skipped = sorted(t.meta.get("skipped") or [])  # [node, place, op, input]: ops not built
    triples = []
    for i in sorted({k for k in states.values() if k >= 2} | {e[0] for e in skipped}):
        found = _node_inputs(t, name_of[i], states) if i in name_of else []
        if i in name_of and not found:
            raise GenotypeError(f"cell {t.name!r}: node {name_of[i]!r} has no input; remove "
                                "it (a FairDARTS cell leaves such a node out)")
        for _, k, op, j in (e for e in skipped if e[0] == i):
            found.insert(k, (op, j))
        triples += [(op, i, j) for op, j in found]
    if not triples:
        raise GenotypeError(f"cell {t.name!r} keeps no op; a genotype cell keeps at least one")
    return triples, _concat(t, states)


def cell_states(t: Graph) -> dict[str, int]:
    """The genotype index of every state node of cell template ``t``.

    ``p0``, ``p1`` and the nodes a genotype built keep their ``state`` attribute. A node
    added later (a node grown during the search, see
    :class:`supernet.search.creation.layer.GrowNode`) has none: it is a state too when it
    sums its inputs, is not the output and is not the branch of one (``branch``), and the
    intermediate states are numbered again in a topological order that keeps the order of
    the numbered ones (a grown node comes as late as its inputs and readers allow), so
    every node takes inputs from earlier states only, as a genotype requires.

    Examples:
        >>> t = genotype_cell("normal", [("sep_conv_3x3", 1), ("skip_connect", 0)], [2], False)
        >>> t.add_node("n9", channels="$C"); t.add_edge("p0", "n9", "sep_conv_3x3")
        >>> t.add_edge("p1", "n9", "skip_connect"); t.add_edge("n9", "n2", "sep_conv_3x3")
        >>> cell_states(t)
        {'p0': 0, 'p1': 1, 'n9': 2, 'n2': 3}
    """
    given = {n: d["state"] for n, d in t.nx.nodes(data=True) if "state" in d}
    grown = [n for n, d in t.nx.nodes(data=True)
             if "state" not in d and d.get("kind", "merge") == "merge" and not d.get("branch")
             and d.get("merge", "sum") == "sum" and n not in t.outputs and n not in t.inputs]
    if not grown:
        return given
    inner = [n for n, k in given.items() if k >= 2] + grown
    later = len(given) + len(grown)
    sub = nx.DiGraph()
    sub.add_nodes_from(inner)
    for n in inner:  # dependencies through branch nodes count too
        for a in nx.ancestors(t.nx, n):
            if a in sub:
                sub.add_edge(a, n)
    order = nx.lexicographical_topological_sort(sub, key=lambda n: (given.get(n, later), n))
    out = {n: k for n, k in given.items() if k < 2}
    out.update({n: 2 + i for i, n in enumerate(order)})
    return out


def cell_network(name: str, cells: dict[str, Graph], C: int, layers: int, stem_multiplier: int,
                 num_classes: int, in_channels: int, dim: int, auxiliary: bool = False,
                 imagenet: bool = False) -> Graph:
    """The DARTS network of cells (``model_search.Network`` / ``model.NetworkCIFAR``).

    A 3x3 conv-BN stem to ``stem_multiplier * C`` channels; ``layers`` calls of the
    ``"normal"`` and ``"reduce"`` templates, reduction cells at ``layers // 3`` and
    ``2 * layers // 3`` doubling the width; cell ``k`` takes the outputs of cells ``k-2`` and
    ``k-1`` (the stem for both at first); global average pooling and a linear classifier.
    With ``auxiliary``, a ``train_only`` auxiliary head reads the output of cell
    ``2 * layers // 3`` and the graph has two outputs ``["logits", "aux"]``.

    ``imagenet`` builds ``model.NetworkImageNet`` instead: two stems that divide the
    resolution by 4 and 8 (3x3 conv-BN at stride 2 to ``C // 2``, then ReLU-conv-BN at
    stride 2 to ``C``; ReLU-conv-BN at stride 2), the first cell taking them as a cell after
    a reduction; 7x7 average pooling before the classifier, and the ImageNet auxiliary head.
    """
    g = Graph("layer", name=name)
    for cell, template in cells.items():
        g.add_cell(cell, template)
    g.add_input("x", channels=in_channels)
    if imagenet:
        g.add_node("stem0a", channels=C // 2)
        g.add_edge("x", "stem0a", "stem_conv_bn", kernel_size=3, stride=2)
        g.add_node("stem0", channels=C)
        g.add_edge("stem0a", "stem0", "relu_conv_bn", kernel_size=3, stride=2)
        g.add_node("stem1", channels=C)
        g.add_edge("stem0", "stem1", "relu_conv_bn", kernel_size=3, stride=2)
        s0, s1 = "stem0", "stem1"
        C_curr, reduction_prev = C, True
    else:
        g.add_node("stem", channels=stem_multiplier * C)
        g.add_edge("x", "stem", "stem_conv_bn", kernel_size=3, dim=dim)
        s0 = s1 = "stem"
        C_curr, reduction_prev = C, False
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        if reduction:
            C_curr *= 2
        node = f"cell{i}"
        g.add_call(node, "reduce" if reduction else "normal", [s0, s1],
                   bind={"C": C_curr, "stride0": 2 if reduction_prev else 1})
        s0, s1, reduction_prev = s1, node, reduction
    outputs = ["logits"]
    if auxiliary:
        g.add_node("aux", channels=num_classes, train_only=True)
        if imagenet:
            g.add_edge(f"cell{2 * layers // 3}", "aux", "aux_head_imagenet")
        else:
            g.add_edge(f"cell{2 * layers // 3}", "aux", "aux_head", dim=dim)
        outputs.append("aux")
    g.add_node("gap")
    if imagenet:
        g.add_edge(s1, "gap", "avg_pool", kernel_size=7)
    else:
        g.add_edge(s1, "gap", "adaptive_avg_pool", dim=dim)
    g.add_node("logits", channels=num_classes)
    g.add_edge("gap", "logits", "classifier")
    g.set_outputs(outputs)
    return g


def genotype_cells(genotype: Genotype, dim: int, **kwargs) -> dict[str, Graph]:
    """The ``"normal"`` and ``"reduce"`` templates of ``genotype`` (either form)."""
    if genotype.form == FAIR:
        return {kind: fair_cell(kind, genotype, kind, kind == "reduce", dim, **kwargs)
                for kind in ("normal", "reduce")}
    return {
        kind: genotype_cell(kind, getattr(genotype, kind), getattr(genotype, kind + "_concat"),
                            kind == "reduce", dim, **kwargs)
        for kind in ("normal", "reduce")
    }
