"""FairDARTS' threshold discretization: keep the ops whose sigmoid weight reaches 0.85.

Chu et al., "Fair DARTS: Eliminating Unfair Advantages in Differentiable Architecture
Search" (ECCV 2020), section 4: under independent sigmoid weights (and the zero-one loss
that pushes each towards 0 or 1) an op is kept when ``σ(α) >= σ_threshold = 0.85``, not by
an argmax, so a node keeps a variable number of inputs, possibly none. The rule is the
authors' ``parse`` (xiaomi-automl/FairDARTS ``fairdarts/utils.py``), in its two forms:

* ``mode="sparse"`` (``threshold_sparse``, the default of their search and of this policy):
  per node, the ``max_inputs`` in-edges (2 in DARTS cells) of highest best weight, as
  DARTS ranks them; each keeps its best op if that op's weight is ``>= threshold``, and is
  removed otherwise;
* ``mode="edge"`` (``threshold_edge``): every in-edge of every node, each keeping its two
  best ops that reach the threshold (so up to two ops on one edge).

A node left without any input is removed, with the edges it feeds (ops that read it, and
its place in the cell's output): the reference's cell (``model.DCOCell``) never computes
such a node, skips the ops that read it and concatenates only the nodes it computed. The
reference fails when a node's only inputs are absent nodes; here that node is removed too,
and so on until every node left has an input. A cell whose output loses every input fails
with :class:`~supernet.errors.SearchError`.

In our graph the second op kept on one edge (``mode="edge"``) moves to a branch node
(``<node>_<input>_1``, summed into the node by an identity edge, as a decoded genotype
has it), built anew (the op kept on the edge keeps its trained weights; that is the one
of higher weight). Ops whose edge is removed because its source node is absent are kept
in the cell's ``meta["skipped"]``, so the genotype text lists them as the reference's
parser does, and the graph gets ``meta["genotype"] = "fair"``: its genotype is written in
FairDARTS' ``(op, node, input)`` form (:func:`search_spaces.darts.encode_genotype`).

The weights compared with the threshold are the relaxation's candidate weights
(:func:`~supernet.gates.gate_probabilities`): ``σ(α)`` under FairDARTS'
:class:`~supernet.search.relaxations.Sigmoid`.

Channel- and neuron-level keep/drop gates keep their units by the relaxation's own rule
(:meth:`~supernet.search.relaxations.Sigmoid.discrete`: ``σ >= 1/2``), as
:class:`~supernet.search.discretize.ArgmaxDiscretization` does; the threshold applies to
the candidate ops of layer-level edges.

Examples:
    >>> import torch
    >>> from supernet import Graph, compile
    >>> from supernet.edits import Editor
    >>> from supernet.search.relaxations import Sigmoid, use_relaxation
    >>> g = Graph("layer"); g.add_input("x", channels=4)
    >>> g.add_node("a", channels=4); g.add_edge("x", "a", ["conv_3x3", "skip_connect"])
    >>> g.add_node("h", channels=4); g.add_edge("x", "h", ["conv_3x3", "skip_connect"])
    >>> g.add_edge("a", "h", ["conv_3x3", "skip_connect"]); g.set_outputs(["h"])
    >>> net = compile(g); use_relaxation(net, Sigmoid())
    >>> logit = lambda *p: torch.logit(torch.tensor([list(p)]))
    >>> with torch.no_grad():
    ...     _ = net.arch["x->a"].copy_(logit(0.6, 0.2))  # nothing reaches 0.85: a goes
    ...     _ = net.arch["x->h"].copy_(logit(0.1, 0.9))
    ...     _ = net.arch["a->h"].copy_(logit(0.95, 0.1))
    >>> threshold_choice(g, net)
    {('', 'x', 'a'): [], ('', 'x', 'h'): ['skip_connect'], ('', 'a', 'h'): ['conv_3x3']}
    >>> _ = threshold_discretize(g, net, Editor(g, net)); sorted(g.nx.edges)
    [('x', 'h')]
"""

from __future__ import annotations

import torch

from supernet.edits import AddEdge, AddNode, Editor, RemoveEdge, RemoveNode, RemoveOp
from supernet.errors import ConfigError, SearchError
from supernet.gates import gate_probabilities
from supernet.lint import lint
from supernet.ops.registry import resolve_op
from supernet.search.base import DiscretizationPolicy, SearchState
from supernet.search.choices.layer import LayerChoiceSpace
from supernet.search.discretize.base import discretize

__all__ = ["FairThreshold", "threshold_choice", "threshold_discretize", "drop_zero_ops", "MODES",
           "FAIR"]

#: The two rules of the reference's parser (``threshold_sparse``, ``threshold_edge``).
MODES = ("sparse", "edge")

#: ``graph.meta["genotype"]`` of a graph whose genotype is written in the FairDARTS form.
FAIR = "fair"


def drop_zero_ops(graph) -> None:
    """Remove the zero candidates (``none``) from every gated edge of a layer-level
    ``graph`` and of its cell templates, before it is compiled: FairDARTS searches the
    DARTS ops without ``none`` (its ``PRIMITIVES``), since under independent sigmoid
    weights a zero op competes with nothing and a dropped edge is a low weight already.
    Unit-level graphs are left as they are (their keep/drop gates' "drop" is a zero op)."""
    if getattr(graph, "level", "layer") != "layer":
        return
    for g in [graph, *graph.cells.values()]:
        for u, v in g.gate_edges():
            ops = g.nx.edges[u, v]["ops"]
            kept = [o for o in ops if not resolve_op(o).zero]
            if kept and len(kept) < len(ops):
                g.set_ops(u, v, kept)


def _check(threshold, mode) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0.0 < threshold < 1.0:
        raise ConfigError(f"fair_threshold: threshold={threshold!r} must be a number in (0, 1) "
                          "(a sigmoid weight; FairDARTS uses 0.85)")
    if mode not in MODES:
        raise ConfigError(f"fair_threshold: mode={mode!r} is not one of {list(MODES)} "
                          "('sparse': the best op of each of a node's top max_inputs edges; "
                          "'edge': the two best ops of every edge)")


def threshold_choice(graph, module, threshold: float = 0.85, mode: str = "sparse") -> dict:
    """The ops each gated edge ``(cell, u, v)`` keeps under the threshold rule: a list of
    none, one or (``mode="edge"``) two op names, best first.

    Candidates excluded by the space's constraints (``meta["constraints"]``) never count;
    ties go as in the reference: to the earlier edge and the earlier op in ``"sparse"``, to
    the later op in ``"edge"`` (which keeps the last two of a stable ascending sort).
    """
    _check(threshold, mode)
    space = LayerChoiceSpace(graph, module)
    probs = gate_probabilities(module)
    keep: dict = {}
    for grp in space.groups:
        weights = []
        for e in grp.edges:
            w = torch.stack([probs[k].detach().float().reshape(-1, len(e.ops)).mean(0)
                             for k in e.keys]).mean(0)
            weights.append([float(w[i]) for i in range(len(e.ops))])
        if mode == "sparse":
            best = [max(e.allowed, key=lambda i, w=w: (w[i], -i)) if e.allowed else None
                    for e, w in zip(grp.edges, weights)]
            score = [w[b] if b is not None else float("-inf") for w, b in zip(weights, best)]
            budget = len(grp.edges) if grp.max_inputs is None else grp.budget
            ranked = sorted(range(len(grp.edges)), key=lambda j: (-score[j], j))[:budget]
            for j, e in enumerate(grp.edges):
                ok = j in ranked and best[j] is not None and score[j] >= threshold
                keep[(grp.cell, e.u, grp.v)] = [e.ops[best[j]]] if ok else []
        else:
            for e, w in zip(grp.edges, weights):
                # the reference's stable ascending sort: of equal weights the later op
                top = sorted(e.allowed, key=lambda i, w=w: w[i])[-2:][::-1]
                keep[(grp.cell, e.u, grp.v)] = [e.ops[i] for i in top if w[i] >= threshold]
    return keep


def threshold_discretize(graph, module, editor: Editor | None = None,
                         threshold: float = 0.85, mode: str = "sparse",
                         keep: dict | None = None) -> list:
    """Discretize a layer-level ``graph`` (and ``module``) in place by the threshold rule
    (``keep``: the choice of :func:`threshold_choice`, computed when not given); returns
    the edits applied. Afterwards no gate is left, the graph lints and
    ``graph.meta["genotype"] == "fair"``."""
    editor = editor or Editor(graph, module)
    if keep is None:
        keep = threshold_choice(graph, module, threshold, mode)
    for (cell, u, v), ops in keep.items():
        g = graph.cells.get(cell) if cell else graph
        have = g.nx.edges[u, v]["ops"] if g is not None and g.nx.has_edge(u, v) else None
        if have is None or not isinstance(ops, list) or any(o not in have for o in ops) \
                or len(set(ops)) != len(ops):
            raise SearchError(
                f"{graph.name}: keep[{(cell, u, v)!r}] = {ops!r}: expected a list of distinct "
                f"candidates of that edge ({have if have is not None else 'no such edge'})")
    _check_outputs(graph, keep)
    done = []
    for (cell, u, v), ops in keep.items():
        c = cell or None
        g = graph.cells[cell] if cell else graph
        edge = g.edge(u, v)
        if not ops:
            done.append(editor.apply(RemoveEdge(u, v, cell=c)).edit)
            continue
        args = dict(edge.get("args") or {})
        for op in list(edge["ops"]):
            if op != ops[0]:
                done.append(editor.apply(RemoveOp(u, v, op, cell=c)).edit)
        for k, op in enumerate(ops[1:], 1):  # a second op on the edge: its own branch
            branch = _free_name(g, f"{v}_{_state_of(g, u)}_{k}")
            channels = g.nx.nodes[v].get("channels")
            for edit in (AddNode(branch, channels=channels, attrs={"branch": True, "keep": True},
                                 cell=c),
                         AddEdge(u, branch, [op], args=args, cell=c),
                         AddEdge(branch, v, ["identity"], cell=c)):
                done.append(editor.apply(edit).edit)
    for cell, g in [("", graph), *graph.cells.items()]:
        done += _remove_empty(g, cell, editor)
    module.relaxation = None
    graph.set_meta(genotype=FAIR)
    if module is not None:  # metadata only: the module the edits synchronized is current
        module.mark_synced()
    lint(graph)
    left = [(c, e) for c, g in [("", graph), *graph.cells.items()] for e in g.gate_edges()]
    if left:
        raise SearchError(f"{graph.name}: gates {left} are left after discretization")
    return done


def _check_outputs(graph, keep: dict) -> None:
    """Fail, before any edit, when the choice leaves an output of the graph or of a cell
    without an input (once the nodes that lose every input are gone)."""
    for cell, g in [("", graph), *graph.cells.items()]:
        sub = g.nx.copy()
        sub.remove_edges_from([(u, v) for (c, u, v), ops in keep.items() if c == cell and not ops])
        while True:
            empty = [n for n in sub if sub.in_degree(n) == 0
                     and g.nx.nodes[n].get("kind") != "input" and n not in g.outputs]
            if not empty:
                break
            sub.remove_nodes_from(empty)
        for n in g.outputs:
            if sub.in_degree(n) == 0 and g.nx.nodes[n].get("kind") != "input":
                where = f"cell {cell!r}" if cell else graph.name
                raise SearchError(
                    f"{where}: output {n!r} keeps no input after the threshold "
                    "discretization (every op below the threshold or reading removed "
                    "nodes); lower the threshold or search longer")


def _state_of(g, n: str):
    """The genotype index of node ``n`` (its ``state``), or its name."""
    return g.nx.nodes[n].get("state", n)


def _free_name(g, name: str) -> str:
    k, out = 1, name
    while out in g.nx:
        k += 1
        out = f"{name}_{k}"
    return out


def _remove_empty(g, cell: str, editor: Editor) -> list:
    """Remove, until none is left, the nodes of ``g`` that lost every input, with the edges
    they feed; the ops of those edges are recorded in ``g.meta["skipped"]`` as
    ``[node, place, op, input]`` (genotype indices; ``place`` among the node's inputs)."""
    c = cell or None
    states = {n: d["state"] for n, d in g.nx.nodes(data=True) if "state" in d}
    entries = {v: _inputs(g, v) for v in states}  # before any removal
    gone, done = set(), []
    while True:
        empty = [n for n in g.topological_order()
                 if g.nx.in_degree(n) == 0 and g.nx.nodes[n].get("kind") != "input"]
        if not empty:
            break
        for n in empty:
            for _, w in list(g.nx.out_edges(n)):
                done.append(editor.apply(RemoveEdge(n, w, cell=c)).edit)
            done.append(editor.apply(RemoveNode(n, cell=c)).edit)
            gone.add(n)
    skipped = [[states[v], k, op, states[u]] for v, items in entries.items()
               for k, (u, op) in enumerate(items) if u in gone]
    if skipped:  # the ops the genotype lists on edges from removed nodes
        g.set_meta(skipped=sorted(skipped))
        if editor.module is not None:  # metadata only: the module is current
            editor.module.mark_synced()
    return done


def _inputs(g, v: str) -> list[tuple[str, str]]:
    """``[(source state, op), ...]`` of state node ``v``, in port order (through branch
    nodes); edges that keep several ops, or come from other nodes, are left out."""
    out = []
    for u, _ in g.in_edges(v):
        edge = (u, v)
        if g.nx.nodes[u].get("branch"):
            preds = list(g.nx.predecessors(u))
            if len(preds) != 1:
                continue
            edge = (preds[0], u)
        ops = g.nx.edges[edge]["ops"]
        if len(ops) == 1 and "state" in g.nx.nodes[edge[0]]:
            out.append((edge[0], ops[0]))
    return out


class FairThreshold(DiscretizationPolicy):
    """FairDARTS' discretization (see the module docstring): at the end of the search, each
    layer-level op is kept iff its sigmoid weight reaches ``threshold``.

    Args:
        threshold: the weight an op must reach (0.85 in FairDARTS).
        mode: ``"sparse"`` (the best op of each of a node's ``max_inputs`` best edges) or
            ``"edge"`` (the two best ops of every edge).
    """

    def __init__(self, threshold: float = 0.85, mode: str = "sparse"):
        _check(threshold, mode)
        self.threshold = float(threshold)
        self.mode = mode

    def __repr__(self) -> str:
        return f"FairThreshold(threshold={self.threshold:g}, mode={self.mode!r})"

    def finalize(self, state: SearchState) -> None:
        if getattr(state.graph, "level", "layer") != "layer":
            discretize(state.graph, state.module, state.editor)
            return
        threshold_discretize(state.graph, state.module, state.editor, self.threshold,
                             self.mode)
